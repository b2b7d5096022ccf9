/**
 * The reachability monitor on its own, with mocked timers and a fake probe
 * (no network): the lock bound interval x failures + timeout for a gone and
 * a hung directory cut at every moment of the probe cycle, the start
 * locked, renewal, stale rounds, several servers (a probe is aborted only
 * when its deadline passed), and stop().
 * (gate-ldap.test.ts measures the same bound against a real slapd.)
 */
import { afterEach, beforeEach, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { ReachabilityMonitor, type ReachabilityOptions } from '../policy/reachability.js';

const INTERVAL = 500;
const FAILURES = 2;
const TIMEOUT = 1000;
const BOUND = INTERVAL * FAILURES + TIMEOUT;
/** How long a server that is up (or gone: connection refused) takes to answer. */
const ANSWER_MS = 5;

type State = 'up' | 'gone' | 'hung';

beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 }));
afterEach(() => mock.timers.reset());

/** Lets every promise continuation run (setImmediate is not mocked). */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Advances the mocked clock 1 ms at a time, running what each ms wakes up. */
async function advance(ms: number): Promise<void> {
  for (let i = 0; i < ms; i++) {
    mock.timers.tick(1);
    await flush();
  }
}

/** A directory whose state the test sets; counts its probes in flight and checks that aborted probes were told. */
function fakeDirectory() {
  const dir = {
    state: 'up' as State,
    inFlight: 0,
    maxInFlight: 0,
    probes: 0,
    probe(_server: string, signal: AbortSignal): Promise<boolean> {
      dir.probes++;
      dir.inFlight++;
      dir.maxInFlight = Math.max(dir.maxInFlight, dir.inFlight);
      return new Promise<boolean>((resolve) => {
        signal.addEventListener('abort', () => resolve(false), { once: true });
        setTimeout(() => {
          if (dir.state === 'up') resolve(true);
          else if (dir.state === 'gone') resolve(false); // refused at once; a hung one never answers
        }, ANSWER_MS);
      }).finally(() => dir.inFlight--);
    },
  };
  return dir;
}

function monitor(probe: ReachabilityOptions['probe'], opts: Partial<ReachabilityOptions> = {}) {
  const changes: { reachable: boolean; at: number }[] = [];
  let renewals = 0;
  const m = new ReachabilityMonitor({
    servers: ['ldap://dc1'],
    probe,
    intervalMs: INTERVAL,
    timeoutMs: TIMEOUT,
    failuresToLock: FAILURES,
    onChange: (reachable) => changes.push({ reachable, at: Date.now() }),
    onRenew: () => renewals++,
    ...opts,
  });
  return { m, changes, renewals: () => renewals };
}

async function started(m: ReachabilityMonitor): Promise<void> {
  const done = m.start();
  await advance(ANSWER_MS + 1);
  await done;
}

test('starts locked, opens after the first answer, renews on every successful round', { timeout: 30_000 }, async () => {
  const dir = fakeDirectory();
  const { m, changes, renewals } = monitor((s, signal) => dir.probe(s, signal));
  assert.equal(m.isReachable, false, 'nothing is served on a guess');
  await started(m);
  assert.equal(m.isReachable, true);
  assert.deepEqual(changes.map((c) => c.reachable), [true]);
  await advance(10 * INTERVAL);
  assert.equal(renewals(), 11, 'one round per interval, each renewing');
  m.stop();
});

for (const mode of ['gone', 'hung'] as const) {
  test(`a ${mode} directory cut at any moment of the probe cycle locks within interval x failures + timeout, and unlocks when it answers`, { timeout: 60_000 }, async () => {
    let worst = 0;
    for (let offset = 0; offset < INTERVAL; offset += 7) {
      mock.timers.reset();
      mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
      const dir = fakeDirectory();
      const { m, changes } = monitor((s, signal) => dir.probe(s, signal));
      await started(m);
      await advance(3 * INTERVAL + offset);
      const cut = Date.now();
      dir.state = mode;
      while (m.isReachable && Date.now() - cut < 3 * BOUND) await advance(1);
      const latency = changes.at(-1)!.reachable ? Infinity : changes.at(-1)!.at - cut;
      assert.ok(latency <= BOUND, `${mode}, cut ${offset} ms into the cycle: locked after ${latency} ms, bound ${BOUND} ms`);
      worst = Math.max(worst, latency);
      assert.ok(dir.maxInFlight <= TIMEOUT / INTERVAL + 1, `at most timeout / interval + 1 probes in flight (saw ${dir.maxInFlight})`);

      dir.state = 'up';
      const back = Date.now();
      while (!m.isReachable) await advance(1);
      assert.ok(Date.now() - back <= INTERVAL + ANSWER_MS, 'the first answer unlocks');
      m.stop();
      await advance(TIMEOUT);
      assert.equal(dir.inFlight, 0, 'no probe left running');
    }
    process.stdout.write(`# ${mode}: worst lock latency ${worst} ms over cuts every 7 ms of the cycle (bound ${BOUND} ms)\n`);
  });
}

test('a round that ends after a younger one is stale: its answer does not reopen a locked PC', { timeout: 30_000 }, async () => {
  const answers: { afterMs: number; ok: boolean }[] = [
    { afterMs: 5, ok: true }, // round 1 (t=0): opens
    { afterMs: 800, ok: true }, // round 2 (t=500): a slow answer, at t=1300
    { afterMs: 1, ok: false }, // round 3 (t=1000): refused
  ];
  const { m, changes } = monitor(
    (_s, signal) =>
      new Promise<boolean>((resolve) => {
        const a = answers.shift() ?? { afterMs: 1, ok: false };
        signal.addEventListener('abort', () => resolve(false), { once: true });
        setTimeout(() => resolve(a.ok), a.afterMs);
      }),
    { failuresToLock: 1 },
  );
  await started(m);
  await advance(1100);
  assert.equal(m.isReachable, false, 'round 3 failed: locked');
  await advance(300);
  assert.deepEqual(changes.map((c) => c.reachable), [true, false], 'round 2\'s late answer is ignored');
  m.stop();
});

test('several servers: reachable while any answers; a dead one does not delay the round', { timeout: 30_000 }, async () => {
  const { m, changes, renewals } = monitor(
    (server, signal) =>
      new Promise<boolean>((resolve) => {
        signal.addEventListener('abort', () => resolve(false), { once: true });
        if (server === 'ldap://dc2') setTimeout(() => resolve(true), ANSWER_MS); // dc1 hangs
      }),
    { servers: ['ldap://dc1', 'ldap://dc2'] },
  );
  await started(m);
  assert.equal(m.isReachable, true, 'the round ended with the first answer, not at the deadline');
  await advance(5 * INTERVAL);
  assert.deepEqual(changes.map((c) => c.reachable), [true]);
  assert.equal(renewals(), 6);
  m.stop();
});

test('a probe still running when another server answered is aborted only at the deadline (aborted means: no answer in time)', { timeout: 30_000 }, async () => {
  const aborts: { server: string; at: number }[] = [];
  const { m } = monitor(
    (server, signal) =>
      new Promise<boolean>((resolve) => {
        const started = Date.now();
        let done = false;
        signal.addEventListener('abort', () => done || (aborts.push({ server, at: Date.now() - started }), resolve(false)), { once: true });
        if (server === 'ldap://dc2') setTimeout(() => ((done = true), resolve(true)), ANSWER_MS); // dc1 hangs
      }),
    { servers: ['ldap://dc1', 'ldap://dc2'] },
  );
  await started(m);
  assert.equal(m.isReachable, true);
  assert.equal(aborts.length, 0, 'dc1\'s probe is not aborted when dc2 answers');
  await advance(TIMEOUT);
  assert.deepEqual(aborts.slice(0, 1), [{ server: 'ldap://dc1', at: TIMEOUT }], 'dc1\'s probe is aborted at the round\'s deadline');
  assert.ok(aborts.every((a) => a.server === 'ldap://dc1'), 'dc2 answered every round and was never aborted');
  m.stop();
});

test('stop() aborts the probes in flight and runs no more rounds', { timeout: 30_000 }, async () => {
  const dir = fakeDirectory();
  const { m, changes } = monitor((s, signal) => dir.probe(s, signal));
  await started(m);
  dir.state = 'hung';
  await advance(INTERVAL + 10);
  assert.equal(dir.inFlight, 1);
  m.stop();
  await flush();
  assert.equal(dir.inFlight, 0, 'aborted at once');
  const probes = dir.probes;
  await advance(5 * BOUND);
  assert.equal(dir.probes, probes, 'no more rounds');
  assert.deepEqual(changes.map((c) => c.reachable), [true], 'no change reported after stop');
});
