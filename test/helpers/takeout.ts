/**
 * Test fixture for take-out keys: a fresh data folder (init, users alice,
 * bob and the administrator dave), an issuer key pair, and the real app
 * (`buildApp`) in-process, with one injected clock for the app, the
 * WebDAV lock tables, the take-out keys and the audit log. Requests go through
 * `app.inject`. Two directories:
 * - the local one, whose reachability the test flips through the gate (the
 *   reachability monitor bypassed);
 * - `ldap`: a real slapd (test/helpers/slapd.ts) reached by the product's
 *   LDAP directory, with the real reachability monitor driving the gate as
 *   `mydoc serve` wires it; going offline cuts slapd, `gone` (stopped) or
 *   `hung` (SIGSTOP), and waits for the monitor to lock.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { loadPrivateKey, loadPublicKey } from '../../crypto/key-files.js';
import { NetworkSecretUnavailableError } from '../../crypto/errors.js';
import type { NetworkSecretSource } from '../../crypto/network-secret.js';
import type { AuditLog, AuditRecord } from '../../policy/audit/log.js';
import { dataFolder } from '../../shares/data-folder.js';
import type { AuthResult, Directory } from '../../policy/directory/directory.js';
import { LocalDirectory } from '../../policy/directory/local/directory.js';
import { addLocalUser } from '../../policy/directory/local/enrol.js';
import { Gate } from '../../policy/gate.js';
import { ReachabilityMonitor } from '../../policy/reachability.js';
import { Sessions } from '../../policy/sessions.js';
import { Takeout } from '../../policy/takeout/agent/takeout.js';
import { buildTakeoutKey } from '../../policy/takeout/issuer/approve.js';
import type { RequestDetail } from '../../policy/takeout/request.js';
import { generateIssuerKeyPair, loadIssuerPrivateKey, type IssuerAlg, type IssuerPrivateKey } from '../../policy/takeout/issuer-keys.js';
import { loadConfig, type Config } from '../../server/config/config.js';
import { localEnrolment, recoveryPublicKeyFile } from '../../server/config/data-dir.js';
import { buildDirectory } from '../../server/config/directory.js';
import { enrolUser } from '../../shares/vault/user-vaults.js';
import { slapdServerOptions, type Slapd } from './slapd.js';
import { initDataDir } from '../../server/cli/init.js';
import { composeAgent } from '../../server/agent/compose.js';
import { basicAuth } from './server.js';
import { tempDir } from './keys.js';

export const PASSWORDS = { alice: 'alice-password-1', bob: 'bob-password-22', dave: 'dave-admin-333' } as const;
export type TestUser = keyof typeof PASSWORDS;

/** The local directory, made unreachable on demand (as a company directory would be). */
export class SwitchableDirectory implements Directory {
  readonly kind = 'test';
  readonly servers: readonly string[] = [];
  readonly secrets: NetworkSecretSource;
  down = false;

  constructor(private readonly inner: LocalDirectory) {
    const source = inner.secrets;
    this.secrets = {
      kind: source.kind,
      insecure: source.insecure,
      fetch: (user) => (this.down ? Promise.reject(new NetworkSecretUnavailableError('the directory is unreachable')) : source.fetch(user)),
      create: (user) => source.create(user),
    };
  }

  authenticate(user: string, password: string): Promise<AuthResult> {
    return this.down ? Promise.resolve({ ok: false, reason: 'the directory is unreachable' }) : this.inner.authenticate(user, password);
  }

  async probe(): Promise<boolean> {
    return !this.down;
  }
}

export interface InjectResult {
  status: number;
  body: string;
  json: <T = Record<string, unknown>>() => T;
}

export interface TakeoutFixture {
  dir: string;
  config: Config;
  app: FastifyInstance;
  gate: Gate;
  sessions: Sessions;
  takeout: Takeout;
  issuer: IssuerPrivateKey;
  issuerPrivateFile: string;
  devicePublicKey: KeyObject;
  /** The injected clock, in ms. */
  clock: { now: number };
  /** The users' passwords (PASSWORDS, or the slapd's). */
  passwords: Record<TestUser, string>;
  request(method: string, url: string, opts?: { user?: TestUser | null; password?: string; body?: unknown; login?: string }): Promise<InjectResult>;
  /** The directory stops (true) or answers again (false); resolves when the gate has followed (online check done). */
  setOffline(offline: boolean): Promise<void>;
  /**
   * Holds (true) or resumes (false) the online checks that every successful probe round runs
   * (with a real directory), so that a case can go offline before the next one acts on a key.
   */
  holdOnlineChecks(hold: boolean): void;
  /** As `mydoc takeout approve` does: build and sign the key for request `id`, as dave. */
  signFor(id: string, days: number): Promise<string>;
  audit(): Promise<AuditRecord[]>;
  /** The audit log the app writes (to reopen the take-out engine on the same data folder). */
  auditLog: AuditLog;
  deviceKey: KeyObject;
  close(): Promise<void>;
}

/** A real slapd for the directory, and how going offline cuts it. */
export interface LdapCut {
  slapd: Slapd;
  cut: 'gone' | 'hung';
}

/** Probe settings of the `ldap` fixture: a cut locks within 0.2 x 2 + 0.4 s. */
const LDAP_PROBE = { intervalSeconds: 0.2, failuresToLock: 2, timeoutSeconds: 0.4 };

async function waitUntil(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out: ${what}`);
    await sleep(10);
  }
}

export async function startTakeoutFixture(opts: { maxDays?: number; alg?: IssuerAlg; ldap?: LdapCut } = {}): Promise<TakeoutFixture> {
  const { dir, cleanup } = await tempDir('mydoc-takeout-');
  const issuerPair = await generateIssuerKeyPair(opts.alg ?? 'ES256');
  const issuerPrivateFile = join(dir, 'offline', 'issuer-private.pem');
  await writeFile(join(dir, 'issuer-public.pem'), issuerPair.publicPem);
  await mkdir(join(dir, 'offline'), { recursive: true });
  await writeFile(issuerPrivateFile, issuerPair.privatePem, { mode: 0o600 });
  const ldap = opts.ldap;
  let directoryLines = ['kind: local'];
  if (ldap) {
    const server = slapdServerOptions(ldap.slapd, LDAP_PROBE);
    for (const [name, content] of Object.entries(server.files)) await writeFile(join(dir, name), content, { mode: 0o600 });
    directoryLines = server.directory;
  }
  const configFile = join(dir, 'mydoc.yaml');
  await writeFile(
    configFile,
    ['pcId: pc-test', 'dataDir: data', 'directory:', ...directoryLines.map((l) => `  ${l}`), 'backup:', '  target:', '    kind: path', '    path: nas', 'takeout:', `  maxDays: ${opts.maxDays ?? 14}`, '  issuerPublicKeys: [issuer-public.pem]', ''].join('\n'),
  );
  const config = await loadConfig(configFile);
  await initDataDir(config, { recoveryKeyOut: join(dir, 'offline', 'recovery-private.pem') });
  const passwords: Record<TestUser, string> = ldap ? { alice: ldap.slapd.users.alice.password, bob: ldap.slapd.users.bob.password, dave: ldap.slapd.users.dave.password } : { ...PASSWORDS };
  let directory: Directory;
  if (ldap) {
    directory = await buildDirectory(config);
    const recoveryPublicKey = await loadPublicKey(recoveryPublicKeyFile(config), 'recovery public key');
    for (const user of ['alice', 'bob', 'dave'] as const) await enrolUser({ dataDir: config.dataDir, pcId: config.pcId, user, source: directory.secrets, recoveryPublicKey });
  } else {
    const enrolment = await localEnrolment(config);
    for (const user of ['alice', 'bob', 'dave'] as const) await addLocalUser(enrolment, user, PASSWORDS[user], { admin: user === 'dave' });
  }

  const clock = { now: Math.floor(Date.now() / 1000) * 1000 };
  const now = () => clock.now;
  const switchable = ldap ? undefined : new SwitchableDirectory(new LocalDirectory(config.directory.local.usersFile, config.directory.local.insecureSecretFile));
  directory = switchable ?? directory!;
  // As `mydoc serve` composes it, with the fixture's directory and clock; the monitor below replaces the agent's own.
  const { app, audit, sessions, takeout, gate } = await composeAgent({ config, version: 'test', clock: now, logLevel: 'silent', directory });
  const paths = dataFolder(config.dataDir);
  const deviceKey = await loadPrivateKey(paths.deviceKey, 'device key');
  const devicePublicPem = await readFile(paths.devicePublic, 'utf8');
  // As `mydoc serve` wires them: the monitor drives the gate, and each successful round is an online check.
  let onOnline: (() => void) | undefined;
  let checksHeld = false;
  gate.onOnline(() => onOnline?.());
  const monitor = ldap
    ? new ReachabilityMonitor({
        servers: directory.servers,
        probe: (server, signal) => directory.probe(server, signal),
        intervalMs: LDAP_PROBE.intervalSeconds * 1000,
        timeoutMs: LDAP_PROBE.timeoutSeconds * 1000,
        failuresToLock: LDAP_PROBE.failuresToLock,
        onRenew: () => {
          if (!checksHeld) void takeout.onlineCheck().catch(() => undefined);
        },
        onChange: (reachable) => void gate.setReachable(reachable),
      })
    : undefined;
  const online = new Promise<void>((resolve) => (onOnline = resolve));
  await monitor?.start();
  if (monitor) await online;
  let cut = false;
  await app.ready();
  const issuer = await loadIssuerPrivateKey(issuerPrivateFile, 'issuer key');
  const devicePublicKey = createPublicKey(devicePublicPem);

  const fixture: TakeoutFixture = {
    dir,
    config,
    app,
    gate,
    sessions,
    takeout,
    issuer,
    issuerPrivateFile,
    devicePublicKey,
    clock,
    passwords,
    async request(method, url, o = {}) {
      const headers: Record<string, string> = {};
      const user = o.user === undefined ? 'alice' : o.user;
      if (user !== null) headers.authorization = basicAuth(o.login ?? user, o.password ?? passwords[user]);
      let payload: string | undefined;
      if (o.body !== undefined) {
        payload = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
        headers['content-type'] = 'application/json';
      }
      const res = await app.inject({ method: method as 'GET', url, headers, ...(payload !== undefined && { payload }) });
      return { status: res.statusCode, body: res.body, json: <T>() => JSON.parse(res.body) as T };
    },
    async setOffline(offline) {
      if (!ldap) {
        switchable!.down = offline;
        await gate.setReachable(!offline);
        return;
      }
      if (offline === cut) return;
      cut = offline;
      const pid = ldap.slapd.pid;
      if (offline) {
        if (ldap.cut === 'hung') process.kill(pid, 'SIGSTOP');
        else await ldap.slapd.stop({ keepData: true });
        await waitUntil(() => !gate.isReachable, 'the monitor locks');
      } else {
        const back = new Promise<void>((resolve) => (onOnline = resolve));
        if (ldap.cut === 'hung') process.kill(pid, 'SIGCONT');
        else await ldap.slapd.start();
        await back; // online, and the online check is done
      }
    },
    holdOnlineChecks(hold) {
      checksHeld = hold;
    },
    async signFor(id, days) {
      const detail = (await fixture.request('GET', `/api/takeout/requests/${id}`, { user: 'dave' })).json<RequestDetail>();
      return (await buildTakeoutKey({ issuer, admin: 'dave', request: detail, devicePublicKey, days, now: clock.now })).token;
    },
    auditLog: audit,
    deviceKey,
    async audit() {
      const text = await readFile(dataFolder(config.dataDir).auditLog, 'utf8');
      return text.trimEnd().split('\n').map((l) => JSON.parse(l) as AuditRecord);
    },
    async close() {
      if (cut) await fixture.setOffline(false);
      monitor?.stop();
      takeout.close();
      await app.close();
      await sessions.lockAll();
      await audit.close();
      await cleanup();
    },
  };
  return fixture;
}
