/** Keyring slot T: opens only with K_to, the password, its user and its request; removal keeps N and R. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Keyring } from '../crypto/keyring.js';
import { KEYRING_FILE, userDir } from '../shares/vault/user-vaults.js';
import { enrolTestUser } from './helpers/data-dir.js';
import { tempDir } from './helpers/keys.js';

test('slot T: K_to + password open it; anything else fails alike; removal keeps N and R', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const alice = await enrolTestUser(dir, 'alice');
    const { keyring, vault } = await alice.open();
    vault.close();
    const dek = keyring.dataKey.key.export();
    const kTo = randomBytes(32);
    const rid = randomBytes(16).toString('base64url');
    await keyring.setTakeoutSlot({ kTo, password: 'pässword', user: 'alice', rid });
    keyring.lock();
    const file = join(userDir(dir, 'pc-test', 'alice'), KEYRING_FILE);
    assert.doesNotMatch(await readFile(file, 'utf8'), new RegExp(kTo.toString('base64').slice(0, 16).replace(/[+/]/g, '.')));
    const fresh = await Keyring.load(file);
    assert.deepEqual(fresh.slots, ['N', 'R', 'T']);
    assert.equal(fresh.takeoutRequestId, rid);
    const opened = await fresh.unlockTakeout({ kTo, password: 'pa\u0308ssword', user: 'alice', rid });
    assert.ok(opened.key.export().equals(dek), 'the same DEK (password taken in NFC)');
    for (const wrong of [
      { kTo, password: 'password', user: 'alice', rid },
      { kTo: randomBytes(32), password: 'pässword', user: 'alice', rid },
      { kTo, password: 'pässword', user: 'bob', rid },
      { kTo, password: 'pässword', user: 'alice', rid: 'x'.repeat(22) },
    ]) {
      await assert.rejects((await Keyring.load(file)).unlockTakeout(wrong), { code: 'ERR_SLOT_OPEN' });
    }
    assert.equal(await fresh.removeTakeoutSlot(), true);
    assert.deepEqual((await Keyring.load(file)).slots, ['N', 'R']);
    const again = await alice.open();
    assert.ok(again.keyring.dataKey.key.export().equals(dek), 'slot N still opens');
    again.vault.close();
  } finally {
    await cleanup();
  }
});
