import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { enrolTestUser, snapshot } from './helpers/data-dir.js';
import { tempDir } from './helpers/keys.js';

const child = fileURLToPath(new URL('./fixtures/open-vault.js', import.meta.url));

function openInFreshProcess(u: { dataDir: string; pcId: string; user: string; secretFile: string }) {
  const r = spawnSync(process.execPath, [child, u.dataDir, u.pcId, u.user, u.secretFile], { encoding: 'utf8' });
  return { status: r.status, result: JSON.parse(r.stdout.trim()) as { ok: boolean; names?: string[]; code?: string; message?: string } };
}

test('a fresh process opens the vault only with the network secret; without it: a clear error and nothing modified', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const user = await enrolTestUser(dir);
    const { keyring, vault } = await user.open();
    await vault.write('/Documents/kept.txt', ['kept']);
    vault.close();
    keyring.lock();

    const good = openInFreshProcess(user);
    assert.equal(good.status, 0);
    assert.deepEqual(good.result.names, ['kept.txt']);

    // The secret is gone (the directory is unreachable, or the PC was revoked).
    await rename(user.secretFile, `${user.secretFile}.away`);
    const before = await snapshot(dir);
    const missing = openInFreshProcess(user);
    assert.equal(missing.status, 1);
    assert.equal(missing.result.code, 'ERR_NETWORK_SECRET_UNAVAILABLE');
    assert.match(missing.result.message!, /network secret/);
    assert.deepEqual(await snapshot(dir), before, 'nothing in the data folder changed');

    // A different secret (K_dir replaced in the directory) does not open it either.
    const secrets = JSON.parse(await readFile(`${user.secretFile}.away`, 'utf8'));
    secrets[user.user] = Buffer.alloc(32, 7).toString('base64');
    await writeFile(user.secretFile, JSON.stringify(secrets));
    const before2 = await snapshot(dir);
    const wrong = openInFreshProcess(user);
    assert.equal(wrong.status, 1);
    assert.equal(wrong.result.code, 'ERR_SLOT_OPEN');
    assert.match(wrong.result.message!, /network secret does not match/);
    assert.deepEqual(await snapshot(dir), before2, 'nothing in the data folder changed');
  } finally {
    await cleanup();
  }
});
