/**
 * The reachability probe's kept-open connection against a real slapd, its
 * connections and StartTLS operations counted by slapd itself (cn=Monitor):
 * steady-state probes share one TLS connection; after slapd restarts (SIGTERM
 * or SIGKILL) the next probe answers on a new one, TLS again; a client whose
 * connection broke never reconnects in plain LDAP; and the monitor over the
 * real probe locks within interval x failures + timeout when slapd hangs
 * (SIGSTOP) or is gone (SIGKILL), cut at random moments of the probe cycle,
 * and opens again when it is back, leaving no connection behind. With two
 * servers each keeps its own connection open, the slower one included.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '../policy/directory/ldap/connection.js';
import { LdapDirectory } from '../policy/directory/ldap/directory.js';
import { ProbeConnection } from '../policy/directory/ldap/probe-connection.js';
import { ReachabilityMonitor } from '../policy/reachability.js';
import { pauseProcess } from './helpers/daemon.js';
import { openMonitor, slapdDirectorySettings, startSlapd, type MonitorCounters, type Slapd } from './helpers/slapd.js';

const INTERVAL = 500;
const FAILURES = 2;
const TIMEOUT = 1000;
const BOUND = INTERVAL * FAILURES + TIMEOUT;

let slapd: Slapd;
let monitor: ReturnType<typeof openMonitor>;

before(async () => {
  slapd = await startSlapd({ monitor: true });
  monitor = openMonitor(slapd);
});
after(async () => {
  await monitor?.close();
  await slapd?.stop();
});

const settings = () => slapdDirectorySettings(slapd, 'pc-probe', { timeoutMs: 300 });
const probeOnce = (p: ProbeConnection) => p.probe(AbortSignal.timeout(TIMEOUT));

/** What happened on slapd between two readings (its own monitor connection not counted). */
function delta(from: MonitorCounters, to: MonitorCounters): { connections: number; startTls: number; searches: number } {
  return { connections: to.connections - from.connections, startTls: to.extended - from.extended, searches: to.searches - from.searches };
}

type Delta = ReturnType<typeof delta>;

/**
 * The delta since `before` once slapd's counters have caught up with `expected`: slapd counts an operation after it
 * has sent the answer, so a reading taken the moment the answer arrives can miss it. Reads again for up to 2 s while
 * the delta falls short; returns at once on a match or an overshoot, so a wrong count still fails the assertion.
 */
async function settledDelta(before: MonitorCounters, expected: Delta): Promise<Delta> {
  const deadline = Date.now() + 2_000;
  for (;;) {
    const d = delta(before, await monitor.read());
    const short = d.connections < expected.connections || d.startTls < expected.startTls || d.searches < expected.searches;
    if (!short || Date.now() > deadline) return d;
    await sleep(20);
  }
}

/** Restarts slapd on the same port and data ("term": stopped cleanly; "kill": SIGKILL; "killed": it already was) and reopens the monitor. */
async function restart(how: 'term' | 'kill' | 'killed'): Promise<void> {
  await monitor.close();
  if (how === 'kill') process.kill(slapd.pid, 'SIGKILL');
  await slapd.stop({ keepData: true });
  await slapd.start();
  monitor = openMonitor(slapd);
}

test('steady state: probes share one kept-open TLS connection (one handshake, one search per probe)', { timeout: 60_000 }, async () => {
  const probe = new ProbeConnection(settings(), slapd.url);
  const before = await monitor.read();
  for (let i = 0; i < 20; i++) assert.equal(await probeOnce(probe), true, `probe ${i}`);
  const expected = { connections: 1, startTls: 1, searches: 20 };
  assert.deepEqual(await settledDelta(before, expected), expected, 'one connection, one StartTLS, then one search per probe');
  assert.equal(probe.opened, 1);
  probe.close();
});

for (const how of ['term', 'kill'] as const) {
  test(`reconnect: after slapd restarts (${how === 'term' ? 'SIGTERM' : 'SIGKILL'}) the next probe answers on a new connection, with StartTLS again`, { timeout: 60_000 }, async () => {
    const probe = new ProbeConnection(settings(), slapd.url);
    assert.equal(await probeOnce(probe), true);
    await restart(how);
    const before = await monitor.read();
    const started = Date.now();
    assert.equal(await probeOnce(probe), true, 'the first probe after the restart answers (the broken connection is replaced within the probe)');
    const took = Date.now() - started;
    const expected = { connections: 1, startTls: 1, searches: 1 };
    assert.deepEqual(await settledDelta(before, expected), expected, 'a new connection, TLS again');
    assert.equal(probe.opened, 2);
    assert.ok(took < TIMEOUT, `answered after ${took} ms`);
    for (let i = 0; i < 5; i++) assert.equal(await probeOnce(probe), true);
    assert.equal(probe.opened, 2, 'and kept open again');
    probe.close();
  });
}

test('a client whose connection broke fails its next request instead of reconnecting in plain LDAP', { timeout: 60_000 }, async () => {
  const client = await connect(settings());
  try {
    assert.equal((await client.search('', { scope: 'base', attributes: ['namingContexts'] })).searchEntries.length, 1);
    // A request that times out makes ldapts drop the connection; its next request would reconnect (in plain LDAP: no StartTLS).
    await pauseProcess(slapd.pid);
    try {
      await assert.rejects(client.search('', { scope: 'base', attributes: ['namingContexts'] }), /timed out/);
    } finally {
      process.kill(slapd.pid, 'SIGCONT');
    }
    const before = await monitor.read();
    await assert.rejects(client.search('', { scope: 'base', attributes: ['namingContexts'] }), /does not reconnect/);
    assert.equal(delta(before, await monitor.read()).connections, 0, 'no new connection was made');
  } finally {
    await client.unbind().catch(() => undefined);
  }
});

/** The real monitor over the real probe (LdapDirectory), as compose.ts wires them. */
function reachability(directory: LdapDirectory) {
  const changes: { reachable: boolean; at: number }[] = [];
  const m = new ReachabilityMonitor({
    servers: directory.servers,
    probe: (server, signal) => directory.probe(server, signal),
    intervalMs: INTERVAL,
    timeoutMs: TIMEOUT,
    failuresToLock: FAILURES,
    onChange: (reachable) => changes.push({ reachable, at: Date.now() }),
  });
  return { m, changes };
}

async function until(what: string, ms: number, done: () => boolean): Promise<void> {
  const start = Date.now();
  while (!done()) {
    assert.ok(Date.now() - start < ms, `${what} within ${ms} ms`);
    await sleep(5);
  }
}

const CUTS = 3;

for (const mode of ['hung', 'gone'] as const) {
  test(`a ${mode} directory (${mode === 'hung' ? 'SIGSTOP' : 'SIGKILL'}), cut at random moments of the probe cycle, locks within interval x failures + timeout over the kept-open connection; it opens again when slapd is back`, { timeout: 120_000 }, async () => {
    const { m, changes } = reachability(new LdapDirectory(settings()));
    await m.start();
    assert.equal(m.isReachable, true);
    const latencies: number[] = [];
    try {
      for (let i = 0; i < CUTS; i++) {
        // A few rounds on the kept-open connection first: one connection, no handshake per round.
        const before = await monitor.read();
        await sleep(4 * INTERVAL + Math.random() * INTERVAL);
        const steady = delta(before, await monitor.read());
        assert.ok(steady.connections <= (i === 0 ? 0 : 1) && steady.searches >= 3, `steady rounds reuse the connection: ${JSON.stringify(steady)}`);

        const cut = Date.now();
        const pid = slapd.pid;
        if (mode === 'hung') await pauseProcess(pid);
        else process.kill(pid, 'SIGKILL');
        try {
          await until(`${mode}: locked`, 3 * BOUND, () => !m.isReachable);
          latencies.push(changes.at(-1)!.at - cut);
        } finally {
          if (mode === 'hung') process.kill(pid, 'SIGCONT');
          else await restart('killed');
        }
        const back = Date.now();
        await until('open again once slapd answers', INTERVAL + TIMEOUT, () => m.isReachable);
        process.stdout.write(`# ${mode} cut ${i}: locked after ${latencies.at(-1)} ms (bound ${BOUND} ms), open again ${Date.now() - back} ms after slapd was back\n`);
      }
    } finally {
      m.stop();
    }
    for (const l of latencies) assert.ok(l <= BOUND, `${mode}: locked ${l} ms after the cut, bound ${BOUND} ms`);
    // The connections retired while slapd hung are closed: only the kept-open one (and the monitor's) remain.
    // slapd notices a closed socket on its own schedule: give it a few seconds, then it must hold at most two.
    const deadline = Date.now() + TIMEOUT + 3_000;
    let open = (await monitor.read()).current;
    while (open > 2 && Date.now() < deadline) {
      await sleep(50);
      open = (await monitor.read()).current;
    }
    assert.ok(open <= 2, `slapd has ${open} connections open (the probe's and the monitor's at most)`);
  });
}

test('two servers: each keeps its connection open round after round, the one that answers second included', { timeout: 60_000 }, async () => {
  const other = await startSlapd({ monitor: true });
  const otherMonitor = openMonitor(other);
  try {
    const directory = new LdapDirectory(slapdDirectorySettings(slapd, 'pc-probe', { urls: [slapd.url, other.url], caPem: slapd.caPem + other.caPem }));
    const { m } = reachability(directory);
    const before = [await monitor.read(), await otherMonitor.read()];
    await m.start();
    await sleep(6 * INTERVAL);
    m.stop();
    const after = [await monitor.read(), await otherMonitor.read()];
    for (const [i, name] of ['first', 'second'].entries()) {
      const d = delta(before[i]!, after[i]!);
      assert.ok(d.connections === 1 && d.startTls === 1, `${name} server: one connection over every round (${JSON.stringify(d)})`);
      assert.ok(d.searches >= 6, `${name} server: answered every round (${JSON.stringify(d)})`);
    }
  } finally {
    await otherMonitor.close();
    await other.stop();
  }
});
