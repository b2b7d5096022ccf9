/**
 * Test preload (`node --import <this file's URL>`, passed through
 * NODE_OPTIONS to a real `mydoc serve` or `mydoc console serve` process):
 * runs that process's clock MYDOC_TEST_CLOCK_SKEW_MS milliseconds ahead of
 * (or, negative, behind) the real time, by shifting Date.now. Every part of
 * mydoc that keeps time reads shares/clock.ts `systemClock`, which calls
 * Date.now at each call, so this is the process's injected clock; TLS
 * certificate checks (OpenSSL's own time) and timers are not shifted.
 *
 * Only tests use it; without the variable (or with 0) nothing changes.
 */
const skew = Number(process.env.MYDOC_TEST_CLOCK_SKEW_MS ?? '0');
if (!Number.isFinite(skew)) throw new Error(`MYDOC_TEST_CLOCK_SKEW_MS is not a number of milliseconds: ${process.env.MYDOC_TEST_CLOCK_SKEW_MS}`);
if (skew !== 0) {
  const real = Date.now.bind(Date);
  Date.now = () => real() + skew;
}

export {};
