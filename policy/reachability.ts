/**
 * The reachability monitor: probes every directory server (an anonymous
 * rootDSE read) in rounds that start every interval, on a fixed schedule.
 * A round succeeds when any server answers within the probe timeout; at the
 * deadline it fails and the probes still running are aborted (a probe still
 * running when another server answered runs on until then: aborted means no
 * answer in time). After
 * `failuresToLock` failed rounds in a row it reports "unreachable"; the first
 * success after that reports "reachable" again.
 *
 * Lock latency: rounds do not wait for each other, so a directory that stops
 * answering (hung, or packets dropped) delays no later round. The first
 * round that starts after a cut starts within one interval of it; the
 * `failuresToLock`-th starts (failuresToLock - 1) intervals later and fails
 * at the latest one timeout after its start. So the monitor reports within
 * interval x failuresToLock + timeout of the cut, whether the directory is
 * gone (refused at once) or hung. At most timeout / interval + 1 rounds are
 * in flight at a time.
 *
 * Rounds are counted in the order they started: the outcome of a round
 * that ends after a younger round already ended is stale and ignored.
 *
 * Security considerations: the service starts unreachable (locked) and
 * opens only after a successful round: nothing is served on a guess.
 */
import { systemClock, type Clock } from '../shares/clock.js';

export interface ReachabilityOptions {
  servers: readonly string[];
  /** True when `server` answers; stops (resolving or not) when `signal` aborts. */
  probe: (server: string, signal: AbortSignal) => Promise<boolean>;
  intervalMs: number;
  /** A round without an answer within this fails (the probe timeout). */
  timeoutMs: number;
  failuresToLock: number;
  /** Called on every change; `reachable` is the new state. */
  onChange: (reachable: boolean) => void;
  /** Called after every successful round (lease renewal). */
  onRenew?: () => void;
  /** The clock the rounds' schedule and deadlines are reckoned by (default the system clock). */
  now?: Clock;
}

export class ReachabilityMonitor {
  private reachable = false;
  private misses = 0;
  /** Rounds started so far, and the newest round whose outcome was counted. */
  private started = 0;
  private counted = 0;
  private origin = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Ends each round in flight (as failed), aborting its probes. */
  private readonly inFlight = new Set<() => void>();

  private readonly now: Clock;

  constructor(private readonly opts: ReachabilityOptions) {
    this.now = opts.now ?? systemClock;
  }

  get isReachable(): boolean {
    return this.reachable;
  }

  /** Runs the first round now (resolving after it), then one round at each interval from now on. */
  async start(): Promise<void> {
    this.origin = this.now();
    const first = this.round(this.origin);
    this.schedule();
    await first;
  }

  /** No more rounds; probes in flight are aborted and their outcomes ignored. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const end of this.inFlight) end();
  }

  /** The next round at the next tick of the fixed schedule (ticks missed while the event loop was busy are skipped). */
  private schedule(): void {
    if (this.stopped) return;
    const { intervalMs } = this.opts;
    const next = this.origin + (Math.floor((this.now() - this.origin) / intervalMs) + 1) * intervalMs;
    this.timer = setTimeout(() => {
      this.schedule();
      // A timer that fires far too late (the event loop was blocked) starts a
      // fresh round rather than one with no time left to answer.
      const now = this.now();
      void this.round(now - next > this.opts.timeoutMs / 2 ? now : next);
    }, next - this.now());
    this.timer.unref();
  }

  /** One round, due at `due`: its deadline is due + timeout, however late its timer fired. */
  private async round(due: number): Promise<void> {
    const n = ++this.started;
    const answered = await this.anyAnswers(due + this.opts.timeoutMs);
    if (this.stopped || n < this.counted) return;
    this.counted = n;
    if (answered) {
      this.misses = 0;
      if (!this.reachable) {
        this.reachable = true;
        this.opts.onChange(true);
      }
      this.opts.onRenew?.();
    } else {
      this.misses++;
      if (this.reachable && this.misses >= this.opts.failuresToLock) {
        this.reachable = false;
        this.opts.onChange(false);
      }
    }
  }

  /**
   * True as soon as one server answers; false when none has by `deadlineAt`
   * or every probe failed. Never rejects. Probes still running when another
   * server answered run on until the deadline (or their end): a probe is
   * aborted only when its deadline passed without an answer (or by stop()),
   * so an aborted probe always means "no answer in time", and a kept-open
   * probe connection drops it then (policy/directory/ldap/probe-connection.ts).
   */
  private anyAnswers(deadlineAt: number): Promise<boolean> {
    const controller = new AbortController();
    return new Promise<boolean>((resolve) => {
      let pending = this.opts.servers.length;
      let answered = false;
      const end = () => {
        clearTimeout(deadline);
        this.inFlight.delete(end);
        controller.abort();
        resolve(answered);
      };
      const settled = (ok: boolean) => {
        if (ok && !answered) {
          answered = true;
          resolve(true);
        }
        if (--pending === 0) end();
      };
      this.inFlight.add(end);
      const deadline = setTimeout(end, deadlineAt - this.now());
      if (pending === 0) end();
      for (const server of this.opts.servers) {
        this.opts.probe(server, controller.signal).then(settled, () => settled(false));
      }
    });
  }
}
