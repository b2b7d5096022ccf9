/**
 * The index shrinks after large deletes (issue 9, Low 5): 40 files with
 * 1 MiB of dead properties each make a 40 MB index; once they are deleted
 * (one folder, or one by one, as the probe did), index.db and its WAL together
 * are back under a small bound, and nothing left is lost. A vault created
 * before incremental vacuum (auto_vacuum NONE) is switched over by the first
 * reclaim. A backup counts the index bytes it writes (indexBytes), and
 * after the deletes it writes a small index.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hkdfSync } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import type { DataKey } from '../crypto/object-format.js';
import { PathTarget } from '../backup/path-target.js';
import { runBackup } from '../backup/run.js';
import { Vault } from '../shares/vault/vault.js';
import { makeDataDir } from './helpers/backup-data.js';
import { listFiles } from './helpers/data-dir.js';
import { randomDataKey, tempDir } from './helpers/keys.js';

const T = { timeout: 120_000 };
const FILES = 40;
const PROPS_PER_FILE = 16;
const PROP_BYTES = 64 * 1024; // the WebDAV layer's cap per property
const MB = 1e6;
/** index.db and index.db-wal together after the deletes. */
const BOUND = 4 * MB;

async function indexBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of ['index.db', 'index.db-wal']) total += await stat(join(dir, name)).then((s) => s.size, () => 0);
  return total;
}

/** A second connection to the index, keyed as docs/format.md §3.2 says. */
function rawIndex(dir: string, dek: DataKey): Database.Database {
  const db = new Database(join(dir, 'index.db'));
  db.pragma(`cipher = 'chacha20'`);
  db.pragma(`key = 'raw:${Buffer.from(hkdfSync('sha256', dek.key, dek.id, Buffer.from('mydoc vault v1 index key'), 32)).toString('hex')}'`);
  return db;
}

/** FILES files under `folder`, each with 1 MiB of dead properties (distinct bytes, so nothing compresses). */
async function fill(vault: Vault, folder: string): Promise<void> {
  await vault.mkdir(folder);
  for (let f = 0; f < FILES; f++) {
    const path = `${folder}/file-${f}.txt`;
    await vault.write(path, [`content ${f}`]);
    const props = Array.from({ length: PROPS_PER_FILE }, (_, p) => ({ ns: 'urn:probe', name: `p${p}`, value: `${f}-${p}-`.padEnd(PROP_BYTES, String.fromCharCode(65 + ((f * PROPS_PER_FILE + p) % 26))) }));
    await vault.patchProps(path, props);
  }
}

test('deleting a folder of files with large dead properties shrinks index.db and its WAL', T, async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const vault = await Vault.open(dir, randomDataKey());
  t.after(() => vault.close());
  await vault.write('/Documents/keep.txt', ['kept']);
  await vault.patchProps('/Documents/keep.txt', [{ ns: 'urn:x', name: 'kept', value: 'yes' }]);
  await fill(vault, '/Documents/big');
  const full = await indexBytes(dir);
  assert.ok(full > FILES * PROPS_PER_FILE * PROP_BYTES, `the index holds the properties: ${full} bytes`);

  await vault.delete('/Documents/big');
  const after = await indexBytes(dir);
  assert.ok(after < BOUND, `index.db + WAL after the delete: ${(after / MB).toFixed(1)} MB (was ${(full / MB).toFixed(1)} MB), bound ${BOUND / MB} MB`);
  assert.deepEqual(vault.getProps('/Documents/keep.txt'), [{ ns: 'urn:x', name: 'kept', value: 'yes' }]);
  assert.equal(vault.stat('/Documents/big'), undefined);
});

test('deleting the files one by one (an index made before incremental vacuum) shrinks it too', T, async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const dek = randomDataKey();
  (await Vault.open(dir, dek)).close();
  // As an index made by an older mydoc: no auto_vacuum.
  const old = rawIndex(dir, dek);
  old.pragma('auto_vacuum = NONE');
  old.exec('VACUUM');
  assert.equal(old.pragma('auto_vacuum', { simple: true }), 0);
  old.close();

  const vault = await Vault.open(dir, dek);
  await fill(vault, '/Desktop/big');
  const full = await indexBytes(dir);
  assert.ok(full > FILES * PROPS_PER_FILE * PROP_BYTES, `the index holds the properties: ${full} bytes`);
  for (let f = 0; f < FILES; f++) await vault.delete(`/Desktop/big/file-${f}.txt`);
  const after = await indexBytes(dir);
  assert.ok(after < BOUND, `index.db + WAL after ${FILES} deletes: ${(after / MB).toFixed(1)} MB (was ${(full / MB).toFixed(1)} MB), bound ${BOUND / MB} MB`);
  assert.deepEqual(vault.list('/Desktop/big'), []);
  vault.close();

  const reopened = rawIndex(dir, dek);
  t.after(() => reopened.close());
  assert.equal(reopened.pragma('auto_vacuum', { simple: true }), 2, 'switched to incremental vacuum');
  assert.equal(reopened.pragma('integrity_check', { simple: true }), 'ok');
});

test('a backup counts the index bytes it writes; after the deletes its index copy is small', T, async (t) => {
  const { dir, cleanup } = await tempDir('mydoc-backup-');
  t.after(cleanup);
  const fx = await makeDataDir(join(dir, 'data'), { users: ['alice'] });
  const target = new PathTarget(join(dir, 'nas'));
  const written = async (snapshot: string): Promise<number> => {
    let total = 0;
    for (const f of await listFiles(join(dir, 'nas', fx.pcId))) if (f.includes(snapshot)) total += (await stat(f)).size;
    return total;
  };
  await fx.withVault('alice', (v) => fill(v, '/Documents/big'));
  const first = await runBackup({ ...fx.backupOptions, target });
  assert.equal(first.status, 'complete');
  assert.ok(first.indexBytes > FILES * PROPS_PER_FILE * PROP_BYTES, `the index is counted: ${JSON.stringify(first)}`);
  assert.equal(first.indexBytes, await written(first.snapshot!), 'indexBytes is what the snapshot and its manifest hold on the target');

  await fx.withVault('alice', (v) => v.delete('/Documents/big'));
  const second = await runBackup({ ...fx.backupOptions, target });
  assert.equal(second.bytesCopied, 0, 'no new object');
  assert.ok(second.indexBytes > 0 && second.indexBytes < BOUND, `a small index after the delete: ${JSON.stringify(second)}`);
  assert.equal(second.indexBytes, await written(second.snapshot!));
});
