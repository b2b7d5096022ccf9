/**
 * The service configuration: one YAML file, validated by hand into a frozen, typed `Config`
 * with every default filled in. Unknown keys are errors (they are usually typos), and every
 * error is a `ConfigError` naming the full dotted key. Relative paths are resolved against
 * the folder of the config file.
 */
import cron from 'node-cron';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument, type YAMLError } from 'yaml';
import type { TargetSpec } from '../../backup/open-target.js';
import { ConfigError } from './errors.js';
import { isDnsName } from '../http/tls.js';
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
  readonly takeout: {
    /** The longest take-out period this PC accepts, in days (1 to 90). */
    readonly maxDays: number;
    /** Issuer public key files (written by "mydoc keys issuer"); empty: take-out is off. */
    readonly issuerPublicKeys: readonly string[];
  };
}

export interface LdapConfig {
  readonly urls: readonly string[];
  readonly flavor: 'ad' | 'openldap';
  readonly baseDn: string;
  readonly userBaseDn: string;
  readonly serviceDn: string;
  readonly servicePasswordFile: string;
  readonly caFile: string | null;
  readonly tlsServerName: string | null;
  readonly insecureSkipVerify: boolean;
  readonly adminsGroupDn: string | null;
  readonly keyDnTemplate: string;
  readonly keyAttribute: string;
  readonly keyObjectClasses: readonly string[];
  readonly timeoutSeconds: number;
}

type Mapping = Record<string, unknown>;

const FILE_KEY = '(file)';
const PC_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** Every 4 hours on the hour. */
export const DEFAULT_BACKUP_SCHEDULE = '0 */4 * * *';
const SMB_URL = /^\/\/[^/\\\s]+(?:\/[^/\\\u0000-\u001f]+)+$/;
const DIRECTORY_KINDS = ['local', 'ldap'] as const;
const LDAP_FLAVORS = ['ad', 'openldap'] as const;
const LDAP_KEYS = ['urls', 'flavor', 'baseDn', 'userBaseDn', 'serviceDn', 'servicePasswordFile', 'caFile', 'tlsServerName', 'insecureSkipVerify', 'adminsGroupDn', 'keyDnTemplate', 'keyAttribute', 'keyObjectClasses', 'timeoutSeconds'];
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

function parseYaml(text: string, file: string): unknown {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { uniqueKeys: true, prettyErrors: false, lineCounter });
  // Warnings (e.g. an unknown !tag) are errors too: a config file must mean exactly what it says.
  const problem: YAMLError | undefined = document.errors[0] ?? document.warnings[0];
  if (problem !== undefined) {
    const { line, col } = lineCounter.linePos(problem.pos[0]);
    throw new ConfigError(FILE_KEY, `${file} line ${line}, column ${col}: ${problem.message}`);
  }
  return document.toJS();
}

function readConfig(root: Mapping, baseDir: string): Config {
  rejectUnknownKeys(root, '', ['pcId', 'dataDir', 'listen', 'tls', 'directory', 'backup', 'recovery', 'takeout']);
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
  const host = readString(listen, 'listen', 'host') ?? '127.0.0.1';
  if (!isHostName(host)) {
    throw new ConfigError('listen.host', `must be an IP address or a DNS host name (got ${describe(host)})`);
  }
  return { host, port: readPort(listen), hostNames: readHostNames(listen) };
}

function readPort(listen: Mapping): number {
  const port = ownValue(listen, 'port');
  if (port === undefined) return 8443;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ConfigError('listen.port', `must be an integer from 1 to 65535 (got ${describe(port)})`);
  }
  return port;
}

function readHostNames(listen: Mapping): string[] {
  const value = ownValue(listen, 'hostNames');
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    throw new ConfigError('listen.hostNames', `must be a list of DNS names or IP addresses (got ${describe(value)})`);
  }
  return value.map((item: unknown, index) => {
    if (typeof item !== 'string' || !isHostName(item)) {
      throw new ConfigError(
        `listen.hostNames.${index}`,
        `must be a DNS host name or an IP address (got ${describe(item)})`,
      );
    }
    return item;
  });
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
  const urls = readStringList(ldap, key, 'urls');
  if (urls === undefined || urls.length === 0) throw new ConfigError(`${key}.urls`, 'is required: a list of ldaps:// or ldap:// URLs, tried in order');
  urls.forEach((url, i) => {
    if (!/^ldaps?:\/\/[^/\s]+\/?$/i.test(url)) throw new ConfigError(`${key}.urls.${i}`, `must be ldaps://host[:port] or ldap://host[:port] (got ${describe(url)})`);
  });
  const baseDn = required(readString(ldap, key, 'baseDn'), `${key}.baseDn`);
  const insecureSkipVerify = readBoolean(ldap, key, 'insecureSkipVerify') ?? false;
  const caFile = readPath(ldap, key, 'caFile', baseDir) ?? null;
  if (!caFile && !insecureSkipVerify) throw new ConfigError(`${key}.caFile`, 'is required to verify the directory\'s certificate (or set insecureSkipVerify: true, which is logged loudly)');
  const keyDnTemplate = required(readString(ldap, key, 'keyDnTemplate'), `${key}.keyDnTemplate`);
  if (!keyDnTemplate.includes('{user}') || !keyDnTemplate.includes('{pcId}')) {
    throw new ConfigError(`${key}.keyDnTemplate`, `must contain {user} and {pcId} (got ${describe(keyDnTemplate)})`);
  }
  return {
    urls,
    flavor: oneOf(required(readString(ldap, key, 'flavor'), `${key}.flavor`), LDAP_FLAVORS, `${key}.flavor`),
    baseDn,
    userBaseDn: readString(ldap, key, 'userBaseDn') ?? baseDn,
    serviceDn: required(readString(ldap, key, 'serviceDn'), `${key}.serviceDn`),
    servicePasswordFile: required(readPath(ldap, key, 'servicePasswordFile', baseDir), `${key}.servicePasswordFile`),
    caFile,
    tlsServerName: readString(ldap, key, 'tlsServerName') ?? null,
    insecureSkipVerify,
    adminsGroupDn: readString(ldap, key, 'adminsGroupDn') ?? null,
    keyDnTemplate,
    keyAttribute: required(readString(ldap, key, 'keyAttribute'), `${key}.keyAttribute`),
    keyObjectClasses: readStringList(ldap, key, 'keyObjectClasses') ?? ['mydocPcUserKey'],
    timeoutSeconds: readNumber(ldap, key, 'timeoutSeconds', 0.1, 60) ?? 3,
  };
}

function readNumber(map: Mapping, parentKey: string, name: string, min: number, max: number, integer = false): number | undefined {
  const value = ownValue(map, name);
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new ConfigError(dotted(parentKey, name), `must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max} (got ${describe(value)})`);
  }
  return value;
}

function readBoolean(map: Mapping, parentKey: string, name: string): boolean | undefined {
  const value = ownValue(map, name);
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw new ConfigError(dotted(parentKey, name), `must be true or false (got ${describe(value)})`);
  return value;
}

function readStringList(map: Mapping, parentKey: string, name: string): string[] | undefined {
  const value = ownValue(map, name);
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw new ConfigError(dotted(parentKey, name), `must be a list (got ${describe(value)})`);
  return value.map((item, i) => {
    if (typeof item !== 'string' || item === '') throw new ConfigError(`${dotted(parentKey, name)}.${i}`, `must be a non-empty string (got ${describe(item)})`);
    return item;
  });
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
    target: readBackupTarget(backup, baseDir),
    schedule: scheduleText === 'off' ? null : scheduleText,
    timezone,
    randomDelaySeconds: readNumber(backup, 'backup', 'randomDelaySeconds', 0, 86400, true) ?? 600,
    shutdownDeadlineSeconds: readNumber(backup, 'backup', 'shutdownDeadlineSeconds', 1, 3600, true) ?? 60,
  };
}

function readBackupTarget(backup: Mapping, baseDir: string): BackupTargetConfig {
  const target = readSection(backup, 'backup', 'target', ['kind', 'path', 'mountPoint', 'url', 'authFile']);
  const kindText = required(readString(target, 'backup.target', 'kind'), 'backup.target.kind');
  const kind = oneOf(kindText, BACKUP_TARGET_KINDS, 'backup.target.kind');
  rejectKeysOfOtherKinds(target, kind);
  if (kind === 'path') {
    const path = required(readPath(target, 'backup.target', 'path', baseDir), 'backup.target.path');
    const mountPoint = readPath(target, 'backup.target', 'mountPoint', baseDir);
    if (mountPoint === undefined) return { kind, path };
    if (path !== mountPoint && !path.startsWith(mountPoint.endsWith('/') ? mountPoint : `${mountPoint}/`)) {
      throw new ConfigError('backup.target.mountPoint', `must be backup.target.path or a folder above it (got ${describe(mountPoint)} for the path ${describe(path)})`);
    }
    return { kind, path, mountPoint };
  }
  const url = required(readString(target, 'backup.target', 'url'), 'backup.target.url');
  if (!SMB_URL.test(url)) {
    throw new ConfigError('backup.target.url', `must look like //host/share or //host/share/folder (got ${describe(url)})`);
  }
  const authFile = required(readPath(target, 'backup.target', 'authFile', baseDir), 'backup.target.authFile');
  return { kind, url, authFile };
}

function rejectKeysOfOtherKinds(target: Mapping, kind: keyof typeof BACKUP_TARGET_KEYS_BY_KIND): void {
  for (const [otherKind, keys] of Object.entries(BACKUP_TARGET_KEYS_BY_KIND)) {
    if (otherKind === kind) continue;
    const present = keys.find((key) => Object.hasOwn(target, key));
    if (present !== undefined) {
      throw new ConfigError(`backup.target.${present}`, `only allowed when backup.target.kind is "${otherKind}"`);
    }
  }
}

function readRecovery(root: Mapping, baseDir: string): Config['recovery'] {
  const recovery = readSection(root, '', 'recovery', ['publicKey']);
  return { publicKey: readPath(recovery, 'recovery', 'publicKey', baseDir) ?? null };
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

// ---- generic readers -------------------------------------------------------------------

function dotted(parentKey: string, name: string): string {
  return parentKey === '' ? name : `${parentKey}.${name}`;
}

function ownValue(map: Mapping, name: string): unknown {
  return Object.hasOwn(map, name) ? map[name] : undefined;
}

function asMapping(value: unknown, key: string, problem: string): Mapping {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(key, `${problem} (got ${describe(value)})`);
  }
  return value as Mapping;
}

function rejectUnknownKeys(map: Mapping, parentKey: string, allowed: readonly string[]): void {
  const unknown = Object.keys(map).find((name) => !allowed.includes(name));
  if (unknown !== undefined) {
    throw new ConfigError(dotted(parentKey, unknown), `unknown key (allowed here: ${allowed.join(', ')})`);
  }
}

/** A nested mapping with only `allowed` keys; an absent section reads as empty. */
function readSection(parent: Mapping, parentKey: string, name: string, allowed: readonly string[]): Mapping {
  const key = dotted(parentKey, name);
  const value = ownValue(parent, name);
  if (value === undefined) return {};
  const section = asMapping(value, key, 'must be a mapping of keys');
  rejectUnknownKeys(section, key, allowed);
  return section;
}

function readString(map: Mapping, parentKey: string, name: string): string | undefined {
  const value = ownValue(map, name);
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') {
    throw new ConfigError(dotted(parentKey, name), `must be a non-empty string (got ${describe(value)})`);
  }
  return value;
}

/** A path string, resolved against `baseDir` when relative. */
function readPath(map: Mapping, parentKey: string, name: string, baseDir: string): string | undefined {
  const value = readString(map, parentKey, name);
  if (value === undefined) return undefined;
  if (value.includes('\0')) {
    throw new ConfigError(dotted(parentKey, name), 'must be a path without NUL characters');
  }
  return resolve(baseDir, value);
}

function required<T>(value: T | undefined, key: string): T {
  if (value === undefined) throw new ConfigError(key, 'is required but missing');
  return value;
}

function oneOf<const T extends string>(value: string, allowed: readonly T[], key: string): T {
  const match = allowed.find((candidate) => candidate === value);
  if (match === undefined) {
    throw new ConfigError(key, `must be one of: ${allowed.join(', ')} (got ${describe(value)})`);
  }
  return match;
}

function isHostName(value: string): boolean {
  return isIP(value) !== 0 || isDnsName(value);
}

/** A short, quoted rendering of a YAML value for error messages. */
function describe(value: unknown): string {
  if (value === null || value === undefined) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return JSON.stringify(value);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

// ---- demo config -----------------------------------------------------------------------

export interface DemoConfigOptions {
  pcId: string;
  dataDir: string;
  /** Folder standing in for the NAS share: the backup target. */
  nasDir: string;
  /** Path of the recovery public key PEM. */
  recoveryPublicKey: string;
  /** Port of the demo service (default 8443). */
  port?: number;
}

/**
 * YAML text (with comments) of a config for the demo: local directory, backup to a folder.
 * Paths are written as given; relative ones will resolve against the folder the file is written to.
 */
export function renderDemoConfig(opts: DemoConfigOptions): string {
  const q = (value: string): string => JSON.stringify(value);
  return `# mydoc configuration (written by "mydoc demo").
# Unknown keys are errors. Relative paths are resolved against the folder of this file.

# Name of this PC: 1 to 63 letters, digits, ".", "_" or "-".
pcId: ${q(opts.pcId)}

# Folder for this PC's mydoc data; the defaults below live under it.
dataDir: ${q(opts.dataDir)}

listen:
  # Address the WebDAV server listens on. Keep it on loopback unless the guest needs more.
  host: "127.0.0.1"
  port: ${opts.port ?? 8443}
  # Extra DNS names / IP addresses put in the TLS certificate (127.0.0.1 and localhost are always there).
  hostNames: []

# TLS files default to <dataDir>/tls/server-cert.pem, server-key.pem and ca-cert.pem.
# tls:
#   certFile: ...
#   keyFile: ...
#   caFile: ...

directory:
  # Where users and their network secrets come from. "local" is a stand-in for a company
  # directory: it keeps the network secrets in a plain file, which is NOT secure.
  kind: local
  # local:
  #   usersFile: <dataDir>/local-directory/users.json
  #   insecureSecretFile: <dataDir>/local-directory/INSECURE-network-secrets.json

backup:
  target:
    # "path": a folder (here a stand-in for the NAS). "smb" takes url: //host/share[/folder] and authFile.
    kind: path
    path: ${q(opts.nasDir)}
  # Scheduled backups (cron: minute hour day-of-month month weekday, or "off"), read in
  # this time zone, each started up to randomDelaySeconds late so a fleet spreads out.
  # A missed run is caught up at start.
  schedule: "${DEFAULT_BACKUP_SCHEDULE}"
  timezone: "UTC"
  randomDelaySeconds: 600
  # At service stop (shutdown) copying stops after this many seconds; the rest goes next time.
  shutdownDeadlineSeconds: 60

recovery:
  # Public key (PEM, SPKI) of the recovery key pair. Optional.
  publicKey: ${q(opts.recoveryPublicKey)}

# Take-out keys (offline use for a limited time, approved by an administrator).
# "mydoc keys issuer" writes an issuer key pair; list the public files here.
# takeout:
#   maxDays: 14
#   issuerPublicKeys: [issuer-public.pem]
`;
}
