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
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { DataKey } from '../../crypto/object-format.js';
import { VaultError } from './errors.js';
import { INDEX_FILE, IndexDb, ROOT_ID, type Row } from './index-db.js';
import { foldName, joinPath, splitPath } from '../names.js';
import { child, childProps, childRows, props, requireDir, requireParent, requireRow, resolve, rowById, toEntry, usedBytes } from './queries.js';
import { releaseVaultLock, takeVaultLock } from './lock-file.js';
import { holdDeletions, snapshotIndex } from './backup-hooks.js';
import { ObjectStore, createObjectFolder, objectFiles, type ByteSource } from './object-store.js';
import { isDiskFull, releaseReserve, restoreReserve } from './space-reserve.js';
import { AREAS, ATTR_ARCHIVE, ATTR_DIRECTORY, type DeadProperty, type Entry, type Times } from './entry.js';

export { AREAS, ATTR_ARCHIVE, ATTR_DIRECTORY, type DeadProperty, type Entry, type Times } from './entry.js';
export type { ByteSource } from './object-store.js';

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
  /** Whether this vault's space reserve is in place (only this vault gives it up). */
  private reserved = false;

  private constructor(
    readonly dir: string,
    private readonly index: IndexDb,
    private readonly objects: ObjectStore,
    private readonly now: () => number,
    private readonly readOnly = false,
  ) {}

  /**
   * Opens (creating on first use) the vault in `dir` with the user's DEK,
   * creates the Documents, Desktop and Profile areas, and removes what a
   * crash may have left behind.
   */
  static async open(dir: string, dek: DataKey, opts: { now?: () => number } = {}): Promise<Vault> {
    await createObjectFolder(dir);
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
    const objects = new ObjectStore(dir, dek);
    await objects.emptyTmp();
    const index = IndexDb.open(join(dir, INDEX_FILE), dek, false);
    const vault = new Vault(dir, index, objects, now);
    try {
      vault.ensureLayout();
      await objects.sweepOrphans(index);
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
      const vault = new Vault(dir, IndexDb.open(join(scratch, INDEX_FILE), dek, true), new ObjectStore(dir, dek), Date.now, true);
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
  static objectFiles(dir: string): Promise<{ id: string; file: string }[]> {
    return objectFiles(dir);
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
    const row = resolve(this.index, names);
    return row ? toEntry(row, names) : undefined;
  }

  /** The children of a folder, sorted by name. */
  list(path: string): Entry[] {
    const names = splitPath(path);
    const dir = requireDir(this.index, names, path);
    return childRows(this.index, dir.id).map((r) => toEntry(r, [...names, r.name]));
  }

  /** Sum of the sizes of all files. */
  quotaUsed(): number {
    this.index.assertOpen();
    return usedBytes(this.index);
  }

  /** The dead properties of every child of a folder, by child name (one query, for listings). */
  childProps(path: string): Map<string, DeadProperty[]> {
    return childProps(this.index, requireDir(this.index, splitPath(path), path).id);
  }

  getProps(path: string): DeadProperty[] {
    return props(this.index, requireRow(this.index, splitPath(path), path).id);
  }

  // ---- reads ---------------------------------------------------------------

  /** Streams the file's bytes [start, end) (end exclusive, clamped to the size). */
  async read(path: string, range: { start?: number; end?: number } = {}): Promise<ReadResult> {
    const names = splitPath(path);
    const row = requireRow(this.index, names, path);
    if (row.is_dir) throw new VaultError('ERR_IS_A_DIRECTORY', `${joinPath(names)} is a folder`);
    const entry = toEntry(row, names);
    return { entry, stream: await this.objects.read(entry, range) };
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
    try {
      return await this.objects.add(source, opts.maxBytes, (objectId, size) => this.commitWrite(names, objectId, size, opts));
    } catch (err) {
      throw isDiskFull(err) ? noSpace(err) : err;
    } finally {
      await this.collectGarbage();
    }
  }

  /** Creates a folder; ERR_EXISTS when something is there. */
  mkdir(path: string, times: Times = {}): Entry {
    const names = splitPath(path);
    if (names.length === 0) throw new VaultError('ERR_EXISTS', '/ exists');
    const name = names[names.length - 1]!;
    return this.tx(() => {
      const parent = requireParent(this.index, names);
      if (child(this.index, parent.id, name)) throw new VaultError('ERR_EXISTS', `${joinPath(names)} already exists`);
      const t = this.now();
      const row = this.insert(parent.id, name, true, 0, null, { created: times.created ?? t, modified: times.modified ?? t, accessed: times.accessed ?? t }, ATTR_DIRECTORY);
      this.touch(parent.id, t);
      return toEntry(row, names);
    });
  }

  /** Deletes a file or a whole folder tree in one transaction. */
  async delete(path: string): Promise<void> {
    const names = splitPath(path);
    this.tx(
      () => {
        const row = requireRow(this.index, names, path);
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
      const row = requireRow(this.index, src, from);
      this.assertNotProtected(src);
      if (dst.length === 0) throw new VaultError('ERR_EXISTS', '/ exists');
      this.assertNotProtected(dst);
      const parent = requireParent(this.index, dst);
      if (row.is_dir && this.isSelfOrDescendant(parent.id, row.id)) {
        throw new VaultError('ERR_MOVE_INTO_SELF', `cannot move ${joinPath(src)} into itself`);
      }
      const name = dst[dst.length - 1]!;
      const existing = child(this.index, parent.id, name);
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
      const row = requireRow(this.index, src, from);
      if (dst.length === 0) throw new VaultError('ERR_EXISTS', '/ exists');
      const parent = requireParent(this.index, dst);
      if (row.is_dir && this.isSelfOrDescendant(parent.id, row.id)) {
        throw new VaultError('ERR_MOVE_INTO_SELF', `cannot copy ${joinPath(src)} into itself`);
      }
      const name = dst[dst.length - 1]!;
      const existing = child(this.index, parent.id, name);
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
      const row = requireRow(this.index, names, path);
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
      const row = requireRow(this.index, names, path);
      const attributes = meta.attributes === undefined ? row.attributes : (meta.attributes & ~ATTR_DIRECTORY) | (row.is_dir ? ATTR_DIRECTORY : 0);
      this.index.db
        .prepare('UPDATE node SET created = ?, modified = ?, accessed = ?, attributes = ? WHERE id = ?')
        .run(meta.created ?? row.created, meta.modified ?? row.modified, meta.accessed ?? row.accessed, attributes >>> 0, row.id);
      return toEntry(rowById(this.index, row.id), names);
    });
  }

  // ---- internals -----------------------------------------------------------

  private commitWrite(names: string[], objectId: string, size: number, opts: WriteOptions): WriteResult {
    const name = names[names.length - 1]!;
    return this.tx(() => {
      const parent = requireParent(this.index, names);
      const existing = child(this.index, parent.id, name);
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
        row = rowById(this.index, existing.id);
      } else {
        row = this.insert(parent.id, name, false, size, objectId, { created: times.created ?? t, modified: times.modified ?? t, accessed: times.accessed ?? t }, ATTR_ARCHIVE);
        this.touch(parent.id, t);
      }
      return { entry: toEntry(row, names), created: existing === undefined };
    });
  }

  /** Checks before consuming a body what can be checked (the commit checks again). */
  private checkWritable(names: string[], opts: WriteOptions): void {
    const parent = requireParent(this.index, names);
    const existing = child(this.index, parent.id, names[names.length - 1]!);
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
        if (!child(this.index, ROOT_ID, area)) this.insert(ROOT_ID, area, true, 0, null, { created: t, modified: t, accessed: t }, ATTR_DIRECTORY);
      }
    });
  }

  private insert(parent: number, name: string, isDir: boolean, size: number, object: string | null, times: Required<Times>, attributes: number): Row {
    const info = this.index.db
      .prepare('INSERT INTO node (parent, name, fold, is_dir, size, object, created, modified, accessed, attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(parent, name, foldName(name), isDir ? 1 : 0, size, object, times.created, times.modified, times.accessed, attributes);
    return rowById(this.index, info.lastInsertRowid);
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

  /** Deletes the objects that the index no longer refers to (object-store.ts). */
  private async collectGarbage(): Promise<void> {
    if (!this.readOnly) await this.objects.collect(this.index);
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

}

function noSpace(cause: unknown): VaultError {
  return new VaultError('ERR_NO_SPACE', "there is not enough free space on this PC's data disk; delete files you no longer need and try again", { cause });
}
