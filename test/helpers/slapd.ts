/**
 * Test helper: a real OpenLDAP slapd (Debian packages `slapd`, `ldap-utils`) with its own
 * configuration and mdb database in a temporary folder, listening on 127.0.0.1 and a free port.
 * It is started detached (its own session and process group) and stopped by its pid. No system
 * configuration or service is used or touched; a system slapd, if any, is left alone.
 *
 * Directory (suffix `dc=corp,dc=example`, every password random per startSlapd()):
 *   cn=admin,dc=corp,dc=example                          rootdn (adminDn / adminPassword)
 *   ou=people:    uid=alice, uid=bob, uid=carol, uid=dave (inetOrgPerson, `uid`, `mail`)
 *   ou=services:  uid=svc-pc1   the PC service account: the only reader and writer of
 *                               `mydocNetworkSecret`; may add and delete entries under ou=mydoc-keys
 *                 uid=svc-other another service account: cannot read `mydocNetworkSecret`
 *   ou=groups:    cn=helpdesk     (groupOfNames) member: carol
 *                 cn=mydoc-admins (groupOfNames) members: cn=helpdesk, dave
 *   ou=mydoc-keys: ou=pc1 (empty; key entries `cn=<user>,ou=<pcId>,ou=mydoc-keys,...` are
 *                 objectClass `mydocPcUserKey`, MUST cn, MAY mydocNetworkSecret)
 * So alice and bob are plain users; dave is an admin directly; carol only through helpdesk.
 *
 * memberOf (memberof overlay) is NOT transitive: carol's `memberOf` is only
 * `cn=helpdesk,ou=groups,...`; dave's is `cn=mydoc-admins,ou=groups,...`; the helpdesk group
 * entry itself carries `memberOf: cn=mydoc-admins,...`. OpenLDAP has no equivalent of AD's
 * LDAP_MATCHING_RULE_IN_CHAIN filter, so nested membership must be resolved by walking groups.
 *
 * Access control:
 *   - `mydocNetworkSecret`: read/write for svc-pc1 only (and the rootdn, which bypasses ACLs);
 *     for everyone else the attribute is simply absent from search results.
 *   - `userPassword`: self write, anonymous auth (bind) only, nobody else.
 *   - rootDSE: readable anonymously (the reachability probe: base search on "").
 *   - ou=mydoc-keys subtree: svc-pc1 writes (adds and deletes entries), users read.
 *   - everything else: read for authenticated users, nothing for anonymous.
 *
 * stop({ keepData: true }) and start() restart the same slapd on the same port with the same
 * data (to cut the directory and bring it back); stop() removes the temporary folder.
 *
 * startSlapd({ monitor: true }) adds slapd's cn=Monitor database, readable anonymously (this
 * throwaway slapd only): openMonitor() reads its counters (connections accepted, StartTLS and
 * search operations completed) to count TLS handshakes.
 */
import { launchDaemon, stopDaemon, type Daemon } from './daemon.js';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from 'ldapts';
import { freePort, randomPassword, runCommand } from './server.js';
import { createTlsMaterial } from '../../server/http/tls.js';
import type { LdapDirectorySettings } from '../../policy/directory/ldap/directory.js';

const SLAPD_BIN = '/usr/sbin/slapd';
const MODULE_PATH = '/usr/lib/ldap';
const SYSTEM_SCHEMAS = ['core', 'cosine', 'inetorgperson', 'nis'].map((s) => `/etc/ldap/schema/${s}.schema`);
const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;

const BASE_DN = 'dc=corp,dc=example';
const PC_ID = 'pc1';
/** Where K_dir lives, with `{user}` and `{pcId}` placeholders (the product's configurable template). */
const KEY_DN_TEMPLATE = `cn={user},ou={pcId},ou=mydoc-keys,${BASE_DN}`;
export const SECRET_ATTRIBUTE = 'mydocNetworkSecret';
export const KEY_OBJECT_CLASS = 'mydocPcUserKey';
export const USER_NAMES = ['alice', 'bob', 'carol', 'dave'] as const;
export type UserName = (typeof USER_NAMES)[number];

/** The shipped schema (deploy/openldap/mydoc.schema), loaded as an administrator would: the arc filled in. */
const SHIPPED_SCHEMA = fileURLToPath(new URL('../../../deploy/openldap/mydoc.schema', import.meta.url));
/** An arc made once by Microsoft's GUID method (deploy/active-directory/samba/new-oid-arc.sh), for the tests' slapd. */
const TEST_OID_ARC = '1.2.840.113556.1.8000.2554.29614.51037.17603.37830.42512.9306547.4200671';

async function mydocSchema(): Promise<string> {
  const text = await readFile(SHIPPED_SCHEMA, 'utf8');
  if (!text.includes(`NAME '${SECRET_ATTRIBUTE}'`) || !text.includes(`NAME '${KEY_OBJECT_CLASS}'`)) throw new Error(`${SHIPPED_SCHEMA} does not define ${SECRET_ATTRIBUTE} and ${KEY_OBJECT_CLASS}`);
  return text.replaceAll('MYDOC-OID-ARC', TEST_OID_ARC);
}

export interface Account {
  dn: string;
  password: string;
}

export interface Slapd {
  /** The CA of slapd's TLS certificate (StartTLS on `url`; the certificate names 127.0.0.1 and localhost). */
  caPem: string;
  /** `ldap://127.0.0.1:PORT` */
  url: string;
  port: number;
  /** pid of the running slapd (changes on start()). */
  pid: number;
  baseDn: string;
  adminDn: string;
  adminPassword: string;
  serviceDn: string;
  servicePassword: string;
  otherServiceDn: string;
  otherServicePassword: string;
  users: Record<UserName, Account>;
  groupDns: { helpdesk: string; admins: string };
  pcId: string;
  keyDnTemplate: string;
  /** DN of the key entry of `user` on `pcId` (default this fixture's PC). */
  keyDn(user: string, pcId?: string): string;
  /** Runs `ldapmodify` as the rootdn with `ldif` (use `changetype: add` for new entries). */
  ldapmodify(ldif: string): Promise<void>;
  /** Everything slapd wrote to stdout and stderr since the last start (last 64 KiB). */
  output(): string;
  /** SIGTERM, up to 5 s grace, then SIGKILL. Removes the temporary folder unless keepData. Idempotent. */
  stop(opts?: { keepData?: boolean }): Promise<void>;
  /** Starts slapd again on the same port and data after stop({ keepData: true }). */
  start(): Promise<void>;
}

export interface StartSlapdOptions {
  /** LDIF applied as the rootdn right after the fixture (e.g. extra entries or memberships). */
  extraLdif?: string;
  /** Adds the cn=Monitor database, readable anonymously (see openMonitor). */
  monitor?: boolean;
}

/** slapd's counters since it started (cn=Monitor). */
export interface MonitorCounters {
  /** Connections accepted (each of the product's a TLS handshake). */
  connections: number;
  /** Connections open now. */
  current: number;
  /** Extended operations completed (StartTLS is one). */
  extended: number;
  /** Search operations completed. */
  searches: number;
}

const MONITOR_COUNTERS: Record<keyof MonitorCounters, [string, string]> = {
  connections: ['cn=Total,cn=Connections,cn=Monitor', 'monitorCounter'],
  current: ['cn=Current,cn=Connections,cn=Monitor', 'monitorCounter'],
  extended: ['cn=Extended,cn=Operations,cn=Monitor', 'monitorOpCompleted'],
  searches: ['cn=Search,cn=Operations,cn=Monitor', 'monitorOpCompleted'],
};

/**
 * Reads cn=Monitor of a slapd started with { monitor: true } over one plain-LDAP connection of
 * its own, kept open (counted once in `connections` and `current`; its own reads are searches:
 * read() subtracts them). close() when done.
 */
export function openMonitor(slapd: Slapd): { read(): Promise<MonitorCounters>; close(): Promise<void> } {
  const client = new Client({ url: slapd.url, timeout: 5_000, connectTimeout: 5_000 });
  let ownSearches = 0;
  return {
    async read() {
      const counters = {} as MonitorCounters;
      for (const [name, [dn, attribute]] of Object.entries(MONITOR_COUNTERS) as [keyof MonitorCounters, [string, string]][]) {
        const { searchEntries } = await client.search(dn, { scope: 'base', attributes: [attribute] });
        ownSearches++;
        counters[name] = Number(searchEntries[0]?.[attribute]);
      }
      // The search being answered is counted once it completes: this read's own searches, all but none, are in.
      counters.searches -= ownSearches - 1;
      return counters;
    },
    close: () => client.unbind().catch(() => undefined),
  };
}


function slapdConf(dir: string, names: Names, adminPassword: string, monitor: boolean): string {
  const svc = `dn.exact="${names.serviceDn}"`;
  return [
    '# written by test/helpers/slapd.ts',
    ...SYSTEM_SCHEMAS.map((s) => `include ${s}`),
    `include ${join(dir, 'mydoc.schema')}`,
    `pidfile ${join(dir, 'slapd.pid')}`,
    `argsfile ${join(dir, 'slapd.args')}`,
    `modulepath ${MODULE_PATH}`,
    // StartTLS with a throwaway CA (the product never binds without TLS).
    `TLSCACertificateFile ${join(dir, 'tls-ca.pem')}`,
    `TLSCertificateFile ${join(dir, 'tls-cert.pem')}`,
    `TLSCertificateKeyFile ${join(dir, 'tls-key.pem')}`,
    'moduleload back_mdb',
    'moduleload memberof',
    '',
    'database mdb',
    `suffix "${BASE_DN}"`,
    `rootdn "${names.adminDn}"`,
    `rootpw ${adminPassword}`,
    `directory ${join(dir, 'data')}`,
    'maxsize 67108864',
    '',
    'overlay memberof',
    'memberof-group-oc groupOfNames',
    'memberof-member-ad member',
    'memberof-memberof-ad memberOf',
    'memberof-refint TRUE',
    '',
    `access to attrs=${SECRET_ATTRIBUTE}`,
    `  by ${svc} write`,
    '  by * none',
    'access to dn.base=""',
    '  by * read',
    'access to attrs=userPassword',
    '  by self write',
    '  by anonymous auth',
    '  by * none',
    `access to dn.subtree="ou=mydoc-keys,${BASE_DN}"`,
    `  by ${svc} write`,
    '  by users read',
    '  by * none',
    'access to *',
    '  by users read',
    '  by * none',
    '',
    ...(monitor ? ['database monitor', 'access to *', '  by * read', ''] : []),
  ].join('\n');
}

interface Names {
  adminDn: string;
  serviceDn: string;
  otherServiceDn: string;
  users: Record<UserName, string>;
  groupDns: { helpdesk: string; admins: string };
}

function names(): Names {
  const users = Object.fromEntries(USER_NAMES.map((u) => [u, `uid=${u},ou=people,${BASE_DN}`])) as Record<UserName, string>;
  return {
    adminDn: `cn=admin,${BASE_DN}`,
    serviceDn: `uid=svc-pc1,ou=services,${BASE_DN}`,
    otherServiceDn: `uid=svc-other,ou=services,${BASE_DN}`,
    users,
    groupDns: { helpdesk: `cn=helpdesk,ou=groups,${BASE_DN}`, admins: `cn=mydoc-admins,ou=groups,${BASE_DN}` },
  };
}

function entry(dn: string, ...lines: string[]): string {
  return [`dn: ${dn}`, 'changetype: add', ...lines, ''].join('\n');
}

function fixtureLdif(n: Names, passwords: { users: Record<UserName, string>; service: string; otherService: string }): string {
  const ou = (name: string) => entry(`ou=${name},${BASE_DN}`, 'objectClass: organizationalUnit', `ou: ${name}`);
  const person = (u: UserName) =>
    entry(
      n.users[u],
      'objectClass: inetOrgPerson',
      `uid: ${u}`,
      `cn: ${u[0]!.toUpperCase()}${u.slice(1)}`,
      'sn: Test',
      `mail: ${u}@corp.example`,
      `userPassword: ${passwords.users[u]}`,
    );
  const service = (dn: string, uid: string, password: string) =>
    entry(dn, 'objectClass: account', 'objectClass: simpleSecurityObject', `uid: ${uid}`, `userPassword: ${password}`);
  return [
    entry(BASE_DN, 'objectClass: dcObject', 'objectClass: organization', 'dc: corp', 'o: Corp'),
    ou('people'),
    ou('groups'),
    ou('services'),
    ou('mydoc-keys'),
    entry(`ou=${PC_ID},ou=mydoc-keys,${BASE_DN}`, 'objectClass: organizationalUnit', `ou: ${PC_ID}`),
    ...USER_NAMES.map(person),
    service(n.serviceDn, 'svc-pc1', passwords.service),
    service(n.otherServiceDn, 'svc-other', passwords.otherService),
    entry(n.groupDns.helpdesk, 'objectClass: groupOfNames', 'cn: helpdesk', `member: ${n.users.carol}`),
    entry(n.groupDns.admins, 'objectClass: groupOfNames', 'cn: mydoc-admins', `member: ${n.groupDns.helpdesk}`, `member: ${n.users.dave}`),
  ].join('\n');
}

/** True when an anonymous base search of the rootDSE answers. Never rejects. */
async function rootDseAnswers(url: string): Promise<boolean> {
  const client = new Client({ url, timeout: 1_000, connectTimeout: 1_000 });
  try {
    await client.search('', { scope: 'base', attributes: ['namingContexts'] });
    return true;
  } catch {
    return false;
  } finally {
    await client.unbind().catch(() => undefined);
  }
}

/** Starts slapd detached and waits until the rootDSE answers. */
function launch(confFile: string, url: string): Promise<Daemon> {
  return launchDaemon({
    name: 'slapd',
    command: SLAPD_BIN,
    args: ['-f', confFile, '-h', `${url}/`, '-d', '0'],
    ready: () => rootDseAnswers(url),
    readyTimeoutMs: READY_TIMEOUT_MS,
    where: url,
    graceMs: STOP_GRACE_MS,
  });
}

/** Starts a fresh slapd with the fixture described at the top of this file. */
export async function startSlapd(opts: StartSlapdOptions = {}): Promise<Slapd> {
  const dir = await mkdtemp(join(tmpdir(), 'mydoc-slapd-'));
  try {
    const n = names();
    const adminPassword = randomPassword();
    const passwords = {
      users: Object.fromEntries(USER_NAMES.map((u) => [u, randomPassword()])) as Record<UserName, string>,
      service: randomPassword(),
      otherService: randomPassword(),
    };
    const confFile = join(dir, 'slapd.conf');
    const adminPasswordFile = join(dir, 'admin.password');
    await mkdir(join(dir, 'data'));
    await writeFile(join(dir, 'mydoc.schema'), await mydocSchema());
    const tls = await createTlsMaterial({ hostNames: ['localhost'], ipAddresses: ['127.0.0.1'], commonName: 'slapd-test' });
    await writeFile(join(dir, 'tls-ca.pem'), tls.caCertPem);
    await writeFile(join(dir, 'tls-cert.pem'), tls.certPem);
    await writeFile(join(dir, 'tls-key.pem'), tls.keyPem, { mode: 0o600 });
    await writeFile(confFile, slapdConf(dir, n, adminPassword, opts.monitor ?? false), { mode: 0o600 });
    await writeFile(adminPasswordFile, adminPassword, { mode: 0o600 });
    const port = await freePort();
    const url = `ldap://127.0.0.1:${port}`;

    let running: Daemon | null = await launch(confFile, url);
    // If the test process dies without stop(), do not leave its folder behind (launchDaemon kills the slapd).
    const cleanUpOnExit = () => rmSync(dir, { recursive: true, force: true });
    process.once('exit', cleanUpOnExit);

    const ldapmodify = async (ldif: string): Promise<void> => {
      const r = await runCommand('ldapmodify', ['-x', '-H', url, '-D', n.adminDn, '-y', adminPasswordFile], { input: ldif, timeoutMs: 30_000 });
      if (r.status !== 0) throw new Error(`ldapmodify failed (${r.signal ?? `exit ${r.status}`}):\n${r.stderr}${r.stdout}`);
    };
    const stop = async ({ keepData = false }: { keepData?: boolean } = {}): Promise<void> => {
      if (running) {
        const r = running;
        running = null;
        await stopDaemon(r, STOP_GRACE_MS);
      }
      if (!keepData) {
        process.removeListener('exit', cleanUpOnExit);
        await rm(dir, { recursive: true, force: true });
      }
    };

    const slapd: Slapd = {
      url,
      port,
      caPem: tls.caCertPem,
      get pid() {
        return running?.child.pid ?? -1;
      },
      baseDn: BASE_DN,
      adminDn: n.adminDn,
      adminPassword,
      serviceDn: n.serviceDn,
      servicePassword: passwords.service,
      otherServiceDn: n.otherServiceDn,
      otherServicePassword: passwords.otherService,
      users: Object.fromEntries(USER_NAMES.map((u) => [u, { dn: n.users[u], password: passwords.users[u] }])) as Record<UserName, Account>,
      groupDns: n.groupDns,
      pcId: PC_ID,
      keyDnTemplate: KEY_DN_TEMPLATE,
      keyDn: (user, pcId = PC_ID) => KEY_DN_TEMPLATE.replace('{user}', user).replace('{pcId}', pcId),
      ldapmodify,
      output: () => running?.output() ?? '',
      stop,
      start: async () => {
        if (running) throw new Error('slapd is already running');
        running = await launch(confFile, url);
      },
    };
    try {
      await ldapmodify(fixtureLdif(n, passwords) + (opts.extraLdif ? `\n${opts.extraLdif}` : ''));
    } catch (error) {
      await stop();
      throw error;
    }
    return slapd;
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** Settings of the product's LDAP directory for this slapd (StartTLS with its CA), as a PC named `pcId`. */
export function slapdDirectorySettings(slapd: Slapd, pcId: string, overrides: Partial<LdapDirectorySettings> = {}): LdapDirectorySettings {
  return {
    urls: [slapd.url],
    flavor: 'openldap',
    baseDn: slapd.baseDn,
    userBaseDn: `ou=people,${slapd.baseDn}`,
    serviceDn: slapd.serviceDn,
    servicePassword: slapd.servicePassword,
    caPem: slapd.caPem,
    tlsServerName: undefined,
    insecureSkipVerify: false,
    timeoutMs: 2000,
    adminsGroupDn: slapd.groupDns.admins,
    pcId,
    keyDnTemplate: slapd.keyDnTemplate,
    keyAttribute: SECRET_ATTRIBUTE,
    keyObjectClasses: [KEY_OBJECT_CLASS],
    ...overrides,
  };
}

/** startServer options for a `mydoc serve` using this slapd: the `directory:` lines and the files they name. */
export function slapdServerOptions(slapd: Slapd, probe = { intervalSeconds: 0.5, failuresToLock: 2, timeoutSeconds: 1 }): { directory: string[]; files: Record<string, string> } {
  return {
    files: { 'ldap-ca.pem': slapd.caPem, 'svc.password': slapd.servicePassword },
    directory: [
      'kind: ldap',
      'ldap:',
      `  urls: ["${slapd.url}"]`,
      '  flavor: openldap',
      `  baseDn: "${slapd.baseDn}"`,
      `  userBaseDn: "ou=people,${slapd.baseDn}"`,
      `  serviceDn: "${slapd.serviceDn}"`,
      '  servicePasswordFile: svc.password',
      '  caFile: ldap-ca.pem',
      `  adminsGroupDn: "${slapd.groupDns.admins}"`,
      `  keyDnTemplate: "${slapd.keyDnTemplate}"`,
      `  keyAttribute: ${SECRET_ATTRIBUTE}`,
      `  keyObjectClasses: [${KEY_OBJECT_CLASS}]`,
      'probe:',
      `  intervalSeconds: ${probe.intervalSeconds}`,
      `  failuresToLock: ${probe.failuresToLock}`,
      `  timeoutSeconds: ${probe.timeoutSeconds}`,
    ],
  };
}
