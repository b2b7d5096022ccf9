/**
 * The store on PostgreSQL, for sites that outgrow one machine (several
 * console processes may share it): a pg Pool driven through Kysely's
 * PostgresDialect, the same queries as the SQLite file (sql-store.ts).
 *
 * A database that goes away never takes the console down: every pool and
 * client error event is handled (logged, the connection dropped); a call
 * fails with ERR_STORE_UNAVAILABLE ("the console's PostgreSQL at host:port
 * does not answer: ...") within bounded time (connecting: 5 s, a query:
 * 15 s), and the pool connects anew on the next call, so the same store
 * works again as soon as PostgreSQL is back.
 *
 * TLS (store.postgres.ssl): none, `require` (encrypted, the server not
 * checked) or `verify-full` (its certificate checked against the CA and the
 * host name); a TLS failure says so and names the mode.
 *
 * Security considerations: the password is handed to pg only; no message
 * or log line names it. PostgreSQL's bigint columns are read as JS numbers
 * (epoch ms stay far below 2^53).
 */
import pg from 'pg';
import { Kysely, PostgresDialect, sql } from 'kysely';
import type { FastifyBaseLogger } from 'fastify';
import { StoreError } from './errors.js';
import { migrateToLatest } from './migrations.js';
import type { StoreDatabase } from './schema.js';
import { SqlConsoleStore, type Engine } from './sql-store.js';

export interface PostgresSpec {
  host: string;
  port: number;
  database: string;
  user: string;
  password?: string;
  /** TLS (default none): `require` encrypts without checking the server; `verify-full` checks its certificate against `ca` (PEM; else the system's CAs) and `host`. */
  ssl?: { mode: 'disable' } | { mode: 'require' } | { mode: 'verify-full'; ca?: string };
}

/** pg's ssl option for `spec`. */
function sslOption(spec: PostgresSpec): pg.PoolConfig['ssl'] {
  const ssl = spec.ssl ?? { mode: 'disable' };
  if (ssl.mode === 'disable') return false;
  if (ssl.mode === 'require') return { rejectUnauthorized: false };
  // Node's checkServerIdentity checks the certificate's names against `host` (the servername).
  return { rejectUnauthorized: true, servername: spec.host, ...(ssl.ca === undefined ? {} : { ca: ssl.ca }) };
}

const CONNECT_TIMEOUT_MS = 5000;
const QUERY_TIMEOUT_MS = 15_000;
const POOL_SIZE = 10;
const INT8_OID = 20;

/** Node's and pg's words for a connection that failed, broke or timed out. */
const CONNECTION_ERROR_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);
const CONNECTION_ERROR_MESSAGES = /timeout exceeded when trying to connect|Connection terminated|Query read timeout|not queryable|connection error|Client was closed/i;

/** Opens a pool to the database `spec` names and migrates it; fails with ERR_STORE_UNAVAILABLE when it does not answer. */
export async function openPostgresStore(spec: PostgresSpec, logger: FastifyBaseLogger): Promise<SqlConsoleStore> {
  const where = `${spec.host}:${spec.port}`;
  const engine = postgresEngine(where, spec.ssl?.mode ?? 'disable');
  const pool = new pg.Pool({
    host: spec.host,
    port: spec.port,
    database: spec.database,
    user: spec.user,
    password: spec.password,
    ssl: sslOption(spec),
    max: POOL_SIZE,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    query_timeout: QUERY_TIMEOUT_MS,
    keepAlive: true,
    application_name: 'mydoc-console',
    types: { getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format))) as typeof pg.types.getTypeParser },
  });
  // An idle connection that breaks is reported here; a connection in use reports to its query.
  pool.on('error', (err) => logger.warn({ err: { message: err.message, code: (err as { code?: unknown }).code } }, `console store: a PostgreSQL connection to ${where} failed`));
  // A client between two queries of a transaction has no listener of the pool's: never an unhandled 'error'.
  pool.on('connect', (client) => client.on('error', () => {}));
  const db = new Kysely<StoreDatabase>({ dialect: new PostgresDialect({ pool }) });
  try {
    await migrateToLatest(db, engine, `PostgreSQL ${where}`, logger);
  } catch (err) {
    await db.destroy();
    throw engine.toStoreError(err, 'open');
  }
  return new SqlConsoleStore(db, engine);
}

/** A TLS failure: the server has no TLS, or its certificate is not trusted or not for this host. */
const TLS_ERROR = /does not support SSL|certificate|self[- ]signed|Hostname\/IP does not match|altnames|SSL|TLS/i;

function postgresEngine(where: string, sslMode: string): Engine {
  return {
    kind: 'postgres',
    rowLocks: true,
    presenceRows: (json) => sql`(select e->>0 as pc_id, (e->>1)::bigint as at from json_array_elements(${json}::json) as e)`,
    isUniqueViolation: (err) => (err as { code?: unknown } | null)?.code === '23505',
    toStoreError(err, operation) {
      if (err instanceof StoreError) return err;
      const reason = reasonOf(err);
      if (sslMode !== 'disable' && err instanceof Error && (TLS_ERROR.test(err.message) || String((err as { code?: unknown }).code ?? '').includes('CERT'))) {
        return new StoreError('ERR_STORE_UNAVAILABLE', `the console's PostgreSQL at ${where} cannot be reached over TLS (store.postgres.ssl is "${sslMode}"): ${reason}`, { cause: err });
      }
      if (isConnectionError(err)) return new StoreError('ERR_STORE_UNAVAILABLE', `the console's PostgreSQL at ${where} does not answer: ${reason}`, { cause: err });
      const sqlState = String((err as { code?: unknown } | null)?.code ?? '');
      // Login refused (28...) or no such database (3D000): it answers, but the console cannot use it.
      if (sqlState.startsWith('28') || sqlState === '3D000') {
        return new StoreError('ERR_STORE_UNAVAILABLE', `the console's PostgreSQL at ${where} refuses the console: ${reason}`, { cause: err });
      }
      return new StoreError('ERR_STORE_FAILED', `the console's PostgreSQL at ${where} refused ${operation}: ${reason}${sqlState ? ` (${sqlState})` : ''}`, { cause: err });
    },
  };
}

function isConnectionError(err: unknown): boolean {
  const code = String((err as { code?: unknown } | null)?.code ?? '');
  // Connection exceptions (08...), and the server shutting down or starting up (57P01-57P03).
  if (code.startsWith('08') || /^57P0[123]$/.test(code) || CONNECTION_ERROR_CODES.has(code)) return true;
  return err instanceof Error && CONNECTION_ERROR_MESSAGES.test(err.message);
}

/** The driver's reason; a failed connect to several addresses is an AggregateError with an empty message. */
function reasonOf(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(reasonOf).join('; ');
  if (err instanceof Error) return err.message || String((err as { code?: unknown }).code ?? err.name);
  return String(err);
}
