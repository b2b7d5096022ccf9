/**
 * The embedded store: one SQLite file in the console's data folder
 * (better-sqlite3-multiple-ciphers, the engine the vault already uses,
 * driven through Kysely's SqliteDialect). WAL, so readers do not wait for
 * the presence writer; FULL sync, so an approval the console acted on is on
 * disk; foreign keys on. No server to run: the demo's and small sites' store.
 *
 * Security considerations: the file and its -wal and -shm companions are
 * 0600 whatever the umask (they hold device keys' fingerprints, token
 * hashes, user names and take-out reasons). The file is not encrypted: the
 * data folder's permissions protect it, as they protect the issuer key.
 */
import { chmodSync, closeSync, constants, fchmodSync, openSync } from 'node:fs';
import Database from 'better-sqlite3-multiple-ciphers';
import { Kysely, SqliteAdapter, SqliteDialect, sql, type DialectAdapter } from 'kysely';
import type { FastifyBaseLogger } from 'fastify';
import { StoreError } from './errors.js';
import { migrateToLatest } from './migrations.js';
import type { StoreDatabase } from './schema.js';
import { SqlConsoleStore, type Engine } from './sql-store.js';

const BUSY_TIMEOUT_MS = 5000;

/** SQLite runs DDL inside transactions; telling Kysely so makes each migration all-or-nothing. */
class TransactionalDdlAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}
class StoreSqliteDialect extends SqliteDialect {
  override createAdapter(): DialectAdapter {
    return new TransactionalDdlAdapter();
  }
}

/** Opens (creating) the store in `file`, migrated to the current schema. */
export async function openSqliteStore(file: string, logger: FastifyBaseLogger): Promise<SqlConsoleStore> {
  const engine = sqliteEngine(file);
  let database: Database.Database;
  try {
    restrictFiles(file);
    database = new Database(file);
  } catch (err) {
    throw new StoreError('ERR_STORE_FILE', `the console's store ${file} cannot be opened: ${reasonOf(err)}`, { cause: err });
  }
  const db = new Kysely<StoreDatabase>({ dialect: new StoreSqliteDialect({ database }) });
  try {
    database.pragma('journal_mode = WAL');
    database.pragma('synchronous = FULL');
    database.pragma('foreign_keys = ON');
    database.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    await migrateToLatest(db, engine, file, logger);
    restrictFiles(file); // the WAL and shared-memory files exist now
  } catch (err) {
    await db.destroy();
    throw engine.toStoreError(err, 'open');
  }
  return new SqlConsoleStore(db, engine);
}

function sqliteEngine(file: string): Engine {
  return {
    kind: 'sqlite',
    rowLocks: false,
    presenceRows: (json) => sql`(select json_extract(value, '$[0]') as pc_id, json_extract(value, '$[1]') as at from json_each(${json}))`,
    isUniqueViolation: (err) => (err as { code?: unknown } | null)?.code === 'SQLITE_CONSTRAINT_UNIQUE',
    toStoreError(err, operation) {
      if (err instanceof StoreError) return err;
      const code = String((err as { code?: unknown } | null)?.code ?? '');
      if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
        return new StoreError('ERR_STORE_UNAVAILABLE', `the console's store ${file} is busy (another process holds it): ${reasonOf(err)}`, { cause: err });
      }
      if (/^SQLITE_(CANTOPEN|READONLY|FULL|IOERR|CORRUPT|NOTADB|PERM)/.test(code)) {
        return new StoreError('ERR_STORE_FILE', `the console's store ${file} cannot be used (${operation}): ${reasonOf(err)}`, { cause: err });
      }
      return new StoreError('ERR_STORE_FAILED', `the console's store ${file} refused ${operation}: ${reasonOf(err)}`, { cause: err });
    },
  };
}

/** Creates the file 0600 if missing and makes it and its WAL/shm files 0600 whatever the umask. */
function restrictFiles(file: string): void {
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

function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
