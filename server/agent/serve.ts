/**
 * `mydoc serve`: runs the share for this PC until SIGTERM/SIGINT, then drops
 * every key from memory and stops. Wires the gate to the reachability
 * monitor and to the take-out keys: every successful probe round is an
 * online check (slot T destroyed for keys used offline, revoked or expired).
 */
import { openTarget } from '../../backup/open-target.js';
import { BackupService, backupSource, readBackupState } from './backup-service.js';
import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { Gate } from '../../policy/gate.js';
import { ReachabilityMonitor } from '../../policy/reachability.js';
import { Sessions } from '../../policy/sessions.js';
import { buildDirectory } from '../config/directory.js';
import { startAdminSocket } from './admin-socket.js';
import { buildApp } from './app.js';
import type { Config } from '../config/config.js';
import { dataPaths, recoveryPublicKeyFile, requireInitialised } from '../config/data-dir.js';
import { loadPrivateKey, loadPublicKey } from '../../crypto/key-files.js';
import { Takeout } from '../../policy/takeout/agent.js';
import { loadIssuerPublicKey, type IssuerPublicKey } from '../../policy/takeout/issuer-keys.js';
import { recipientKeyId } from '../../policy/takeout/envelope.js';
import { ConfigError, ConfiguredFileError } from '../config/errors.js';
import { AuditLog, auditLogPath } from '../../policy/audit/log.js';
import { enrolUser } from '../../shares/vault/user-vaults.js';
import { freeBytes } from '../../shares/vault/space-reserve.js';
import { AgentError } from './errors.js';

/** The trusted issuer public keys of `takeout.issuerPublicKeys`, by kid; errors name the config key. */
export async function loadIssuers(config: Config): Promise<Map<string, IssuerPublicKey>> {
  const issuers = new Map<string, IssuerPublicKey>();
  for (const [i, file] of config.takeout.issuerPublicKeys.entries()) {
    const key = await loadIssuerPublicKey(file, `config: takeout.issuerPublicKeys.${i}`);
    if (issuers.has(key.kid)) throw new ConfigError(`takeout.issuerPublicKeys.${i}`, `${file} is the same issuer key as an earlier entry`);
    issuers.set(key.kid, key);
  }
  return issuers;
}

export interface Service {
  app: FastifyInstance;
  /** `https://host:port/` */
  url: string;
  backups: BackupService;
}

export interface ServiceOptions {
  logLevel?: string;
  /** Called after the app is assembled and before it listens (benchmarks add baseline routes here). */
  beforeListen?: (app: FastifyInstance) => void;
  /** `mydoc stop` asked the service to stop (after its shutdown backup). */
  onStopRequest?: () => void;
}

/** Assembles the whole service for a configuration and listens; `app.close()` stops it and drops every key. */
export async function startService(config: Config, version: string, opts: ServiceOptions = {}): Promise<Service> {
  await requireInitialised(config);
  const [key, cert] = await Promise.all([readFile(config.tls.keyFile, 'utf8'), readFile(config.tls.certFile, 'utf8')]).catch((err: Error) => {
    throw new ConfiguredFileError(`cannot read the TLS key or certificate: ${err.message}`);
  });
  const directory = await buildDirectory(config);
  const audit = await AuditLog.open(auditLogPath(config.dataDir));
  const recoveryPublicKey = await loadPublicKey(recoveryPublicKeyFile(config), 'recovery public key');
  // A company directory enrols a user at their first online login; the local directory enrols at "mydoc user add".
  const enrol =
    directory.kind === 'ldap'
      ? async (user: string) => {
          await enrolUser({ dataDir: config.dataDir, pcId: config.pcId, user, source: directory.secrets, recoveryPublicKey });
          await audit.append({ actor: user, action: 'user.enrol', decision: 'info', reason: 'first online login' });
        }
      : undefined;
  const sessions = new Sessions(config.dataDir, config.pcId, directory, enrol);
  const paths = dataPaths(config.dataDir);
  const deviceKey = await loadPrivateKey(paths.deviceKey, 'device key');
  const devicePublicPem = await readFile(paths.devicePublic, 'utf8');
  const takeout = await Takeout.open({ dataDir: config.dataDir, pcId: config.pcId, maxDays: config.takeout.maxDays, issuers: await loadIssuers(config), deviceKey, sessions, audit });
  const gate = new Gate(sessions, directory.servers.length === 0, takeout);
  /** Slot T destroyed for keys used offline, revoked or expired; never throws (errors are logged by code). */
  const onlineCheck = () => void takeout.onlineCheck().catch((err: { code?: string }) => app.log.error({ code: err.code }, 'take-out online check failed'));
  const monitor = new ReachabilityMonitor({
    servers: directory.servers,
    probe: (server, signal) => directory.probe(server, signal),
    intervalMs: config.directory.probe.intervalSeconds * 1000,
    timeoutMs: config.directory.probe.timeoutSeconds * 1000,
    failuresToLock: config.directory.probe.failuresToLock,
    onRenew: () => onlineCheck(),
    onChange: (reachable) => {
      void gate.setReachable(reachable);
      void audit.append({ actor: 'system', action: reachable ? 'gate.unlock' : 'gate.lock', decision: 'info', reason: reachable ? 'the company directory answers' : 'the company directory is unreachable' });
    },
  });
  // What is really free now (read at most once a second): the reserves are taken already.
  let free = { bytes: freeBytes(config.dataDir), at: Date.now() };
  const quotaBytes = () => {
    if (Date.now() - free.at >= 1000) free = { bytes: freeBytes(config.dataDir), at: Date.now() };
    return free.bytes;
  };
  const deviceKeyId = await recipientKeyId(deviceKey);
  const app = await buildApp({ tls: { key, cert }, directory, sessions, gate, audit, takeout, pcId: config.pcId, devicePublicPem, deviceKeyId, version, quotaBytes, lastCompleteBackup: async () => (await readBackupState(config.dataDir))?.lastComplete, ...(opts.logLevel ? { logLevel: opts.logLevel } : {}) });
  gate.onLock(() => app.log.warn('locked: the company directory is unreachable; keys dropped from memory'));
  await audit.append({ actor: 'system', action: 'service.start', decision: 'info', reason: `directory ${directory.kind}` });
  if (directory.servers.length > 0) await monitor.start();
  // A directory without servers (the local one) is always reachable: every probe interval is an online check.
  const onlineCheckTimer = directory.servers.length === 0 ? setInterval(onlineCheck, config.directory.probe.intervalSeconds * 1000) : undefined;
  onlineCheckTimer?.unref();
  const backups = new BackupService(backupSource(config), config.backup, app.log, (timeoutSeconds) => openTarget(config.backup.target, timeoutSeconds));
  const admin = await startAdminSocket(config.dataDir, sessions, backups, audit, () => opts.onStopRequest?.());
  app.addHook('onClose', async () => {
    await backups.stopSchedule();
    monitor.stop();
    clearInterval(onlineCheckTimer);
    takeout.close();
    await new Promise((resolve) => admin.close(resolve));
    await sessions.lockAll();
    await audit.append({ actor: 'system', action: 'service.stop', decision: 'info' });
    await audit.close();
  });
  if (directory.kind === 'local') app.log.warn('directory "local": network secrets are in a local file (INSECURE, demo and tests only)');
  if (config.directory.ldap?.insecureSkipVerify) app.log.warn('directory.ldap.insecureSkipVerify is set: the directory\'s TLS certificate is NOT verified (INSECURE)');
  opts.beforeListen?.(app);
  try {
    await app.listen({ host: config.listen.host, port: config.listen.port });
  } catch (err) {
    await app.close();
    throw new AgentError('ERR_LISTEN', `cannot listen on ${config.listen.host}:${config.listen.port}: ${(err as Error).message}`);
  }
  await backups.startSchedule();
  const url = `https://${config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host}:${config.listen.port}/`;
  return { app, url, backups };
}

/**
 * `mydoc serve`: the service until `mydoc stop` (after its shutdown backup),
 * or SIGTERM/SIGINT (a shutdown backup first; a second signal stops at once).
 */
export async function serve(config: Config, version: string, out: (t: string) => void, opts: { logLevel?: string } = {}): Promise<void> {
  let close: () => void = () => undefined;
  const { app, url, backups } = await startService(config, version, { onStopRequest: () => close(), ...(opts.logLevel ? { logLevel: opts.logLevel } : {}) });
  const stopped = new Promise<void>((resolve) => {
    let closing = false;
    close = () => {
      if (closing) return;
      closing = true;
      app.log.info('stopping: closing connections and dropping keys');
      void app.close().then(resolve, resolve);
    };
    let backingUp = false;
    const onSignal = () => {
      if (closing) return; // closing already (e.g. after "mydoc stop", systemd's SIGTERM follows)
      if (backingUp) {
        // A second signal during the shutdown backup: stop at once. A partial
        // backup loses nothing, and leaving the process drops every key.
        app.log.warn('second stop signal: exiting now, without finishing the backup');
        process.exit(1);
      }
      backingUp = true;
      app.log.info(`stopping: backing up first (at most ${config.backup.shutdownDeadlineSeconds} s)`);
      void backups.runAtShutdown().catch(() => undefined).finally(close); // the outcome is logged by the backup service
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  out(`mydoc: serving ${url}\n`);
  out(`Map the drive in the Windows guest (after trusting ${config.tls.caFile}):\n  net use Z: ${url} /persistent:yes /user:USERNAME *\n`);
  await stopped;
}
