/**
 * Opens the console's store its configuration names: the embedded SQLite
 * file (the default) or PostgreSQL. The schema is migrated before the store
 * is returned.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { ConsoleStore } from './store.js';
import { openPostgresStore, type PostgresSpec } from './postgres.js';
import { openSqliteStore } from './sqlite.js';

export type StoreSpec = { kind: 'sqlite'; file: string } | ({ kind: 'postgres' } & PostgresSpec);

/**
 * Fails with ERR_STORE_FILE (the SQLite file cannot be opened),
 * ERR_STORE_UNAVAILABLE (PostgreSQL does not answer within its connect
 * timeout, or refuses the login) or ERR_STORE_MIGRATION.
 */
export async function openConsoleStore(spec: StoreSpec, logger: FastifyBaseLogger): Promise<ConsoleStore> {
  return spec.kind === 'sqlite' ? openSqliteStore(spec.file, logger) : openPostgresStore(spec, logger);
}
