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
 * The mydoc part of the fixture is made with the shipped kit, deploy/active-directory/, exactly
 * as an administrator would (no test-only copy): samba/new-oid-arc.sh gives the OID arc;
 * samba/extend-schema.sh applies mydoc-schema.ldif to the stopped DC's sam.ldb (the local way,
 * so the DC's smb.conf does not allow schema updates over LDAP); samba/add-pc.sh pc1 pc2 runs
 * over LDAP as Administrator (password in $PASSWD) and creates the service accounts, the key
 * containers and their ACEs. `kit()` runs the kit's scripts against the running DC the same way.
 * The AD Recycle Bin is on (enabled locally before the first start: Samba refuses it over LDAP),
 * so deleted objects keep their attributes, as in most real forests.
 *
 * Domain: realm CORP.EXAMPLE, NetBIOS domain CORP, base DN DC=corp,DC=example, DC dc1.
 *   CN=Users:     alice, bob (plain users); carol (in helpdesk, itself in mydoc-admins);
 *                 dave (directly in mydoc-admins); dora (disabled: bind gives `data 533`);
 *                 erin (must change password at next logon, pwdLastSet=0: `data 773`)
 *                 groups CN=mydoc-admins ⊃ CN=helpdesk ⊃ carol; CN=mydoc-admins ∋ dave
 *   OU=mydoc-services: svc-pc1 (PC pc1's service account), svc-pc2 (PC pc2's), made by add-pc.sh,
 *                 passwords in the files add-pc.sh wrote (`passwordFile(pcId)`)
 *   OU=mydoc-keys: OU=pc1 and OU=pc2, empty; key objects CN=<user>,OU=<pcId>,OU=mydoc-keys,
 *                 DC=corp,DC=example of class mydocPcUserKey (must cn, may mydocNetworkSecret)
 * Passwords are random per template (saved in it) and given in `users`, `service`, ...
 *
 * K_dir is `mydocNetworkSecret` (octet string, single-valued, searchFlags 640 = CONFIDENTIAL
 * 0x80 + RODC-filtered 0x200, not in the global catalog). AD hides a confidential attribute from
 * everyone lacking the control-access right on it, even principals that may read all
 * properties: the key objects' default security descriptor lets Authenticated Users read them,
 * so alice and svc-pc2 see pc1's key objects and their `cn` but never the secret; add-pc.sh gives
 * svc-pc1 alone, on OU=pc1 only, create/delete of key objects and write + control access on the
 * secret. Domain admins (and the builtin Administrators, Enterprise Admins, inherited from the
 * domain root) see it too, as in real AD.
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
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'ldapts';
import { runCommand, type CommandResult } from './server.js';
import type { LdapDirectorySettings } from '../../policy/directory/ldap/directory.js';

const SAMBA_BIN = '/usr/sbin/samba';
/** Bump when the fixture changes, so older templates are not reused. */
const FIXTURE_VERSION = 3;
/** The shipped Active Directory kit (the repository's deploy/active-directory/, from dist/test/helpers/). */
export const AD_KIT_DIR = fileURLToPath(new URL('../../../deploy/active-directory/', import.meta.url));
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
const OTHER_PC_ID = 'pc2';
const PC_IDS = [PC_ID, OTHER_PC_ID] as const;
type PcId = (typeof PC_IDS)[number];
/** add-pc.sh's defaults. */
const KEYS_DN = `OU=mydoc-keys,${BASE_DN}`;
const SERVICES_DN = `OU=mydoc-services,${BASE_DN}`;
const KEY_DN_TEMPLATE = `CN={user},OU={pcId},${KEYS_DN}`;
/** Where the template keeps the password files add-pc.sh wrote. */
const PASSWORD_DIR = 'mydoc-pc-passwords';
export const SECRET_ATTRIBUTE = 'mydocNetworkSecret';
export const KEY_OBJECT_CLASS = 'mydocPcUserKey';
export const AD_USER_NAMES = ['alice', 'bob', 'carol', 'dave', 'dora', 'erin'] as const;
export type AdUserName = (typeof AD_USER_NAMES)[number];
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
  /** svc-pc1, made by add-pc.sh: creates, deletes, writes and reads the key objects in OU=pc1 (and nowhere else). */
  service: AdAccount;
  /** svc-pc2, another PC's account (add-pc.sh pc2): sees OU=pc1's key objects like any user, never the secret. */
  otherService: AdAccount;
  /** The 0600 password file add-pc.sh wrote for `pcId` (what the admin carries to the PC). */
  passwordFile(pcId: PcId): string;
  /** The OID arc the schema was extended with (from new-oid-arc.sh). */
  oidArc: string;
  groupDns: { helpdesk: string; admins: string };
  /** `OU=mydoc-keys,DC=corp,DC=example` */
  keysDn: string;
  pcId: string;
  keyDnTemplate: string;
  /** pc2: the other PC. */
  otherPcId: string;
  /** DN of the key object of `user` on `pcId` (default this fixture's PC). */
  keyDn(user: string, pcId?: string): string;
  /** DN of the key container of `pcId`. */
  containerDn(pcId: string): string;
  /**
   * Runs a script of the kit (e.g. `samba/remove-pc.sh`) against this DC over LDAP as
   * Administrator, the password in $PASSWD: `script [args...] -H ldap://127.0.0.1 -- <admin options>`.
   */
  kit(script: string, args: string[]): Promise<CommandResult>;
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
  passwords: Record<AdUserName, string>;
  oidArc: string;
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

/** Runs a script of the kit; its output and status as they are. */
function runKitScript(script: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<CommandResult> {
  return runCommand(join(AD_KIT_DIR, script), args, { env, timeoutMs: 120_000 });
}

/** Runs a script of the kit against the running DC over LDAP as Administrator. */
function kitOverLdap(confFile: string, adminPassword: string, script: string, args: string[]): Promise<CommandResult> {
  return runKitScript(script, [...args, '-H', 'ldap://127.0.0.1', '--', `--configfile=${confFile}`, '-U', 'Administrator', '--use-kerberos=off'], {
    ...process.env,
    PASSWD: adminPassword,
  });
}

function kitOk(script: string, r: CommandResult): string {
  if (r.status !== 0) throw new Error(`samba-ad: ${script} failed (${r.signal ?? `exit ${r.status}`}):\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Extends the stopped DC's schema with the kit, on its local sam.ldb; returns the OID arc used. */
async function extendSchema(dir: string, confFile: string): Promise<string> {
  const oidArc = kitOk('new-oid-arc.sh', await runKitScript('samba/new-oid-arc.sh', [])).trim();
  kitOk('extend-schema.sh', await runKitScript('samba/extend-schema.sh', ['-H', join(dir, 'private', 'sam.ldb'), oidArc, '--', `--configfile=${confFile}`]));
  return oidArc;
}

/** The Recycle Bin optional feature ([MS-ADTS] 3.1.1.9.1). */
const RECYCLE_BIN_FEATURE_GUID = '766ddcd8-acd0-445e-f3b9-a7f9b6744f2a';

/** Turns the Recycle Bin on in the stopped DC's sam.ldb (Samba allows it only locally). */
async function enableRecycleBin(dir: string, confFile: string): Promise<void> {
  const ldif = `dn:\nchangetype: modify\nadd: enableOptionalFeature\nenableOptionalFeature: CN=Partitions,CN=Configuration,${BASE_DN}:${RECYCLE_BIN_FEATURE_GUID}\n-\n`;
  const r = await runCommand('ldbmodify', ['-H', join(dir, 'private', 'sam.ldb'), `--configfile=${confFile}`], { input: ldif, timeoutMs: 60_000 });
  if (r.status !== 0) throw new Error(`samba-ad: cannot enable the Recycle Bin:\n${r.stderr}${r.stdout}`);
}

/** Creates the fixture described at the top of this file in the running DC. */
async function createFixture(dir: string, confFile: string, secrets: FixtureSecrets): Promise<void> {
  const tool = (...args: string[]) => sambaTool(confFile, secrets.adminPassword, args);
  await mkdir(join(dir, PASSWORD_DIR), { mode: 0o700 });
  kitOk('add-pc.sh', await kitOverLdap(confFile, secrets.adminPassword, 'samba/add-pc.sh', ['--out-dir', join(dir, PASSWORD_DIR), ...PC_IDS]));
  for (const name of AD_USER_NAMES) {
    await tool('user', 'create', name, secrets.passwords[name], ...(name === 'erin' ? ['--must-change-at-next-login'] : []));
  }
  await tool('user', 'disable', 'dora');
  await tool('group', 'add', 'mydoc-admins');
  await tool('group', 'add', 'helpdesk');
  await tool('group', 'addmembers', 'helpdesk', 'carol');
  await tool('group', 'addmembers', 'mydoc-admins', 'helpdesk,dave');
}

/** Provisions the domain and creates the fixture into `templateDir` (built aside, then renamed). */
async function buildTemplate(templateDir: string): Promise<void> {
  const build = await mkdtemp(`${templateDir}.build-`);
  try {
    const adminPassword = adPassword();
    const passwords = Object.fromEntries(AD_USER_NAMES.map((n) => [n, adPassword()])) as FixtureSecrets['passwords'];
    const provision = await runCommand(
      'samba-tool',
      [
        'domain', 'provision', `--targetdir=${build}`, `--realm=${REALM}`, `--domain=${DOMAIN}`, '--server-role=dc', '--dns-backend=NONE',
        `--adminpass=${adminPassword}`, `--host-name=${HOST_NAME}`, '--host-ip=127.0.0.1', '--use-rfc2307',
      ],
      { timeoutMs: 180_000 },
    );
    if (provision.status !== 0) throw new Error(`samba-tool domain provision failed:\n${provision.stderr}${provision.stdout}`);
    const confFile = await writeSmbConf(build);
    const secrets: FixtureSecrets = { adminPassword, passwords, oidArc: await extendSchema(build, confFile) };
    await enableRecycleBin(build, confFile);
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

function passwordFile(dir: string, pcId: PcId): string {
  return join(dir, PASSWORD_DIR, `${pcId}.password`);
}

/** The password add-pc.sh wrote for `pcId`, without its final newline (as the agent reads it). */
async function readPassword(dir: string, pcId: PcId): Promise<string> {
  return (await readFile(passwordFile(dir, pcId), 'utf8')).replace(/\r?\n$/, '');
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
    const serviceDn = (name: string) => `CN=${name},${SERVICES_DN}`;
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
      service: account('svc-pc1', serviceDn('svc-pc1'), await readPassword(dir, PC_ID)),
      otherService: account('svc-pc2', serviceDn('svc-pc2'), await readPassword(dir, OTHER_PC_ID)),
      passwordFile: (pcId) => passwordFile(dir, pcId),
      oidArc: secrets.oidArc,
      groupDns: { helpdesk: userDn('helpdesk'), admins: userDn('mydoc-admins') },
      keysDn: KEYS_DN,
      pcId: PC_ID,
      otherPcId: OTHER_PC_ID,
      keyDnTemplate: KEY_DN_TEMPLATE,
      keyDn: (user, pcId = PC_ID) => KEY_DN_TEMPLATE.replace('{user}', user).replace('{pcId}', pcId),
      containerDn: (pcId) => `OU=${pcId},${KEYS_DN}`,
      kit: (script, args) => kitOverLdap(confFile, secrets.adminPassword, script, args),
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

/** The agent's LDAP directory settings for this DC: pc1's service account over LDAPS, the DC's CA, the kit's key DN template. */
export function adDirectorySettings(ad: SambaAd, overrides: Partial<LdapDirectorySettings> = {}): LdapDirectorySettings {
  return {
    urls: [ad.ldapsUrl],
    flavor: 'ad',
    baseDn: ad.baseDn,
    userBaseDn: ad.baseDn,
    serviceDn: ad.service.dn,
    servicePassword: ad.service.password,
    caPem: ad.caPem,
    tlsServerName: ad.tlsServerName,
    insecureSkipVerify: false,
    timeoutMs: 5000,
    adminsGroupDn: ad.groupDns.admins,
    pcId: ad.pcId,
    keyDnTemplate: ad.keyDnTemplate,
    keyAttribute: SECRET_ATTRIBUTE,
    keyObjectClasses: [KEY_OBJECT_CLASS],
    ...overrides,
  };
}
