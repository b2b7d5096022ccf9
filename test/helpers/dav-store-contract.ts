/**
 * The shared test suite of the WebDAV store contract (shares/webdav/store.ts):
 * every store (the vault's adapter, the in-memory store) runs it with
 * `davStoreContract(name, setup, capabilities)`. A store declares the
 * optional capabilities it offers: the suite checks it offers exactly those,
 * and runs each declared capability's tests.
 *
 * `setup` gives a store and `base`, a folder in it where the suite may
 * create anything (the vault's root holds only its fixed areas); each test
 * works in a folder of its own below `base`.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { expectCode } from './expect-code.js';
import { ATTR_ARCHIVE, ATTR_DIRECTORY, hasDeadProps, hasQuota, hasWin32Meta, type DavPath, type DavStore } from '../../shares/webdav/store.js';

/** The optional capabilities of shares/webdav/store.ts. */
export type DavStoreCapability = 'deadProps' | 'win32Meta' | 'quota';

const HAS: Record<DavStoreCapability, (store: DavStore) => boolean> = { deadProps: hasDeadProps, win32Meta: hasWin32Meta, quota: hasQuota };

export interface DavStoreSetup {
  store: DavStore;
  base: DavPath;
  cleanup(): Promise<void>;
}

async function text(stream: Readable): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(parts).toString('utf8');
}

export function davStoreContract(name: string, setup: () => Promise<DavStoreSetup>, capabilities: readonly DavStoreCapability[]): void {
  const declared = (capability: DavStoreCapability) => capabilities.includes(capability);
  describe(`WebDAV store contract: ${name}`, () => {
    let env: DavStoreSetup;
    let store: DavStore;
    let folders = 0;
    /** A new, empty folder for one test. */
    const folder = async (): Promise<string[]> => {
      const path = [...env.base, `t${++folders}`];
      await store.mkdir(path);
      return path;
    };
    const read = async (path: DavPath, range?: { start: number; end: number }) => text(await store.read(path, range));

    before(async () => {
      env = await setup();
      store = env.store;
    });
    after(async () => {
      await env?.cleanup();
    });

    it('stats the root as a folder, and nothing where nothing is', () => {
      const root = store.stat([]);
      assert.equal(root?.isDir, true);
      assert.equal(store.stat([...env.base, 'missing']), undefined);
      assert.equal(store.stat([...env.base, 'missing', 'deeper']), undefined);
    });

    it('writes, stats and reads a file; a new file has the archive attribute', async () => {
      const dir = await folder();
      const result = await store.write([...dir, 'a.txt'], ['hello ', Buffer.from('world')]);
      assert.equal(result.created, true);
      assert.equal(result.entry.name, 'a.txt');
      assert.equal(result.entry.isDir, false);
      assert.equal(result.entry.size, 11);
      assert.equal(result.entry.attributes, ATTR_ARCHIVE);
      assert.deepEqual(store.stat([...dir, 'a.txt']), result.entry);
      assert.equal(await read([...dir, 'a.txt']), 'hello world');
    });

    it('reads a range [start, end)', async () => {
      const dir = await folder();
      await store.write([...dir, 'r.txt'], ['0123456789']);
      assert.equal(await read([...dir, 'r.txt'], { start: 2, end: 5 }), '234');
      assert.equal(await read([...dir, 'r.txt'], { start: 9, end: 10 }), '9');
      assert.equal(await read([...dir, 'r.txt'], { start: 0, end: 10 }), '0123456789');
    });

    it('reads from a Node stream and an async generator, and writes an empty file', async () => {
      const dir = await folder();
      await store.write([...dir, 's'], Readable.from([Buffer.from('from a stream')]));
      assert.equal(await read([...dir, 's']), 'from a stream');
      await store.write([...dir, 'g'], (async function* () {
        yield 'from ';
        yield new Uint8Array([0x61, 0x20, 0x67]);
        yield 'enerator';
      })());
      assert.equal(await read([...dir, 'g']), 'from a generator');
      const empty = await store.write([...dir, 'e'], []);
      assert.equal(empty.entry.size, 0);
      assert.equal(await read([...dir, 'e']), '');
    });

    it('replaces a file: created is false, the etag changes, the creation time stays', async () => {
      const dir = await folder();
      const first = await store.write([...dir, 'f'], ['one']);
      const second = await store.write([...dir, 'f'], ['second']);
      assert.equal(second.created, false);
      assert.notEqual(second.entry.etag, first.entry.etag);
      assert.equal(second.entry.created, first.entry.created);
      assert.equal(await read([...dir, 'f']), 'second');
    });

    it('refuses a write: createOnly onto a file, onto a folder, beyond maxBytes (keeping nothing), without a parent, at the root', async () => {
      const dir = await folder();
      await store.write([...dir, 'f'], ['x']);
      await store.mkdir([...dir, 'd']);
      await expectCode(() => store.write([...dir, 'f'], ['y'], { createOnly: true }), 'ERR_EXISTS');
      assert.equal(await read([...dir, 'f']), 'x');
      await expectCode(() => store.write([...dir, 'd'], ['y']), 'ERR_IS_A_DIRECTORY');
      await expectCode(() => store.write([...dir, 'big'], ['12345', '6'], { maxBytes: 5 }), 'ERR_TOO_LARGE');
      assert.equal(store.stat([...dir, 'big']), undefined);
      await store.write([...dir, 'fits'], ['12345'], { maxBytes: 5 });
      await expectCode(() => store.write([...dir, 'no', 'f'], ['y']), 'ERR_PARENT_MISSING');
      await expectCode(() => store.write([...dir, 'f', 'g'], ['y']), 'ERR_NOT_A_DIRECTORY');
      await expectCode(() => store.write([], ['y']), 'ERR_IS_A_DIRECTORY');
    });

    it('refuses names the Windows side cannot use', async () => {
      const dir = await folder();
      for (const bad of ['a:b', 'a*', 'trailing.', 'trailing ', 'x\u0001y']) {
        await expectCode(() => store.write([...dir, bad], ['x']), 'ERR_NAME_INVALID');
        await expectCode(() => store.stat([...dir, bad]), 'ERR_NAME_INVALID');
      }
    });

    it('creates folders with the directory attribute, and given times; refuses one where something is or without a parent', async () => {
      const dir = await folder();
      const made = await store.mkdir([...dir, 'sub']);
      assert.equal(made.isDir, true);
      assert.equal(made.name, 'sub');
      assert.equal(made.attributes, ATTR_DIRECTORY);
      const times = { created: Date.UTC(2001, 0, 1), modified: Date.UTC(2002, 0, 1), accessed: Date.UTC(2003, 0, 1) };
      const dated = await store.mkdir([...dir, 'dated'], times);
      assert.deepEqual([dated.created, dated.modified, dated.accessed], [times.created, times.modified, times.accessed]);
      await expectCode(() => store.mkdir([...dir, 'sub']), 'ERR_EXISTS');
      await expectCode(() => store.mkdir([...dir, 'SUB']), 'ERR_EXISTS');
      await store.write([...dir, 'f'], ['x']);
      await expectCode(() => store.mkdir([...dir, 'f']), 'ERR_EXISTS');
      await expectCode(() => store.mkdir([...dir, 'none', 'sub']), 'ERR_PARENT_MISSING');
      await expectCode(() => store.mkdir([]), 'ERR_EXISTS');
    });

    it('lists a folder sorted by name, case-insensitively; refuses to list a file or nothing', async () => {
      const dir = await folder();
      for (const n of ['b.txt', 'C.txt', 'a.txt']) await store.write([...dir, n], [n]);
      await store.mkdir([...dir, 'B-folder']);
      assert.deepEqual(
        store.list(dir).map((e) => [e.name, e.isDir]),
        [
          ['a.txt', false],
          ['B-folder', true],
          ['b.txt', false],
          ['C.txt', false],
        ],
      );
      assert.deepEqual(store.list([...dir, 'B-folder']), []);
      await expectCode(() => store.list([...dir, 'a.txt']), 'ERR_NOT_A_DIRECTORY');
      await expectCode(() => store.list([...dir, 'missing']), 'ERR_NOT_FOUND');
    });

    it('finds names case-insensitively and in any Unicode normal form, keeping them as written', async () => {
      const dir = await folder();
      await store.write([...dir, 'Report.DOCX'], ['x']);
      assert.equal(store.stat([...dir, 'report.docx'])?.name, 'Report.DOCX');
      await store.write([...dir, 'caf\u00e9'], ['nfc']);
      assert.equal(store.stat([...dir, 'cafe\u0301'])?.name, 'caf\u00e9', 'NFD finds the NFC name');
      const again = await store.write([...dir, 'REPORT.docx'], ['y']);
      assert.equal(again.created, false, 'the same file in another case');
      assert.equal(store.list(dir).length, 2);
    });

    it("a folder's etag changes when its membership changes", async () => {
      const dir = await folder();
      const before = store.stat(dir)!.etag;
      await store.write([...dir, 'new'], ['x']);
      const afterWrite = store.stat(dir)!.etag;
      assert.notEqual(afterWrite, before);
      await store.delete([...dir, 'new']);
      assert.notEqual(store.stat(dir)!.etag, afterWrite);
    });

    it('deletes a file and a whole tree; refuses what is not there', async () => {
      const dir = await folder();
      await store.write([...dir, 'f'], ['x']);
      await store.mkdir([...dir, 'tree']);
      await store.mkdir([...dir, 'tree', 'sub']);
      await store.write([...dir, 'tree', 'sub', 'deep'], ['x']);
      await store.delete([...dir, 'f']);
      await store.delete([...dir, 'tree']);
      assert.deepEqual(store.list(dir), []);
      assert.equal(store.stat([...dir, 'tree', 'sub', 'deep']), undefined);
      await expectCode(() => store.delete([...dir, 'f']), 'ERR_NOT_FOUND');
    });

    it('moves (renames) a file and a tree, keeping content and times', async () => {
      const dir = await folder();
      const written = await store.write([...dir, 'a'], ['content']);
      const moved = await store.move([...dir, 'a'], [...dir, 'b'], { overwrite: false });
      assert.deepEqual(moved, { replaced: false });
      assert.equal(store.stat([...dir, 'a']), undefined);
      const entry = store.stat([...dir, 'b'])!;
      assert.equal(entry.name, 'b');
      assert.equal(entry.modified, written.entry.modified);
      assert.equal(await read([...dir, 'b']), 'content');
      await store.mkdir([...dir, 'tree']);
      await store.write([...dir, 'tree', 'leaf'], ['leaf']);
      await store.mkdir([...dir, 'elsewhere']);
      await store.move([...dir, 'tree'], [...dir, 'elsewhere', 'tree2'], { overwrite: false });
      assert.equal(await read([...dir, 'elsewhere', 'tree2', 'leaf']), 'leaf');
      assert.equal(store.stat([...dir, 'tree']), undefined);
    });

    it('renames a file to another case of its own name', async () => {
      const dir = await folder();
      await store.write([...dir, 'name.txt'], ['x']);
      const result = await store.move([...dir, 'name.txt'], [...dir, 'NAME.txt'], { overwrite: false });
      assert.deepEqual(result, { replaced: false });
      assert.deepEqual(store.list(dir).map((e) => e.name), ['NAME.txt']);
    });

    it('moves over an existing entry only with overwrite, and says it replaced it', async () => {
      const dir = await folder();
      await store.write([...dir, 'a'], ['a']);
      await store.write([...dir, 'b'], ['b']);
      await expectCode(() => store.move([...dir, 'a'], [...dir, 'b'], { overwrite: false }), 'ERR_EXISTS');
      assert.equal(await read([...dir, 'b']), 'b');
      assert.deepEqual(await store.move([...dir, 'a'], [...dir, 'b'], { overwrite: true }), { replaced: true });
      assert.equal(await read([...dir, 'b']), 'a');
      assert.deepEqual(store.list(dir).map((e) => e.name), ['b']);
    });

    it('refuses to move a folder into itself, what is not there, or to where there is no parent', async () => {
      const dir = await folder();
      await store.mkdir([...dir, 'x']);
      await store.mkdir([...dir, 'x', 'y']);
      await expectCode(() => store.move([...dir, 'x'], [...dir, 'x', 'y', 'z'], { overwrite: false }), 'ERR_MOVE_INTO_SELF');
      await expectCode(() => store.move([...dir, 'missing'], [...dir, 'z'], { overwrite: false }), 'ERR_NOT_FOUND');
      await expectCode(() => store.move([...dir, 'x'], [...dir, 'none', 'z'], { overwrite: false }), 'ERR_PARENT_MISSING');
    });

    it('copies a file and a tree with their times and attributes; the source stays', async () => {
      const dir = await folder();
      const src = await store.write([...dir, 'f'], ['file']);
      assert.deepEqual(await store.copy([...dir, 'f'], [...dir, 'g'], { overwrite: false }), { replaced: false });
      const copy = store.stat([...dir, 'g'])!;
      assert.equal(await read([...dir, 'g']), 'file');
      assert.deepEqual([copy.created, copy.modified, copy.attributes], [src.entry.created, src.entry.modified, src.entry.attributes]);
      await store.mkdir([...dir, 'tree']);
      await store.write([...dir, 'tree', 'leaf'], ['leaf']);
      await store.copy([...dir, 'tree'], [...dir, 'tree2'], { overwrite: false });
      assert.equal(await read([...dir, 'tree2', 'leaf']), 'leaf');
      assert.equal(await read([...dir, 'tree', 'leaf']), 'leaf');
      await store.write([...dir, 'tree2', 'leaf'], ['changed']);
      assert.equal(await read([...dir, 'tree', 'leaf']), 'leaf', 'the copy is independent of its source');
    });

    it('copies over an existing entry only with overwrite; refuses onto itself and into itself', async () => {
      const dir = await folder();
      await store.write([...dir, 'a'], ['a']);
      await store.write([...dir, 'b'], ['b']);
      await expectCode(() => store.copy([...dir, 'a'], [...dir, 'b'], { overwrite: false }), 'ERR_EXISTS');
      assert.deepEqual(await store.copy([...dir, 'a'], [...dir, 'b'], { overwrite: true }), { replaced: true });
      assert.equal(await read([...dir, 'b']), 'a');
      await expectCode(() => store.copy([...dir, 'a'], [...dir, 'A'], { overwrite: true }), 'ERR_EXISTS');
      await store.mkdir([...dir, 'x']);
      await expectCode(() => store.copy([...dir, 'x'], [...dir, 'x', 'y'], { overwrite: false }), 'ERR_MOVE_INTO_SELF');
    });

    it(`offers exactly the optional capabilities it declares (${capabilities.join(', ') || 'none'})`, () => {
      for (const capability of Object.keys(HAS) as DavStoreCapability[]) assert.equal(HAS[capability](store), declared(capability), capability);
    });

    if (declared('deadProps')) it('dead properties: set, replace, remove, list per child; copied with their resource, gone with it', async () => {
      const props = store;
      assert.ok(hasDeadProps(props));
      const dir = await folder();
      await store.write([...dir, 'f'], ['x']);
      const p1 = { ns: 'urn:x', name: 'color', value: '<color xmlns="urn:x">red</color>' };
      const p2 = { ns: 'urn:a', name: 'tag', value: '<tag xmlns="urn:a">t</tag>' };
      await props.patchProps([...dir, 'f'], [p1, p2]);
      assert.deepEqual(props.getProps([...dir, 'f']), [p2, p1], 'sorted by namespace, then name');
      const red = { ...p1, value: '<color xmlns="urn:x">blue</color>' };
      await props.patchProps([...dir, 'f'], [red], [{ ns: 'urn:a', name: 'tag' }]);
      assert.deepEqual(props.getProps([...dir, 'f']), [red]);
      await store.write([...dir, 'plain'], ['x']);
      assert.deepEqual([...props.childProps(dir)], [['f', [red]]], 'children without properties are left out');
      await store.copy([...dir, 'f'], [...dir, 'g'], { overwrite: false });
      assert.deepEqual(props.getProps([...dir, 'g']), [red]);
      await store.move([...dir, 'g'], [...dir, 'h'], { overwrite: false });
      assert.deepEqual(props.getProps([...dir, 'h']), [red]);
      await store.delete([...dir, 'h']);
      await store.write([...dir, 'h'], ['new']);
      assert.deepEqual(props.getProps([...dir, 'h']), [], 'a new file at the same path has none');
      await expectCode(() => props.getProps([...dir, 'missing']), 'ERR_NOT_FOUND');
      await expectCode(() => props.patchProps([...dir, 'missing'], [p1]), 'ERR_NOT_FOUND');
    });

    if (declared('win32Meta')) it('Win32 metadata: times and attributes are set; the directory bit stays as the kind says', async () => {
      const meta = store;
      assert.ok(hasWin32Meta(meta));
      const dir = await folder();
      await store.write([...dir, 'f'], ['x']);
      const created = Date.UTC(1999, 11, 31, 23, 59, 59);
      const set = await meta.setMeta([...dir, 'f'], { created, attributes: 0x21 | ATTR_DIRECTORY });
      assert.equal(set.created, created);
      assert.equal(set.attributes, 0x21, 'a file cannot be made a folder');
      assert.deepEqual(store.stat([...dir, 'f']), set);
      const modified = Date.UTC(2010, 5, 6);
      assert.equal((await meta.setMeta([...dir, 'f'], { modified })).attributes, 0x21, 'attributes stay when not given');
      assert.equal(store.stat([...dir, 'f'])!.created, created, 'times not given stay');
      assert.equal((await meta.setMeta(dir, { attributes: 0x2 })).attributes, 0x2 | ATTR_DIRECTORY, 'a folder stays a folder');
      await expectCode(() => meta.setMeta([...dir, 'missing'], { modified }), 'ERR_NOT_FOUND');
    });

    if (declared('quota')) it('quota: the bytes of all files', async () => {
      assert.ok(hasQuota(store));
      const dir = await folder();
      const before = store.quotaUsed();
      await store.write([...dir, 'a'], ['12345']);
      await store.write([...dir, 'b'], ['123']);
      assert.equal(store.quotaUsed(), before + 8);
      await store.delete([...dir, 'a']);
      assert.equal(store.quotaUsed(), before + 3);
    });
  });
}
