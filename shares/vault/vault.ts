/**
 * The vault of one user: an encrypted SQLite index (names, sizes, times,
 * Win32 attributes, dead properties, object ids) and immutable encrypted
 * objects under `objects/<2 hex>/<32 hex>`.
 *
 * This class is the vault's one entry point and composes its parts (see
 * README.md here): the index (index-db.ts), read by queries.ts and changed
 * by tree-writes.ts, each change in one transaction run here; the object
 * files (object-store.ts); the lock file (lock-file.ts); the space reserve
 * (space-reserve.ts); and what a backup calls (backup-hooks.ts).
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
 * - Every change is durable before its method returns or resolves: file
 *   writes through the group commit (group-commit.ts: one transaction and
 *   one WAL fsync for the writes of a moment; folders, properties and Win32
 *   metadata join it),
 *   the other asynchronous changes
 *   by waiting for the WAL fsync (index-db.ts `durable`), the synchronous ones
 *   by an fsync of the WAL on this thread (`syncNow`).
 * - Objects are shared by copies, and empty files share one empty object
 *   (kept while the vault is open; swept at the next open when no row
 *   refers to it); an object is collected only when no row refers to it.
 */
import { systemClock, type Clock } from '../clock.js';
import { rmSync } from 'node:fs';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { DataKey } from '../../crypto/object-format.js';
import { VaultError } from './errors.js';
import { INDEX_FILE, IndexDb } from './index-db.js';
import { joinPath, normalizeName, splitPath } from '../names.js';
import { childProps, childRows, props, requireDir, requireRow, resolve, toEntry, usedBytes } from './queries.js';
import { TreeWriter, type FileCommit } from './tree-writes.js';
import { GroupCommit } from './group-commit.js';
import { releaseVaultLock, takeVaultLock } from './lock-file.js';
import { holdDeletions, snapshotIndex } from './backup-hooks.js';
import { ObjectStore, createObjectFolder, objectFiles, type ByteSource } from './object-store.js';
import { isDiskFull, releaseReserve, restoreReserve } from './space-reserve.js';
import type { DeadProperty, Entry, Times } from './entry.js';
import { appendNotice, listNotices, NOTICE_LIMIT } from './notice-log.js';
import type { AccessNotice } from './notices.js';

export { AREAS, ATTR_ARCHIVE, ATTR_DIRECTORY, type DeadProperty, type Entry, type Times } from './entry.js';
export type { ByteSource } from './object-store.js';

/**
 * A path in the vault: "/"-joined as typed ("/Documents/a.txt"), or already
 * split into names (what the WebDAV layer decoded), so it is not joined and
 * split again. Either way every name is validated and normalised here.
 */
export type VaultPath = string | readonly string[];

function namesOf(path: VaultPath): string[] {
  return typeof path === 'string' ? splitPath(path) : path.map(normalizeName);
}

/** The path as error messages show it. */
function shown(path: VaultPath): string {
  return typeof path === 'string' ? path : joinPath(path);
}

/** What a write may ask: `createOnly` and `times` for its index row (tree-writes.ts), and a size limit. */
export interface WriteOptions extends FileCommit {
  /** Refuse with ERR_TOO_LARGE beyond this many bytes (nothing is kept). */
  maxBytes?: number;
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
  private readonly tree: TreeWriter;
  private readonly writes: GroupCommit;
  /** An object of 0 bytes made durable by a write of this vault and kept while it is open, for the next empty files to share (`write`). */
  private emptyObject: string | undefined;

  private constructor(
    readonly dir: string,
    private readonly index: IndexDb,
    private readonly objects: ObjectStore,
    now: Clock,
    private readonly readOnly = false,
  ) {
    this.tree = new TreeWriter(index, now);
    this.writes = new GroupCommit(index);
  }

  /**
   * Opens (creating on first use) the vault in `dir` with the user's DEK,
   * creates the Documents, Desktop and Profile areas, and removes what a
   * crash may have left behind.
   */
  static async open(dir: string, dek: DataKey, opts: { now?: Clock } = {}): Promise<Vault> {
    await createObjectFolder(dir);
    await takeVaultLock(dir);
    try {
      // On a full disk the clean-up and the index's first changes need the reserve.
      const vault = await Vault.openLocked(dir, dek, opts.now ?? systemClock).catch((err: unknown) => {
        if (!isDiskFull(err) || !releaseReserve(dir)) throw err;
        return Vault.openLocked(dir, dek, opts.now ?? systemClock);
      });
      await vault.keepReserve();
      return vault;
    } catch (err) {
      releaseVaultLock(dir);
      if (isDiskFull(err)) throw noSpace(err);
      throw err;
    }
  }

  private static async openLocked(dir: string, dek: DataKey, now: Clock): Promise<Vault> {
    const objects = new ObjectStore(dir, dek);
    await objects.emptyTmp();
    const index = IndexDb.open(join(dir, INDEX_FILE), dek, false);
    const vault = new Vault(dir, index, objects, now);
    try {
      vault.txNow(() => vault.tree.ensureLayout());
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
      const vault = new Vault(dir, IndexDb.open(join(scratch, INDEX_FILE), dek, true), new ObjectStore(dir, dek), systemClock, true);
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
    this.objects.close();
    if (this.scratch) rmSync(this.scratch, { recursive: true, force: true });
    else if (!this.readOnly) releaseVaultLock(this.dir);
  }

  // ---- queries -------------------------------------------------------------

  /** The entry at `path`, or undefined when nothing is there. */
  stat(path: VaultPath): Entry | undefined {
    const names = namesOf(path);
    const row = resolve(this.index, names);
    return row ? toEntry(row, names) : undefined;
  }

  /** The children of a folder, sorted by name. */
  list(path: VaultPath): Entry[] {
    const names = namesOf(path);
    const dir = requireDir(this.index, names, shown(path));
    return childRows(this.index, dir.id).map((r) => toEntry(r, [...names, r.name]));
  }

  /** Sum of the sizes of all files. */
  quotaUsed(): number {
    this.index.assertOpen();
    return usedBytes(this.index);
  }

  /** The dead properties of every child of a folder, by child name (one query, for listings). */
  childProps(path: VaultPath): Map<string, DeadProperty[]> {
    return childProps(this.index, requireDir(this.index, namesOf(path), shown(path)).id);
  }

  getProps(path: VaultPath): DeadProperty[] {
    return props(this.index, requireRow(this.index, namesOf(path), shown(path)).id);
  }

  // ---- reads ---------------------------------------------------------------

  /** Streams the file's bytes [start, end) (end exclusive, clamped to the size). */
  async read(path: VaultPath, range: { start?: number; end?: number } = {}): Promise<ReadResult> {
    const names = namesOf(path);
    const row = requireRow(this.index, names, shown(path));
    if (row.is_dir) throw new VaultError('ERR_IS_A_DIRECTORY', `${joinPath(names)} is a folder`);
    const entry = toEntry(row, names);
    return { entry, stream: await this.objects.read(entry, range) };
  }

  // ---- writes --------------------------------------------------------------

  /**
   * Writes a file from a stream: new object, fsync, rename, then the index
   * row flips in one transaction. Resolves only once the write is durable.
   */
  async write(path: VaultPath, source: ByteSource, opts: WriteOptions = {}): Promise<WriteResult> {
    const names = namesOf(path);
    if (names.length === 0) throw new VaultError('ERR_IS_A_DIRECTORY', '/ is a folder');
    this.assertWritable();
    this.tree.checkFile(names, opts);
    // Nothing new while the space reserve is missing: the disk must never be full without one.
    if (!(await this.keepReserve())) throw noSpace(Object.assign(new Error('less free space than the space reserve'), { code: 'ENOSPC' }));
    try {
      if (isEmptySource(source) && this.emptyObject !== undefined) {
        // An empty file shares the vault's empty object (durable, kept by the object store while the vault is open):
        // no object to write, the write is one index commit.
        const shared = this.emptyObject;
        return await this.writes.run(() => this.tree.commitFile(names, shared, 0, opts));
      }
      return await this.objects.add(source, opts.maxBytes, async (objectId, size) => {
        this.index.assertOpen();
        const result = await this.writes.run(() => this.tree.commitFile(names, objectId, size, opts));
        // Durable and referred to, and not yet collectable (add's object in flight): kept from now on.
        if (size === 0 && this.emptyObject === undefined) {
          this.objects.keep(objectId);
          this.emptyObject = objectId;
        }
        return result;
      });
    } catch (err) {
      throw isDiskFull(err) ? noSpace(err) : err;
    } finally {
      await this.collectGarbage();
    }
  }

  /** Creates a folder; ERR_EXISTS when something is there. */
  /** Resolves once durable (the group commit: the WAL fsynced from the thread pool with the other changes of the moment). */
  mkdir(path: VaultPath, times: Times = {}): Promise<Entry> {
    const names = namesOf(path);
    if (names.length === 0) return Promise.reject(new VaultError('ERR_EXISTS', '/ exists'));
    return this.grouped(() => this.tree.mkdir(names, times));
  }

  /** Deletes a file or a whole folder tree in one transaction. */
  async delete(path: VaultPath): Promise<void> {
    const names = namesOf(path);
    this.tx(() => this.tree.delete(names, shown(path)), { frees: true });
    await this.index.durable();
    await this.collectGarbage();
    await this.index.reclaim();
    await restoreReserve(this.dir).catch(() => undefined);
  }

  /**
   * Moves (renames) a file or folder; a folder moves in one transaction.
   * With `overwrite`, an existing destination is replaced atomically.
   * Returns whether the destination existed before.
   */
  async move(from: VaultPath, to: VaultPath, opts: { overwrite: boolean }): Promise<{ replaced: boolean }> {
    const src = namesOf(from);
    const dst = namesOf(to);
    return this.tidyAfterRelocation(this.tx(() => this.tree.move(src, shown(from), dst, opts)));
  }

  /** Copies a file or a folder tree (content shared, metadata and properties copied). */
  async copy(from: VaultPath, to: VaultPath, opts: { overwrite: boolean }): Promise<{ replaced: boolean }> {
    const src = namesOf(from);
    const dst = namesOf(to);
    return this.tidyAfterRelocation(this.tx(() => this.tree.copy(src, shown(from), dst, opts)));
  }

  /** Sets and removes dead properties of one entry in one transaction. */
  patchProps(path: VaultPath, set: readonly DeadProperty[], remove: readonly { ns: string; name: string }[] = []): Promise<void> {
    const names = namesOf(path);
    return this.grouped(() => this.tree.patchProps(names, shown(path), set, remove));
  }

  /** Sets Win32 times and attributes (the directory bit is kept as the entry's kind says); resolves once durable. */
  setMeta(path: VaultPath, meta: Times & { attributes?: number }): Promise<Entry> {
    const names = namesOf(path);
    return this.grouped(() => this.tree.setMeta(names, shown(path), meta));
  }

  // ---- access notices (notices.ts) ----------------------------------------

  /** Records an access by someone else (one transaction); only the newest NOTICE_LIMIT are kept. */
  addNotice(n: AccessNotice): void {
    this.txNow(() => appendNotice(this.index, n));
  }

  /** The newest `limit` (at most NOTICE_LIMIT) access notices, newest first. */
  notices(limit = 1000): AccessNotice[] {
    return listNotices(this.index, Number.isFinite(limit) ? Math.max(0, Math.min(NOTICE_LIMIT, Math.trunc(limit))) : NOTICE_LIMIT);
  }

  // ---- internals -----------------------------------------------------------

  /** After a move or copy: the objects no one refers to any more go, and a replaced destination's pages are given back. */
  private async tidyAfterRelocation(result: { replaced: boolean }): Promise<{ replaced: boolean }> {
    await this.index.durable();
    await this.collectGarbage();
    if (result.replaced) await this.index.reclaim();
    return result;
  }

  /** Deletes the objects that the index no longer refers to (object-store.ts). */
  private async collectGarbage(): Promise<void> {
    if (!this.readOnly) await this.objects.collect(this.index);
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
   * Runs `fn` (index changes only) in the group commit's next batch
   * (group-commit.ts, in its own savepoint); resolves once it is durable.
   * ERR_NO_SPACE on a full disk (none of these changes frees space).
   */
  private async grouped<T>(fn: () => T): Promise<T> {
    this.index.assertOpen();
    this.assertWritable();
    try {
      return await this.writes.run(fn);
    } catch (err) {
      throw isDiskFull(err) ? noSpace(err) : err;
    }
  }

  /** `tx`, then the WAL fsynced on this thread: durable when it returns (for the synchronous methods). */
  private txNow<T>(fn: () => T, opts: { frees?: boolean } = {}): T {
    const result = this.tx(fn, opts);
    this.index.syncNow();
    return result;
  }

  /**
   * Runs `fn` in one write transaction, committed but not yet durable (the
   * caller waits for `index.durable()` or calls `txNow`). On a full disk, a change that
   * `frees` space gives up the space reserve and runs again; any other
   * change fails with ERR_NO_SPACE.
   */
  private tx<T>(fn: () => T, opts: { frees?: boolean } = {}): T {
    this.index.assertOpen();
    this.assertWritable();
    try {
      const result = this.index.db.transaction(fn).immediate();
      this.index.committed();
      return result;
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

/** Whether a write's source is known to be empty without reading it (an empty array, as a LOCK or a PUT of 0 bytes passes). */
function isEmptySource(source: ByteSource): boolean {
  return Array.isArray(source) && source.every((piece: Buffer | Uint8Array | string) => piece.length === 0);
}

function noSpace(cause: unknown): VaultError {
  return new VaultError('ERR_NO_SPACE', "there is not enough free space on this PC's data disk; delete files you no longer need and try again", { cause });
}
