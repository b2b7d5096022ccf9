/**
 * The console's configuration: one YAML file (read with
 * server/config/yaml-reader.ts, as the agent's is), validated into a frozen,
 * typed `ConsoleConfig` with every default filled in. Unknown keys are
 * errors naming the full dotted key; relative paths are resolved against the
 * folder of the file. The `directory.ldap` connection keys are the agent's
 * (server/config/ldap-config.ts); what only the agent needs there (its
 * network secrets' DNs, adminsGroupDn) is refused: the console maps groups
 * to roles instead.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { readBackupTarget, type BackupTargetConfig } from '../config/config.js';
import { ConfigError } from '../config/errors.js';
import { LDAP_CONNECTION_KEYS, readLdapConnection, type LdapConnectionConfig } from '../config/ldap-config.js';
import { readHostNames, readListenHost, readPortNumber } from '../config/listen-config.js';
import { FILE_KEY, asMapping, deepFreeze, oneOf, parseYaml, readNumber, readPath, readSection, readString, readStringList, rejectUnknownKeys, required, type Mapping } from '../config/yaml-reader.js';
import { consoleFolder } from './data-folder.js';

export const ROLES = ['viewer', 'approver', 'data', 'sharing'] as const;
export type Role = (typeof ROLES)[number];

export type ConsoleStoreConfig =
  | { readonly kind: 'sqlite'; readonly file: string }
  | {
      readonly kind: 'postgres';
      readonly host: string;
      readonly port: number;
      readonly database: string;
      readonly user: string;
      readonly passwordFile: string | null;
      /** TLS to PostgreSQL: none, encrypted without checking the server, or its certificate checked (CA, host name). */
      readonly ssl: PostgresSslMode;
      /** The CA of the server's certificate for verify-full (PEM); null: the system's CAs. */
      readonly caFile: string | null;
    };

export const POSTGRES_SSL_MODES = ['disable', 'require', 'verify-full'] as const;
export type PostgresSslMode = (typeof POSTGRES_SSL_MODES)[number];

export interface ConsoleConfig {
  readonly dataDir: string;
  readonly listen: {
    readonly host: string;
    /** The administrators' web page and the JSON API. */
    readonly port: number;
    /** The agents' links. */
    readonly linkPort: number;
    /** Extra DNS names / IP addresses for the TLS certificate (127.0.0.1 and localhost are always added). */
    readonly hostNames: readonly string[];
  };
  readonly directory: {
    readonly kind: 'local' | 'ldap';
    readonly local: { readonly usersFile: string };
    /** Present when kind is "ldap". */
    readonly ldap: LdapConnectionConfig | null;
  };
  /** Per role, the groups whose members (nested too) have it: names (local) or DNs (ldap). */
  readonly roles: Readonly<Record<Role, readonly string[]>>;
  readonly store: ConsoleStoreConfig;
  readonly link: { readonly heartbeatSeconds: number };
  readonly enrolment: { readonly tokenHours: number };
  readonly takeout: { readonly requestExpiryDays: number };
  /**
   * Administrators' access to users' data. `approvals`: 0, or 1 for the
   * two-person rule (reading contents needs an access request approved by
   * another administrator, for at most `maxHours`).
   */
  readonly access: { readonly approvals: 0 | 1; readonly maxHours: number };
  /** Share rules: the expiry a rule gets unless one is given, and the longest allowed (days). */
  readonly sharing: { readonly defaultDays: number; readonly maxDays: number };
  /** The NAS the agents back up to, for the recovery view of an offline PC; null: no recovery view. */
  readonly recovery: { readonly target: BackupTargetConfig | null };
}

/** A PC is online when seen within two heartbeat intervals and 30 s. */
export function onlineWindowMs(config: ConsoleConfig): number {
  return 2 * config.link.heartbeatSeconds * 1000 + 30_000;
}

const DIRECTORY_KINDS = ['local', 'ldap'] as const;
const STORE_KINDS = ['sqlite', 'postgres'] as const;

/** Reads and validates the console's configuration file. A missing file is a ConfigError with key `(file)`. */
export async function loadConsoleConfig(file: string): Promise<ConsoleConfig> {
  const absoluteFile = resolve(file);
  let text: string;
  try {
    text = await readFile(absoluteFile, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConfigError(FILE_KEY, `${absoluteFile} does not exist; write the console's configuration there (see server/console/README.md)`);
    throw new ConfigError(FILE_KEY, `cannot read ${absoluteFile} (${code ?? String(error)})`);
  }
  return parseConsoleConfig(text, absoluteFile);
}

/** Validates configuration text; `file` names the file in errors and anchors relative paths. */
export function parseConsoleConfig(text: string, file: string): ConsoleConfig {
  const absoluteFile = resolve(file);
  const root = asMapping(parseYaml(text, absoluteFile), FILE_KEY, `${absoluteFile} must contain a YAML mapping of keys`);
  return deepFreeze(readConsoleConfig(root, dirname(absoluteFile)));
}

function readConsoleConfig(root: Mapping, baseDir: string): ConsoleConfig {
  rejectUnknownKeys(root, '', ['dataDir', 'listen', 'directory', 'roles', 'store', 'link', 'enrolment', 'takeout', 'access', 'sharing', 'recovery']);
  const dataDir = required(readPath(root, '', 'dataDir', baseDir), 'dataDir');
  const link = readSection(root, '', 'link', ['heartbeatSeconds']);
  const enrolment = readSection(root, '', 'enrolment', ['tokenHours']);
  const takeout = readSection(root, '', 'takeout', ['requestExpiryDays']);
  const recovery = readSection(root, '', 'recovery', ['target']);
  return {
    dataDir,
    listen: readListen(root),
    directory: readDirectory(root, baseDir, dataDir),
    roles: readRoles(root),
    store: readStore(root, baseDir, dataDir),
    link: { heartbeatSeconds: readNumber(link, 'link', 'heartbeatSeconds', 1, 3600, true) ?? 60 },
    enrolment: { tokenHours: readNumber(enrolment, 'enrolment', 'tokenHours', 0.01, 720) ?? 24 },
    takeout: { requestExpiryDays: readNumber(takeout, 'takeout', 'requestExpiryDays', 0.001, 365) ?? 7 },
    access: readAccess(root),
    sharing: readSharing(root),
    recovery: { target: Object.keys(recovery).length === 0 ? null : readBackupTarget(recovery, 'recovery', baseDir) },
  };
}

function readAccess(root: Mapping): ConsoleConfig['access'] {
  const access = readSection(root, '', 'access', ['approvals', 'maxHours']);
  const approvals = readNumber(access, 'access', 'approvals', 0, 1, true) ?? 0;
  return { approvals: approvals === 1 ? 1 : 0, maxHours: readNumber(access, 'access', 'maxHours', 0.01, 8) ?? 8 };
}

function readSharing(root: Mapping): ConsoleConfig['sharing'] {
  const sharing = readSection(root, '', 'sharing', ['defaultDays', 'maxDays']);
  const maxDays = readNumber(sharing, 'sharing', 'maxDays', 1, 3650, true) ?? 90;
  const defaultDays = readNumber(sharing, 'sharing', 'defaultDays', 1, 3650, true) ?? Math.min(30, maxDays);
  if (defaultDays > maxDays) throw new ConfigError('sharing.defaultDays', `must not be more than sharing.maxDays (${defaultDays} > ${maxDays})`);
  return { defaultDays, maxDays };
}

function readListen(root: Mapping): ConsoleConfig['listen'] {
  const listen = readSection(root, '', 'listen', ['host', 'port', 'linkPort', 'hostNames']);
  const port = readPortNumber(listen, 'listen', 'port', 9443);
  const linkPort = readPortNumber(listen, 'listen', 'linkPort', 9444);
  if (linkPort === port) throw new ConfigError('listen.linkPort', `must differ from listen.port (both are ${port}): the web page and the agents' links listen apart`);
  return { host: readListenHost(listen, 'listen'), port, linkPort, hostNames: readHostNames(listen, 'listen') };
}

function readDirectory(root: Mapping, baseDir: string, dataDir: string): ConsoleConfig['directory'] {
  const directory = readSection(root, '', 'directory', ['kind', 'local', 'ldap']);
  const kind = oneOf(required(readString(directory, 'directory', 'kind'), 'directory.kind'), DIRECTORY_KINDS, 'directory.kind');
  const local = readSection(directory, 'directory', 'local', ['usersFile']);
  const ldap = readSection(directory, 'directory', 'ldap', LDAP_CONNECTION_KEYS);
  if (kind === 'ldap' && Object.keys(ldap).length === 0) throw new ConfigError('directory.ldap', 'is required when directory.kind is "ldap"');
  if (kind !== 'ldap' && Object.keys(ldap).length > 0) throw new ConfigError('directory.ldap', 'is only allowed when directory.kind is "ldap"');
  return {
    kind,
    local: { usersFile: readPath(local, 'directory.local', 'usersFile', baseDir) ?? consoleFolder(dataDir).usersFile },
    ldap: kind === 'ldap' ? readLdapConnection(ldap, 'directory.ldap', baseDir) : null,
  };
}

function readRoles(root: Mapping): ConsoleConfig['roles'] {
  const section = readSection(root, '', 'roles', ROLES);
  const roles = Object.fromEntries(ROLES.map((role) => [role, readStringList(section, 'roles', role) ?? []])) as Record<Role, string[]>;
  if (ROLES.every((role) => roles[role].length === 0)) {
    throw new ConfigError('roles', `must give at least one role (${ROLES.join(', ')}) a group, or no administrator can log in`);
  }
  return roles;
}

/** localhost, 127.0.0.0/8 or ::1. */
function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function readStore(root: Mapping, baseDir: string, dataDir: string): ConsoleStoreConfig {
  const store = readSection(root, '', 'store', ['kind', 'postgres']);
  const kind = oneOf(readString(store, 'store', 'kind') ?? 'sqlite', STORE_KINDS, 'store.kind');
  const postgres = readSection(store, 'store', 'postgres', ['host', 'port', 'database', 'user', 'passwordFile', 'ssl', 'caFile']);
  if (kind === 'sqlite') {
    if (Object.keys(postgres).length > 0) throw new ConfigError('store.postgres', 'is only allowed when store.kind is "postgres"');
    return { kind, file: consoleFolder(dataDir).sqliteFile };
  }
  if (Object.keys(postgres).length === 0) throw new ConfigError('store.postgres', 'is required when store.kind is "postgres"');
  const key = 'store.postgres';
  const host = required(readString(postgres, key, 'host'), `${key}.host`);
  // Default: certificate checked, except on this machine (where TLS would protect nothing the OS does not).
  const ssl = oneOf(readString(postgres, key, 'ssl') ?? (isLoopbackHost(host) ? 'disable' : 'verify-full'), POSTGRES_SSL_MODES, `${key}.ssl`);
  const caFile = readPath(postgres, key, 'caFile', baseDir) ?? null;
  if (caFile !== null && ssl !== 'verify-full') throw new ConfigError(`${key}.caFile`, `is only allowed when ${key}.ssl is "verify-full" (it is "${ssl}")`);
  return {
    kind,
    host,
    ssl,
    caFile,
    port: readPortNumber(postgres, key, 'port', 5432),
    database: required(readString(postgres, key, 'database'), `${key}.database`),
    user: required(readString(postgres, key, 'user'), `${key}.user`),
    passwordFile: readPath(postgres, key, 'passwordFile', baseDir) ?? null,
  };
}
