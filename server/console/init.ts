/**
 * `mydoc console init`: creates the console's data folder (0700): its store
 * (created and migrated), a CA and the TLS certificate of both ports, the
 * take-out issuer key pair, and the audit trail; the marker last, so a
 * failed init can simply be run again.
 *
 * Security considerations: refuses to run on an initialised folder (that
 * would replace the CA the agents pin and the issuer key they trust); the
 * CA's private key is dropped once it has signed (server/http/tls.ts), so
 * the folder holds no key that mints certificates agents accept; every
 * file is 0600, the issuer private key above all (it never leaves the
 * console's machine); the public files are 0600 too (the folder is 0700,
 * 0644 would add no reader: copy them to the agents).
 */
import { access, chmod, mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import { writeFileAtomic } from '../../crypto/atomic-file.js';
import { generateIssuerKeyPair } from '../../policy/takeout/issuer-keys.js';
import { createTlsMaterial } from '../http/tls.js';
import { localActor, openConsoleAudit } from './audit.js';
import type { ConsoleConfig } from './config.js';
import { consoleFolder } from './data-folder.js';
import { ConsoleError } from './errors.js';

interface ConsoleMarker {
  format: 'mydoc-console-data';
  version: 1;
  created: string;
}

export interface ConsoleInitReport {
  dataDir: string;
  caFile: string;
  issuerPublicKey: string;
  issuerKid: string;
  store: string;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

export async function initConsole(config: ConsoleConfig, logger: FastifyBaseLogger): Promise<ConsoleInitReport> {
  const paths = consoleFolder(config.dataDir);
  if (await exists(paths.marker)) throw new ConsoleError('ERR_CONSOLE_INITIALISED', `the console's data folder ${config.dataDir} is already initialised (found ${paths.marker}); refusing to replace its CA and issuer key`);
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  await chmod(config.dataDir, 0o700);
  // The store first: a database that does not answer fails init before any key is made.
  // Imported here, not at the top: the CLI loads this module for every command, the store's clients only for this one.
  const { openConfiguredStore } = await import('./open-store.js');
  const store = await openConfiguredStore(config, logger);
  await store.close();

  const hostNames = config.listen.hostNames.filter((h) => isIP(h) === 0);
  const ipAddresses = config.listen.hostNames.filter((h) => isIP(h) !== 0);
  const tls = await createTlsMaterial({ hostNames, ipAddresses, commonName: 'console' });
  await writeFileAtomic(paths.tls.caFile, tls.caCertPem, 0o600);
  await writeFileAtomic(paths.tls.certFile, tls.certPem, 0o600);
  await writeFileAtomic(paths.tls.keyFile, tls.keyPem, 0o600);
  const issuer = await generateIssuerKeyPair('ES256');
  await writeFileAtomic(paths.issuerPrivateKey, issuer.privatePem, 0o600);
  await writeFileAtomic(paths.issuerPublicKey, issuer.publicPem, 0o600);

  const audit = await openConsoleAudit(config.dataDir, Date.now);
  try {
    await audit.append({ actor: localActor(), action: 'console.init', decision: 'info', reason: `data folder created; issuer key ${issuer.kid}; store ${config.store.kind}` });
  } finally {
    await audit.close();
  }
  const marker: ConsoleMarker = { format: 'mydoc-console-data', version: 1, created: new Date().toISOString() };
  await writeFileAtomic(paths.marker, JSON.stringify(marker, null, 2) + '\n', 0o600);
  return { dataDir: config.dataDir, caFile: paths.tls.caFile, issuerPublicKey: paths.issuerPublicKey, issuerKid: issuer.kid, store: config.store.kind === 'sqlite' ? config.store.file : `postgres ${config.store.host}:${config.store.port}/${config.store.database}` };
}

/** Fails with a clear message unless `mydoc console init` ran for this data folder. */
export async function requireConsoleInitialised(config: ConsoleConfig): Promise<void> {
  let marker: Partial<ConsoleMarker> | undefined;
  try {
    marker = JSON.parse(await readFile(consoleFolder(config.dataDir).marker, 'utf8')) as Partial<ConsoleMarker>;
  } catch {
    marker = undefined;
  }
  if (marker?.format !== 'mydoc-console-data') throw new ConsoleError('ERR_CONSOLE_NOT_INITIALISED', `the console's data folder ${config.dataDir} is not initialised; run "mydoc console init --config FILE" first`);
}
