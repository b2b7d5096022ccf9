/**
 * The vault of one user: an encrypted SQLite index (names, sizes, times,
 * Win32 attributes, dead properties, object ids) and immutable encrypted
 * objects under `objects/<2 hex>/<32 hex>`.
 *
 * Security considerations:
 * - Nothing is written in plaintext: names and metadata live in the index,
 *   encrypted by SQLite3 Multiple Ciphers (ChaCha20-Poly1305 pages, WAL
 *   included) under a key derived from the DEK; contents live in objects
 *   (crypto/object-format.ts). Temporary tables stay in memory.
 * - A write goes to a new object in `tmp/`, is fsynced, renamed into place
 *   (folder fsynced), and only then does the index row flip, in one
 *   transaction. A crash leaves the old version or the new one, never a part.
 *   Leftovers (tmp files, unreferenced objects) are removed at open.
 * - Objects are shared by copies and collected only when no row refers to
 *   them.
 */
import { rmSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ObjectEncryptor, type DataKey } from '../../crypto/object-format.js';
import { ObjectReader } from '../../crypto/object-io.js';
import { CryptoError } from '../../crypto/errors.js';
import { fsyncDir } from '../../crypto/atomic-file.js';
import { VaultError } from './errors.js';
import { INDEX_FILE, IndexDb, ROOT_ID, type Row } from './index-db.js';
import { foldName, joinPath, normalizeName, splitPath } from '../names.js';
import { releaseVaultLock, takeVaultLock } from './lock-file.js';
import { deletionsHeld, holdDeletions, snapshotIndex } from './backup-hooks.js';
import { isDiskFull, releaseReserve, restoreReserve } from './space-reserve.js';
import { AREAS, ATTR_ARCHIVE, ATTR_DIRECTORY, type DeadProperty, type Entry, type Times } from './entry.js';

export { AREAS, ATTR_ARCHIVE, ATTR_DIRECTORY, type DeadProperty, type Entry, type Times } from './entry.js';

const WRITE_BATCH = 1024 * 1024;
const SYNC_EVERY = 32 * 1024 * 1024;

/** What a write reads its content from: a Node Readable, an async generator or an array of pieces. */
export type ByteSource = AsyncIterable<Buffer | Uint8Array | string> | Iterable<Buffer | Uint8Array | string>;

export interface WriteOptions {
  /** Refuse when the file exists (ERR_EXISTS). */
  createOnly?: boolean;
  /** Refuse with ERR_TOO_LARGE beyond this many bytes (nothing is kept). */
  maxBytes?: number;
  times?: Times;
}

export interface WriteResult {
  entry: Entry;
  created: boolean;
}

export interface ReadResult {
  entry: Entry;
  stream: Readable;
}

export class Vault {
  /** Private copy of the index of a read-only vault, removed at close. */
  private scratch: string | undefined;
  /** Objects written but not yet committed; the collector leaves them alone. */
  private readonly inflight = new Set<string>();
  /** Whether this vault's space reserve is in place (only this vault gives it up). */
  private reserved = false;

  private constructor(
    readonly dir: string,
    private readonly dek: DataKey,
    private readonly index: IndexDb,
    private readonly now: () => number,
    private readonly readOnly = false,
  ) {}

  /**
   * Opens (creating on first use) the vault in `dir` with the user's DEK,
   * creates the Documents, Desktop and Profile areas, and removes what a
   * crash may have left behind.
   */
  static async open(dir: string, dek: DataKey, opts: { now?: () => number } = {}): Promise<Vault> {
    await mkdir(join(dir, 'objects'), { recursive: true, mode: 0o700 });
    await takeVaultLock(dir);
    try {
      // On a full disk the clean-up and the index's first changes need the reserve.
      const vault = await Vault.openLocked(dir, dek, opts.now ?? Date.now).catch((err: unknown) => {
        if (!isDiskFull(err) || !releaseReserve(dir)) throw err;
        return Vault.openLocked(dir, dek, opts.now ?? Date.now);
      });
      await vault.keepReserve();
      return vault;
    } catch (err) {
      releaseVaultLock(dir);
      if (isDiskFull(err)) throw noSpace(err);
      throw err;
    }
  }

  private static async openLocked(dir: string, dek: DataKey, now: () => number): Promise<Vault> {
    // Emptied, not re-created: a new folder needs a free block.
    const tmp = join(dir, 'tmp');
    await mkdir(tmp, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    for (const name of await readdir(tmp)) await rm(join(tmp, name), { recursive: true, force: true });
    const index = IndexDb.open(join(dir, INDEX_FILE), dek, false);
    const vault = new Vault(dir, dek, index, now);
    try {
      vault.ensureLayout();
      await vault.sweepOrphans();
      return vault;
    } catch (err) {
      index.close();
      throw err;
    }
  }

  /**
   * Opens a vault without changing a byte of it (recovery, inspection of a
   * copy): no clean-up at open; every write fails.
   */
  static async openReadOnly(dir: string, dek: DataKey): Promise<Vault> {
    // SQLite writes -shm/-wal files even for a read-only WAL database, so the
    // index (and a WAL left by a crash) is copied to a private scratch folder
    // and opened there. The copy is as encrypted as the original.
    const scratch = await mkdtemp(join(tmpdir(), 'mydoc-readonly-'));
    try {
      await copyFile(join(dir, INDEX_FILE), join(scratch, INDEX_FILE));
      await copyFile(join(dir, `${INDEX_FILE}-wal`), join(scratch, `${INDEX_FILE}-wal`)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      const vault = new Vault(dir, dek, IndexDb.open(join(scratch, INDEX_FILE), dek, true), Date.now, true);
      vault.scratch = scratch;
      return vault;
    } catch (err) {
      await rm(scratch, { recursive: true, force: true });
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new VaultError('ERR_NOT_FOUND', `no vault index in ${dir}`, { cause: err });
      throw err;
    }
  }

  /** The index files of the vault in `dir`, read into memory for a backup, without the DEK (backup-hooks.ts). */
  static snapshotIndex(dir: string): { name: string; data: Buffer }[] {
    return snapshotIndex(dir);
  }

  /** Every file in the vault's object folders (`objects/<xx>/<id>`), by name; none when there is no such folder. */
  static async objectFiles(dir: string): Promise<{ id: string; file: string }[]> {
    const objects = join(dir, 'objects');
    const out: { id: string; file: string }[] = [];
    for (const fan of await readdir(objects).catch(() => [] as string[])) {
      for (const id of await readdir(join(objects, fan))) out.push({ id, file: join(objects, fan, id) });
    }
    return out;
  }

  /** Holds every vault's object deletions in `dir` until the returned release is called (backup-hooks.ts). */
  static holdDeletions(dir: string): Promise<() => Promise<void>> {
    return holdDeletions(dir);
  }

  close(): void {
    if (this.index.isClosed) return;
    this.index.close();
    if (this.scratch) rmSync(this.scratch, { recursive: true, force: true });
    else if (!this.readOnly) releaseVaultLock(this.dir);
  }

  // ---- queries -------------------------------------------------------------

  /** The entry at `path`, or undefined when nothing is there. */
  stat(path: string): Entry | undefined {
    const names = splitPath(path);
    const row = this.resolve(names);
    return row ? this.toEntry(row, names) : undefined;
  }

  /** The children of a folder, sorted by name. */
  list(path: string): Entry[] {
    const names = splitPath(path);
    const dir = this.requireDir(names, path);
    const rows = this.index.stmt('SELECT * FROM node WHERE parent = ? ORDER BY fold').all(dir.id) as Row[];
    return rows.map((r) => this.toEntry(r, [...names, r.name]));
  }

  /** Sum of the sizes of all files. */
  quotaUsed(): number {
    this.index.assertOpen();
    return (this.index.stmt('SELECT COALESCE(SUM(size), 0) AS used FROM node WHERE is_dir = 0').get() as { used: number }).used;
  }

  /** The dead properties of every child of a folder, by child name (one query, for listings). */
  childProps(path: string): Map<string, DeadProperty[]> {
    const dir = this.requireDir(splitPath(path), path);
    const rows = this.index.stmt('SELECT node.name AS child, prop.ns, prop.name, prop.value FROM node JOIN prop ON prop.node = node.id WHERE node.parent = ? ORDER BY prop.ns, prop.name').all(dir.id) as (DeadProperty & { child: string })[];
    const byChild = new Map<string, DeadProperty[]>();
    for (const { child, ns, name, value } of rows) {
      let list = byChild.get(child);
      if (!list) byChild.set(child, (list = []));
      list.push({ ns, name, value });
    }
    return byChild;
  }

  getProps(path: string): DeadProperty[] {
    const row = this.require(splitPath(path), path);
    return this.index.stmt('SELECT ns, name, value FROM prop WHERE node = ? ORDER BY ns, name').all(row.id) as DeadProperty[];
  }

  // ---- reads ---------------------------------------------------------------

  /** Streams the file's bytes [start, end) (end exclusive, clamped to the size). */
  async read(path: string, range: { start?: number; end?: number } = {}): Promise<ReadResult> {
    const names = splitPath(path);
    const row = this.require(names, path);
    if (row.is_dir) throw new VaultError('ERR_IS_A_DIRECTORY', `${joinPath(names)} is a folder`);
    const entry = this.toEntry(row, names);
    const file = this.objectPath(row.object!);
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch (err) {
      throw this.corrupt(entry, `its object is missing (${(err as NodeJS.ErrnoException).code})`, err);
    }
    let reader: ObjectReader;
    try {
      reader = await ObjectReader.open(fh, this.dek);
      if (reader.fileId.toString('hex') !== row.object) {
        throw new VaultError('ERR_OBJECT_CORRUPT', `the object holds file id ${reader.fileId.toString('hex')}: objects were swapped or replaced`);
      }
      if (reader.size !== row.size) throw new VaultError('ERR_OBJECT_CORRUPT', `size ${reader.size} does not match the index (${row.size})`);
    } catch (err) {
      await fh.close();
      throw this.corrupt(entry, (err as Error).message, err);
    }
    const source = reader.read(range.start ?? 0, range.end ?? row.size);
    const corrupt = this.corrupt.bind(this);
    async function* guarded(): AsyncGenerator<Buffer> {
      try {
        for await (const piece of source) yield piece;
      } catch (err) {
        throw corrupt(entry, (err as Error).message, err);
      } finally {
        await fh.close();
      }
    }
    return { entry, stream: Readable.from(guarded(), { objectMode: false, highWaterMark: WRITE_BATCH }) };
  }

  // ---- writes --------------------------------------------------------------

  /**
   * Writes a file from a stream: new object, fsync, rename, then the index
   * row flips in one transaction. Resolves only once the write is durable.
   */
  async write(path: string, source: ByteSource, opts: WriteOptions = {}): Promise<WriteResult> {
    const names = splitPath(path);
    if (names.length === 0) throw new VaultError('ERR_IS_A_DIRECTORY', '/ is a folder');
    this.assertWritable();
    this.checkWritable(names, opts);
    // Nothing new while the space reserve is missing: the disk must never be full without one.
    if (!(await this.keepReserve())) throw noSpace(Object.assign(new Error('less free space than the space reserve'), { code: 'ENOSPC' }));
    const enc = new ObjectEncryptor(this.dek);
    const objectId = enc.fileId.toString('hex');
    this.inflight.add(objectId);
    try {
      const size = await this.writeObject(enc, objectId, source, opts.maxBytes);
      return this.commitWrite(names, objectId, size, opts);
    } catch (err) {
      await rm(this.objectPath(objectId), { force: true });
      throw isDiskFull(err) ? noSpace(err) : err;
    } finally {
      this.inflight.delete(objectId);
      await this.collectGarbage();
    }
  }

  /** Creates a folder; ERR_EXISTS when something is there. */
  mkdir(path: string, times: Times = {}): Entry {
    const names = splitPath(path);
    if (names.length === 0) throw new VaultError('ERR_EXISTS', '/ exists');
    const name = names[names.length - 1]!;
    return this.tx(() => {
      const parent = this.requireParent(names);
      if (this.child(parent.id, name)) throw new VaultError('ERR_EXISTS', `${joinPath(names)} already exists`);
      const t = this.now();
      const row = this.insert(parent.id, name, true, 0, null, { created: times.created ?? t, modified: times.modified ?? t, accessed: times.accessed ?? t }, ATTR_DIRECTORY);
      this.touch(parent.id, t);
      return this.toEntry(row, names);
    });
  }

  /** Deletes a file or a whole folder tree in one transaction. */
  async delete(path: string): Promise<void> {
    const names = splitPath(path);
    this.tx(
      () => {
        const row = this.require(names, path);
        this.assertNotProtected(names);
        this.removeTree(row.id);
        this.touch(row.parent!, this.now());
      },
      { frees: true },
    );
    await this.collectGarbage();
    await this.index.reclaim();
    await restoreReserve(this.dir).catch(() => undefined);
  }

  /**
   * Moves (renames) a file or folder; a folder moves in one transaction.
   * With `overwrite`, an existing destination is replaced atomically.
   * Returns whether the destination existed before.
   */
  async move(from: string, to: string, opts: { overwrite: boolean }): Promise<{ replaced: boolean }> {
    const src = splitPath(from);
    const dst = splitPath(to);
    const result = this.tx(() => {
      const row = this.require(src, from);
      this.assertNotProtected(src);
      if (dst.length === 0) throw new VaultError('ERR_EXISTS', '/ exists');
      this.assertNotProtected(dst);
      const parent = this.requireParent(dst);
      if (row.is_dir && this.isSelfOrDescendant(parent.id, row.id)) {
        throw new VaultError('ERR_MOVE_INTO_SELF', `cannot move ${joinPath(src)} into itself`);
      }
      const name = dst[dst.length - 1]!;
      const existing = this.child(parent.id, name);
      const replaced = existing !== undefined && existing.id !== row.id;
      if (replaced) {
        if (!opts.overwrite) throw new VaultError('ERR_EXISTS', `${joinPath(dst)} already exists`);
        this.removeTree(existing.id);
      }
      const t = this.now();
      this.index.stmt('UPDATE node SET parent = ?, name = ?, fold = ? WHERE id = ?').run(parent.id, name, foldName(name), row.id);
      this.touch(row.parent!, t);
      this.touch(parent.id, t);
      return { replaced };
    });
    await this.collectGarbage();
    if (result.replaced) await this.index.reclaim();
    return result;
  }

  /** Copies a file or a folder tree (content shared, metadata and properties copied). */
  async copy(from: string, to: string, opts: { overwrite: boolean }): Promise<{ replaced: boolean }> {
    const src = splitPath(from);
    const dst = splitPath(to);
    const result = this.tx(() => {
      const row = this.require(src, from);
      if (dst.length === 0) throw new VaultError('ERR_EXISTS', '/ exists');
      const parent = this.requireParent(dst);
      if (row.is_dir && this.isSelfOrDescendant(parent.id, row.id)) {
        throw new VaultError('ERR_MOVE_INTO_SELF', `cannot copy ${joinPath(src)} into itself`);
      }
      const name = dst[dst.length - 1]!;
      const existing = this.child(parent.id, name);
      if (existing) {
        if (existing.id === row.id) throw new VaultError('ERR_EXISTS', `cannot copy ${joinPath(src)} onto itself`);
        if (!opts.overwrite) throw new VaultError('ERR_EXISTS', `${joinPath(dst)} already exists`);
        this.assertNotProtected(dst);
        this.removeTree(existing.id);
      }
      this.copyTree(row, parent.id, name);
      this.touch(parent.id, this.now());
      return { replaced: existing !== undefined };
    });
    await this.collectGarbage();
    if (result.replaced) await this.index.reclaim();
    return result;
  }

  /** Sets and removes dead properties of one entry in one transaction. */
  patchProps(path: string, set: readonly DeadProperty[], remove: readonly { ns: string; name: string }[] = []): void {
    const names = splitPath(path);
    this.tx(() => {
      const row = this.require(names, path);
      const put = this.index.stmt('INSERT INTO prop (node, ns, name, value) VALUES (?, ?, ?, ?) ON CONFLICT (node, ns, name) DO UPDATE SET value = excluded.value');
      const del = this.index.stmt('DELETE FROM prop WHERE node = ? AND ns = ? AND name = ?');
      for (const p of set) put.run(row.id, p.ns, p.name, p.value);
      for (const p of remove) del.run(row.id, p.ns, p.name);
    });
  }

  /** Sets Win32 times and attributes (the directory bit is kept as the entry's kind says). */
  setMeta(path: string, meta: Times & { attributes?: number }): Entry {
    const names = splitPath(path);
    return this.tx(() => {
      const row = this.require(names, path);
      const attributes = meta.attributes === undefined ? row.attributes : (meta.attributes & ~ATTR_DIRECTORY) | (row.is_dir ? ATTR_DIRECTORY : 0);
      this.index.db
        .prepare('UPDATE node SET created = ?, modified = ?, accessed = ?, attributes = ? WHERE id = ?')
        .run(meta.created ?? row.created, meta.modified ?? row.modified, meta.accessed ?? row.accessed, attributes >>> 0, row.id);
      return this.toEntry(this.index.stmt('SELECT * FROM node WHERE id = ?').get(row.id) as Row, names);
    });
  }

  // ---- internals -----------------------------------------------------------

  private async writeObject(enc: ObjectEncryptor, objectId: string, source: ByteSource, maxBytes = Infinity): Promise<number> {
    const tmp = join(this.dir, 'tmp', objectId);
    const fh = await open(tmp, 'wx', 0o600);
    let size = 0;
    // One writev stays in flight while the next batch is encrypted, so the
    // cipher and the disk work at the same time; a datasync every 32 MiB
    // (one at a time, not awaited in the loop) keeps the final fsync short.
    let inflight: Promise<unknown> = Promise.resolve();
    let syncing: Promise<unknown> = Promise.resolve();
    let unsynced = 0;
    const flush = async (pieces: Buffer[], length: number): Promise<void> => {
      await inflight;
      if (pieces.length === 0) return;
      inflight = fh.writev(pieces);
      inflight.catch(() => undefined); // awaited later; never left unhandled
      unsynced += length;
      if (unsynced >= SYNC_EVERY) {
        unsynced = 0;
        const written = inflight;
        syncing = syncing.then(() => written).then(() => fh.datasync());
        syncing.catch(() => undefined);
      }
    };
    try {
      let out: Buffer[] = [];
      let outLength = 0;
      const collect = (pieces: Buffer[]) => {
        for (const p of pieces) {
          out.push(p);
          outLength += p.length;
        }
      };
      for await (const piece of source) {
        const buf = typeof piece === 'string' ? Buffer.from(piece) : Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
        size += buf.length;
        if (size > maxBytes) throw new VaultError('ERR_TOO_LARGE', `the file is larger than the limit of ${maxBytes} bytes`);
        collect(enc.update(buf));
        if (outLength >= WRITE_BATCH) {
          await flush(out, outLength);
          out = [];
          outLength = 0;
        }
      }
      collect(enc.final());
      await flush(out, outLength);
      await inflight;
      await syncing;
      await fh.sync();
    } catch (err) {
      await inflight.catch(() => undefined);
      await syncing.catch(() => undefined);
      await fh.close();
      await rm(tmp, { force: true });
      throw err;
    }
    await fh.close();
    const fanout = join(this.dir, 'objects', objectId.slice(0, 2));
    try {
      // Not recursive (objects/ exists): a recursive mkdir reports ENOENT for a full disk.
      const made = await mkdir(fanout, { mode: 0o700 }).then(
        () => true,
        (err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
          return false;
        },
      );
      if (made) await fsyncDir(join(this.dir, 'objects'));
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    await rename(tmp, join(fanout, objectId));
    await fsyncDir(fanout);
    return size;
  }

  private commitWrite(names: string[], objectId: string, size: number, opts: WriteOptions): WriteResult {
    const name = names[names.length - 1]!;
    return this.tx(() => {
      const parent = this.requireParent(names);
      const existing = this.child(parent.id, name);
      const t = this.now();
      const times = opts.times ?? {};
      let row: Row;
      if (existing) {
        if (existing.is_dir) throw new VaultError('ERR_IS_A_DIRECTORY', `${joinPath(names)} is a folder`);
        if (opts.createOnly) throw new VaultError('ERR_EXISTS', `${joinPath(names)} already exists`);
        this.index.stmt('INSERT OR IGNORE INTO garbage (object) VALUES (?)').run(existing.object);
        this.index.db
          .prepare('UPDATE node SET object = ?, size = ?, modified = ?, accessed = ?, created = ? WHERE id = ?')
          .run(objectId, size, times.modified ?? t, times.accessed ?? t, times.created ?? existing.created, existing.id);
        row = this.index.stmt('SELECT * FROM node WHERE id = ?').get(existing.id) as Row;
      } else {
        row = this.insert(parent.id, name, false, size, objectId, { created: times.created ?? t, modified: times.modified ?? t, accessed: times.accessed ?? t }, ATTR_ARCHIVE);
        this.touch(parent.id, t);
      }
      return { entry: this.toEntry(row, names), created: existing === undefined };
    });
  }

  /** Checks before consuming a body what can be checked (the commit checks again). */
  private checkWritable(names: string[], opts: WriteOptions): void {
    const parent = this.requireParent(names);
    const existing = this.child(parent.id, names[names.length - 1]!);
    if (existing?.is_dir) throw new VaultError('ERR_IS_A_DIRECTORY', `${joinPath(names)} is a folder`);
    if (existing && opts.createOnly) throw new VaultError('ERR_EXISTS', `${joinPath(names)} already exists`);
  }

  private ensureLayout(): void {
    this.tx(() => {
      const t = this.now();
      if (!this.index.stmt('SELECT id FROM node WHERE id = ?').get(ROOT_ID)) {
        this.index.db
          .prepare('INSERT INTO node (id, parent, name, fold, is_dir, size, object, created, modified, accessed, attributes) VALUES (?, NULL, \'\', \'\', 1, 0, NULL, ?, ?, ?, ?)')
          .run(ROOT_ID, t, t, t, ATTR_DIRECTORY);
      }
      for (const area of AREAS) {
        if (!this.child(ROOT_ID, area)) this.insert(ROOT_ID, area, true, 0, null, { created: t, modified: t, accessed: t }, ATTR_DIRECTORY);
      }
    });
  }

  private insert(parent: number, name: string, isDir: boolean, size: number, object: string | null, times: Required<Times>, attributes: number): Row {
    const info = this.index.db
      .prepare('INSERT INTO node (parent, name, fold, is_dir, size, object, created, modified, accessed, attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(parent, name, foldName(name), isDir ? 1 : 0, size, object, times.created, times.modified, times.accessed, attributes);
    return this.index.stmt('SELECT * FROM node WHERE id = ?').get(info.lastInsertRowid) as Row;
  }

  private copyTree(row: Row, parent: number, name: string): void {
    const copy = this.insert(parent, name, row.is_dir === 1, row.size, row.object, row, row.attributes);
    this.index.stmt('INSERT INTO prop (node, ns, name, value) SELECT ?, ns, name, value FROM prop WHERE node = ?').run(copy.id, row.id);
    if (!row.is_dir) return;
    for (const child of this.index.stmt('SELECT * FROM node WHERE parent = ?').all(row.id) as Row[]) {
      this.copyTree(child, copy.id, child.name);
    }
  }

  /** Deletes a subtree; its objects go to the garbage list (collected if unreferenced). */
  private removeTree(id: number): void {
    this.index.db
      .prepare(
        `WITH RECURSIVE sub(id) AS (SELECT ? UNION ALL SELECT node.id FROM node JOIN sub ON node.parent = sub.id)
         INSERT OR IGNORE INTO garbage (object) SELECT object FROM node WHERE id IN sub AND object IS NOT NULL`,
      )
      .run(id);
    this.index.stmt('DELETE FROM node WHERE id = ?').run(id);
  }

  private isSelfOrDescendant(candidate: number, ancestor: number): boolean {
    let id: number | null = candidate;
    while (id !== null) {
      if (id === ancestor) return true;
      id = (this.index.stmt('SELECT parent FROM node WHERE id = ?').get(id) as { parent: number | null }).parent;
    }
    return false;
  }

  private touch(dirId: number, t: number): void {
    this.index.stmt('UPDATE node SET modified = ? WHERE id = ? AND id != ?').run(t, dirId, ROOT_ID);
  }

  /** Deletes objects on the garbage list that no row refers to any more. */
  private async collectGarbage(): Promise<void> {
    if (this.index.isClosed || this.readOnly) return;
    const candidates = this.index.stmt('SELECT object FROM garbage').pluck().all() as string[];
    for (const objectId of candidates) {
      // Checked before every deletion: a backup may start holding them while this loop runs.
      if (this.index.isClosed || deletionsHeld(this.dir)) return;
      const referenced = this.index.stmt('SELECT 1 FROM node WHERE object = ? LIMIT 1').get(objectId) !== undefined;
      if (!referenced && !this.inflight.has(objectId)) await rm(this.objectPath(objectId), { force: true });
      this.index.stmt('DELETE FROM garbage WHERE object = ?').run(objectId);
    }
  }

  /** At open: deletes objects that a crash left without an index row. */
  private async sweepOrphans(): Promise<void> {
    if (deletionsHeld(this.dir)) return;
    const referenced = new Set(this.index.stmt('SELECT object FROM node WHERE object IS NOT NULL').pluck().all() as string[]);
    for (const { id, file } of await Vault.objectFiles(this.dir)) {
      if (!referenced.has(id)) await rm(file, { force: true });
    }
    this.index.stmt('DELETE FROM garbage').run();
  }

  private objectPath(objectId: string): string {
    return join(this.dir, 'objects', objectId.slice(0, 2), objectId);
  }

  private resolve(names: readonly string[]): Row | undefined {
    this.index.assertOpen();
    let row = this.index.stmt('SELECT * FROM node WHERE id = ?').get(ROOT_ID) as Row | undefined;
    for (const name of names) {
      if (!row || !row.is_dir) return undefined;
      row = this.child(row.id, name);
    }
    return row;
  }

  private child(parent: number, name: string): Row | undefined {
    return this.index.stmt('SELECT * FROM node WHERE parent = ? AND fold = ?').get(parent, foldName(normalizeName(name))) as Row | undefined;
  }

  private require(names: readonly string[], path: string): Row {
    const row = this.resolve(names);
    if (!row) throw new VaultError('ERR_NOT_FOUND', `${displayPath(path)} does not exist`);
    return row;
  }

  private requireDir(names: readonly string[], path: string): Row {
    const row = this.require(names, path);
    if (!row.is_dir) throw new VaultError('ERR_NOT_A_DIRECTORY', `${displayPath(path)} is not a folder`);
    return row;
  }

  private requireParent(names: readonly string[]): Row {
    const parentNames = names.slice(0, -1);
    const parent = this.resolve(parentNames);
    if (!parent) throw new VaultError('ERR_PARENT_MISSING', `folder ${joinPath(parentNames)} does not exist`);
    if (!parent.is_dir) throw new VaultError('ERR_NOT_A_DIRECTORY', `${joinPath(parentNames)} is not a folder`);
    return parent;
  }

  private assertNotProtected(names: readonly string[]): void {
    if (names.length === 0 || (names.length === 1 && AREAS.some((a) => foldName(a) === foldName(names[0]!)))) {
      throw new VaultError('ERR_PROTECTED', `${joinPath(names)} is a fixed area of the vault and cannot be removed or replaced`);
    }
  }

  private assertWritable(): void {
    if (this.readOnly) throw new VaultError('ERR_READ_ONLY', 'the vault is open read-only');
  }

  /** Takes the space reserve again if it is missing and there is room; whether it is in place. */
  private async keepReserve(): Promise<boolean> {
    if (!this.reserved) this.reserved = await restoreReserve(this.dir).catch(() => false); // best effort
    return this.reserved;
  }

  /**
   * Runs `fn` in one write transaction. On a full disk, a change that
   * `frees` space gives up the space reserve and runs again; any other
   * change fails with ERR_NO_SPACE.
   */
  private tx<T>(fn: () => T, opts: { frees?: boolean } = {}): T {
    this.index.assertOpen();
    this.assertWritable();
    try {
      return this.index.db.transaction(fn).immediate();
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      if (opts.frees && releaseReserve(this.dir)) {
        this.reserved = false;
        return this.tx(fn);
      }
      throw noSpace(err);
    }
  }

  private toEntry(row: Row, names: readonly string[]): Entry {
    const isDir = row.is_dir === 1;
    return {
      path: joinPath(names),
      name: row.name,
      isDir,
      size: row.size,
      objectId: row.object ?? undefined,
      created: row.created,
      modified: row.modified,
      accessed: row.accessed,
      attributes: row.attributes,
      // 64 random bits of the object id: unique per version, short in listings.
      etag: isDir ? `d${row.id}-${row.modified}` : row.object!.slice(0, 16),
    };
  }

  private corrupt(entry: Entry, why: string, cause: unknown): VaultError {
    if (cause instanceof VaultError && cause.code !== 'ERR_OBJECT_CORRUPT') return cause;
    const detail = cause instanceof CryptoError ? cause.message : why;
    return new VaultError('ERR_OBJECT_CORRUPT', `file ${entry.path} is damaged (object ${entry.objectId}): ${detail}`, { cause });
  }
}

function noSpace(cause: unknown): VaultError {
  return new VaultError('ERR_NO_SPACE', "there is not enough free space on this PC's data disk; delete files you no longer need and try again", { cause });
}

function displayPath(path: string): string {
  return path.startsWith('/') ? path : '/' + path;
}
