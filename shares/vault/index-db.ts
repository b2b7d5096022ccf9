/**
 * The index database of a vault (`index.db`): names, sizes, times, Win32
 * attributes, dead properties, object ids and the user's access notices
 * (docs/format.md §3.2, §3.3).
 * Opening it (key, pragmas, schema version), the schema, the cache of
 * prepared statements, and giving free pages back after deletions.
 *
 * Security considerations:
 * - The index is encrypted by SQLite3 Multiple Ciphers (ChaCha20-Poly1305
 *   pages, WAL included) under a key derived from the DEK
 *   (crypto/index-key.ts). Temporary tables stay in memory.
 * - The index and its WAL and shared-memory files are 0600 whatever the umask.
 * - An index of a newer schema version is refused, never modified.
 * - Durability (group commit): the connection runs `synchronous = NORMAL`,
 *   so SQLite's own commit writes the WAL frames without an fsync (it still
 *   syncs the WAL before each checkpoint copies it into the database, and the
 *   database after, and the WAL header when the WAL restarts: the index stays
 *   consistent whatever is lost). What `synchronous = FULL` would fsync at
 *   each commit is fsynced here instead, before a change is reported done:
 *   `durable()` waits for an fsync of the `-wal` file that started after the
 *   caller's commit (group-sync.ts), from the thread pool, one fsync serving
 *   every commit made before it; `syncNow()` does it at once, on this thread,
 *   for the synchronous callers. An fsync covers the file whichever
 *   descriptor wrote it, so this is exactly as durable as FULL. It is an
 *   fdatasync, as SQLite's own sync is on Linux: it writes the file's data
 *   and the size needed to read it back (not its times). The WAL file
 *   carries no locks (WAL mode locks the `-shm` file), so the extra
 *   descriptor kept open here cannot drop one of SQLite's locks when closed.
 */
import { chmodSync, closeSync, constants, fchmodSync, fdatasync, fdatasyncSync, openSync } from 'node:fs';
import { promisify } from 'node:util';
import Database from 'better-sqlite3-multiple-ciphers';
import type { DataKey } from '../../crypto/object-format.js';
import { indexKeyHex } from '../../crypto/index-key.js';
import { VaultError } from './errors.js';
import { GroupSync } from './group-sync.js';

const fdatasyncAsync = promisify(fdatasync);

export const INDEX_FILE = 'index.db';
/** The row of the root folder. */
export const ROOT_ID = 1;
/**
 * 2 added the `notice` table (the user's access notices, notices.ts); a
 * version 1 index gets it at its first writable open (SCHEMA only adds).
 */
const SCHEMA_VERSION = 2;
/** The index gives free pages back when at least this many bytes and this share of its pages are free. */
const RECLAIM_MIN_BYTES = 1024 * 1024;
const RECLAIM_MIN_SHARE = 0.25;
/** Pages moved per step of an incremental vacuum (8 MiB): the event loop runs between steps. */
const RECLAIM_STEP_PAGES = 2048;
/** A WAL is cut back to this size after a checkpoint (SQLite reuses it otherwise, at its largest). */
const WAL_SIZE_LIMIT = 4 * 1024 * 1024;

/** A row of the `node` table: one file or folder. */
export interface Row {
  id: number;
  parent: number | null;
  name: string;
  is_dir: number;
  size: number;
  object: string | null;
  created: number;
  modified: number;
  accessed: number;
  attributes: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS node (
  id INTEGER PRIMARY KEY,
  parent INTEGER REFERENCES node(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  fold TEXT NOT NULL,
  is_dir INTEGER NOT NULL,
  size INTEGER NOT NULL DEFAULT 0,
  object TEXT,
  created INTEGER NOT NULL,
  modified INTEGER NOT NULL,
  accessed INTEGER NOT NULL,
  attributes INTEGER NOT NULL,
  UNIQUE (parent, fold)
);
CREATE INDEX IF NOT EXISTS node_object ON node(object);
CREATE TABLE IF NOT EXISTS prop (
  node INTEGER NOT NULL REFERENCES node(id) ON DELETE CASCADE,
  ns TEXT NOT NULL,
  name TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (node, ns, name)
);
CREATE TABLE IF NOT EXISTS garbage (object TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS notice (
  id INTEGER PRIMARY KEY,
  time INTEGER NOT NULL,
  actor TEXT NOT NULL,
  kind TEXT NOT NULL,
  via TEXT NOT NULL,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  request_id TEXT NOT NULL,
  decision TEXT NOT NULL
);
`;

/** An open index: its connection, its prepared statements, and whether it is closed. */
export class IndexDb {
  private closed = false;
  /** Prepared statements by SQL text (preparing costs more than most queries). */
  private readonly statements = new Map<string, Database.Statement>();
  private reclaiming = false;
  /** The `-wal` file, opened at the first commit, for the fsyncs that make commits durable. */
  private walFd: number | undefined;
  private readonly wal = new GroupSync(
    () => fdatasyncAsync(this.walDescriptor()),
    () => fdatasyncSync(this.walDescriptor()),
  );

  private constructor(
    readonly db: Database.Database,
    private readonly readOnly: boolean,
    private readonly file: string,
  ) {}

  /**
   * Opens (creating when writable) the index `file` with the key derived
   * from `dek`. Read-only, the file must exist and nothing in it changes.
   */
  static open(file: string, dek: DataKey, readOnly: boolean): IndexDb {
    return new IndexDb(openIndex(file, dek, readOnly), readOnly, file);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  assertOpen(): void {
    if (this.closed) throw new VaultError('ERR_VAULT_CLOSED', 'the vault is closed');
  }

  stmt(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) this.statements.set(sql, (statement = this.db.prepare(sql)));
    return statement;
  }

  /** Records a write transaction just committed (not yet durable: see `durable`). */
  committed(): void {
    this.wal.changed();
  }

  /** Resolves once every transaction committed so far is on the disk (one fsync of the WAL for all who wait). */
  durable(): Promise<void> {
    return this.wal.flushed();
  }

  /** Resolves when no fsync of the WAL is running; undefined when none is (a transaction made now would wait for the next one). */
  walBusy(): Promise<void> | undefined {
    return this.wal.busy ? this.wal.settled() : undefined;
  }

  /** Puts every transaction committed so far on the disk now, on this thread (for synchronous callers). */
  syncNow(): void {
    this.wal.syncNow();
  }

  close(): void {
    this.closed = true;
    this.db.close();
    const fd = this.walFd;
    this.walFd = undefined;
    if (fd === undefined) return;
    // At once unless an fsync runs on it: SQLite has just deleted the WAL, and
    // a descriptor left open would keep its blocks in use on the disk.
    if (this.wal.busy) void this.wal.settled().then(() => closeSync(fd));
    else closeSync(fd);
  }

  private walDescriptor(): number {
    if (this.walFd === undefined) {
      if (this.closed) throw new VaultError('ERR_VAULT_CLOSED', 'the vault is closed');
      this.walFd = openSync(`${this.file}-wal`, constants.O_RDONLY);
    }
    return this.walFd;
  }

  /**
   * After a delete: when much of the index is free pages (large dead
   * properties deleted), gives them back to the file system and empties the
   * WAL, so that the index, and each backup's copy of it, shrinks. Pages
   * move in steps (incremental vacuum), the event loop running in between;
   * an index made before incremental vacuum is rebuilt once (VACUUM, into
   * memory: temp_store). The delete is committed already: a full disk or a
   * busy index leaves the pages for the next delete.
   */
  async reclaim(): Promise<void> {
    if (this.reclaiming || this.closed || this.readOnly) return;
    const pragma = (p: string) => this.db.pragma(p, { simple: true }) as number;
    const free = pragma('freelist_count');
    if (free * pragma('page_size') < RECLAIM_MIN_BYTES || free < pragma('page_count') * RECLAIM_MIN_SHARE) return;
    this.reclaiming = true;
    try {
      if (pragma('auto_vacuum') !== 2) {
        this.db.pragma('auto_vacuum = INCREMENTAL'); // takes effect with the VACUUM
        this.db.exec('VACUUM');
      } else {
        while (!this.closed && pragma('freelist_count') > 0) {
          this.db.pragma(`incremental_vacuum(${RECLAIM_STEP_PAGES})`);
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      if (!this.closed) this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch (err) {
      const code = String((err as { code?: unknown }).code);
      if (!code.startsWith('SQLITE_FULL') && !code.startsWith('SQLITE_BUSY')) throw err;
    } finally {
      this.reclaiming = false;
    }
  }
}

/**
 * Makes the index and its WAL and shared-memory files 0600 whatever the
 * umask. SQLite creates the database with 0644 (less the umask) and gives
 * -wal and -shm the mode of the database, so the database is created here
 * first, 0600 (an older version's 0644 one set to 0600, with its leftovers).
 */
function restrictIndexFiles(file: string): void {
  const fd = openSync(file, constants.O_RDWR | constants.O_CREAT, 0o600);
  try {
    fchmodSync(fd, 0o600);
  } finally {
    closeSync(fd);
  }
  for (const extra of [`${file}-wal`, `${file}-shm`]) {
    try {
      chmodSync(extra, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

function openIndex(file: string, dek: DataKey, readonly: boolean): Database.Database {
  if (!readonly) restrictIndexFiles(file);
  const db = new Database(file, { fileMustExist: readonly });
  try {
    db.pragma(`cipher = 'chacha20'`);
    // "raw:" hands SQLite3MC the derived key itself, skipping its PBKDF2
    // passphrase step (the key is already uniformly random).
    db.pragma(`key = 'raw:${indexKeyHex(dek)}'`);
    try {
      db.prepare('SELECT count(*) FROM sqlite_master').get();
    } catch (err) {
      throw new VaultError('ERR_INDEX_KEY', `the vault index ${file} does not open with this key (wrong key or damaged file)`, { cause: err });
    }
    db.pragma('temp_store = MEMORY');
    // Before the first table of a new index (an older index switches at its first reclaim, see IndexDb.reclaim).
    if (!readonly) db.pragma('auto_vacuum = INCREMENTAL');
    db.pragma('journal_mode = WAL');
    db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT}`);
    // Commits are made durable by IndexDb.durable/syncNow (see the head comment).
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new VaultError('ERR_INDEX_VERSION', `the vault index ${file} has schema version ${version}; this mydoc reads up to ${SCHEMA_VERSION}`);
    }
    if (!readonly) {
      db.exec(SCHEMA);
      // Set only when it changes: the write needs room in the WAL.
      if (version !== SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
    }
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}
