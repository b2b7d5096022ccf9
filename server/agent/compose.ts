/**
 * Builds the agent from its configuration, without listening: the directory,
 * the audit log, the sessions, the take-out keys, the gate, the reachability
 * monitor, the backup service and the fastify app that serves them. The gate
 * follows the reachability monitor, and every successful probe round is an
 * online check (slot T destroyed for keys used offline, revoked or expired).
 * `serve.ts` starts it; tests build it the same way.
 */
import { readFile } from 'node:fs/promises';
import type { KeyObject } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { openTarget } from '../../backup/open-target.js';
import { loadPrivateKey, loadPublicKey } from '../../crypto/key-files.js';
import { AuditLog } from '../../policy/audit/log.js';
import type { Directory } from '../../policy/directory/directory.js';
import { Gate } from '../../policy/gate.js';
import { ReachabilityMonitor } from '../../policy/reachability.js';
import { Sessions } from '../../policy/sessions.js';
import { Takeout } from '../../policy/takeout/agent/takeout.js';
import { recipientKeyId } from '../../policy/takeout/envelope.js';
import { loadIssuerPublicKey, type IssuerPublicKey } from '../../policy/takeout/issuer-keys.js';
import { systemClock, type Clock } from '../../shares/clock.js';
import { dataFolder } from '../../shares/data-folder.js';
import { enrolUser } from '../../shares/vault/user-vaults.js';
import { freeBytes } from '../../shares/vault/space-reserve.js';
import type { Config } from '../config/config.js';
import type { PcStatus } from '../link/status.js';
import { recoveryPublicKeyFile, requireInitialised } from '../config/data-dir.js';
import { buildDirectory } from '../config/directory.js';
import { ConfigError, ConfiguredFileError } from '../config/errors.js';
import { buildApp, MAX_FILE_BYTES, MAX_XML_BYTES } from './app.js';
import { ConsoleKeyPin } from './console-key.js';
import { LinkDav } from './link-dav.js';
import { VerifiedShareRules } from '../../policy/grants/rule-set.js';
import { SessionLocks } from './session-locks.js';
import { BackupService, backupSource, readBackupState } from './backup-service.js';
import { pickLogOptions, type LogOptions } from '../http/log-options.js';

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

export interface AgentOptions extends LogOptions {
  config: Config;
  version: string;
  /** The clock of every part that keeps time (default the system clock). */
  clock?: Clock;
  /** The directory to use instead of the configured one (tests). */
  directory?: Directory;
}

/**
 * The assembled agent: nothing listens and no backup is scheduled until
 * `serve.ts` starts it (the audit log is open and take-out's expiry timer,
 * unref'd, is armed); `serve.ts` also closes what is opened here.
 */
export interface Agent {
  app: FastifyInstance;
  directory: Directory;
  audit: AuditLog;
  sessions: Sessions;
  /** The WebDAV lock tables of the open sessions. */
  locks: SessionLocks;
  takeout: Takeout;
  gate: Gate;
  /** Probes the directory's servers and drives the gate; not started. */
  monitor: ReachabilityMonitor;
  backups: BackupService;
  /** Slot T destroyed for keys used offline, revoked or expired; never throws (errors are logged by code). */
  onlineCheck: () => void;
  /** The clock every part keeps time by. */
  clock: Clock;
  /** The device key pair (the link to the console presents it). */
  device: { key: KeyObject; publicPem: string };
  /** What this PC reports to its console: gate, take-out end, users, last complete backup, version. */
  status: () => Promise<PcStatus>;
  /** The console's side of the data: its pinned key, the share rules in force, the /link/dav server. */
  link: { consoleKey: ConsoleKeyPin; rules: VerifiedShareRules; dav: LinkDav };
}

export async function composeAgent(opts: AgentOptions): Promise<Agent> {
  const { config } = opts;
  const now = opts.clock ?? systemClock;
  await requireInitialised(config);
  const [key, cert] = await Promise.all([readFile(config.tls.keyFile, 'utf8'), readFile(config.tls.certFile, 'utf8')]).catch((err: Error) => {
    throw new ConfiguredFileError(`cannot read the TLS key or certificate: ${err.message}`);
  });
  const directory = opts.directory ?? (await buildDirectory(config));
  const paths = dataFolder(config.dataDir);
  const audit = await AuditLog.open(paths.auditLog, { now });
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
  const locks = new SessionLocks(now);
  const deviceKey = await loadPrivateKey(paths.deviceKey, 'device key');
  const devicePublicPem = await readFile(paths.devicePublic, 'utf8');
  const takeout = await Takeout.open({ dataDir: config.dataDir, pcId: config.pcId, maxDays: config.takeout.maxDays, issuers: await loadIssuers(config), deviceKey, sessions, audit, now });
  const gate = new Gate(sessions, directory.servers.length === 0, takeout);
  const onlineCheck = () => void takeout.onlineCheck().catch((err: { code?: string }) => app.log.error({ code: err.code }, 'take-out online check failed'));
  const monitor = new ReachabilityMonitor({
    servers: directory.servers,
    probe: (server, signal) => directory.probe(server, signal),
    intervalMs: config.directory.probe.intervalSeconds * 1000,
    timeoutMs: config.directory.probe.timeoutSeconds * 1000,
    failuresToLock: config.directory.probe.failuresToLock,
    now,
    onRenew: () => onlineCheck(),
    onChange: (reachable) => {
      void gate.setReachable(reachable);
      void audit.append({ actor: 'system', action: reachable ? 'gate.unlock' : 'gate.lock', decision: 'info', reason: reachable ? 'the company directory answers' : 'the company directory is unreachable' });
    },
  });
  // What is really free now (read at most once a second): the reserves are taken already.
  let free = { bytes: freeBytes(config.dataDir), at: now() };
  const quotaBytes = () => {
    if (now() - free.at >= 1000) free = { bytes: freeBytes(config.dataDir), at: now() };
    return free.bytes;
  };
  const deviceKeyId = await recipientKeyId(deviceKey);
  const app = await buildApp({
    tls: { key, cert },
    directory,
    sessions,
    locks,
    gate,
    audit,
    takeout,
    takeoutMaxDays: config.takeout.maxDays,
    pcId: config.pcId,
    devicePublicPem,
    deviceKeyId,
    version: opts.version,
    quotaBytes,
    lastCompleteBackup: async () => (await readBackupState(config.dataDir))?.lastComplete,
    clock: now,
    ...pickLogOptions(opts),
  });
  gate.onLock(() => app.log.warn('locked: the company directory is unreachable; keys dropped from memory'));
  const backups = new BackupService(backupSource(config), config.backup, app.log, (timeoutSeconds) => openTarget(config.backup.target, timeoutSeconds), now);
  const status = async (): Promise<PcStatus> => {
    const open = (await sessions.all()).map((s) => s.user);
    return {
      gate: gate.state(),
      takeoutUntil: takeout.validUntil(),
      users: [...new Set([...open, ...takeout.users()])].sort(),
      lastBackupAt: (await readBackupState(config.dataDir))?.lastComplete ?? null,
      agentVersion: opts.version,
    };
  };
  // What comes down the console link: grants and share rules are checked against the key pinned from its first welcome.
  const consoleKey = await ConsoleKeyPin.load(config.dataDir);
  const rules = new VerifiedShareRules(config.pcId, () => consoleKey.current(), now);
  const dav = new LinkDav({
    pcId: config.pcId,
    dataDir: config.dataDir,
    consoleKey,
    rules,
    sessions,
    locks,
    gate,
    audit,
    limits: { maxFileBytes: MAX_FILE_BYTES, maxXmlBytes: MAX_XML_BYTES, quotaBytes },
    clock: now,
    logger: app.log.child({ part: 'link-dav' }),
  });
  return { app, directory, audit, sessions, locks, takeout, gate, monitor, backups, onlineCheck, clock: now, device: { key: deviceKey, publicPem: devicePublicPem }, status, link: { consoleKey, rules, dav } };
}
