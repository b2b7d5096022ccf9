import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import Database from 'better-sqlite3-multiple-ciphers';
import { AREAS, ATTR_ARCHIVE, ATTR_DIRECTORY, Vault } from '../shares/vault/vault.js';
import { VaultError } from '../shares/vault/errors.js';
import { HEADER_SIZE } from '../crypto/object-format.js';
import { patternBytes, randomDataKey, tempDir } from './helpers/keys.js';

async function readAll(vault: Vault, path: string, range?: { start?: number; end?: number }): Promise<Buffer> {
  const { stream } = await vault.read(path, range);
  const out: Buffer[] = [];
  for await (const c of stream) out.push(c as Buffer);
  return Buffer.concat(out);
}

async function withVault(fn: (vault: Vault, dir: string) => Promise<void>, now?: () => number): Promise<void> {
  const { dir, cleanup } = await tempDir();
  const vault = await Vault.open(dir, randomDataKey(), now ? { now } : {});
  try {
    await fn(vault, dir);
  } finally {
    vault.close();
    await cleanup();
  }
}

const code = (c: string) => (err: unknown) => err instanceof VaultError && err.code === c;

async function allObjectFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const fan of await readdir(join(dir, 'objects'))) for (const f of await readdir(join(dir, 'objects', fan))) out.push(f);
  return out;
}

test('a new vault has the Documents, Desktop and Profile areas, which cannot be removed', async () => {
  await withVault(async (vault) => {
    assert.deepEqual(vault.list('/').map((e) => e.name).sort(), [...AREAS].sort());
    for (const e of vault.list('/')) {
      assert.equal(e.isDir, true);
      assert.equal(e.attributes, ATTR_DIRECTORY);
    }
    await assert.rejects(vault.delete('/Documents'), code('ERR_PROTECTED'));
    await assert.rejects(vault.delete('/documents'), code('ERR_PROTECTED'));
    await assert.rejects(vault.move('/Desktop', '/Documents/x', { overwrite: false }), code('ERR_PROTECTED'));
    await vault.write('/Documents/a.txt', ['x']);
    await assert.rejects(vault.move('/Documents/a.txt', '/Profile', { overwrite: true }), code('ERR_PROTECTED'));
  });
});

test('write, stat, read and overwrite; the old object is collected after the flip', async () => {
  let clock = 1_700_000_000_000;
  await withVault(
    async (vault, dir) => {
      const first = await vault.write('/Documents/report.txt', Readable.from([Buffer.from('hello '), Buffer.from('world')]));
      assert.equal(first.created, true);
      assert.equal(first.entry.size, 11);
      assert.equal(first.entry.attributes, ATTR_ARCHIVE);
      assert.equal(first.entry.modified, clock);
      assert.equal((await readAll(vault, '/Documents/report.txt')).toString(), 'hello world');
      clock += 5000;
      const big = patternBytes(3 * 65536 + 10);
      const second = await vault.write('/Documents/report.txt', [big]);
      assert.equal(second.created, false);
      assert.equal(second.entry.created, first.entry.created, 'creation time kept on overwrite');
      assert.equal(second.entry.modified, clock);
      assert.notEqual(second.entry.etag, first.entry.etag);
      assert.ok((await readAll(vault, '/Documents/report.txt')).equals(big));
      assert.deepEqual(await allObjectFiles(dir), [second.entry.objectId], 'only the current object remains');
      assert.equal(vault.quotaUsed(), big.length);
    },
    () => clock,
  );
});

test('empty files share one durable empty object, kept while the vault is open even when no row refers to it, swept at the next open then', async () => {
  const { dir, cleanup } = await tempDir();
  const dek = randomDataKey();
  try {
    let vault = await Vault.open(dir, dek);
    const a = await vault.write('/Documents/a', []);
    const b = await vault.write('/Documents/b', []);
    const c = await vault.write('/Documents/c', Readable.from([])); // a stream is read: its own object
    assert.equal(b.entry.objectId, a.entry.objectId, "the second empty file shares the first one's object");
    assert.notEqual(c.entry.objectId, a.entry.objectId);
    assert.equal((await allObjectFiles(dir)).length, 2);
    await vault.write('/Documents/a', ['now a']);
    assert.equal((await readAll(vault, '/Documents/b')).length, 0, 'still readable through the other row');
    await vault.delete('/Documents/b');
    await vault.write('/Documents/c', ['now c']);
    const shared = a.entry.objectId!;
    assert.ok((await allObjectFiles(dir)).includes(shared), 'kept with no row referring to it');
    assert.ok(!(await allObjectFiles(dir)).includes(c.entry.objectId!), 'an empty object of its own is collected as any other');
    const d = await vault.write('/Documents/d', [Buffer.alloc(0)]);
    assert.equal(d.entry.objectId, shared);
    assert.equal((await readAll(vault, '/Documents/d')).length, 0);
    await assert.rejects(vault.write('/Documents/d', [], { createOnly: true }), code('ERR_EXISTS'));
    await vault.delete('/Documents/d');
    vault.close();
    vault = await Vault.open(dir, dek);
    assert.ok(!(await allObjectFiles(dir)).includes(shared), 'no row refers to it: swept at open');
    const e = await vault.write('/Documents/e', []);
    assert.notEqual(e.entry.objectId, shared);
    assert.equal((await readAll(vault, '/Documents/e')).length, 0);
    vault.close();
  } finally {
    await cleanup();
  }
});

test('paths resolve the same at every depth (one joined query up to 16 names, a name at a time deeper): case and form folded, a file is no folder on the way', async () => {
  await withVault(async (vault) => {
    const names: string[] = ['Documents'];
    for (let depth = 2; depth <= 20; depth++) {
      names.push(`Level ${depth}`);
      await vault.mkdir('/' + names.join('/'));
      await vault.write('/' + [...names, 'f.txt'].join('/'), [`at ${depth}`]);
      const upper = '/' + [...names, 'F.TXT'].map((n) => n.toUpperCase()).join('/');
      assert.equal(vault.stat(upper)?.name, 'f.txt', `depth ${depth + 1}: found through other case`);
      assert.equal((await readAll(vault, upper)).toString(), `at ${depth}`);
      assert.equal(vault.stat('/' + [...names, 'f.txt', 'below'].join('/')), undefined, `depth ${depth + 2}: a file has no children`);
      assert.equal(vault.stat('/' + [...names, 'missing', 'f.txt'].join('/')), undefined);
      await assert.rejects(vault.write('/' + [...names, 'f.txt', 'x'].join('/'), ['x']), code('ERR_NOT_A_DIRECTORY'));
      await assert.rejects(vault.write('/' + [...names, 'missing', 'x'].join('/'), ['x']), code('ERR_PARENT_MISSING'));
    }
    assert.equal(vault.stat('/')?.isDir, true);
    assert.equal(vault.stat('/documents')?.name, 'Documents');
  });
});

test('folders, dead properties and Win32 metadata through the group commit: concurrent with writes, a refused one fails alone, all there after reopening', async () => {
  const { dir, cleanup } = await tempDir();
  const dek = randomDataKey();
  try {
    let vault = await Vault.open(dir, dek);
    await vault.mkdir('/Documents/taken');
    const tag = (i: number) => ({ ns: 'urn:t', name: 'tag', value: `<t:tag xmlns:t="urn:t">${i}</t:tag>` });
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < 12; i++) {
      jobs.push(vault.mkdir(`/Documents/d${i}`));
      jobs.push(vault.write(`/Documents/f${i}`, [`file ${i}`]).then(() => Promise.all([vault.setMeta(`/Documents/f${i}`, { created: 1_600_000_000_000 + i, attributes: 0x21 }), vault.patchProps(`/Documents/f${i}`, [tag(i)])])));
    }
    const refused = assert.rejects(vault.mkdir('/Documents/TAKEN'), code('ERR_EXISTS'));
    await Promise.all(jobs);
    await refused;
    await assert.rejects(vault.setMeta('/Documents/missing', { attributes: 1 }), code('ERR_NOT_FOUND'));
    await assert.rejects(vault.mkdir('/'), code('ERR_EXISTS'));
    vault.close();
    vault = await Vault.open(dir, dek);
    for (let i = 0; i < 12; i++) {
      assert.equal(vault.stat(`/Documents/d${i}`)?.isDir, true);
      const f = vault.stat(`/Documents/f${i}`)!;
      assert.equal(f.created, 1_600_000_000_000 + i);
      assert.equal(f.attributes, 0x21);
      assert.deepEqual(vault.getProps(`/Documents/f${i}`), [tag(i)]);
      assert.equal((await readAll(vault, `/Documents/f${i}`)).toString(), `file ${i}`);
    }
    vault.close();
    const readOnly = await Vault.openReadOnly(dir, dek);
    await assert.rejects(readOnly.mkdir('/Documents/x'), code('ERR_READ_ONLY'));
    readOnly.close();
  } finally {
    await cleanup();
  }
});

test('names are case-insensitive, case-preserving and stored in NFC', async () => {
  await withVault(async (vault) => {
    await vault.write('/Documents/Résumé.TXT', ['v1']);
    const nfd = '/documents/Re\u0301sume\u0301.txt';
    assert.equal(vault.stat(nfd)?.name, 'Résumé.TXT', 'found through other case and NFD');
    assert.equal(vault.stat(nfd)?.name.normalize('NFC'), vault.stat(nfd)?.name);
    await vault.write(nfd, ['v2']);
    assert.equal(vault.list('/Documents').length, 1, 'no second entry differing only in case or form');
    assert.equal((await readAll(vault, '/DOCUMENTS/RÉSUMÉ.TXT')).toString(), 'v2');
    await vault.move('/Documents/résumé.txt', '/Documents/RESUME.txt', { overwrite: false });
    assert.deepEqual(vault.list('/Documents').map((e) => e.name), ['RESUME.txt'], 'case-only rename');
    assert.equal(vault.stat('/Documents/straße')?.name, undefined);
    await vault.write('/Documents/straße', ['s']);
    assert.equal(vault.stat('/Documents/STRASSE'), undefined, 'ß is not folded to SS (simple case mapping, as Windows)');
  });
});

test('invalid names are refused with ERR_NAME_INVALID', async () => {
  await withVault(async (vault) => {
    for (const bad of ['/Documents/..', '/Documents/.', '/Documents/a\u0000b', '/Documents/a\\b', '/Documents/a:b', '/Documents/x?', '/Documents/trailing.', '/Documents/tab\t', '/Documents/' + 'x'.repeat(256), '/Documents/\ud800']) {
      await assert.rejects(vault.write(bad, ['x']), code('ERR_NAME_INVALID'), JSON.stringify(bad));
    }
    assert.throws(() => vault.stat('/../etc/passwd'), code('ERR_NAME_INVALID'));
  });
});

test('mkdir, list, parent checks and file/folder conflicts', async () => {
  await withVault(async (vault) => {
    await vault.mkdir('/Documents/a');
    await vault.mkdir('/Documents/a/b');
    await assert.rejects(vault.mkdir('/Documents/A'), code('ERR_EXISTS'));
    await assert.rejects(vault.mkdir('/Documents/missing/x'), code('ERR_PARENT_MISSING'));
    await vault.write('/Documents/a/f', ['1']);
    await assert.rejects(vault.mkdir('/Documents/a/f/g'), code('ERR_NOT_A_DIRECTORY'));
    await assert.rejects(vault.write('/Documents/a/b', ['x']), code('ERR_IS_A_DIRECTORY'));
    await assert.rejects(vault.write('/Documents/a/f', ['x'], { createOnly: true }), code('ERR_EXISTS'));
    await assert.rejects(vault.read('/Documents/a'), code('ERR_IS_A_DIRECTORY'));
    await assert.rejects(vault.read('/Documents/nope'), code('ERR_NOT_FOUND'));
    assert.throws(() => vault.list('/Documents/a/f'), code('ERR_NOT_A_DIRECTORY'));
    assert.deepEqual(vault.list('/Documents/a').map((e) => [e.name, e.isDir]), [['b', true], ['f', false]]);
  });
});

test('a folder move is one transaction and keeps the whole subtree; moving into itself is refused', async () => {
  await withVault(async (vault) => {
    await vault.mkdir('/Documents/p');
    await vault.mkdir('/Documents/p/q');
    await vault.write('/Documents/p/q/file', ['deep']);
    await vault.move('/Documents/p', '/Desktop/moved', { overwrite: false });
    assert.equal(vault.stat('/Documents/p'), undefined);
    assert.equal((await readAll(vault, '/Desktop/moved/q/file')).toString(), 'deep');
    await assert.rejects(vault.move('/Desktop/moved', '/Desktop/moved/q/inside', { overwrite: false }), code('ERR_MOVE_INTO_SELF'));
    await vault.write('/Desktop/other', ['o']);
    await assert.rejects(vault.move('/Desktop/other', '/Desktop/moved', { overwrite: false }), code('ERR_EXISTS'));
    const r = await vault.move('/Desktop/other', '/Desktop/moved', { overwrite: true });
    assert.equal(r.replaced, true);
    assert.equal(vault.stat('/Desktop/moved')?.isDir, false);
    assert.equal((await readAll(vault, '/Desktop/moved')).toString(), 'o');
    await assert.rejects(vault.move('/Desktop/nope', '/Desktop/x', { overwrite: true }), code('ERR_NOT_FOUND'));
  });
});

test('copy shares content, copies metadata and properties; deleting one copy keeps the other readable', async () => {
  await withVault(async (vault, dir) => {
    await vault.mkdir('/Documents/src');
    await vault.write('/Documents/src/f', [patternBytes(70_000)]);
    await vault.patchProps('/Documents/src/f', [{ ns: 'urn:x', name: 'tag', value: '<x:tag xmlns:x="urn:x">blue</x:tag>' }]);
    await vault.setMeta('/Documents/src/f', { modified: 1_000_000_000_000, attributes: 0x21 });
    await vault.copy('/Documents/src', '/Documents/dst', { overwrite: false });
    const copied = vault.stat('/Documents/dst/f')!;
    assert.equal(copied.modified, 1_000_000_000_000);
    assert.equal(copied.attributes, 0x21);
    assert.deepEqual(vault.getProps('/Documents/dst/f'), vault.getProps('/Documents/src/f'));
    assert.equal((await allObjectFiles(dir)).length, 1, 'content shared, not duplicated');
    await vault.delete('/Documents/src');
    assert.equal((await allObjectFiles(dir)).length, 1, 'shared object kept while referenced');
    assert.ok((await readAll(vault, '/Documents/dst/f')).equals(patternBytes(70_000)));
    await vault.delete('/Documents/dst');
    assert.equal((await allObjectFiles(dir)).length, 0, 'collected when the last reference goes');
    await assert.rejects(vault.copy('/Documents/x', '/Documents/y', { overwrite: false }), code('ERR_NOT_FOUND'));
  });
});

test('dead properties: set, replace, remove, atomically per call', async () => {
  await withVault(async (vault) => {
    await vault.write('/Documents/f', ['x']);
    await vault.patchProps('/Documents/f', [
      { ns: 'urn:a', name: 'p', value: '1' },
      { ns: 'urn:b', name: 'p', value: '2' },
    ]);
    await vault.patchProps('/Documents/f', [{ ns: 'urn:a', name: 'p', value: '3' }], [{ ns: 'urn:b', name: 'p' }]);
    assert.deepEqual(vault.getProps('/Documents/f'), [{ ns: 'urn:a', name: 'p', value: '3' }]);
    await vault.patchProps('/Documents', [{ ns: 'urn:a', name: 'on-folder', value: 'ok' }]);
    assert.equal(vault.getProps('/Documents').length, 1);
  });
});

test('Win32 times and attributes are stored; the directory bit follows the entry kind', async () => {
  await withVault(async (vault) => {
    await vault.write('/Documents/f', ['x'], { times: { created: 1000, modified: 2000, accessed: 3000 } });
    let e = vault.stat('/Documents/f')!;
    assert.deepEqual([e.created, e.modified, e.accessed], [1000, 2000, 3000]);
    e = await vault.setMeta('/Documents/f', { modified: 5000, attributes: 0x10 | 0x01 });
    assert.equal(e.modified, 5000);
    assert.equal(e.attributes, 0x01, 'a file cannot be made a directory by attributes');
    assert.equal((await vault.setMeta('/Documents', { attributes: 0 })).attributes, ATTR_DIRECTORY);
  });
});

test('byte ranges of a vault file match the plaintext', async () => {
  await withVault(async (vault) => {
    const data = patternBytes(200_000, 1);
    await vault.write('/Documents/r', [data]);
    for (const [start, end] of [[0, 1], [65535, 65537], [131_000, 200_000], [199_999, 300_000]] as const) {
      assert.ok((await readAll(vault, '/Documents/r', { start, end })).equals(data.subarray(start, end)));
    }
  });
});

test('an over-limit write is refused and leaves nothing behind', async () => {
  await withVault(async (vault, dir) => {
    await assert.rejects(vault.write('/Documents/big', [patternBytes(5000)], { maxBytes: 4096 }), code('ERR_TOO_LARGE'));
    assert.equal(vault.stat('/Documents/big'), undefined);
    assert.deepEqual(await allObjectFiles(dir), []);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
  });
});

test('a failing source stream leaves the previous version intact', async () => {
  await withVault(async (vault, dir) => {
    await vault.write('/Documents/f', ['good']);
    async function* broken(): AsyncGenerator<Buffer> {
      yield Buffer.alloc(2_000_000, 1);
      throw new Error('client went away');
    }
    await assert.rejects(vault.write('/Documents/f', broken()), /client went away/);
    assert.equal((await readAll(vault, '/Documents/f')).toString(), 'good');
    assert.equal((await allObjectFiles(dir)).length, 1);
  });
});

test('a corrupted object gives an error naming the file; other files stay readable', async () => {
  await withVault(async (vault, dir) => {
    const a = await vault.write('/Documents/damaged.docx', [patternBytes(100_000)]);
    await vault.write('/Documents/fine.txt', ['still here']);
    const objectFile = join(dir, 'objects', a.entry.objectId!.slice(0, 2), a.entry.objectId!);
    const bytes = await readFile(objectFile);
    bytes[HEADER_SIZE + 70_000]! ^= 0x40;
    await writeFile(objectFile, bytes);
    await assert.rejects(readAll(vault, '/Documents/damaged.docx'), (err: unknown) => {
      assert.ok(err instanceof VaultError);
      assert.equal(err.code, 'ERR_OBJECT_CORRUPT');
      assert.match(err.message, /\/Documents\/damaged\.docx/);
      return true;
    });
    assert.ok((await readAll(vault, '/Documents/damaged.docx', { start: 0, end: 65536 })).equals(patternBytes(100_000).subarray(0, 65536)), 'undamaged chunk still readable');
    assert.equal((await readAll(vault, '/Documents/fine.txt')).toString(), 'still here');
    await writeFile(objectFile, bytes.subarray(0, 50));
    await assert.rejects(vault.read('/Documents/damaged.docx'), code('ERR_OBJECT_CORRUPT'));
  });
});

test('the index file is unreadable without the key', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const dek = randomDataKey();
    const vault = await Vault.open(dir, dek);
    await vault.write('/Documents/secret-name.txt', ['x']);
    vault.close();
    const raw = await readFile(join(dir, 'index.db'));
    assert.ok(!raw.includes('SQLite format 3'), 'no SQLite header in clear');
    assert.ok(!raw.includes('CREATE TABLE'), 'schema not in clear');
    assert.ok(!raw.includes('secret-name'), 'names not in clear');
    // A plain SQLite (no key) cannot read it.
    const db = new Database(join(dir, 'index.db'));
    assert.throws(() => db.prepare('SELECT * FROM sqlite_master').all(), /not a database|encrypted/i);
    db.close();
    // The vault refuses another key with a clear error and modifies nothing.
    const before = (await stat(join(dir, 'index.db'))).mtimeMs;
    await assert.rejects(Vault.open(dir, randomDataKey()), code('ERR_INDEX_KEY'));
    assert.equal((await stat(join(dir, 'index.db'))).mtimeMs, before);
    const again = await Vault.open(dir, dek);
    assert.equal(again.stat('/Documents/secret-name.txt')?.size, 1);
    again.close();
  } finally {
    await cleanup();
  }
});

test('objects swapped on disk are detected: each file is bound to its own object', async () => {
  await withVault(async (vault, dir) => {
    const a = await vault.write('/Documents/a.txt', ['AAAA']);
    const b = await vault.write('/Documents/b.txt', ['BBBB']);
    const pa = join(dir, 'objects', a.entry.objectId!.slice(0, 2), a.entry.objectId!);
    const pb = join(dir, 'objects', b.entry.objectId!.slice(0, 2), b.entry.objectId!);
    const [ba, bb] = [await readFile(pa), await readFile(pb)];
    await writeFile(pa, bb);
    await writeFile(pb, ba);
    await assert.rejects(readAll(vault, '/Documents/a.txt'), (e: unknown) => e instanceof VaultError && e.code === 'ERR_OBJECT_CORRUPT' && /a\.txt.*swapped/.test(e.message));
    await assert.rejects(readAll(vault, '/Documents/b.txt'), code('ERR_OBJECT_CORRUPT'));
  });
});

test('one vault is open once: a second open is refused while the first holds it, a dead holder\'s lock is taken over', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const dek = randomDataKey();
    const first = await Vault.open(dir, dek);
    await first.write('/Documents/f', ['x']);
    await assert.rejects(Vault.open(dir, dek), (e: unknown) => e instanceof VaultError && e.code === 'ERR_VAULT_BUSY' && new RegExp(`process ${process.pid}`).test(e.message));
    assert.equal(first.stat('/Documents/f')?.size, 1, 'the refused open cleaned nothing up');
    first.close();
    // A lock left by a process that no longer exists.
    await writeFile(join(dir, 'vault.lock'), '999999999\n');
    const second = await Vault.open(dir, dek);
    assert.equal(second.stat('/Documents/f')?.size, 1);
    second.close();
  } finally {
    await cleanup();
  }
});

test('an index from a newer schema version is refused, not modified', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const dek = randomDataKey();
    (await Vault.open(dir, dek)).close();
    // Bump the version through a second, keyed connection (as a newer mydoc would).
    const { hkdfSync } = await import('node:crypto');
    const key = Buffer.from(hkdfSync('sha256', dek.key, dek.id, Buffer.from('mydoc vault v1 index key'), 32)).toString('hex');
    const db = new Database(join(dir, 'index.db'));
    db.pragma(`cipher = 'chacha20'`);
    db.pragma(`key = 'raw:${key}'`);
    db.pragma('user_version = 99');
    db.close();
    await assert.rejects(Vault.open(dir, dek), (e: unknown) => e instanceof VaultError && e.code === 'ERR_INDEX_VERSION' && /version 99/.test(e.message));
  } finally {
    await cleanup();
  }
});
