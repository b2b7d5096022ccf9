/**
 * The service configuration: one YAML file, validated by hand into a frozen, typed `Config`
 * with every default filled in. Unknown keys are errors (they are usually typos), and every
 * error is a `ConfigError` naming the full dotted key. Relative paths are resolved against
 * the folder of the config file. The YAML reading and the typed readers are in
 * yaml-reader.ts; the demo's commented file is in demo-config.ts.
 */
import cron from 'node-cron';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { TargetSpec } from '../../backup/open-target.js';
import { ConfigError } from './errors.js';
import { readHostNames, readListenHost, readPortNumber } from './listen-config.js';
import { LDAP_CONNECTION_KEYS, readLdapConnection, type LdapConnectionConfig } from './ldap-config.js';
import { FILE_KEY, asMapping, deepFreeze, describe, oneOf, ownValue, parseYaml, readNumber, readPath, readSection, readString, readStringList, rejectUnknownKeys, required, type Mapping } from './yaml-reader.js';
import { dataFolder } from '../../shares/data-folder.js';

/** `backup.target`: a folder (`path`, optional `mountPoint`) or an SMB share (`url`, `authFile`). */
export type BackupTargetConfig = Readonly<TargetSpec>;

export interface Config {
  readonly pcId: string;
  readonly dataDir: string;
  readonly listen: {
    readonly host: string;
    readonly port: number;
    /** Extra DNS names / IP addresses for the TLS certificate (127.0.0.1 and localhost are always added). */
    readonly hostNames: readonly string[];
  };
  readonly tls: {
    readonly certFile: string;
    readonly keyFile: string;
    readonly caFile: string;
  };
  readonly directory: {
    readonly kind: 'local' | 'ldap';
    readonly local: {
      readonly usersFile: string;
      readonly insecureSecretFile: string;
    };
    /** Present when kind is "ldap". */
    readonly ldap: LdapConfig | null;
    readonly probe: {
      readonly intervalSeconds: number;
      readonly failuresToLock: number;
      readonly timeoutSeconds: number;
    };
  };
  readonly backup: {
    readonly target: BackupTargetConfig;
    /** node-cron expression (5 or 6 fields) of the scheduled backups, or null when off. */
    readonly schedule: string | null;
    /** IANA time zone the schedule is read in. */
    readonly timezone: string;
    /** Each scheduled run starts up to this many seconds late, at random (spreads a fleet). */
    readonly randomDelaySeconds: number;
    /** The backup at service stop (SIGTERM) stops copying after this many seconds. */
    readonly shutdownDeadlineSeconds: number;
  };
  readonly recovery: {
    /** Path of the recovery public key (PEM, SPKI), or null when no recovery key is configured. */
    readonly publicKey: string | null;
  };
  /** The console this PC keeps its link to, or null (no console: the agent works on its own). */
  readonly console: {
    /** `https://host:port`: the console's link port. */
    readonly url: string;
    /** The console's CA certificate: the only one its certificate may chain to. */
    readonly caFile: string;
    /** The one-time enrolment token of `mydoc console pc add` (sent until the console has accepted it). */
    readonly enrolmentToken: string | undefined;
  } | null;
  readonly takeout: {
    /** The longest take-out period this PC accepts, in days (1 to 90). */
    readonly maxDays: number;
    /** Issuer public key files (written by "mydoc keys issuer"); empty: take-out is off. */
    readonly issuerPublicKeys: readonly string[];
  };
}

/** The agent's `directory.ldap`: the connection (ldap-config.ts), the admins group and where the network secrets live. */
export interface LdapConfig extends LdapConnectionConfig {
  readonly adminsGroupDn: string | null;
  readonly keyDnTemplate: string;
  readonly keyAttribute: string;
  readonly keyObjectClasses: readonly string[];
}

/** A PC id: 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit (the agent's pcId, the console's PC names). */
export const PC_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** Every 4 hours on the hour. */
export const DEFAULT_BACKUP_SCHEDULE = '0 */4 * * *';
const SMB_URL = /^\/\/[^/\\\s]+(?:\/[^/\\\u0000-\u001f]+)+$/;
const DIRECTORY_KINDS = ['local', 'ldap'] as const;
const LDAP_KEYS = [...LDAP_CONNECTION_KEYS, 'adminsGroupDn', 'keyDnTemplate', 'keyAttribute', 'keyObjectClasses'];
const BACKUP_TARGET_KINDS = ['path', 'smb'] as const;
const BACKUP_TARGET_KEYS_BY_KIND = { path: ['path', 'mountPoint'], smb: ['url', 'authFile'] } as const;

/** Reads and validates the config file. A missing file is a ConfigError with key `(file)`. */
export async function loadConfig(file: string): Promise<Config> {
  const absoluteFile = resolve(file);
  let text: string;
  try {
    text = await readFile(absoluteFile, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new ConfigError(FILE_KEY, `${absoluteFile} does not exist; create one with "mydoc init"`);
    }
    throw new ConfigError(FILE_KEY, `cannot read ${absoluteFile} (${code ?? String(error)})`);
  }
  return parseConfig(text, absoluteFile);
}

/** Validates config text; `file` names the file in errors and anchors relative paths. */
export function parseConfig(text: string, file: string): Config {
  const absoluteFile = resolve(file);
  const root = asMapping(parseYaml(text, absoluteFile), FILE_KEY, `${absoluteFile} must contain a YAML mapping of keys`);
  return deepFreeze(readConfig(root, dirname(absoluteFile)));
}

function readConfig(root: Mapping, baseDir: string): Config {
  rejectUnknownKeys(root, '', ['pcId', 'dataDir', 'listen', 'tls', 'directory', 'backup', 'recovery', 'takeout', 'console']);
  const pcId = readPcId(root);
  const dataDir = required(readPath(root, '', 'dataDir', baseDir), 'dataDir');
  return {
    pcId,
    dataDir,
    listen: readListen(root),
    tls: readTls(root, baseDir, dataDir),
    directory: readDirectory(root, baseDir, dataDir),
    backup: readBackup(root, baseDir),
    recovery: readRecovery(root, baseDir),
    takeout: readTakeout(root, baseDir),
    console: readConsole(root, baseDir),
  };
}

function readPcId(root: Mapping): string {
  const pcId = required(readString(root, '', 'pcId'), 'pcId');
  if (!PC_ID.test(pcId)) {
    throw new ConfigError(
      'pcId',
      `must be 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit (got ${describe(pcId)})`,
    );
  }
  return pcId;
}

function readListen(root: Mapping): Config['listen'] {
  const listen = readSection(root, '', 'listen', ['host', 'port', 'hostNames']);
  return { host: readListenHost(listen, 'listen'), port: readPortNumber(listen, 'listen', 'port', 8443), hostNames: readHostNames(listen, 'listen') };
}

function readTls(root: Mapping, baseDir: string, dataDir: string): Config['tls'] {
  const tls = readSection(root, '', 'tls', ['certFile', 'keyFile', 'caFile']);
  return {
    certFile: readPath(tls, 'tls', 'certFile', baseDir) ?? dataFolder(dataDir).tls.certFile,
    keyFile: readPath(tls, 'tls', 'keyFile', baseDir) ?? dataFolder(dataDir).tls.keyFile,
    caFile: readPath(tls, 'tls', 'caFile', baseDir) ?? dataFolder(dataDir).tls.caFile,
  };
}

function readDirectory(root: Mapping, baseDir: string, dataDir: string): Config['directory'] {
  const directory = readSection(root, '', 'directory', ['kind', 'local', 'ldap', 'probe']);
  const kindText = required(readString(directory, 'directory', 'kind'), 'directory.kind');
  const kind = oneOf(kindText, DIRECTORY_KINDS, 'directory.kind');
  const local = readSection(directory, 'directory', 'local', ['usersFile', 'insecureSecretFile']);
  const ldap = readSection(directory, 'directory', 'ldap', LDAP_KEYS);
  if (kind === 'ldap' && Object.keys(ldap).length === 0) throw new ConfigError('directory.ldap', 'is required when directory.kind is "ldap"');
  if (kind !== 'ldap' && Object.keys(ldap).length > 0) throw new ConfigError('directory.ldap', 'is only allowed when directory.kind is "ldap"');
  const probe = readSection(directory, 'directory', 'probe', ['intervalSeconds', 'failuresToLock', 'timeoutSeconds']);
  return {
    kind,
    local: {
      usersFile: readPath(local, 'directory.local', 'usersFile', baseDir) ?? dataFolder(dataDir).localDirectory.usersFile,
      insecureSecretFile: readPath(local, 'directory.local', 'insecureSecretFile', baseDir) ?? dataFolder(dataDir).localDirectory.insecureSecretFile,
    },
    ldap: kind === 'ldap' ? readLdap(ldap, baseDir) : null,
    probe: {
      intervalSeconds: readNumber(probe, 'directory.probe', 'intervalSeconds', 0.1, 3600) ?? 5,
      failuresToLock: readNumber(probe, 'directory.probe', 'failuresToLock', 1, 100, true) ?? 2,
      timeoutSeconds: readNumber(probe, 'directory.probe', 'timeoutSeconds', 0.1, 60) ?? 2,
    },
  };
}

function readLdap(ldap: Mapping, baseDir: string): LdapConfig {
  const key = 'directory.ldap';
  const connection = readLdapConnection(ldap, key, baseDir);
  const keyDnTemplate = required(readString(ldap, key, 'keyDnTemplate'), `${key}.keyDnTemplate`);
  if (!keyDnTemplate.includes('{user}') || !keyDnTemplate.includes('{pcId}')) {
    throw new ConfigError(`${key}.keyDnTemplate`, `must contain {user} and {pcId} (got ${describe(keyDnTemplate)})`);
  }
  return {
    ...connection,
    adminsGroupDn: readString(ldap, key, 'adminsGroupDn') ?? null,
    keyDnTemplate,
    keyAttribute: required(readString(ldap, key, 'keyAttribute'), `${key}.keyAttribute`),
    keyObjectClasses: readStringList(ldap, key, 'keyObjectClasses') ?? ['mydocPcUserKey'],
  };
}

function readBackup(root: Mapping, baseDir: string): Config['backup'] {
  const backup = readSection(root, '', 'backup', ['target', 'schedule', 'timezone', 'randomDelaySeconds', 'shutdownDeadlineSeconds']);
  const scheduleText = readString(backup, 'backup', 'schedule') ?? DEFAULT_BACKUP_SCHEDULE;
  if (scheduleText !== 'off' && !cron.validate(scheduleText)) {
    throw new ConfigError('backup.schedule', `must be a cron expression such as "0 */4 * * *" (minute hour day month weekday), or "off" (got ${describe(scheduleText)})`);
  }
  const timezone = readString(backup, 'backup', 'timezone') ?? 'UTC';
  try {
    new Intl.DateTimeFormat('en', { timeZone: timezone });
  } catch {
    throw new ConfigError('backup.timezone', `must be an IANA time zone such as "Europe/Berlin" or "UTC" (got ${describe(timezone)})`);
  }
  return {
    target: readBackupTarget(backup, 'backup', baseDir),
    schedule: scheduleText === 'off' ? null : scheduleText,
    timezone,
    randomDelaySeconds: readNumber(backup, 'backup', 'randomDelaySeconds', 0, 86400, true) ?? 600,
    shutdownDeadlineSeconds: readNumber(backup, 'backup', 'shutdownDeadlineSeconds', 1, 3600, true) ?? 60,
  };
}

/** `<parentKey>.target`: a backup target (the agent's backup.target, the console's recovery.target). */
export function readBackupTarget(parent: Mapping, parentKey: string, baseDir: string): BackupTargetConfig {
  const key = `${parentKey}.target`;
  const target = readSection(parent, parentKey, 'target', ['kind', 'path', 'mountPoint', 'url', 'authFile']);
  const kindText = required(readString(target, key, 'kind'), `${key}.kind`);
  const kind = oneOf(kindText, BACKUP_TARGET_KINDS, `${key}.kind`);
  rejectKeysOfOtherKinds(target, kind, key);
  if (kind === 'path') {
    const path = required(readPath(target, key, 'path', baseDir), `${key}.path`);
    const mountPoint = readPath(target, key, 'mountPoint', baseDir);
    if (mountPoint === undefined) return { kind, path };
    if (path !== mountPoint && !path.startsWith(mountPoint.endsWith('/') ? mountPoint : `${mountPoint}/`)) {
      throw new ConfigError(`${key}.mountPoint`, `must be ${key}.path or a folder above it (got ${describe(mountPoint)} for the path ${describe(path)})`);
    }
    return { kind, path, mountPoint };
  }
  const url = required(readString(target, key, 'url'), `${key}.url`);
  if (!SMB_URL.test(url)) {
    throw new ConfigError(`${key}.url`, `must look like //host/share or //host/share/folder (got ${describe(url)})`);
  }
  const authFile = required(readPath(target, key, 'authFile', baseDir), `${key}.authFile`);
  return { kind, url, authFile };
}

function rejectKeysOfOtherKinds(target: Mapping, kind: keyof typeof BACKUP_TARGET_KEYS_BY_KIND, key: string): void {
  for (const [otherKind, keys] of Object.entries(BACKUP_TARGET_KEYS_BY_KIND)) {
    if (otherKind === kind) continue;
    const present = keys.find((k) => Object.hasOwn(target, k));
    if (present !== undefined) {
      throw new ConfigError(`${key}.${present}`, `only allowed when ${key}.kind is "${otherKind}"`);
    }
  }
}

function readRecovery(root: Mapping, baseDir: string): Config['recovery'] {
  const recovery = readSection(root, '', 'recovery', ['publicKey']);
  return { publicKey: readPath(recovery, 'recovery', 'publicKey', baseDir) ?? null };
}

function readConsole(root: Mapping, baseDir: string): Config['console'] {
  if (ownValue(root, 'console') === undefined) return null;
  const section = readSection(root, '', 'console', ['url', 'caFile', 'enrolmentToken']);
  const url = required(readString(section, 'console', 'url'), 'console.url');
  if (!isConsoleUrl(url)) throw new ConfigError('console.url', `must be https://host:port, the console's link port (got ${describe(url)})`);
  const token = readString(section, 'console', 'enrolmentToken');
  if (token !== undefined && !/^[\x21-\x7e]{16,256}$/.test(token)) throw new ConfigError('console.enrolmentToken', 'must be the token "mydoc console pc add" printed (16 to 256 visible characters)');
  return { url: url.replace(/\/$/, ''), caFile: required(readPath(section, 'console', 'caFile', baseDir), 'console.caFile'), enrolmentToken: token };
}

function isConsoleUrl(text: string): boolean {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return false;
  }
  return url.protocol === 'https:' && url.port !== '' && url.username === '' && url.password === '' && url.pathname === '/' && url.search === '' && url.hash === '' && /^https:\/\/[^/]+\/?$/.test(text);
}

function readTakeout(root: Mapping, baseDir: string): Config['takeout'] {
  const takeout = readSection(root, '', 'takeout', ['maxDays', 'issuerPublicKeys']);
  const files = readStringList(takeout, 'takeout', 'issuerPublicKeys') ?? [];
  return {
    maxDays: readNumber(takeout, 'takeout', 'maxDays', 1, 90, true) ?? 14,
    issuerPublicKeys: files.map((file, i) => {
      if (file.includes('\0')) throw new ConfigError(`takeout.issuerPublicKeys.${i}`, 'must be a path without NUL characters');
      return resolve(baseDir, file);
    }),
  };
}
