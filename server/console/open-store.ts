/** Opens the store the console's configuration names (H1's openConsoleStore), reading the PostgreSQL password (and TLS CA) from their files. */
import { readFile } from 'node:fs/promises';
import type { FastifyBaseLogger } from 'fastify';
import { ConfiguredFileError } from '../config/errors.js';
import type { ConsoleConfig } from './config.js';
import { openConsoleStore } from './store/open.js';
import type { ConsoleStore } from './store/store.js';

export async function openConfiguredStore(config: ConsoleConfig, logger: FastifyBaseLogger): Promise<ConsoleStore> {
  const store = config.store;
  if (store.kind === 'sqlite') return openConsoleStore({ kind: 'sqlite', file: store.file }, logger);
  let password: string | undefined;
  if (store.passwordFile !== null) {
    password = await readFile(store.passwordFile, 'utf8').then(
      (text) => text.replace(/\r?\n$/, ''),
      (err: NodeJS.ErrnoException) => {
        throw new ConfiguredFileError(`cannot read the PostgreSQL password file (store.postgres.passwordFile) ${store.passwordFile}: ${err.code ?? err.message}`);
      },
    );
  }
  let ca: string | undefined;
  if (store.caFile !== null) {
    ca = await readFile(store.caFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new ConfiguredFileError(`cannot read the PostgreSQL CA file (store.postgres.caFile) ${store.caFile}: ${err.code ?? err.message}`);
    });
  }
  const ssl = store.ssl === 'verify-full' ? { mode: store.ssl, ...(ca === undefined ? {} : { ca }) } : { mode: store.ssl };
  return openConsoleStore({ kind: 'postgres', host: store.host, port: store.port, database: store.database, user: store.user, ssl, ...(password === undefined ? {} : { password }) }, logger);
}
