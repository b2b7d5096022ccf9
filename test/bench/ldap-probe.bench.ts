/**
 * The directory's cost per PC: 1,000 simulated PCs (2 processes of
 * ldap-probers.ts at nice 19, standing for PCs with their own CPUs), each
 * the real reachability monitor at the product's defaults (every 5 s,
 * timeout 2 s, 2 failures), against one real slapd (StartTLS, its cn=Monitor
 * counting connections and operations). Before (the baseline): a new TCP
 * connection and TLS handshake per probe, as the probe was up to 9c3c65c;
 * after (the candidate): the kept-open probe connection. Phases alternate
 * (before, after, after, before); each starts its probers, lets every one
 * make its first round, then counts over a window. Printed:
 * - ldapProbe.handshakesPerSecond: connections slapd accepted per second
 *   (each one a StartTLS handshake; StartTLS operations alongside);
 * - ldapProbe.slapdCpuSecondsPerMinute: slapd's user + system CPU seconds
 *   (/proc/PID/stat) per minute of the window, and per probe answered (the
 *   baseline's probers share this machine's two cores with slapd, and at
 *   1,000 they may not all keep to their schedule: probes answered and
 *   failed per second are printed beside each figure);
 * - ldapProbe.lockLatency.hung / .gone: with the kept-open probers running,
 *   one PC of each kind in this process (interval 0.5 s, 2 failures,
 *   timeout 1 s: bound 2.0 s) sees the same cuts of slapd (SIGSTOP; SIGKILL
 *   then restart) at random moments of the probe cycle: the worst time from
 *   the cut to the lock, against the documented bound.
 * MYDOC_BENCH_SCALE scales the number of probers and the window.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { setPriority } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReachabilityMonitor } from '../../policy/reachability.js';
import { openMonitor, startSlapd, type MonitorCounters, type Slapd } from '../helpers/slapd.js';
import { alternating, benchScale, emit, median, progress } from './measure.js';
import { probeOf, type ProbeKind } from './ldap-probe-kinds.js';

const PROBERS_MAIN = fileURLToPath(new URL('./ldap-probers.js', import.meta.url));
const PROBERS = Math.max(10, Math.round(1000 * benchScale()));
const PROCESSES = 2;
const PROBERS_NICE = 19;
/** The product's defaults (directory.probe). */
const FLEET_PROBE = { intervalMs: 5000, timeoutMs: 2000, failuresToLock: 2 };
/** gate-ldap.test.ts's settings for the lock latency, and their documented bound (README: interval x failures + timeout). */
const LOCK_PROBE = { intervalMs: 500, timeoutMs: 1000, failuresToLock: 2 };
const LOCK_BOUND_MS = LOCK_PROBE.intervalMs * LOCK_PROBE.failuresToLock + LOCK_PROBE.timeoutMs;
const WINDOW_MS = Math.max(10, Math.round(60 * benchScale())) * 1000;
/** Every prober has started (within one interval) and made its first round. */
const WARM_UP_MS = FLEET_PROBE.intervalMs + FLEET_PROBE.timeoutMs + 1000;
const RUNS = 2;
const CUTS = benchScale() >= 1 ? 5 : 3;
const KINDS: readonly ProbeKind[] = ['kept-open', 'per-probe'];

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

/** CPU seconds (user + system) a process has used so far, from /proc/PID/stat (clock ticks of 10 ms). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

interface Probers {
  /** Probes answered and not so far, over all processes (as last reported, every 500 ms). */
  counts(): { ok: number; failed: number };
  stop(): Promise<void>;
}

function startProbers(slapd: Slapd, kind: ProbeKind): Probers {
  const children: { child: ChildProcess; last: { ok: number; failed: number }; exited: Promise<void> }[] = [];
  for (let i = 0; i < PROCESSES; i++) {
    const count = Math.floor(PROBERS / PROCESSES) + (i < PROBERS % PROCESSES ? 1 : 0);
    const env = { ...process.env, MYDOC_PROBERS: JSON.stringify({ url: slapd.url, caPem: slapd.caPem, count, kind, ...FLEET_PROBE }) };
    const child = spawn(process.execPath, [PROBERS_MAIN], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    setPriority(child.pid!, PROBERS_NICE);
    const entry = { child, last: { ok: 0, failed: 0 }, exited: new Promise<void>((resolve) => child.once('exit', () => resolve())) };
    createInterface({ input: child.stdout! }).on('line', (line) => (entry.last = JSON.parse(line) as { ok: number; failed: number }));
    children.push(entry);
  }
  return {
    counts: () => children.reduce((sum, c) => ({ ok: sum.ok + c.last.ok, failed: sum.failed + c.last.failed }), { ok: 0, failed: 0 }),
    stop: async () => {
      for (const c of children) c.child.kill('SIGTERM');
      await Promise.all(children.map((c) => c.exited));
    },
  };
}

interface Load {
  handshakesPerSecond: number;
  startTlsPerSecond: number;
  searchesPerSecond: number;
  slapdCpuSecondsPerMinute: number;
  probesPerSecond: number;
  probesFailed: number;
}

/** One phase: PROBERS probers of `kind`, counted over WINDOW_MS after the warm-up. */
async function measureLoad(slapd: Slapd, kind: ProbeKind): Promise<Load> {
  const probers = startProbers(slapd, kind);
  const monitor = openMonitor(slapd);
  try {
    await sleep(WARM_UP_MS);
    const read = async () => ({ at: Date.now(), counters: await monitor.read(), cpu: await cpuSeconds(slapd.pid), probes: probers.counts() });
    const a = await read();
    await sleep(WINDOW_MS);
    const b = await read();
    const s = (b.at - a.at) / 1000;
    const per = (key: keyof MonitorCounters) => (b.counters[key] - a.counters[key]) / s;
    const load: Load = {
      handshakesPerSecond: per('connections'),
      startTlsPerSecond: per('extended'),
      searchesPerSecond: per('searches'),
      slapdCpuSecondsPerMinute: ((b.cpu - a.cpu) / s) * 60,
      probesPerSecond: (b.probes.ok - a.probes.ok) / s,
      probesFailed: b.probes.failed - a.probes.failed,
    };
    progress(`${kind}: ${JSON.stringify(Object.fromEntries(Object.entries(load).map(([k, v]) => [k, round(v, 2)])))}`);
    return load;
  } finally {
    await monitor.close();
    await probers.stop();
  }
}

/** One PC of each kind, as the product wires it (one server), recording when it locks and opens. */
function lockWatchers(slapd: Slapd) {
  return KINDS.map((kind) => {
    const probe = probeOf(kind, { urls: [slapd.url], caPem: slapd.caPem, tlsServerName: undefined, insecureSkipVerify: false, timeoutMs: 2000 }, slapd.url);
    const w = { kind, reachable: false, lockedAt: 0, monitor: undefined as unknown as ReachabilityMonitor };
    w.monitor = new ReachabilityMonitor({
      servers: [slapd.url],
      probe: (_server, signal) => probe(signal),
      ...LOCK_PROBE,
      onChange: (reachable) => {
        w.reachable = reachable;
        if (!reachable) w.lockedAt = Date.now();
      },
    });
    return w;
  });
}

async function until(what: string, ms: number, done: () => boolean): Promise<void> {
  const start = Date.now();
  while (!done()) {
    if (Date.now() - start > ms) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(5);
  }
}

/** Worst lock latency per kind over CUTS cuts of `mode`, with PROBERS kept-open probers running. */
async function measureLockLatency(slapd: Slapd, mode: 'hung' | 'gone'): Promise<Record<ProbeKind, number[]>> {
  const probers = startProbers(slapd, 'kept-open');
  const watchers = lockWatchers(slapd);
  const latencies: Record<ProbeKind, number[]> = { 'kept-open': [], 'per-probe': [] };
  try {
    await Promise.all(watchers.map((w) => w.monitor.start()));
    await sleep(WARM_UP_MS);
    for (let i = 0; i < CUTS; i++) {
      await until('both open', 30_000, () => watchers.every((w) => w.reachable));
      await sleep(2 * LOCK_PROBE.intervalMs + Math.random() * LOCK_PROBE.intervalMs);
      const pid = slapd.pid;
      const cut = Date.now();
      process.kill(pid, mode === 'hung' ? 'SIGSTOP' : 'SIGKILL');
      try {
        await until(`${mode}: both locked`, 3 * LOCK_BOUND_MS, () => watchers.every((w) => !w.reachable));
      } finally {
        if (mode === 'hung') process.kill(pid, 'SIGCONT');
        else {
          await slapd.stop({ keepData: true });
          await slapd.start();
        }
      }
      for (const w of watchers) latencies[w.kind].push(w.lockedAt - cut);
      progress(`${mode} cut ${i}: ${watchers.map((w) => `${w.kind} locked after ${w.lockedAt - cut} ms`).join(', ')} (bound ${LOCK_BOUND_MS} ms)`);
    }
    return latencies;
  } finally {
    for (const w of watchers) w.monitor.stop();
    await probers.stop();
  }
}

const slapd = await startSlapd({ monitor: true });
try {
  progress(`${PROBERS} probers in ${PROCESSES} processes (nice ${PROBERS_NICE}), every ${FLEET_PROBE.intervalMs / 1000} s; windows of ${WINDOW_MS / 1000} s after ${WARM_UP_MS / 1000} s`);
  const loads: Record<ProbeKind, Load[]> = { 'kept-open': [], 'per-probe': [] };
  for (let run = 0; run < RUNS; run++) {
    await alternating(
      run,
      async () => void loads['per-probe'].push(await measureLoad(slapd, 'per-probe')),
      async () => void loads['kept-open'].push(await measureLoad(slapd, 'kept-open')),
    );
  }
  const med = (kind: ProbeKind, key: keyof Load) => median(loads[kind].map((l) => l[key]));
  const common = { bytes: 0, runs: RUNS, probers: PROBERS, processes: PROCESSES, intervalSeconds: FLEET_PROBE.intervalMs / 1000, windowSeconds: WINDOW_MS / 1000, ...(benchScale() === 1 ? {} : { scale: benchScale() }) };
  const figure = (bench: string, unit: string, key: keyof Load, extra: Record<string, unknown>) => {
    const candidate = med('kept-open', key);
    const baseline = med('per-probe', key);
    emit({ bench, unit, candidate: round(candidate, 2), baseline: round(baseline, 2), ratio: baseline === 0 ? 0 : round(candidate / baseline, 4), ...common, ...extra });
  };
  const probes = { candidateProbesPerSecond: round(med('kept-open', 'probesPerSecond')), baselineProbesPerSecond: round(med('per-probe', 'probesPerSecond')), candidateProbesFailed: Math.max(...loads['kept-open'].map((l) => l.probesFailed)), baselineProbesFailed: Math.max(...loads['per-probe'].map((l) => l.probesFailed)) };
  figure('ldapProbe.handshakesPerSecond', 'connections/s', 'handshakesPerSecond', {
    candidateStartTlsPerSecond: round(med('kept-open', 'startTlsPerSecond'), 2),
    baselineStartTlsPerSecond: round(med('per-probe', 'startTlsPerSecond'), 2),
    ...probes,
    op: 'connections slapd accepted per second (each a StartTLS handshake); candidate: kept-open probe connection, baseline: a new connection per probe',
  });
  // Per probe answered: the baseline's simulated PCs share this machine's cores and may not keep up with their schedule.
  const cpuMsPerProbe = (kind: ProbeKind) => round((med(kind, 'slapdCpuSecondsPerMinute') / 60 / med(kind, 'probesPerSecond')) * 1000, 3);
  figure('ldapProbe.slapdCpuSecondsPerMinute', 'CPU s/min', 'slapdCpuSecondsPerMinute', {
    candidateSlapdCpuMsPerProbe: cpuMsPerProbe('kept-open'),
    baselineSlapdCpuMsPerProbe: cpuMsPerProbe('per-probe'),
    candidateSearchesPerSecond: round(med('kept-open', 'searchesPerSecond')),
    baselineSearchesPerSecond: round(med('per-probe', 'searchesPerSecond')),
    ...probes,
    op: 'slapd user + system CPU seconds per minute (/proc/PID/stat)',
  });
  for (const mode of ['hung', 'gone'] as const) {
    const latencies = await measureLockLatency(slapd, mode);
    const worst = (kind: ProbeKind) => Math.max(...latencies[kind]);
    emit({
      bench: `ldapProbe.lockLatency.${mode}`,
      unit: 'ms',
      candidate: worst('kept-open'),
      baseline: worst('per-probe'),
      ratio: round(worst('kept-open') / worst('per-probe'), 3),
      bytes: 0,
      runs: CUTS,
      bound: LOCK_BOUND_MS,
      met: worst('kept-open') <= LOCK_BOUND_MS,
      candidateLatencies: latencies['kept-open'],
      baselineLatencies: latencies['per-probe'],
      probers: PROBERS,
      ...LOCK_PROBE,
      ...(benchScale() === 1 ? {} : { scale: benchScale() }),
      op: `${mode === 'hung' ? 'SIGSTOP' : 'SIGKILL'} of slapd at a random moment of the probe cycle to the lock, worst of ${CUTS} cuts, with ${PROBERS} kept-open probers running; candidate kept-open, baseline a connection per probe`,
    });
  }
} finally {
  await slapd.stop();
}
