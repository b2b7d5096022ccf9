import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { enrolTestUser, listFiles, scanForMarker } from './helpers/data-dir.js';
import { tempDir } from './helpers/keys.js';

test('no plaintext at rest: markers in contents, names and properties appear nowhere under the data folder', async () => {
  const { dir, cleanup } = await tempDir();
  const marker = `MYDOC-MARKER-${randomUUID()}`;
  try {
    const user = await enrolTestUser(dir);
    const { keyring, vault } = await user.open();
    try {
      const text = `${marker}\n`.repeat(5000); // ~250 KB: several chunks
      await vault.mkdir(`/Documents/${marker}-folder`);
      await vault.write(`/Documents/${marker}-folder/${marker}.txt`, [text]);
      await vault.write(`/Desktop/${marker}.utf16.txt`, [Buffer.from(text, 'utf16le')]);
      await vault.write('/Profile/small', [marker]);
      await vault.write('/Profile/empty-' + marker, []);
      await vault.patchProps(`/Documents/${marker}-folder/${marker}.txt`, [{ ns: `urn:${marker}`, name: marker, value: `<v>${marker}</v>` }]);
      await vault.copy(`/Documents/${marker}-folder`, `/Documents/${marker}-copy`, { overwrite: false });
      await vault.move('/Profile/small', `/Profile/renamed-${marker}`, { overwrite: false });
      await vault.write(`/Profile/renamed-${marker}`, [marker + marker]); // overwrite: old object collected
      // While the vault is open (the WAL holds the latest pages) ...
      assert.deepEqual(await scanForMarker(dir, marker), [], 'no marker with the vault open');
    } finally {
      vault.close();
      keyring.lock();
    }
    // ... and after it closed (checkpointed into the main file).
    assert.deepEqual(await scanForMarker(dir, marker), [], 'no marker after close');
    assert.ok((await listFiles(dir)).length >= 6, 'the scan saw the index, keyring and objects');
    // The scanner itself finds what it should (the test can fail).
    const { writeFile } = await import('node:fs/promises');
    await writeFile(`${dir}/probe`, Buffer.from(`x${marker}y`, 'utf16le'));
    assert.equal((await scanForMarker(dir, marker)).length, 1);
  } finally {
    await cleanup();
  }
});
