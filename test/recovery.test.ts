import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { createPrivateKey } from 'node:crypto';
import { generateP256KeyPair } from '../crypto/key-files.js';
import { SlotOpenError } from '../crypto/errors.js';
import { listUserDirs, openVaultForRecovery } from '../shares/vault/user-vaults.js';
import { VaultError } from '../shares/vault/errors.js';
import { enrolTestUser, snapshot } from './helpers/data-dir.js';
import { patternBytes, tempDir } from './helpers/keys.js';

test('recovery: with only the recovery private key and the data folder (no network secret), a user\'s files decrypt', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const alice = await enrolTestUser(dir, 'alice');
    const data = patternBytes(150_000, 4);
    {
      const { keyring, vault } = await alice.open();
      await vault.mkdir('/Documents/reports');
      await vault.write('/Documents/reports/q3.xlsx', [data]);
      await vault.write('/Desktop/note.txt', ['remember']);
      vault.close();
      keyring.lock();
    }
    await rm(alice.secretFile); // no network secret anywhere
    const before = await snapshot(dir);

    const dirs = await listUserDirs(dir);
    assert.equal(dirs.length, 1);
    const recovered = await openVaultForRecovery(dirs[0]!, alice.recoveryPrivateKey);
    try {
      assert.equal(recovered.user, 'alice');
      assert.equal(recovered.pcId, 'pc-test');
      const read = async (p: string) => {
        const out: Buffer[] = [];
        for await (const c of (await recovered.vault.read(p)).stream) out.push(c as Buffer);
        return Buffer.concat(out);
      };
      assert.ok((await read('/Documents/reports/q3.xlsx')).equals(data));
      assert.equal((await read('/Desktop/note.txt')).toString(), 'remember');
      await assert.rejects(recovered.vault.write('/Documents/x', ['no']), (e: unknown) => e instanceof VaultError && e.code === 'ERR_READ_ONLY');
    } finally {
      recovered.vault.close();
      recovered.keyring.lock();
    }
    assert.deepEqual(await snapshot(dir), before, 'recovery modified nothing');

    const stranger = createPrivateKey(generateP256KeyPair().privatePem);
    await assert.rejects(openVaultForRecovery(dirs[0]!, stranger), SlotOpenError);
  } finally {
    await cleanup();
  }
});
