/**
 * The reachability monitor: probes every directory server (an anonymous
 * rootDSE read with a short timeout) every interval. The directory is
 * reachable while any server answers. After `failuresToLock` rounds in a row
 * with no answer it reports "unreachable"; the first answer after that
 * reports "reachable" again.
 *
 * Lock latency: a cut is noticed by the first round that starts after it,
 * so the monitor reports within interval x failuresToLock + probe timeout.
 *
 * Security considerations: the service starts unreachable (locked) and
 * opens only after a successful round: nothing is served on a guess.
 */

export interface ReachabilityOptions {
  servers: readonly string[];
  probe: (server: string) => Promise<boolean>;
  intervalMs: number;
  failuresToLock: number;
  /** Called on every change; `reachable` is the new state. */
  onChange: (reachable: boolean) => void;
  /** Called after every successful round (lease renewal). */
  onRenew?: () => void;
}

export class ReachabilityMonitor {
  private reachable = false;
  private misses = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly opts: ReachabilityOptions) {}

  get isReachable(): boolean {
    return this.reachable;
  }

  /** Runs the first round now (resolving after it), then one round per interval. */
  async start(): Promise<void> {
    await this.round();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async round(): Promise<void> {
    const started = Date.now();
    const answers = await Promise.all(this.opts.servers.map((s) => this.opts.probe(s).catch(() => false)));
    if (this.stopped) return;
    if (answers.some(Boolean)) {
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
    const wait = Math.max(0, this.opts.intervalMs - (Date.now() - started));
    this.timer = setTimeout(() => void this.round(), wait);
    this.timer.unref();
  }
}
