/**
 * The object files of a vault: `objects/<2 hex>/<32 hex>`, immutable,
 * encrypted (crypto/object-format.ts), named by their file id, written by way
 * of `tmp/`. Writing (encrypt, fsync, rename), reading (open, check, decrypt),
 * and garbage collection: deleting the objects the index no longer refers to.
 *
 * Security considerations:
 * - Contents are never written in plaintext: each object is encrypted under
 *   the user's DEK before it reaches the disk.
 * - A write goes to a new object in `tmp/`, is renamed into place once
 *   complete, fsynced with its folder (one folder fsync serving every
 *   object renamed into it meanwhile, group-sync.ts), and only then does the
 *   caller's commit flip the index row, in one transaction. A crash leaves
 *   the old version or the new one, never a part. Leftovers (tmp files,
 *   unreferenced objects) are removed at open.
 * - Objects are shared by copies and collected only when no row refers to
 *   them, never while a backup holds deletions (backup-hooks.ts), never
 *   while written but not yet committed, and never while kept (`keep`).
 * - A read checks the object's file id and size against the index row: an
 *   object swapped for another one of the same user is refused.
 */
import { mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ObjectEncryptor, type DataKey } from '../../crypto/object-format.js';
import { ObjectReader } from '../../crypto/object-io.js';
import { CryptoError } from '../../crypto/errors.js';
import { fsyncDir } from '../../crypto/atomic-file.js';
import { VaultError } from './errors.js';
import type { IndexDb } from './index-db.js';
import type { Entry } from './entry.js';
import { deletionsHeld } from './backup-hooks.js';
import { GroupSync } from './group-sync.js';

const OBJECTS_DIR = 'objects';
const TMP_DIR = 'tmp';
const WRITE_BATCH = 1024 * 1024;
const SYNC_EVERY = 32 * 1024 * 1024;

/** What a write reads its content from: a Node Readable, an async generator or an array of pieces. */
export type ByteSource = AsyncIterable<Buffer | Uint8Array | string> | Iterable<Buffer | Uint8Array | string>;

/** Creates the object folder of the vault folder `dir` (and `dir`), 0700. */
export async function createObjectFolder(dir: string): Promise<void> {
  await mkdir(join(dir, OBJECTS_DIR), { recursive: true, mode: 0o700 });
}

/** Every file in the vault's object folders (`objects/<xx>/<id>`), by name; none when there is no such folder. */
export async function objectFiles(dir: string): Promise<{ id: string; file: string }[]> {
  const objects = join(dir, OBJECTS_DIR);
  const out: { id: string; file: string }[] = [];
  for (const fan of await readdir(objects).catch(() => [] as string[])) {
    for (const id of await readdir(join(objects, fan))) out.push({ id, file: join(objects, fan, id) });
  }
  return out;
}

export class ObjectStore {
  /** Objects written but not yet committed; the collector leaves them alone. */
  private readonly inflight = new Set<string>();
  /** Objects kept while the vault is open even when no row refers to them (the shared empty object, vault.ts); swept at the next open if still unreferenced. */
  private readonly kept = new Set<string>();
  /** Fan-out folders known to exist (durably), or being created. */
  private readonly fanouts = new Map<string, Promise<string>>();
  private readonly folderSyncs = new Map<string, GroupSync>();
  private readonly folderHandles = new Map<string, Promise<FileHandle>>();

  constructor(
    private readonly dir: string,
    private readonly dek: DataKey,
  ) {}

  /** At open: empties `tmp/` (what a crash left of writes), creating it when missing. */
  async emptyTmp(): Promise<void> {
    // Emptied, not re-created: a new folder needs a free block.
    const tmp = join(this.dir, TMP_DIR);
    await mkdir(tmp, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    for (const name of await readdir(tmp)) await rm(join(tmp, name), { recursive: true, force: true });
  }

  /**
   * Writes a new object from `source` (ERR_TOO_LARGE beyond `maxBytes`),
   * durably, then calls `commit` with its id and plaintext size. When either
   * fails the object is deleted; until `commit` resolves the collector leaves
   * it alone.
   */
  async add<T>(source: ByteSource, maxBytes: number | undefined, commit: (objectId: string, size: number) => T | Promise<T>): Promise<T> {
    const enc = new ObjectEncryptor(this.dek);
    const objectId = enc.fileId.toString('hex');
    this.inflight.add(objectId);
    try {
      const size = await this.writeObject(enc, objectId, source, maxBytes);
      return await commit(objectId, size);
    } catch (err) {
      await rm(this.objectPath(objectId), { force: true });
      throw err;
    } finally {
      this.inflight.delete(objectId);
    }
  }

  /** Keeps the (durable) object `objectId` until the vault closes, whether or not a row refers to it. */
  keep(objectId: string): void {
    this.kept.add(objectId);
  }

  /** Streams the bytes [start, end) of the file `entry` (end exclusive, clamped to the size). */
  async read(entry: Entry, range: { start?: number; end?: number }): Promise<Readable> {
    const file = this.objectPath(entry.objectId!);
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch (err) {
      throw corrupt(entry, `its object is missing (${(err as NodeJS.ErrnoException).code})`, err);
    }
    let reader: ObjectReader;
    try {
      reader = await ObjectReader.open(fh, this.dek);
      if (reader.fileId.toString('hex') !== entry.objectId) {
        throw new VaultError('ERR_OBJECT_CORRUPT', `the object holds file id ${reader.fileId.toString('hex')}: objects were swapped or replaced`);
      }
      if (reader.size !== entry.size) throw new VaultError('ERR_OBJECT_CORRUPT', `size ${reader.size} does not match the index (${entry.size})`);
    } catch (err) {
      await fh.close();
      throw corrupt(entry, (err as Error).message, err);
    }
    const source = reader.read(range.start ?? 0, range.end ?? entry.size);
    async function* guarded(): AsyncGenerator<Buffer> {
      try {
        for await (const piece of source) yield piece;
      } catch (err) {
        throw corrupt(entry, (err as Error).message, err);
      } finally {
        await fh.close();
      }
    }
    return Readable.from(guarded(), { objectMode: false, highWaterMark: WRITE_BATCH });
  }

  /** Deletes objects on the index's garbage list that no row refers to any more. */
  async collect(index: IndexDb): Promise<void> {
    if (index.isClosed) return;
    const candidates = index.stmt('SELECT object FROM garbage').pluck().all() as string[];
    if (candidates.length === 0) return;
    // The changes that dropped them must be durable first: a power cut must not bring back a row whose object is gone.
    await index.durable();
    for (const objectId of candidates) {
      // Checked before every deletion: a backup may start holding them while this loop runs.
      if (index.isClosed || deletionsHeld(this.dir)) return;
      const referenced = index.stmt('SELECT 1 FROM node WHERE object = ? LIMIT 1').get(objectId) !== undefined;
      if (!referenced && !this.inflight.has(objectId) && !this.kept.has(objectId)) await rm(this.objectPath(objectId), { force: true });
      index.stmt('DELETE FROM garbage WHERE object = ?').run(objectId);
    }
  }

  /** At open: deletes objects that a crash left without an index row. */
  async sweepOrphans(index: IndexDb): Promise<void> {
    if (deletionsHeld(this.dir)) return;
    const referenced = new Set(index.stmt('SELECT object FROM node WHERE object IS NOT NULL').pluck().all() as string[]);
    for (const { id, file } of await objectFiles(this.dir)) {
      if (!referenced.has(id)) await rm(file, { force: true });
    }
    index.stmt('DELETE FROM garbage').run();
  }

  private objectPath(objectId: string): string {
    return join(this.dir, OBJECTS_DIR, objectId.slice(0, 2), objectId);
  }

  private async writeObject(enc: ObjectEncryptor, objectId: string, source: ByteSource, maxBytes = Infinity): Promise<number> {
    const tmp = join(this.dir, TMP_DIR, objectId);
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
      // Complete (in the page cache), so it may appear under its name now:
      // its fdatasync (which covers the size) runs while it is renamed into
      // place and its fan-out folder fsynced (one fsync for every object
      // renamed into it meanwhile). Durable when both are done. Until then no
      // index row refers to it, so a crash leaves an orphan, swept at open.
      const dataSynced = fh.datasync();
      dataSynced.catch(() => undefined); // awaited below
      let fanout = await this.fanout(objectId);
      await rename(tmp, join(fanout, objectId)).catch(async (err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
        // The fan-out folder was removed under us: made again, once.
        this.forgetFanout(fanout);
        fanout = await this.fanout(objectId);
        await rename(tmp, join(fanout, objectId));
      });
      await Promise.all([dataSynced, this.folderSync(fanout).sync()]);
    } catch (err) {
      await inflight.catch(() => undefined);
      await syncing.catch(() => undefined);
      await fh.close(); // after any pending datasync
      await rm(tmp, { force: true }); // add() deletes a renamed one
      throw err;
    }
    // Durable already; the descriptor is closed without holding up the commit.
    void fh.close().catch(() => undefined);
    return size;
  }

  /** The object's fan-out folder, created (and `objects/` fsynced) when missing; callers at once share one creation. */
  private fanout(objectId: string): Promise<string> {
    const fanout = join(this.dir, OBJECTS_DIR, objectId.slice(0, 2));
    let ready = this.fanouts.get(fanout);
    if (!ready) {
      ready = (async () => {
        // Not recursive (objects/ exists): a recursive mkdir reports ENOENT for a full disk.
        const made = await mkdir(fanout, { mode: 0o700 }).then(
          () => true,
          (err: NodeJS.ErrnoException) => {
            if (err.code !== 'EEXIST') throw err;
            return false;
          },
        );
        if (made) await fsyncDir(join(this.dir, OBJECTS_DIR));
        return fanout;
      })();
      this.fanouts.set(fanout, ready);
      ready.catch(() => this.fanouts.delete(fanout));
    }
    return ready;
  }

  private forgetFanout(fanout: string): void {
    this.fanouts.delete(fanout);
    void this.folderHandles.get(fanout)?.then((h) => h.close()).catch(() => undefined);
    this.folderHandles.delete(fanout);
  }

  /** The group fsync of a fan-out folder (group-sync.ts). */
  private folderSync(fanout: string): GroupSync {
    let sync = this.folderSyncs.get(fanout);
    if (!sync) this.folderSyncs.set(fanout, (sync = new GroupSync(() => this.syncFolder(fanout))));
    return sync;
  }

  /** fsyncs a fan-out folder through a descriptor kept open for the next ones (at most one per fan-out folder, closed by `close`). */
  private async syncFolder(fanout: string): Promise<void> {
    let handle = this.folderHandles.get(fanout);
    if (!handle) {
      handle = open(fanout, 'r');
      this.folderHandles.set(fanout, handle);
      handle.catch(() => this.folderHandles.delete(fanout));
    }
    await (await handle).sync();
  }

  /** Closes the fan-out folders' descriptors (each after its pending fsync). */
  close(): void {
    for (const handle of this.folderHandles.values()) void handle.then((h) => h.close()).catch(() => undefined);
    this.folderHandles.clear();
  }
}

function corrupt(entry: Entry, why: string, cause: unknown): VaultError {
  if (cause instanceof VaultError && cause.code !== 'ERR_OBJECT_CORRUPT') return cause;
  const detail = cause instanceof CryptoError ? cause.message : why;
  return new VaultError('ERR_OBJECT_CORRUPT', `file ${entry.path} is damaged (object ${entry.objectId}): ${detail}`, { cause });
}
