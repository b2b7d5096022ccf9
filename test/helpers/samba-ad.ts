/**
 * Test helper: a real Samba Active Directory domain controller (Debian packages `samba`,
 * `samba-ad-dc`) on 127.0.0.1, for the tests that need AD itself (UPN and `DOMAIN\user` binds,
 * AD bind error codes, nested groups through LDAP_MATCHING_RULE_IN_CHAIN, a confidential
 * attribute). Slapd (./slapd.ts) is the directory for everything else.
 *
 * LDAP is on the fixed ports 389 and 636 (Samba has no setting for them), the KDC on 88 and
 * CLDAP on 389/udp: one DC at a time per machine, so test files using it must not run in
 * parallel with each other. If another process (a system slapd or samba) holds one of those
 * ports on 127.0.0.1, startSambaAd() fails saying so; it never stops system services.
 *
 * Provisioning takes ~10 s, so it happens once into a template folder
 * (`<tmpdir>/mydoc-samba-ad-template-<samba version>-<fixture version>`) with the fixture below
 * already created; each startSambaAd() copies the stopped template into a fresh temporary
 * folder (`cp -a`, ~33 MB), rewrites its smb.conf and starts `samba -i` detached (own process
 * group), stopped by its pid. The template is rebuilt when its certificate is about to expire.
 *
 * Domain: realm CORP.EXAMPLE, NetBIOS domain CORP, base DN DC=corp,DC=example, DC dc1.
 *   CN=Users:     alice, bob (plain users); carol (in helpdesk, itself in mydoc-admins);
 *                 dave (directly in mydoc-admins); dora (disabled: bind gives `data 533`);
 *                 erin (must change password at next logon, pwdLastSet=0: `data 773`)
 *                 groups CN=mydoc-admins ⊃ CN=helpdesk ⊃ carol; CN=mydoc-admins ∋ dave
 *   OU=services:  svc-pc1 (the PC service account: full control of OU=mydoc-keys and below),
 *                 svc-other (another service account: reads OU=mydoc-keys like any user)
 *   OU=mydoc-keys,OU=pc1: empty; key objects CN=<user>,OU=<pcId>,OU=mydoc-keys,DC=corp,DC=example
 *                 of class mydocPcUserKey (must cn, may mydocNetworkSecret)
 * Passwords are random per template (saved in it) and given in `users`, `service`, ...
 *
 * K_dir is `mydocNetworkSecret`, a schema extension (same name and OID as the slapd fixture's):
 * octet string (2.5.5.10), single-valued, searchFlags 0x80 = CONFIDENTIAL. AD hides a
 * confidential attribute from everyone lacking CONTROL_ACCESS on it, even principals that may
 * read all properties: Authenticated Users get read on OU=mydoc-keys (inherited), so alice and
 * svc-other see the key objects and their `cn` but never the secret; svc-pc1 has full control
 * (GA, which includes CONTROL_ACCESS), inherited. Domain admins see it too (as in real AD).
 * AD's own confidential attributes (msFVE-RecoveryPassword, searchFlags 0x298) were the
 * fallback, but their class msFVE-RecoveryInformation only lives under computer objects and
 * must also carry msFVE-RecoveryGuid; the schema extension keeps slapd and AD alike.
 *
 * TLS: Samba generates a self-signed CA and a certificate whose only name is the subject CN
 * `DC1.corp.example` (no subjectAltName, no IP). Clients connect to 127.0.0.1 and verify with
 * `{ ca: caPem, servername: tlsServerName }` (Node falls back to the CN when there is no SAN and
 * compares case-insensitively): `new Client({ url: ldapsUrl, tlsOptions: { ca, servername } })`
 * or, on `ldapUrl`, `client.startTLS({ ca, servername })` — never tlsOptions on an ldap:// URL
 * (ldapts would start TLS at once). Without servername Node checks `127.0.0.1` (LDAPS) or
 * `localhost` (StartTLS) and fails with ERR_TLS_CERT_ALTNAME_INVALID. Simple binds without TLS
 * fail with code 8 (StrongAuthRequired), as AD's default requires.
 */
import { launchDaemon, stopDaemon, type Daemon } from './daemon.js';
import { X509Certificate, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Attribute, Change, Client } from 'ldapts';
import { runCommand } from './server.js';

const SAMBA_BIN = '/usr/sbin/samba';
/** Bump when the fixture changes, so older templates are not reused. */
const FIXTURE_VERSION = 1;
const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 10_000;
/** Rebuild the template when its TLS certificate expires sooner than this. */
const CERT_MARGIN_MS = 7 * 24 * 3600 * 1000;

const REALM = 'CORP.EXAMPLE';
const DOMAIN = 'CORP';
const DNS_DOMAIN = 'corp.example';
const BASE_DN = 'DC=corp,DC=example';
const HOST_NAME = 'dc1';
const TLS_SERVER_NAME = `${HOST_NAME}.${DNS_DOMAIN}`;
const PC_ID = 'pc1';
const KEYS_DN = `OU=mydoc-keys,${BASE_DN}`;
const KEY_DN_TEMPLATE = `CN={user},OU={pcId},${KEYS_DN}`;
const SCHEMA_DN = `CN=Schema,CN=Configuration,${BASE_DN}`;
export const SECRET_ATTRIBUTE = 'mydocNetworkSecret';
export const KEY_OBJECT_CLASS = 'mydocPcUserKey';
export const AD_USER_NAMES = ['alice', 'bob', 'carol', 'dave', 'dora', 'erin'] as const;
export type AdUserName = (typeof AD_USER_NAMES)[number];
const SERVICE_NAMES = ['svc-pc1', 'svc-other'] as const;
/** TCP and UDP ports the DC binds on 127.0.0.1 (LDAP, LDAPS, Kerberos; CLDAP is 389/udp). */
const PORTS = { tcp: [389, 636, 88], udp: [389, 88] };

export interface AdAccount {
  dn: string;
  password: string;
  /** `name@corp.example` */
  userPrincipalName: string;
  /** `CORP\name` */
  downLevelName: string;
}

export interface SambaAd {
  /** `ldap://127.0.0.1:389`: simple binds need StartTLS first. */
  ldapUrl: string;
  /** `ldaps://127.0.0.1:636` */
  ldapsUrl: string;
  /** `DIR/private/tls/ca.pem`, the DC's self-signed CA. */
  caFile: string;
  caPem: string;
  /** `dc1.corp.example`: the only name in the DC's certificate (pass it as TLS `servername`). */
  tlsServerName: string;
  baseDn: string;
  /** `CORP.EXAMPLE` */
  realm: string;
  /** `CORP` (NetBIOS) */
  domain: string;
  /** `corp.example` (UPN suffix) */
  dnsDomain: string;
  /** Password of `Administrator` (a domain admin). */
  adminPassword: string;
  admin: AdAccount;
  users: Record<AdUserName, AdAccount>;
  /** svc-pc1: full control of the key container; reads and writes the confidential secret. */
  service: AdAccount;
  /** svc-other: reads the key container like any user, never the secret. */
  otherService: AdAccount;
  groupDns: { helpdesk: string; admins: string };
  /** `OU=mydoc-keys,DC=corp,DC=example` */
  keysDn: string;
  pcId: string;
  keyDnTemplate: string;
  /** DN of the key object of `user` on `pcId` (default this fixture's PC). */
  keyDn(user: string, pcId?: string): string;
  /** The DC's folder (a copy of the template). */
  dir: string;
  pid: number;
  /** Everything samba wrote to stdout and stderr (last 64 KiB). */
  output(): string;
  /** SIGTERM, up to 10 s grace, then SIGKILL to its process group; waits for the ports to be free; removes the folder. Idempotent. */
  stop(): Promise<void>;
}

/** What the template saves besides the DC itself. */
interface FixtureSecrets {
  adminPassword: string;
  passwords: Record<AdUserName | (typeof SERVICE_NAMES)[number], string>;
}


/** A random password meeting AD's complexity rules (three character classes, no account name). */
function adPassword(): string {
  return `${randomBytes(18).toString('base64url')}-Aa1`;
}

function account(name: string, dn: string, password: string): AdAccount {
  return { dn, password, userPrincipalName: `${name}@${DNS_DOMAIN}`, downLevelName: `${DOMAIN}\\${name}` };
}

/** smb.conf with every path inside `dir`, listening on 127.0.0.1 only. */
function smbConf(dir: string): string {
  return [
    '# written by test/helpers/samba-ad.ts',
    '[global]',
    `netbios name = ${HOST_NAME.toUpperCase()}`,
    `realm = ${REALM}`,
    `workgroup = ${DOMAIN}`,
    'server role = active directory domain controller',
    // ldap: LDAP/LDAPS; cldap: the DC locator ping; kdc: Kerberos (kinit). No SMB, RPC, DNS, winbindd.
    'server services = ldap cldap kdc',
    'interfaces = 127.0.0.1',
    'bind interfaces only = yes',
    'idmap_ldb:use rfc2307 = yes',
    // The template's schema extension (mydocNetworkSecret) needs it; tests may extend it too.
    'dsdb:schema update allowed = true',
    `private dir = ${join(dir, 'private')}`,
    `lock directory = ${join(dir, 'lock')}`,
    `state directory = ${join(dir, 'state')}`,
    `cache directory = ${join(dir, 'cache')}`,
    `binddns dir = ${join(dir, 'bind-dns')}`,
    `pid directory = ${join(dir, 'run')}`,
    `ncalrpc dir = ${join(dir, 'run', 'ncalrpc')}`,
    `log file = ${join(dir, 'log', 'log.%m')}`,
    '',
  ].join('\n');
}

async function writeSmbConf(dir: string): Promise<string> {
  for (const sub of ['private/tls', 'lock', 'state', 'cache', 'bind-dns', 'run', 'log', 'etc']) await mkdir(join(dir, sub), { recursive: true });
  const file = join(dir, 'etc', 'smb.conf');
  await writeFile(file, smbConf(dir));
  return file;
}

/** Fails with a clear message when another process holds a port the DC needs on 127.0.0.1. */
async function assertPortsFree(): Promise<void> {
  const busy: string[] = [];
  for (const port of PORTS.tcp) if (!(await tcpPortFree(port))) busy.push(`${port}/tcp`);
  for (const port of PORTS.udp) if (!(await udpPortFree(port))) busy.push(`${port}/udp`);
  if (busy.length > 0) {
    throw new Error(
      `samba-ad: 127.0.0.1 port(s) ${busy.join(', ')} are in use. The Samba AD DC needs LDAP 389 and 636 (not configurable) ` +
        'and Kerberos 88: another DC from a test running in parallel, or a system service (slapd, samba, krb5-kdc), holds them. ' +
        'Stop it (e.g. `systemctl stop slapd samba-ad-dc`) or run the AD tests on a machine without it.',
    );
  }
}

function tcpPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

function udpPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => resolve(false));
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
  });
}

/** True when an anonymous rootDSE search over LDAPS, with the DC's CA verified, answers. Never rejects. */
async function ldapsAnswers(caFile: string): Promise<boolean> {
  if (!existsSync(caFile)) return false;
  const client = new Client({ url: 'ldaps://127.0.0.1:636', tlsOptions: { ca: readFileSync(caFile), servername: TLS_SERVER_NAME }, timeout: 2_000, connectTimeout: 2_000 });
  try {
    await client.search('', { scope: 'base', attributes: ['defaultNamingContext'] });
    return true;
  } catch {
    return false;
  } finally {
    await client.unbind().catch(() => undefined);
  }
}

/** Starts `samba -i` detached; resolves once LDAPS answers. */
function launch(dir: string, confFile: string): Promise<Daemon> {
  return launchDaemon({
    name: 'samba',
    command: SAMBA_BIN,
    args: ['-i', '-s', confFile],
    ready: () => ldapsAnswers(join(dir, 'private', 'tls', 'ca.pem')),
    readyTimeoutMs: READY_TIMEOUT_MS,
    where: 'ldaps://127.0.0.1:636',
    graceMs: STOP_GRACE_MS,
  });
}

/** Stops samba and waits until its fixed LDAP ports are free again (the next suite needs them). */
async function terminate(running: Daemon): Promise<void> {
  await stopDaemon(running, STOP_GRACE_MS);
  const deadline = Date.now() + STOP_GRACE_MS;
  while (!(await tcpPortFree(389)) || !(await tcpPortFree(636))) {
    if (Date.now() > deadline) throw new Error('samba-ad: ports 389/636 still in use 10 s after samba exited');
    await sleep(50);
  }
}

async function sambaVersion(): Promise<string> {
  const r = await runCommand(SAMBA_BIN, ['--version']);
  const version = /Version\s+(\S+)/.exec(r.stdout)?.[1];
  if (r.status !== 0 || version === undefined) {
    throw new Error(`samba-ad: cannot run ${SAMBA_BIN} --version (install the Debian packages samba and samba-ad-dc):\n${r.stderr}${r.stdout}`);
  }
  return version.replace(/[^A-Za-z0-9.+-]/g, '_');
}

function certValid(caFile: string): boolean {
  try {
    return new Date(new X509Certificate(readFileSync(caFile)).validTo).getTime() > Date.now() + CERT_MARGIN_MS;
  } catch {
    return false;
  }
}

/** Runs samba-tool against the running DC over LDAP as Administrator (password in $PASSWD, not argv). */
async function sambaTool(confFile: string, adminPassword: string, args: string[]): Promise<string> {
  const r = await runCommand('samba-tool', [...args, '-s', confFile, '-H', 'ldap://127.0.0.1', '-U', 'Administrator', '--use-kerberos=off'], {
    env: { ...process.env, PASSWD: adminPassword },
    timeoutMs: 60_000,
  });
  if (r.status !== 0) throw new Error(`samba-tool ${args.slice(0, 2).join(' ')} failed (${r.signal ?? `exit ${r.status}`}):\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Adds mydocNetworkSecret (confidential) and mydocPcUserKey to the schema, as Administrator over LDAPS. */
async function extendSchema(caFile: string, adminPassword: string): Promise<void> {
  const client = new Client({ url: 'ldaps://127.0.0.1:636', tlsOptions: { ca: await readFile(caFile), servername: TLS_SERVER_NAME }, timeout: 30_000 });
  const schemaUpdateNow = () => client.modify('', new Change({ operation: 'add', modification: new Attribute({ type: 'schemaUpdateNow', values: ['1'] }) }));
  try {
    await client.bind(`Administrator@${DNS_DOMAIN}`, adminPassword);
    await client.add(`CN=mydoc-Network-Secret,${SCHEMA_DN}`, {
      objectClass: 'attributeSchema',
      cn: 'mydoc-Network-Secret',
      attributeID: '1.3.6.1.4.1.99999.1.1',
      lDAPDisplayName: SECRET_ATTRIBUTE,
      attributeSyntax: '2.5.5.10',
      oMSyntax: '4',
      isSingleValued: 'TRUE',
      searchFlags: '128',
      adminDescription: 'mydoc K_dir: per-PC, per-user network secret (confidential)',
    });
    await schemaUpdateNow();
    await client.add(`CN=mydoc-Pc-User-Key,${SCHEMA_DN}`, {
      objectClass: 'classSchema',
      cn: 'mydoc-Pc-User-Key',
      governsID: '1.3.6.1.4.1.99999.2.1',
      lDAPDisplayName: KEY_OBJECT_CLASS,
      subClassOf: 'top',
      objectClassCategory: '1',
      rDNAttID: 'cn',
      mustContain: 'cn',
      mayContain: SECRET_ATTRIBUTE,
      possSuperiors: ['organizationalUnit', 'container'],
      defaultObjectCategory: `CN=mydoc-Pc-User-Key,${SCHEMA_DN}`,
      adminDescription: 'mydoc key object: CN=<user>,OU=<pcId>,OU=mydoc-keys,...',
    });
    await schemaUpdateNow();
  } finally {
    await client.unbind();
  }
}

/** Creates the fixture described at the top of this file in the running DC. */
async function createFixture(dir: string, confFile: string, secrets: FixtureSecrets): Promise<void> {
  const tool = (...args: string[]) => sambaTool(confFile, secrets.adminPassword, args);
  await extendSchema(join(dir, 'private', 'tls', 'ca.pem'), secrets.adminPassword);
  await tool('ou', 'add', 'OU=services');
  await tool('ou', 'add', 'OU=mydoc-keys');
  await tool('ou', 'add', `OU=${PC_ID},OU=mydoc-keys`);
  for (const name of SERVICE_NAMES) await tool('user', 'create', name, secrets.passwords[name], '--userou=OU=services');
  for (const name of AD_USER_NAMES) {
    await tool('user', 'create', name, secrets.passwords[name], ...(name === 'erin' ? ['--must-change-at-next-login'] : []));
  }
  await tool('user', 'disable', 'dora');
  await tool('group', 'add', 'mydoc-admins');
  await tool('group', 'add', 'helpdesk');
  await tool('group', 'addmembers', 'helpdesk', 'carol');
  await tool('group', 'addmembers', 'mydoc-admins', 'helpdesk,dave');
  const sid = /^objectSid: (S-1-[0-9-]+)$/m.exec(await tool('user', 'show', 'svc-pc1', '--attributes=objectSid'))?.[1];
  if (sid === undefined) throw new Error('samba-ad: no objectSid for svc-pc1');
  // Inherited by everything below: svc-pc1 full control (GA includes CONTROL_ACCESS, needed for
  // the confidential attribute); Authenticated Users read properties, list, read control.
  await tool('dsacl', 'set', `--objectdn=${KEYS_DN}`, `--sddl=(A;CI;GA;;;${sid})(A;CI;RPLCLORC;;;AU)`);
}

/** Provisions the domain and creates the fixture into `templateDir` (built aside, then renamed). */
async function buildTemplate(templateDir: string): Promise<void> {
  const build = await mkdtemp(`${templateDir}.build-`);
  try {
    const secrets: FixtureSecrets = {
      adminPassword: adPassword(),
      passwords: Object.fromEntries([...AD_USER_NAMES, ...SERVICE_NAMES].map((n) => [n, adPassword()])) as FixtureSecrets['passwords'],
    };
    const provision = await runCommand(
      'samba-tool',
      [
        'domain', 'provision', `--targetdir=${build}`, `--realm=${REALM}`, `--domain=${DOMAIN}`, '--server-role=dc', '--dns-backend=NONE',
        `--adminpass=${secrets.adminPassword}`, `--host-name=${HOST_NAME}`, '--host-ip=127.0.0.1', '--use-rfc2307',
      ],
      { timeoutMs: 180_000 },
    );
    if (provision.status !== 0) throw new Error(`samba-tool domain provision failed:\n${provision.stderr}${provision.stdout}`);
    const confFile = await writeSmbConf(build);
    // The first start also generates the TLS CA and certificate into private/tls.
    const running = await launch(build, confFile);
    try {
      await createFixture(build, confFile, secrets);
    } finally {
      await terminate(running);
    }
    await writeFile(join(build, 'mydoc-fixture.json'), JSON.stringify(secrets), { mode: 0o600 });
    await rm(templateDir, { recursive: true, force: true });
    await rename(build, templateDir);
  } catch (error) {
    await rm(build, { recursive: true, force: true });
    throw error;
  }
}

/** The template folder, built first when missing or when its certificate is about to expire. */
async function template(): Promise<string> {
  const dir = join(tmpdir(), `mydoc-samba-ad-template-${await sambaVersion()}-v${FIXTURE_VERSION}`);
  if (!existsSync(join(dir, 'mydoc-fixture.json')) || !certValid(join(dir, 'private', 'tls', 'ca.pem'))) await buildTemplate(dir);
  return dir;
}

/** Starts a Samba AD DC with the fixture described at the top of this file. */
export async function startSambaAd(): Promise<SambaAd> {
  await assertPortsFree();
  const templateDir = await template();
  const dir = await mkdtemp(join(tmpdir(), 'mydoc-samba-ad-'));
  try {
    const copy = await runCommand('cp', ['-a', `${templateDir}/.`, dir]);
    if (copy.status !== 0) throw new Error(`samba-ad: cannot copy the template: ${copy.stderr}`);
    const secrets = JSON.parse(await readFile(join(dir, 'mydoc-fixture.json'), 'utf8')) as FixtureSecrets;
    const confFile = await writeSmbConf(dir);
    const caFile = join(dir, 'private', 'tls', 'ca.pem');
    let running: Daemon | null = await launch(dir, confFile);
    // If the test process dies without stop(), do not leave its folder behind (launchDaemon kills the DC).
    const cleanUpOnExit = () => rmSync(dir, { recursive: true, force: true });
    process.once('exit', cleanUpOnExit);
    let stopping: Promise<void> | null = null;
    const pid = running.child.pid!;
    const output = running.output;
    const userDn = (name: string) => `CN=${name},CN=Users,${BASE_DN}`;
    const serviceDn = (name: string) => `CN=${name},OU=services,${BASE_DN}`;
    return {
      ldapUrl: 'ldap://127.0.0.1:389',
      ldapsUrl: 'ldaps://127.0.0.1:636',
      caFile,
      caPem: await readFile(caFile, 'utf8'),
      tlsServerName: TLS_SERVER_NAME,
      baseDn: BASE_DN,
      realm: REALM,
      domain: DOMAIN,
      dnsDomain: DNS_DOMAIN,
      adminPassword: secrets.adminPassword,
      admin: account('Administrator', userDn('Administrator'), secrets.adminPassword),
      users: Object.fromEntries(AD_USER_NAMES.map((n) => [n, account(n, userDn(n), secrets.passwords[n])])) as Record<AdUserName, AdAccount>,
      service: account('svc-pc1', serviceDn('svc-pc1'), secrets.passwords['svc-pc1']),
      otherService: account('svc-other', serviceDn('svc-other'), secrets.passwords['svc-other']),
      groupDns: { helpdesk: userDn('helpdesk'), admins: userDn('mydoc-admins') },
      keysDn: KEYS_DN,
      pcId: PC_ID,
      keyDnTemplate: KEY_DN_TEMPLATE,
      keyDn: (user, pcId = PC_ID) => KEY_DN_TEMPLATE.replace('{user}', user).replace('{pcId}', pcId),
      dir,
      pid,
      output,
      stop: () => {
        stopping ??= (async () => {
          if (running) {
            const r = running;
            running = null;
            await terminate(r);
          }
          process.removeListener('exit', cleanUpOnExit);
          await rm(dir, { recursive: true, force: true });
        })();
        return stopping;
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
