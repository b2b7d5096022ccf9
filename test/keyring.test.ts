import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import { Keyring } from '../crypto/keyring.js';
import { InsecureLocalFileSecretSource } from '../crypto/network-secret.js';
import { generateP256KeyPair } from '../crypto/key-files.js';
import { KeyringError, KeyringLockedError, NetworkSecretUnavailableError, SlotOpenError } from '../crypto/errors.js';
import { ObjectDecryptor, ObjectEncryptor } from '../crypto/object-format.js';
import { tempDir } from './helpers/keys.js';

const recovery = generateP256KeyPair();
const recoveryPublicKey = createPublicKey(recovery.publicPem);
const recoveryPrivateKey = createPrivateKey(recovery.privatePem);

async function setup() {
  const t = await tempDir();
  const source = new InsecureLocalFileSecretSource(join(t.dir, 'secrets.json'));
  const file = join(t.dir, 'keyring.json');
  const keyring = await Keyring.create(file, { user: 'alice', pcId: 'pc-1', source, recoveryPublicKey });
  return { ...t, source, file, keyring };
}

function sealWith(keyring: Keyring, text: string): Buffer {
  const enc = new ObjectEncryptor(keyring.dataKey);
  return Buffer.concat([...enc.update(Buffer.from(text)), ...enc.final()]);
}

function openWith(keyring: Keyring, sealed: Buffer): string {
  const dec = new ObjectDecryptor(keyring.dataKey);
  return Buffer.concat([...dec.update(sealed), ...dec.final()]).toString();
}

test('slot N opens with the network secret; the DEK is the same one', async () => {
  const s = await setup();
  try {
    const sealed = sealWith(s.keyring, 'payload');
    assert.deepEqual(s.keyring.slots, ['N', 'R']);
    const loaded = await Keyring.load(s.file);
    assert.equal(loaded.isUnlocked, false);
    assert.throws(() => loaded.dataKey, KeyringLockedError);
    await loaded.unlockNetwork(s.source, 'alice');
    assert.equal(openWith(loaded, sealed), 'payload');
    loaded.lock();
    assert.throws(() => loaded.dataKey, KeyringLockedError);
  } finally {
    await s.cleanup();
  }
});

test('the keyring file holds no DEK and no K_dir in clear, and is private to its owner', async () => {
  const s = await setup();
  try {
    const text = await readFile(s.file, 'utf8');
    const dek = s.keyring.dataKey.key.export();
    assert.ok(!text.includes(dek.toString('base64')) && !text.includes(dek.toString('hex')) && !text.includes(dek.toString('base64url')));
    const kDir = await s.source.fetch('alice');
    assert.ok(!text.includes(kDir.toString('base64')));
    assert.ok(!text.includes('alice'), 'user name only inside the encrypted slot R');
    const { mode } = await import('node:fs/promises').then((fs) => fs.stat(s.file));
    assert.equal(mode & 0o777, 0o600);
  } finally {
    await s.cleanup();
  }
});

test('without K_dir (deleted, replaced, another user) slot N does not open', async () => {
  const s = await setup();
  try {
    const loaded = await Keyring.load(s.file);
    await assert.rejects(loaded.unlockNetwork(s.source, 'bob'), NetworkSecretUnavailableError);
    await s.source.create('alice'); // K_dir replaced: the old slot is revoked
    await assert.rejects(loaded.unlockNetwork(s.source, 'alice'), (err: unknown) => err instanceof SlotOpenError && /revoked or replaced/.test(err.message));
    await rm(join(s.dir, 'secrets.json'));
    await assert.rejects(loaded.unlockNetwork(s.source, 'alice'), NetworkSecretUnavailableError);
    assert.equal(loaded.isUnlocked, false);
  } finally {
    await s.cleanup();
  }
});

test('slot N is bound to its keyring: a slot moved into another keyring does not open', async () => {
  const s = await setup();
  try {
    const otherFile = join(s.dir, 'other.json');
    await Keyring.create(otherFile, { user: 'alice', pcId: 'pc-1', source: new InsecureLocalFileSecretSource(join(s.dir, 'other-secrets.json')), recoveryPublicKey });
    const mine = JSON.parse(await readFile(s.file, 'utf8'));
    const theirs = JSON.parse(await readFile(otherFile, 'utf8'));
    mine.slots.N = theirs.slots.N;
    await writeFile(s.file, JSON.stringify(mine));
    const loaded = await Keyring.load(s.file);
    await assert.rejects(loaded.unlockNetwork(new InsecureLocalFileSecretSource(join(s.dir, 'other-secrets.json')), 'alice'), SlotOpenError);
  } finally {
    await s.cleanup();
  }
});

test('slot R opens with the recovery private key alone and names the user', async () => {
  const s = await setup();
  try {
    const sealed = sealWith(s.keyring, 'recover me');
    await rm(join(s.dir, 'secrets.json'));
    const loaded = await Keyring.load(s.file);
    const who = await loaded.unlockRecovery(recoveryPrivateKey);
    assert.deepEqual(who, { user: 'alice', pcId: 'pc-1' });
    assert.equal(openWith(loaded, sealed), 'recover me');
    const wrong = createPrivateKey(generateP256KeyPair().privatePem);
    const again = await Keyring.load(s.file);
    await assert.rejects(again.unlockRecovery(wrong), SlotOpenError);
  } finally {
    await s.cleanup();
  }
});

test('create refuses to replace an existing keyring; load refuses malformed files', async () => {
  const s = await setup();
  try {
    const before = await readFile(s.file, 'utf8');
    await assert.rejects(Keyring.create(s.file, { user: 'alice', pcId: 'pc-1', source: s.source, recoveryPublicKey }), (e: unknown) => e instanceof KeyringError && e.code === 'ERR_KEYRING_EXISTS');
    assert.equal(await readFile(s.file, 'utf8'), before);
    await writeFile(s.file, '{"format":"other"}');
    await assert.rejects(Keyring.load(s.file), KeyringError);
    await writeFile(s.file, 'not json');
    await assert.rejects(Keyring.load(s.file), KeyringError);
    await assert.rejects(Keyring.load(join(s.dir, 'missing.json')), (e: unknown) => e instanceof KeyringError && e.code === 'ERR_KEYRING_MISSING');
  } finally {
    await s.cleanup();
  }
});

test('malformed slots fail as SlotOpenError, and slot R from another keyring is refused', async () => {
  const s = await setup();
  try {
    const original = JSON.parse(await readFile(s.file, 'utf8'));
    for (const [field, value] of [['nonce', 'AAAA'], ['wrapped', 'AAAA'], ['kLocal', '']] as const) {
      const broken = structuredClone(original);
      broken.slots.N[field] = value;
      await writeFile(s.file, JSON.stringify(broken));
      await assert.rejects((await Keyring.load(s.file)).unlockNetwork(s.source, 'alice'), SlotOpenError, field);
    }
    const otherFile = join(s.dir, 'other.json');
    await Keyring.create(otherFile, { user: 'alice', pcId: 'pc-1', source: new InsecureLocalFileSecretSource(join(s.dir, 'o.json')), recoveryPublicKey });
    const swapped = structuredClone(original);
    swapped.slots.R = JSON.parse(await readFile(otherFile, 'utf8')).slots.R;
    await writeFile(s.file, JSON.stringify(swapped));
    await assert.rejects((await Keyring.load(s.file)).unlockRecovery(recoveryPrivateKey), /another keyring/);
  } finally {
    await s.cleanup();
  }
});
