/**
 * The fleet: 1,000, 5,000 and 10,000 simulated agents (4 processes of
 * fleet-agents.ts, each link the real agent end with its own device key and
 * the real backoff, pre-registered and enrolled in the console's SQLite
 * store) against one `mydoc console serve` on this machine, at the default
 * heartbeat (60 s). Printed per fleet size:
 * - fleet.connect.cold / fleet.connect.restart: seconds until every agent
 *   is linked, from the agents' start, and from the console's restart
 *   (SIGTERM, start again); if not all are linked within the limit, the
 *   figure says how many were (met: false) and the run goes on;
 * - fleet.rss.perLink: the console's VmRSS with every link up minus its
 *   VmRSS before any agent dialed, per link (KiB);
 * - fleet.db.commits: the console's database commits (fsync/fdatasync on
 *   console.sqlite or its -wal) and pages written (pwrite64 of a page to
 *   those files) per second, counted with strace over 30 s with every link
 *   up, from 75 s after the last one linked (past a heartbeat); the
 *   console's logs and audit file are not counted;
 * - fleet.pcList (at 10,000 rows): p50/p99 of `GET /admin/pcs` over HTTPS
 *   with a logged-in administrator's session, against the running console
 *   under the fleet: the first page sorted by last seen, a search, and a
 *   filter; store.listPcs on a separate reader of the same file is printed
 *   beside it (fleet.pcList.store).
 * The simulated agents stand for PCs with their own CPUs: their processes
 * run at the lowest priority (nice 19), so their TLS handshakes take what
 * the console leaves of this machine's cores instead of competing with it.
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFile, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { deviceIdOf } from '../../server/link/device-identity.js';
import { consoleFolder } from '../../server/console/data-folder.js';
import { hashEnrolmentToken, newEnrolmentToken } from '../../server/console/enrolment.js';
import { openConsoleStore } from '../../server/console/store/open.js';
import { LocalUsersFile } from '../../policy/directory/local/users-file.js';
import { launchDaemon, stopDaemon, type Daemon } from '../helpers/daemon.js';
import { freePort, runCommand } from '../helpers/server.js';
import { benchScale, emit, progress } from './measure.js';
import { memoryOf, MYDOC_BIN } from './share.js';

const AGENTS_MAIN = fileURLToPath(new URL('./fleet-agents.js', import.meta.url));
const PROCESSES = 4;
const SIZES = [1000, 5000, 10000].map((n) => Math.max(10, Math.round(n * benchScale())));
const CONNECT_LIMIT_MS = 10 * 60_000;
/** The simulated agents' priority: the lowest, below the console's. */
const AGENTS_NICE = 19;
/** Wait after the last agent linked before counting database writes: longer than one heartbeat with its jitter. */
const STEADY_AFTER_MS = 75_000;
const ADMIN = 'bench-admin';
const ADMINS_GROUP = 'admins';
const env = { ...process.env, MYDOC_CONSOLE_CONFIG: '', MYDOC_LOG_LEVEL: 'warn' };
const logger = pino({ level: 'warn' });

const percentile = (values: number[], q: number): number => {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};
const round = (v: number, digits = 1) => Math.round(v * 10 ** digits) / 10 ** digits;

function healthy(url: string, ca: string): Promise<boolean> {
  return new Promise((resolve) => {
    request(url, { ca }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    })
      .on('error', () => resolve(false))
      .end();
  });
}

/** CPU seconds (user + system) a process has used so far, from /proc/PID/stat (clock ticks of 10 ms). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** A logged-in administrator of the console's page: one keep-alive HTTPS connection and its session cookie. */
class AdminSession {
  private cookie = '';
  private csrf = '';
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1 });
  constructor(
    private readonly base: string,
    private readonly ca: string,
  ) {}

  send(method: 'GET' | 'POST', path: string, form?: Record<string, string>): Promise<{ status: number; body: string; ms: number }> {
    const body = form ? new URLSearchParams(form).toString() : undefined;
    const headers: Record<string, string> = { ...(this.cookie && { cookie: this.cookie }), ...(body !== undefined && { 'content-type': 'application/x-www-form-urlencoded' }) };
    const at = process.hrtime.bigint();
    return new Promise((resolve, reject) => {
      const req = request(`${this.base}${path}`, { method, ca: this.ca, agent: this.agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const set = [res.headers['set-cookie'] ?? []].flat().find((c) => c.startsWith('__Host-mydoc-console='));
          if (set) this.cookie = set.split(';')[0]!;
          const token = /name="csrf" value="([^"]+)"/.exec(text);
          if (token) this.csrf = token[1]!;
          resolve({ status: res.statusCode ?? 0, body: text, ms: Number(process.hrtime.bigint() - at) / 1e6 });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  /** GET the login form (its CSRF token), POST it; the console answers 303 to the PC list. */
  async logIn(name: string, password: string): Promise<void> {
    await this.send('GET', '/admin/login');
    const res = await this.send('POST', '/admin/login', { csrf: this.csrf, name, password });
    if (res.status !== 303) throw new Error(`the bench administrator's login answered ${res.status}: ${res.body.slice(0, 200)}`);
  }

  /** p50/p99 (ms) of `runs` GETs of `path(i)`, each checked to be a 200 page. */
  async time(runs: number, path: (i: number) => string, check: (body: string) => void): Promise<{ p50: number; p99: number }> {
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const res = await this.send('GET', path(i));
      if (res.status !== 200) throw new Error(`GET ${path(i)} answered ${res.status}: ${res.body.slice(0, 200)}`);
      check(res.body);
      times.push(res.ms);
    }
    return { p50: percentile(times, 0.5), p99: percentile(times, 0.99) };
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * The console's database writes over `seconds`: strace on its every thread,
 * counting only the syscalls whose file descriptor (strace -y prints its
 * path) is the SQLite file or its WAL. A commit in WAL mode is an fsync
 * of the WAL (a checkpoint adds one of the database file).
 */
async function databaseWrites(pid: number, seconds: number, sqliteFile: string, outFile: string): Promise<{ commits: number; pageWrites: number; bytes: number; otherWrites: number }> {
  const strace = spawn('strace', ['-f', '-y', '-qq', '-e', 'trace=fdatasync,fsync,pwrite64,write', '-o', outFile, '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  strace.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve, reject) => {
    strace.on('error', (err) => reject(new Error(`cannot start strace (Debian package strace): ${err.message}`)));
    strace.on('exit', (code, signal) => resolve(signal ? 0 : code));
  });
  await Promise.race([new Promise((r) => setTimeout(r, seconds * 1000)), exited]);
  if (strace.exitCode === null) strace.kill('SIGINT');
  const code = await exited;
  if (code !== 0) throw new Error(`strace -p ${pid} exited with ${code}: ${stderr.trim()}`);
  const lines = (await readFile(outFile, 'utf8')).split('\n');
  const dbFd = (path: string) => path === sqliteFile || path === `${sqliteFile}-wal`;
  let commits = 0;
  let pageWrites = 0;
  let bytes = 0;
  let otherWrites = 0;
  for (const line of lines) {
    // `PID call(FD<path>, ...) = R`, or with threads `PID call(FD<path>, ... <unfinished ...>`: the arguments are whole in both.
    const m = /\b(fdatasync|fsync|pwrite64|write)\(\d+<([^>]*)>(.*)$/.exec(line);
    if (!m) continue;
    const [, call, path, rest] = m;
    const isWrite = call === 'write' || call === 'pwrite64';
    if (!dbFd(path!)) {
      if (isWrite) otherWrites++;
      continue;
    }
    if (!isWrite) commits++;
    else {
      const size = Number(/, (\d+)(?:, \d+)?\)? *(?:= -?\d+|<unfinished \.\.\.>)\s*$/.exec(rest!)?.[1] ?? 0);
      bytes += size;
      // A WAL frame is a 24-byte header and a page, written apart; a checkpoint writes pages.
      if (size >= 512) pageWrites++;
    }
  }
  return { commits, pageWrites, bytes, otherWrites };
}

async function runSize(n: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'mydoc-fleet-'));
  const fleet: Daemon[] = [];
  let consoleDaemon: Daemon | undefined;
  try {
    const port = await freePort();
    const linkPort = await freePort();
    const config = join(dir, 'console.yaml');
    await writeFile(config, `dataDir: console-data\nlisten: { port: ${port}, linkPort: ${linkPort} }\ndirectory: { kind: local }\nroles: { viewer: [${ADMINS_GROUP}] }\n`);
    const init = await runCommand(process.execPath, [MYDOC_BIN, 'console', 'init', '--config', config], { env, timeoutMs: 60_000 });
    if (init.status !== 0) throw new Error(`console init: ${init.stderr}`);
    const paths = consoleFolder(join(dir, 'console-data'));
    const ca = await readFile(paths.tls.caFile, 'utf8');
    // A console administrator in the local directory, as the demo adds its own.
    const adminPassword = randomBytes(15).toString('base64url');
    const admins = new LocalUsersFile(paths.usersFile);
    await admins.add(ADMIN, adminPassword);
    await admins.setGroup(ADMINS_GROUP, { users: [ADMIN] });

    progress(`fleet ${n}: keys and enrolment of ${n} PCs in the store`);
    const keys = Array.from({ length: n }, (_, i) => {
      const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      return { pcId: `pc-${String(i).padStart(5, '0')}`, privatePem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicPem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString() };
    });
    const store = await openConsoleStore({ kind: 'sqlite', file: paths.sqliteFile }, logger);
    const now = Date.now();
    for (let i = 0; i < n; i += 200) {
      await Promise.all(
        keys.slice(i, i + 200).map(async (k) => {
          const { token } = newEnrolmentToken();
          await store.addPc(k.pcId, now);
          await store.createEnrolment(k.pcId, hashEnrolmentToken(token), now + 3_600_000);
          const r = await store.consumeEnrolment(k.pcId, hashEnrolmentToken(token), deviceIdOf(k.publicPem), k.publicPem, now);
          if (!r.ok) throw new Error(`enrolment of ${k.pcId}: ${r.code}`);
        }),
      );
    }
    await store.close();

    const startConsole = () =>
      launchDaemon({ name: 'mydoc console serve', command: process.execPath, args: [MYDOC_BIN, 'console', 'serve', '--config', config], env, ready: () => healthy(`https://127.0.0.1:${port}/healthz`, ca), readyTimeoutMs: 60_000, where: `https://127.0.0.1:${port}/healthz`, graceMs: 30_000 });
    consoleDaemon = await startConsole();
    const idle = await memoryOf(consoleDaemon.child.pid!);

    const per = Math.ceil(n / PROCESSES);
    const connected = () =>
      fleet.reduce((sum, d) => {
        const lines = d.output().trimEnd().split('\n').filter((l) => l.startsWith('{"connected"'));
        return sum + (lines.length ? (JSON.parse(lines.at(-1)!) as { connected: number }).connected : 0);
      }, 0);
    /** Seconds until all are linked (the reports come every 500 ms: known to within that), or how many were at the limit. */
    const allConnected = async (since: number, what: string): Promise<{ seconds: number; linked: number; all: boolean }> => {
      let lastReport = since;
      while (connected() < n) {
        if (Date.now() - since > CONNECT_LIMIT_MS) {
          progress(`fleet ${n}: only ${connected()} of ${n} linked ${CONNECT_LIMIT_MS / 1000} s after ${what}`);
          return { seconds: CONNECT_LIMIT_MS / 1000, linked: connected(), all: false };
        }
        if (Date.now() - lastReport >= 30_000) {
          lastReport = Date.now();
          progress(`fleet ${n}: ${connected()} of ${n} linked ${Math.round((lastReport - since) / 1000)} s after ${what}`);
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      return { seconds: (Date.now() - since) / 1000, linked: n, all: true };
    };
    const coldStart = Date.now();
    for (let p = 0; p < PROCESSES; p++) {
      const slice = keys.slice(p * per, (p + 1) * per);
      if (slice.length === 0) continue;
      const keysFile = join(dir, `keys-${p}.json`);
      await writeFile(keysFile, JSON.stringify(slice));
      const settings = { url: `https://127.0.0.1:${linkPort}`, caFile: paths.tls.caFile, keysFile, dataDir: join(dir, `fleet-${p}`) };
      let started = false;
      const d = await launchDaemon({ name: `fleet ${p}`, command: process.execPath, args: ['--max-old-space-size=2048', AGENTS_MAIN], env: { ...process.env, MYDOC_FLEET: JSON.stringify(settings) }, ready: async () => (started = started || true), readyTimeoutMs: 10_000, where: 'fleet', graceMs: 10_000 });
      setPriority(d.child.pid!, AGENTS_NICE);
      fleet.push(d);
    }
    const cold = await allConnected(coldStart, 'the agents started');
    if (cold.all) progress(`fleet ${n}: all linked ${cold.seconds.toFixed(1)} s after the agents started`);
    await new Promise((r) => setTimeout(r, 3000));
    const full = await memoryOf(consoleDaemon.child.pid!);

    // Steady state: every agent past its first heartbeat after linking (60 s +20 % jitter), so the window sees presence batches, not the quiet after the welcomes.
    await new Promise((r) => setTimeout(r, STEADY_AFTER_MS));
    const windowS = benchScale() < 1 ? 10 : 30;
    const db = await databaseWrites(consoleDaemon.child.pid!, windowS, paths.sqliteFile, join(dir, 'strace.txt'));

    let page: Record<string, { p50: number; p99: number }> | undefined;
    let storeList: { p50: number; p99: number; searchP50: number; searchP99: number } | undefined;
    if (n >= 10000 * Math.min(1, benchScale())) {
      const admin = new AdminSession(`https://127.0.0.1:${port}`, ca);
      await admin.logIn(ADMIN, adminPassword);
      const rows = (body: string) => (body.match(/<tr/g) ?? []).length;
      const runs = 200;
      page = {
        lastSeen: await admin.time(runs, (i) => `/admin/pcs?sort=lastSeen&desc=1${i % 2 ? '&page=2' : ''}`, (body) => {
          if (rows(body) < 50) throw new Error(`the PC list sorted by last seen shows ${rows(body)} rows, not a page of 50`);
        }),
        search: await admin.time(runs, (i) => `/admin/pcs?sort=lastSeen&desc=1&q=user-pc-0${i % 10}`, (body) => {
          if (!body.includes('user-pc-0')) throw new Error('the searched PC list shows no matching PC');
        }),
        filter: await admin.time(runs, (i) => `/admin/pcs?sort=lastSeen&desc=1&filter=${i % 2 ? 'online' : 'no-backup&days=7'}`, () => undefined),
      };
      admin.close();

      const reader = await openConsoleStore({ kind: 'sqlite', file: paths.sqliteFile }, logger);
      const times: number[] = [];
      const search: number[] = [];
      for (let i = 0; i < runs; i++) {
        const at = Date.now();
        const query = { filter: 'all' as const, sort: 'lastSeen' as const, descending: true, offset: (i % 20) * 50, limit: 50, onlineSince: at - 150_000, now: at };
        let t = process.hrtime.bigint();
        const rowsRead = await reader.listPcs(query);
        times.push(Number(process.hrtime.bigint() - t) / 1e6);
        if (rowsRead.total !== n) throw new Error(`the list has ${rowsRead.total} rows, not ${n}`);
        t = process.hrtime.bigint();
        await reader.listPcs({ ...query, offset: 0, search: `user-pc-0${i % 10}` });
        search.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
      await reader.close();
      storeList = { p50: percentile(times, 0.5), p99: percentile(times, 0.99), searchP50: percentile(search, 0.5), searchP99: percentile(search, 0.99) };
    }

    const agentsCpu = async () => (await Promise.all(fleet.map((d) => cpuSeconds(d.child.pid!)))).reduce((a, b) => a + b, 0);
    const agentsCpu0 = await agentsCpu();
    const restartAt = Date.now();
    await stopDaemon(consoleDaemon, 30_000);
    consoleDaemon = await startConsole();
    const upAt = Date.now();
    const restart = await allConnected(restartAt, 'the restart began');
    if (restart.all) progress(`fleet ${n}: all linked again ${restart.seconds.toFixed(1)} s after the restart began (console up after ${((upAt - restartAt) / 1000).toFixed(1)} s)`);

    const upS = (upAt - restartAt) / 1000;
    // Where the restart's CPU went: the new console process's whole life, and the agents' processes over the same time.
    const restartCpu = { console: await cpuSeconds(consoleDaemon.child.pid!), agents: (await agentsCpu()) - agentsCpu0 };
    emit({ bench: 'fleet.connect.cold', unit: 's', candidate: round(cold.seconds), baseline: 0, ratio: 0, bytes: 0, runs: 1, agents: n, linked: cold.linked, processes: PROCESSES, agentsNice: AGENTS_NICE, op: cold.all ? 'every agent linked, from the agents starting against a running console' : `not all linked within ${CONNECT_LIMIT_MS / 1000} s` });
    emit({ bench: 'fleet.connect.restart', unit: 's', candidate: round(restart.seconds), baseline: round(upS), ratio: round(restart.seconds / upS, 2), bytes: 0, runs: 1, agents: n, linked: restart.linked, baselineOp: 'the console stopped and ready again', consoleCpuSeconds: round(restartCpu.console), agentsCpuSeconds: round(restartCpu.agents), ...(restart.all ? {} : { op: `not all linked within ${CONNECT_LIMIT_MS / 1000} s` }), target: '< 300 s', met: restart.all && restart.seconds < 300 });
    emit({ bench: 'fleet.rss.perLink', unit: 'KiB', candidate: round((full.rss - idle.rss) / cold.linked / 1024), baseline: round(idle.rss / 2 ** 20), ratio: 0, bytes: full.rss, runs: 1, agents: n, linked: cold.linked, baselineOp: 'console VmRSS before any link (MiB)', consoleRssMiB: round(full.rss / 2 ** 20) });
    emit({ bench: 'fleet.db.commits', unit: 'commits/s', candidate: round(db.commits / windowS, 2), baseline: 0, ratio: 0, bytes: db.bytes, runs: 1, agents: n, windowSeconds: windowS, pagesWrittenPerSecond: round(db.pageWrites / windowS, 1), bytesWrittenPerSecond: Math.round(db.bytes / windowS), otherWritesPerSecond: round(db.otherWrites / windowS, 1), heartbeatSeconds: 60, op: 'fsync/fdatasync of console.sqlite and its WAL (strace), with every link up; pages = pwrite64 of a page to those files; other writes = logs, audit, sockets' });
    if (page) {
      for (const [name, t] of Object.entries(page)) {
        emit({ bench: `fleet.pcList.page.${name}`, unit: 'ms', candidate: round(t.p99, 2), baseline: 0, ratio: 0, bytes: 0, runs: 200, agents: n, p50: round(t.p50, 2), p99: round(t.p99, 2), via: 'GET /admin/pcs over HTTPS, logged in, keep-alive, console under the fleet', target: 'p99 < 200 ms', met: t.p99 < 200 });
      }
    }
    if (storeList) emit({ bench: 'fleet.pcList.store', unit: 'ms', candidate: round(storeList.p99, 2), baseline: 0, ratio: 0, bytes: 0, runs: 200, agents: n, p50: round(storeList.p50, 2), p99: round(storeList.p99, 2), searchP50: round(storeList.searchP50, 2), searchP99: round(storeList.searchP99, 2), via: 'store.listPcs on a second reader of the SQLite file' });
  } finally {
    await Promise.all(fleet.map((d) => stopDaemon(d, 10_000)));
    if (consoleDaemon) await stopDaemon(consoleDaemon, 30_000);
    await rm(dir, { recursive: true, force: true });
  }
}

for (const n of SIZES) await runSize(n);
