/**
 * The fleet: 1,000, 5,000 and 10,000 simulated agents (4 processes of
 * fleet-agents.ts, each link the real agent end with its own device key,
 * pre-registered and enrolled in the console's SQLite store) against one
 * `mydoc console serve` on this machine, at the default heartbeat (60 s).
 * Printed per fleet size:
 * - fleet.connect.cold / fleet.connect.restart: seconds until every agent
 *   is linked, from the console's start, and from its restart (SIGTERM,
 *   start again): the agents' backoff with full jitter spreads them;
 * - fleet.rss.perLink: the console's VmRSS with every link up minus its
 *   VmRSS before any agent dialed, per link (KiB);
 * - fleet.db.writes: the console's write syscalls and bytes written per
 *   second over 30 s with every link up (presence in batches, state changes
 *   at once: at a steady heartbeat only the presence batches write);
 * - fleet.pcList (at 10,000 rows): p50/p99 of a PC list page (50 rows,
 *   sorted by last seen, and a search) read from the store's file while the
 *   console runs. The administrators' page is not composed into the console
 *   yet (server/console/compose.ts), so the list is read with the store's
 *   listPcs, as the page does; the baseline is a count of the same rows.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { deviceIdOf } from '../../server/link/device-identity.js';
import { consoleFolder } from '../../server/console/data-folder.js';
import { hashEnrolmentToken, newEnrolmentToken } from '../../server/console/enrolment.js';
import { openConsoleStore } from '../../server/console/store/open.js';
import { launchDaemon, stopDaemon, type Daemon } from '../helpers/daemon.js';
import { freePort, runCommand } from '../helpers/server.js';
import { benchScale, emit, median, progress } from './measure.js';
import { memoryOf, MYDOC_BIN } from './share.js';

const AGENTS_MAIN = fileURLToPath(new URL('./fleet-agents.js', import.meta.url));
const PROCESSES = 4;
const SIZES = [1000, 5000, 10000].map((n) => Math.max(10, Math.round(n * benchScale())));
const CONNECT_LIMIT_MS = 10 * 60_000;
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

async function io(pid: number): Promise<{ syscw: number; writeBytes: number }> {
  const text = await readFile(`/proc/${pid}/io`, 'utf8');
  const field = (k: string) => Number(new RegExp(`^${k}: (\\d+)`, 'm').exec(text)![1]);
  return { syscw: field('syscw'), writeBytes: field('write_bytes') };
}

async function runSize(n: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'mydoc-fleet-'));
  const fleet: Daemon[] = [];
  let consoleDaemon: Daemon | undefined;
  try {
    const port = await freePort();
    const linkPort = await freePort();
    const config = join(dir, 'console.yaml');
    await writeFile(config, `dataDir: console-data\nlisten: { port: ${port}, linkPort: ${linkPort} }\ndirectory: { kind: local }\nroles: { viewer: [admins] }\n`);
    const init = await runCommand(process.execPath, [MYDOC_BIN, 'console', 'init', '--config', config], { env, timeoutMs: 60_000 });
    if (init.status !== 0) throw new Error(`console init: ${init.stderr}`);
    const paths = consoleFolder(join(dir, 'console-data'));
    const ca = await readFile(paths.tls.caFile, 'utf8');

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
    const allConnected = async (since: number) => {
      while (connected() < n) {
        if (Date.now() - since > CONNECT_LIMIT_MS) throw new Error(`fleet ${n}: ${connected()} of ${n} linked after ${CONNECT_LIMIT_MS / 1000} s`);
        await new Promise((r) => setTimeout(r, 250));
      }
      // The reports come every 500 ms: the time is known to within that.
      return (Date.now() - since) / 1000;
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
      fleet.push(d);
    }
    const cold = await allConnected(coldStart);
    progress(`fleet ${n}: all linked ${cold.toFixed(1)} s after the agents started`);
    await new Promise((r) => setTimeout(r, 3000));
    const full = await memoryOf(consoleDaemon.child.pid!);

    const io0 = await io(consoleDaemon.child.pid!);
    const windowS = benchScale() < 1 ? 5 : 30;
    await new Promise((r) => setTimeout(r, windowS * 1000));
    const io1 = await io(consoleDaemon.child.pid!);

    let list: { p50: number; p99: number; searchP50: number; searchP99: number; countP50: number } | undefined;
    if (n >= 10000 * Math.min(1, benchScale())) {
      const reader = await openConsoleStore({ kind: 'sqlite', file: paths.sqliteFile }, logger);
      const times: number[] = [];
      const search: number[] = [];
      const counts: number[] = [];
      for (let i = 0; i < 200; i++) {
        const at = Date.now();
        const query = { filter: 'all' as const, sort: 'lastSeen' as const, descending: true, offset: (i % 20) * 50, limit: 50, onlineSince: at - 150_000, now: at };
        let t = process.hrtime.bigint();
        const page = await reader.listPcs(query);
        times.push(Number(process.hrtime.bigint() - t) / 1e6);
        if (page.total !== n) throw new Error(`the list has ${page.total} rows, not ${n}`);
        t = process.hrtime.bigint();
        await reader.listPcs({ ...query, offset: 0, search: `user-pc-0${i % 10}` });
        search.push(Number(process.hrtime.bigint() - t) / 1e6);
        t = process.hrtime.bigint();
        await reader.alertCounts(at, at - 150_000);
        counts.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
      await reader.close();
      list = { p50: percentile(times, 0.5), p99: percentile(times, 0.99), searchP50: percentile(search, 0.5), searchP99: percentile(search, 0.99), countP50: median(counts) };
    }

    const restartAt = Date.now();
    await stopDaemon(consoleDaemon, 30_000);
    consoleDaemon = await startConsole();
    const upAt = Date.now();
    const restart = await allConnected(restartAt);
    progress(`fleet ${n}: all linked again ${restart.toFixed(1)} s after the restart began (console up after ${((upAt - restartAt) / 1000).toFixed(1)} s)`);

    emit({ bench: 'fleet.connect.cold', unit: 's', candidate: round(cold), baseline: 0, ratio: 0, bytes: 0, runs: 1, agents: n, processes: PROCESSES, op: 'every agent linked, from the agents starting against a running console' });
    emit({ bench: 'fleet.connect.restart', unit: 's', candidate: round(restart), baseline: round((upAt - restartAt) / 1000), ratio: round(restart / ((upAt - restartAt) / 1000), 2), bytes: 0, runs: 1, agents: n, baselineOp: 'the console stopped and ready again', target: '< 300 s', met: restart < 300 });
    emit({ bench: 'fleet.rss.perLink', unit: 'KiB', candidate: round((full.rss - idle.rss) / n / 1024), baseline: round(idle.rss / 2 ** 20), ratio: 0, bytes: full.rss, runs: 1, agents: n, baselineOp: 'console VmRSS before any link (MiB)', consoleRssMiB: round(full.rss / 2 ** 20) });
    emit({ bench: 'fleet.db.writes', unit: 'writes/s', candidate: round((io1.syscw - io0.syscw) / windowS), baseline: 0, ratio: 0, bytes: io1.writeBytes - io0.writeBytes, runs: 1, agents: n, windowSeconds: windowS, writeBytesPerSecond: Math.round((io1.writeBytes - io0.writeBytes) / windowS), heartbeatSeconds: 60, op: 'write syscalls of the console process (SQLite WAL, audit) per second with every link up' });
    if (list) emit({ bench: 'fleet.pcList', unit: 'ms', candidate: round(list.p99, 2), baseline: round(list.countP50, 2), ratio: 0, bytes: 0, runs: 200, agents: n, p50: round(list.p50, 2), p99: round(list.p99, 2), searchP50: round(list.searchP50, 2), searchP99: round(list.searchP99, 2), baselineOp: 'alert counts over the same rows, p50', via: 'store.listPcs on the SQLite file (the page is not composed into the console yet)', target: 'p99 < 200 ms', met: list.p99 < 200 });
  } finally {
    await Promise.all(fleet.map((d) => stopDaemon(d, 10_000)));
    if (consoleDaemon) await stopDaemon(consoleDaemon, 30_000);
    await rm(dir, { recursive: true, force: true });
  }
}

for (const n of SIZES) await runSize(n);
