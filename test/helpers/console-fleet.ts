/**
 * Test helper: a fleet of real processes. One console (`mydoc console init` +
 * `mydoc console serve`, its own data folder, local directory) and N agents
 * (`mydoc serve` through server.ts, each with its own data folder, vault and
 * local users), each registered with `mydoc console pc add`, enrolled with
 * its one-time token and linked (the console's CA pinned). The console's
 * local users file holds administrators in groups mapped to the four roles
 * (viewer, data, approver, sharing) and any extra directory users (share
 * grantees) and groups (nested ones too). Each PC's users use their drive
 * once at the start (one PROPFIND on the agent), so that their vaults are
 * open and the PC's status names them (the agent reports open sessions
 * only). Everything is stopped by its pid;
 * everything listens on 127.0.0.1 on free ports, in one temporary folder.
 *
 * Clients: `consoleRequest` (node:https, trusting only the console's CA, raw
 * paths sent as given), `curl` (the password fed on stdin through `-K -`,
 * never on the command line), `rclone` (an on-the-fly :webdav: remote, no
 * RCLONE_* or proxy settings from the caller), a web session of the
 * administrators' page (the login form with its CSRF token and cookie), and
 * an RSS sampler of a process (/proc/<pid>/status).
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalUsersFile, type GroupRecord } from '../../policy/directory/local/users-file.js';
import { consoleFolder } from '../../server/console/data-folder.js';
import type { Role } from '../../server/console/config.js';
import { dataFolder } from '../../shares/data-folder.js';
import { launchDaemon, stopDaemon, type Daemon } from './daemon.js';
import { tempDir } from './keys.js';
import { basicAuth, davRequest, freePort, MYDOC_BIN, randomPassword, runCommand, startServer, type CommandResult, type DavResponse, type RunningServer, type ServerUser } from './server.js';

const CONSOLE_START_MS = 30_000;
const CONSOLE_GRACE_MS = 10_000;
const LINK_WAIT_MS = 30_000;

/** The group each role is mapped to in the console's configuration. */
export const ROLE_GROUP: Readonly<Record<Role, string>> = { viewer: 'mydoc-viewers', data: 'mydoc-data', approver: 'mydoc-approvers', sharing: 'mydoc-sharing' };

export interface Account {
  name: string;
  password: string;
}

export interface FleetAdmin extends Account {
  roles: Role[];
}

/** A PC of the fleet as a test asks for it. */
export interface FleetPcSpec {
  pcId: string;
  /** Its local users (vault owners); default one user, `alice`. */
  users?: string[];
}

export interface FleetOptions {
  /** The PCs (default pc-1 with alice and bob, pc-2 with carol). */
  pcs?: FleetPcSpec[];
  /** The administrators (default: vic viewer, dana data, dora data, ada approver, sam sharing, root every role). */
  admins?: { name: string; roles: Role[] }[];
  /** Other accounts in the console's directory (share grantees), each in the given groups. */
  people?: { name: string; groups?: string[] }[];
  /** Groups of the console's directory beyond the role groups: name -> members (users and groups: nested). */
  groups?: Record<string, GroupRecord>;
  /** More top-level lines of the console's configuration (e.g. `access: { approvals: 1 }`). */
  consoleConfig?: string[];
  /** More top-level lines of every agent's configuration. */
  agentConfig?: string[];
  /** Extra environment of the console process. */
  consoleEnv?: NodeJS.ProcessEnv;
  /** Extra environment of every agent process. */
  agentEnv?: NodeJS.ProcessEnv;
  /** The console's log level (default warn). */
  logLevel?: string;
}

export interface FleetPc {
  pcId: string;
  server: RunningServer;
  users: ServerUser[];
  /** The agent's hash-chained audit log. */
  auditFile: string;
  /** The user's credentials on this PC (throws for an unknown user). */
  user(name: string): ServerUser;
}

export interface AuditRecord {
  actor?: string;
  action: string;
  target?: string;
  decision: string;
  reason?: string;
  [key: string]: unknown;
}

export interface ConsoleResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Milliseconds from sending to the end of the answer. */
  ms: number;
}

export interface ConsoleFleet {
  dir: string;
  configFile: string;
  consoleDataDir: string;
  /** `https://127.0.0.1:PORT` (no trailing slash): the administrators' page, the API, /pcs and /shared. */
  url: string;
  port: number;
  linkPort: number;
  /** The console's CA (PEM file and text): the only CA the clients trust. */
  caFile: string;
  caPem: string;
  /** The console's server certificate (for the browser's SPKI pin). */
  certPem: string;
  /** The console's hash-chained audit trail. */
  auditFile: string;
  admins: Record<string, FleetAdmin>;
  /** An administrator with `role` (the first one found; throws if none). */
  admin(role: Role): FleetAdmin;
  people: Record<string, Account>;
  pcs: FleetPc[];
  pc(pcId: string): FleetPc;
  /** The console process's pid (undefined while it is stopped). */
  consolePid(): number | undefined;
  consoleOutput(): string;
  /** Stops the console process (SIGTERM, then SIGKILL after the grace). */
  stopConsole(): Promise<void>;
  /** Starts the console process again on the same ports and data folder and waits until every running agent has relinked. */
  startConsole(): Promise<void>;
  /** Stops one agent (its link drops); its folder is removed. */
  stopAgent(pcId: string): Promise<void>;
  /** Kills one agent at once (SIGKILL: a PC that loses power, no shutdown backup); its folder is removed. */
  killAgent(pcId: string): Promise<void>;
  /** Stops one agent and starts it again on its own folder (no user session is open after it) and waits until its link is up again. */
  restartAgent(pcId: string): Promise<void>;
  /** Runs `mydoc console ARGS --config <console.yaml>`. */
  mydocConsole(args: string[]): Promise<CommandResult>;
  /** The console's trail / an agent's audit log, parsed. */
  consoleTrail(): Promise<AuditRecord[]>;
  agentAudit(pcId: string): Promise<AuditRecord[]>;
  /** Resolves once the console's store shows every running PC online with its users. */
  waitLinked(timeoutMs?: number): Promise<void>;
  /** One HTTPS request to the console (path sent as is: percent-encode it yourself), Basic auth as `as` unless null. */
  consoleRequest(method: string, path: string, opts?: { as?: Account | null; headers?: OutgoingHttpHeaders; body?: string | Buffer }): Promise<ConsoleResponse>;
  /** A request to an agent directly, as one of its users (server.ts davRequest). */
  agentRequest(pcId: string, user: string, method: string, path: string, opts?: { headers?: OutgoingHttpHeaders; body?: string | Buffer }): Promise<DavResponse>;
  /** `curl ARGS` trusting only the console's CA, authenticated as `as` (the password fed on stdin); `url` is a console path. */
  curl(as: Account | null, args: string[], opts?: { timeoutMs?: number }): Promise<CommandResult>;
  /** GET `path` of the console with curl as `as`, the body hashed as it arrives (never held): status, bytes, SHA-256, seconds. */
  curlDownload(as: Account, path: string, opts?: { timeoutMs?: number }): Promise<CurlDownload>;
  /** `rclone ARGS` with `:webdav:` pointing at `remoteUrl` (a full URL), as `as`, trusting `caFile`. */
  rclone(as: Account, args: string[], remote: { url: string; caFile: string }, opts?: { timeoutMs?: number }): Promise<CommandResult>;
  /** A logged-in session of the administrators' web page. */
  webSession(as: Account): Promise<WebSession>;
  /** Stops everything and removes the folder. Idempotent. */
  stop(): Promise<void>;
}

export interface CurlDownload {
  status: number;
  bytes: number;
  sha256: string;
  seconds: number;
  stderr: string;
}

export interface WebSession {
  cookie: string;
  csrf: string;
  get(path: string): Promise<ConsoleResponse>;
  /** A form POST with the session's CSRF token added. */
  post(path: string, fields: Record<string, string>): Promise<ConsoleResponse>;
}

const DEFAULT_PCS: FleetPcSpec[] = [
  { pcId: 'pc-1', users: ['alice', 'bob'] },
  { pcId: 'pc-2', users: ['carol'] },
];

const DEFAULT_ADMINS: { name: string; roles: Role[] }[] = [
  { name: 'vic', roles: ['viewer'] },
  { name: 'dana', roles: ['data'] },
  { name: 'dora', roles: ['data'] },
  { name: 'ada', roles: ['approver'] },
  { name: 'sam', roles: ['sharing'] },
  { name: 'root', roles: ['viewer', 'data', 'approver', 'sharing'] },
];

const accountOf = (name: string): Account => ({ name, password: `${name}-${randomBytes(9).toString('base64url')}` });

/** The environment for rclone: no RCLONE_* settings and no proxies from the caller. */
function rcloneEnv(configFile: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^RCLONE_/i.test(k) || /_proxy$/i.test(k)) continue;
    env[k] = v;
  }
  env.RCLONE_CONFIG = configFile;
  return env;
}

/** A curl config line's quoted value (curl's -K syntax: backslash escapes inside double quotes). */
const curlQuoted = (value: string): string => `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

function parseAudit(text: string): AuditRecord[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as AuditRecord);
}

/** One HTTPS request trusting only `ca`, no keep-alive. */
function httpsRequest(url: string, ca: string, method: string, headers: OutgoingHttpHeaders, body?: Buffer, timeoutMs = 120_000): Promise<ConsoleResponse> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, ca, headers, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), ms: Date.now() - started }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Starts the console, adds the PCs, starts their agents and waits until each is linked and has reported its users. */
export async function startConsoleFleet(opts: FleetOptions = {}): Promise<ConsoleFleet> {
  const { dir, cleanup } = await tempDir('mydoc-fleet-');
  const pcs: FleetPc[] = [];
  const state: { daemon: Daemon | undefined } = { daemon: undefined };
  const logLevel = opts.logLevel ?? 'warn';
  const env = { ...process.env, MYDOC_CONFIG: '', MYDOC_CONSOLE_CONFIG: '', MYDOC_LOG_LEVEL: logLevel, ...opts.consoleEnv };
  let stopped: Promise<void> | undefined;

  const stopAll = async () => {
    await Promise.all(pcs.map((pc) => pc.server.stop()));
    if (state.daemon) await stopDaemon(state.daemon, CONSOLE_GRACE_MS);
    state.daemon = undefined;
    await cleanup();
  };

  try {
    const [port, linkPort] = [await freePort(), await freePort()];
    const url = `https://127.0.0.1:${port}`;
    const configFile = join(dir, 'console.yaml');
    const consoleDataDir = join(dir, 'console-data');
    const paths = consoleFolder(consoleDataDir);
    const roles = (Object.keys(ROLE_GROUP) as Role[]).map((r) => `${r}: [${ROLE_GROUP[r]}]`).join(', ');
    await writeFile(
      configFile,
      [
        '# written by test/helpers/console-fleet.ts',
        'dataDir: console-data',
        `listen: { host: "127.0.0.1", port: ${port}, linkPort: ${linkPort} }`,
        'directory: { kind: local }',
        `roles: { ${roles} }`,
        'link: { heartbeatSeconds: 1 }',
        ...(opts.consoleConfig ?? []),
        '',
      ].join('\n'),
    );
    const mydocConsole = (args: string[]) => runCommand(process.execPath, [MYDOC_BIN, 'console', ...args, '--config', configFile], { env, timeoutMs: 60_000 });
    const must = async (args: string[]): Promise<string> => {
      const r = await mydocConsole(args);
      if (r.status !== 0) throw new Error(`mydoc console ${args.join(' ')} failed (exit ${r.status ?? r.signal}):\n${r.stderr}`);
      return r.stdout;
    };
    await must(['init']);
    const caPem = await readFile(paths.tls.caFile, 'utf8');
    const certPem = await readFile(paths.tls.certFile, 'utf8');

    // The console's directory: administrators in the role groups, other people, other groups.
    const users = new LocalUsersFile(paths.usersFile);
    const admins: Record<string, FleetAdmin> = {};
    for (const a of opts.admins ?? DEFAULT_ADMINS) {
      admins[a.name] = { ...accountOf(a.name), roles: a.roles };
      await users.add(a.name, admins[a.name]!.password);
    }
    const people: Record<string, Account> = {};
    for (const p of opts.people ?? []) {
      people[p.name] = accountOf(p.name);
      await users.add(p.name, people[p.name]!.password);
    }
    const groups: Record<string, GroupRecord> = {};
    for (const role of Object.keys(ROLE_GROUP) as Role[]) {
      groups[ROLE_GROUP[role]] = { users: Object.values(admins).filter((a) => a.roles.includes(role)).map((a) => a.name) };
    }
    for (const p of opts.people ?? []) {
      for (const g of p.groups ?? []) (groups[g] ??= { users: [] }).users!.push(p.name);
    }
    for (const [name, record] of Object.entries(opts.groups ?? {})) {
      const g = (groups[name] ??= {});
      if (record.users) g.users = [...(g.users ?? []), ...record.users];
      if (record.groups) g.groups = [...(g.groups ?? []), ...record.groups];
    }
    for (const [name, record] of Object.entries(groups)) await users.setGroup(name, record);

    const startConsoleProcess = async () => {
      state.daemon = await launchDaemon({
        name: 'mydoc console serve',
        command: process.execPath,
        args: [MYDOC_BIN, 'console', 'serve', '--config', configFile],
        env,
        ready: () => httpsRequest(`${url}/healthz`, caPem, 'GET', {}, undefined, 2000).then((r) => r.status === 200, () => false),
        readyTimeoutMs: CONSOLE_START_MS,
        where: `${url}/healthz`,
        graceMs: CONSOLE_GRACE_MS,
      });
    };
    await startConsoleProcess();

    // Each PC: registered first (its token), then its agent, which enrols at its first link.
    const specs = opts.pcs ?? DEFAULT_PCS;
    // allSettled: when one fails, the others have finished starting (and are in `pcs`) before everything is stopped.
    const started = await Promise.allSettled(
      specs.map(async (spec) => {
        const out = await must(['pc', 'add', spec.pcId]);
        const token = /enrolmentToken: (\S+)\n/.exec(out)?.[1];
        if (!token) throw new Error(`no enrolment token in:\n${out}`);
        const serverUsers = (spec.users ?? ['alice']).map((name) => ({ name, password: randomPassword() }));
        const server = await startServer({
          pcId: spec.pcId,
          users: serverUsers,
          env: { MYDOC_LOG_LEVEL: 'info', ...opts.agentEnv },
          files: { 'console-ca.pem': caPem },
          extraConfig: ['console:', `  url: "https://127.0.0.1:${linkPort}"`, '  caFile: console-ca.pem', `  enrolmentToken: "${token}"`, ...(opts.agentConfig ?? [])],
        });
        pcs.push({
          pcId: spec.pcId,
          server,
          users: serverUsers,
          auditFile: dataFolder(server.dataDir).auditLog,
          user(name) {
            const u = serverUsers.find((x) => x.name === name);
            if (!u) throw new Error(`PC ${spec.pcId} has no user ${name}`);
            return u;
          },
        });
        // A PC reports the users whose vault is open (server/agent/compose.ts status): each one uses their drive once, as a mapped drive does.
        for (const u of serverUsers) {
          const r = await davRequest(server, 'PROPFIND', '/', { user: u.name, password: u.password, headers: { depth: '0' } });
          if (r.status !== 207) throw new Error(`${spec.pcId}: ${u.name}'s first PROPFIND answered ${r.status}`);
        }
      }),
    );
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    pcs.sort((a, b) => a.pcId.localeCompare(b.pcId));

    const consoleRequest: ConsoleFleet['consoleRequest'] = (method, path, o = {}) => {
      const body = typeof o.body === 'string' ? Buffer.from(o.body, 'utf8') : o.body;
      const headers: OutgoingHttpHeaders = { ...(o.as ? { authorization: basicAuth(o.as.name, o.as.password) } : {}), ...(body ? { 'content-length': body.length } : {}), ...o.headers };
      return httpsRequest(`${url}${path}`, caPem, method, headers, body);
    };

    const webSession = async (as: Account): Promise<WebSession> => {
      const form = await consoleRequest('GET', '/admin/login', { as: null });
      const formCookie = /(__Host-[^=]+=[^;]+)/.exec(String(form.headers['set-cookie'] ?? ''))?.[1];
      const formCsrf = /name="csrf" value="([^"]+)"/.exec(form.body.toString())?.[1];
      if (!formCookie || !formCsrf) throw new Error(`the login page has no form cookie or CSRF token (status ${form.status})`);
      const posted = await consoleRequest('POST', '/admin/login', {
        as: null,
        headers: { cookie: formCookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ name: as.name, password: as.password, csrf: formCsrf }).toString(),
      });
      const cookie = /(__Host-[^=]+=[^;]+)/.exec(String(posted.headers['set-cookie'] ?? ''))?.[1];
      if (posted.status !== 303 || !cookie) throw new Error(`login of ${as.name} failed: ${posted.status} ${posted.body.toString().slice(0, 500)}`);
      const first = await consoleRequest('GET', '/admin/pcs', { as: null, headers: { cookie } });
      const csrf = /name="csrf" value="([^"]+)"/.exec(first.body.toString())?.[1];
      if (first.status !== 200 || !csrf) throw new Error(`after the login of ${as.name}, /admin/pcs answered ${first.status}`);
      return {
        cookie,
        csrf,
        get: (path) => consoleRequest('GET', path, { as: null, headers: { cookie } }),
        post: (path, fields) =>
          consoleRequest('POST', path, { as: null, headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ ...fields, csrf }).toString() }),
      };
    };

    const waitLinked = async (timeoutMs = LINK_WAIT_MS) => {
      const deadline = Date.now() + timeoutMs;
      const viewer = Object.values(admins)[0];
      if (!viewer) throw new Error('waitLinked needs an administrator');
      const session = await webSession(viewer);
      for (;;) {
        const missing: string[] = [];
        const list = (await mydocConsole(['pc', 'list'])).stdout;
        for (const pc of pcs) {
          if (!new RegExp(`^${pc.pcId}\\s+online\\s`, 'm').test(list)) {
            missing.push(`${pc.pcId} not online`);
            continue;
          }
          // Its users, as its last status reported them, on its page.
          const page = (await session.get(`/admin/pcs/${encodeURIComponent(pc.pcId)}`)).body.toString();
          for (const u of pc.users) if (!page.includes(u.name)) missing.push(`${pc.pcId}: ${u.name} not reported`);
        }
        if (missing.length === 0) return;
        if (Date.now() > deadline) {
          throw new Error(`the fleet did not link within ${timeoutMs / 1000} s: ${missing.join('; ')}\n--- pc list ---\n${list}\n--- console ---\n${state.daemon?.output().slice(-4000) ?? '(stopped)'}\n${pcs.map((pc) => `--- ${pc.pcId} ---\n${pc.server.output().slice(-3000)}`).join('\n')}`);
        }
        await sleep(200);
      }
    };
    await waitLinked();
    // After a console restart the store still shows each PC online for a while (seen within the
    // online window): wait until the new console process has each one's link (no 503 through it).
    const waitRelinked = async (timeoutMs: number) => {
      const lister = Object.values(admins).find((a) => a.roles.includes('data'));
      if (!lister) return;
      const deadline = Date.now() + timeoutMs;
      for (const pc of pcs) {
        for (;;) {
          const res = await consoleRequest('PROPFIND', `/pcs/${encodeURIComponent(pc.pcId)}/`, { as: lister, headers: { depth: '0' } });
          if (res.status !== 503) break;
          if (Date.now() > deadline) throw new Error(`PC ${pc.pcId} did not relink within ${timeoutMs / 1000} s: ${res.body.toString().slice(0, 300)}`);
          await sleep(200);
        }
      }
    };

    /** Takes a PC out of the fleet (to stop or kill it). */
    const takePc = (pcId: string): FleetPc => {
      const at = pcs.findIndex((p) => p.pcId === pcId);
      if (at < 0) throw new Error(`no PC ${pcId} in the fleet`);
      return pcs.splice(at, 1)[0]!;
    };

    const scratch = join(dir, 'clients');
    const fleet: ConsoleFleet = {
      dir,
      configFile,
      consoleDataDir,
      url,
      port,
      linkPort,
      caFile: paths.tls.caFile,
      caPem,
      certPem,
      auditFile: paths.auditLog,
      admins,
      admin(role) {
        const found = Object.values(admins).find((a) => a.roles.includes(role));
        if (!found) throw new Error(`no administrator with the ${role} role`);
        return found;
      },
      people,
      pcs,
      pc(pcId) {
        const found = pcs.find((p) => p.pcId === pcId);
        if (!found) throw new Error(`no PC ${pcId} in the fleet`);
        return found;
      },
      consolePid: () => state.daemon?.child.pid,
      consoleOutput: () => state.daemon?.output() ?? '',
      stopConsole: async () => {
        if (state.daemon) await stopDaemon(state.daemon, CONSOLE_GRACE_MS);
        state.daemon = undefined;
      },
      startConsole: async () => {
        if (state.daemon) throw new Error('the console is running');
        await startConsoleProcess();
        await waitLinked(60_000);
        await waitRelinked(60_000);
      },
      stopAgent: async (pcId) => {
        await takePc(pcId).server.stop();
      },
      killAgent: async (pcId) => {
        const { server } = takePc(pcId);
        process.kill(server.pid, 'SIGKILL');
        await server.exited;
        await server.stop();
      },
      restartAgent: async (pcId) => {
        const pc = fleet.pc(pcId);
        await pc.server.restart();
        // The new process says when its link is up (the agents log at info); its status follows on the link.
        const deadline = Date.now() + LINK_WAIT_MS;
        while (!pc.server.output().includes('console link: connected to')) {
          if (Date.now() > deadline) throw new Error(`${pcId} did not relink within ${LINK_WAIT_MS / 1000} s after its restart:\n${pc.server.output().slice(-3000)}`);
          await sleep(100);
        }
      },
      mydocConsole,
      consoleTrail: async () => parseAudit(await readFile(paths.auditLog, 'utf8')),
      agentAudit: async (pcId) => parseAudit(await readFile(fleet.pc(pcId).auditFile, 'utf8')),
      waitLinked,
      consoleRequest,
      agentRequest: (pcId, user, method, path, o = {}) => {
        const pc = fleet.pc(pcId);
        return davRequest(pc.server, method, path, { user, password: pc.user(user).password, ...o });
      },
      curl: async (as, args, o = {}) => {
        const config = as ? `user = ${curlQuoted(`${as.name}:${as.password}`)}\n` : '';
        return runCommand('curl', ['--silent', '--show-error', '--cacert', paths.tls.caFile, '--noproxy', '*', ...(as ? ['-K', '-'] : []), ...args], { input: config, timeoutMs: o.timeoutMs ?? 120_000 });
      },
      curlDownload: (as, path, o = {}) =>
        new Promise<CurlDownload>((resolve, reject) => {
          const started = Date.now();
          const child = spawn('curl', ['--silent', '--show-error', '--http1.1', '--cacert', paths.tls.caFile, '--noproxy', '*', '-K', '-', '--write-out', '%{stderr}%{http_code}', '-o', '-', `${url}${path}`], { stdio: ['pipe', 'pipe', 'pipe'] });
          const hash = createHash('sha256');
          let bytes = 0;
          let stderr = '';
          child.stdout.on('data', (c: Buffer) => {
            bytes += c.length;
            hash.update(c);
          });
          child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-8192)));
          const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 10 * 60_000);
          child.once('error', (err) => {
            clearTimeout(timer);
            reject(new Error(`cannot run curl: ${err.message}`));
          });
          child.once('close', (code, signal) => {
            clearTimeout(timer);
            const status = Number(/(\d{3})$/.exec(stderr.trim())?.[1] ?? 0);
            if (code !== 0) return reject(new Error(`curl GET ${path}: ${signal ?? `exit ${code}`}: ${stderr}`));
            resolve({ status, bytes, sha256: hash.digest('hex'), seconds: (Date.now() - started) / 1000, stderr });
          });
          child.stdin.end(`user = ${curlQuoted(`${as.name}:${as.password}`)}\n`);
        }),
      rclone: async (as, args, remote, o = {}) => {
        const configFile = join(scratch, 'rclone.conf'); // never created: keeps ~/.config/rclone out of it
        const renv = rcloneEnv(configFile);
        const obscured = await runCommand('rclone', ['obscure', as.password], { env: renv });
        if (obscured.status !== 0) throw new Error(`rclone obscure: ${obscured.stderr}`);
        const flags = [
          '--config', configFile,
          '--ca-cert', remote.caFile,
          '--webdav-url', remote.url,
          '--webdav-vendor', 'other',
          '--webdav-user', as.name,
          '--webdav-pass', obscured.stdout.trim(),
          '--retries', '1',
          '--low-level-retries', '1',
          '--stats', '0',
          '--log-level', 'NOTICE',
        ];
        return runCommand('rclone', [...args, ...flags], { env: renv, timeoutMs: o.timeoutMs ?? 10 * 60_000 });
      },
      webSession,
      stop: () => (stopped ??= stopAll()),
    };
    return fleet;
  } catch (err) {
    const output = state.daemon?.output().slice(-4000);
    await stopAll().catch(() => undefined);
    if (output && err instanceof Error) err.message += `\n--- console output ---\n${output}`;
    throw err;
  }
}

/** The resident set of a process now, in KiB (VmRSS), and its peak so far (VmHWM); undefined once it is gone. */
export async function rssOf(pid: number): Promise<{ rssKiB: number; hwmKiB: number } | undefined> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM') };
}

/** Samples a process's VmRSS every `everyMs` until `stop()`, which gives the peak sampled (KiB) and the number of samples. */
export function sampleRss(pid: number, everyMs = 50): { stop(): Promise<{ peakKiB: number; samples: number }> } {
  let peak = 0;
  let samples = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const now = await rssOf(pid);
      if (now) {
        peak = Math.max(peak, now.rssKiB);
        samples++;
      }
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { peakKiB: peak, samples };
    },
  };
}
