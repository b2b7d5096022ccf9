/**
 * The one clock type: milliseconds since the epoch. Everything whose
 * behaviour depends on the time (schedules, expiries, throttling, records)
 * takes a `Clock`, so tests can inject their own; `systemClock` is the
 * default. It lives here, in the lowest layer that reads the time, so every
 * layer above can import it.
 */
export type Clock = () => number;

/** The system clock (read at each call, so timer mocks that replace `Date` apply). */
export const systemClock: Clock = () => Date.now();
