/**
 * Small shared helpers for the benchmarks (run by scripts/bench.mjs).
 *
 * A benchmark prints one JSON line per figure on stdout and nothing else
 * there; progress goes to stderr. MYDOC_BENCH_SCALE (default 1) shrinks or
 * grows the data sizes for a quick run.
 */

export const MiB = 1024 * 1024;

/** The size multiplier from MYDOC_BENCH_SCALE (default 1). */
export function benchScale(): number {
  const raw = process.env['MYDOC_BENCH_SCALE'];
  if (raw === undefined || raw === '') return 1;
  const scale = Number(raw);
  if (!Number.isFinite(scale) || scale <= 0) throw new Error(`MYDOC_BENCH_SCALE must be a positive number, not ${JSON.stringify(raw)}`);
  return scale;
}

/** `fullBytes` times the scale, rounded down to a whole number of `unit`s (at least one). */
export function scaledBytes(fullBytes: number, unit = MiB): number {
  return Math.max(1, Math.floor((fullBytes * benchScale()) / unit)) * unit;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of nothing');
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Wall-clock seconds taken by `fn` (sync or async). */
export async function timed(fn: () => unknown): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** Runs `a` then `b` on even runs and `b` then `a` on odd runs, so drift and warm-up hit both alike. */
export async function alternating(run: number, a: () => Promise<void>, b: () => Promise<void>): Promise<void> {
  if (run % 2 === 0) {
    await a();
    await b();
  } else {
    await b();
    await a();
  }
}

/** Throughput in MB/s (10^6 bytes per second). */
export function mbPerSecond(bytes: number, seconds: number): number {
  return bytes / 1e6 / seconds;
}

export interface Figure {
  bench: string;
  unit: string;
  candidate: number;
  baseline: number;
  /** candidate / baseline. */
  ratio: number;
  bytes: number;
  runs: number;
  [extra: string]: unknown;
}

/**
 * A rate figure from per-run timings of the candidate and the baseline: the
 * median rate of each (`rate(seconds)`, in `unit`) and their ratio.
 */
export function rateFigure(
  bench: string,
  unit: string,
  rate: (seconds: number) => number,
  bytes: number,
  seconds: { candidate: readonly number[]; baseline: readonly number[] },
  extra: Record<string, unknown> = {},
): Figure {
  const candidate = median(seconds.candidate.map(rate));
  const baseline = median(seconds.baseline.map(rate));
  const scale = benchScale();
  return {
    bench,
    unit,
    candidate: Math.round(candidate),
    baseline: Math.round(baseline),
    ratio: Math.round((candidate / baseline) * 1000) / 1000,
    bytes,
    runs: Math.min(seconds.candidate.length, seconds.baseline.length),
    ...(scale === 1 ? {} : { scale }),
    ...extra,
  };
}

/** A throughput figure (MB/s) from per-run timings over `bytes` bytes. */
export function throughputFigure(
  bench: string,
  bytes: number,
  seconds: { candidate: readonly number[]; baseline: readonly number[] },
  extra: Record<string, unknown> = {},
): Figure {
  return rateFigure(bench, 'MB/s', (s) => mbPerSecond(bytes, s), bytes, seconds, extra);
}

export function emit(figure: Figure): void {
  process.stdout.write(JSON.stringify(figure) + '\n');
}

/** Progress for humans, on stderr. */
export function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}
