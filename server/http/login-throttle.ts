/**
 * The hold-back of password checks, shared by every login of mydoc: the
 * agent's Basic logins (basic-auth.ts) and the console's administrators
 * (server/console/admins.ts).
 *
 * Security considerations: wrong guesses slow the guesser, never the
 * owner's right password.
 * - Password checks (scrypt, an LDAP bind) run at most 2 at a time in all,
 *   so guesses cannot take the thread pool that file I/O needs.
 * - Each client address has at most 2 attempts in progress, a check and the
 *   wait that follows a wrong one; up to 32 more wait their turn and any
 *   further one is refused at once (TooManyLoginAttempts, a 429).
 * - After 5 wrong passwords in a row, by one address or for one account,
 *   each further wrong answer is held back 250 ms, doubling up to 8 s. A
 *   right password is answered as soon as it is checked (no lockout). So a
 *   guesser gets at most 2 answers per 8 s per address, while the owner,
 *   from their own address, is neither queued nor held.
 * - Counts reset on success (the account's) or after 15 quiet minutes; at
 *   most 10,000 names and addresses are tracked (the oldest is forgotten).
 */
import pLimit, { type LimitFunction } from 'p-limit';
import { systemClock, type Clock } from '../../shares/clock.js';

const FREE_FAILURES = 5;
const BASE_DELAY_MS = 250;
const MAX_DELAY_MS = 8000;
const FAILURE_MEMORY_MS = 15 * 60 * 1000;
const MAX_TRACKED = 10_000;
const MAX_CHECKS = 2;
const MAX_IN_PROGRESS_PER_SOURCE = 2;
const MAX_WAITING_PER_SOURCE = 32;

/** Too many login attempts from one client address at once; the caller answers 429. */
export class TooManyLoginAttempts extends Error {
  readonly code = 'ERR_LOGIN_THROTTLED';
  constructor() {
    super('too many login attempts from your address at once; try again in a few seconds');
    this.name = 'TooManyLoginAttempts';
  }
}

interface FailureState {
  count: number;
  last: number;
}

/** Keeps a map to MAX_TRACKED entries, the most recently set last. */
export function remember<T>(map: Map<string, T>, key: string, value: T): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > MAX_TRACKED) map.delete(map.keys().next().value!);
}

export class LoginThrottle {
  /** Wrong passwords in a row, by account name and by client address (`@` + address). */
  private readonly failures = new Map<string, FailureState>();
  private readonly checks = pLimit(MAX_CHECKS);
  private readonly sources = new Map<string, LimitFunction>();

  constructor(
    private readonly now: Clock = systemClock,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {}

  /** How long the next wrong answer for `user` from `source` is held back. */
  delayFor(user: string, source = ''): number {
    return Math.max(this.delayOf(user), this.delayOf(`@${source}`));
  }

  /**
   * Runs the password check `check` for the account `user` from the client
   * address `source`, in that address's lane and within the global limit; a
   * wrong answer is counted and held back before it is returned. Throws
   * TooManyLoginAttempts when that address has too many attempts waiting.
   */
  async attempt<T extends { ok: boolean }>(user: string, source: string, check: () => Promise<T>): Promise<T> {
    let lane = this.sources.get(source);
    if (!lane) this.sources.set(source, (lane = pLimit(MAX_IN_PROGRESS_PER_SOURCE)));
    if (lane.pendingCount >= MAX_WAITING_PER_SOURCE) throw new TooManyLoginAttempts();
    try {
      return await lane(async () => {
        const result = await this.checks(check);
        if (result.ok) {
          this.failures.delete(user);
          return result;
        }
        this.countFailure(user);
        this.countFailure(`@${source}`);
        const delay = this.delayFor(user, source);
        if (delay > 0) await this.sleep(delay);
        return result;
      });
    } finally {
      if (lane.activeCount === 0 && lane.pendingCount === 0 && this.sources.get(source) === lane) this.sources.delete(source);
    }
  }

  private delayOf(key: string): number {
    const state = this.failures.get(key);
    if (!state || this.now() - state.last > FAILURE_MEMORY_MS || state.count <= FREE_FAILURES) return 0;
    return Math.min(BASE_DELAY_MS * 2 ** (state.count - FREE_FAILURES - 1), MAX_DELAY_MS);
  }

  private countFailure(key: string): void {
    const state = this.failures.get(key);
    const fresh = !state || this.now() - state.last > FAILURE_MEMORY_MS;
    remember(this.failures, key, { count: fresh ? 1 : state.count + 1, last: this.now() });
  }
}
