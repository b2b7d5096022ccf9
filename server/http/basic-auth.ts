/**
 * HTTP Basic authentication against the directory.
 *
 * Security considerations:
 * - Basic is only ever offered over TLS (the server speaks nothing else).
 * - User names: "DOMAIN\user" and "user@domain" both mean "user". A login
 *   of more than 256 characters is wrong without being checked.
 * - Wrong guesses slow the guesser, never the owner's right password:
 *   - Password checks (scrypt, an LDAP bind) run at most 2 at a time in
 *     all, so guesses cannot take the thread pool that file I/O needs.
 *   - Each client address has at most 2 attempts in progress, a check and
 *     the wait that follows a wrong one; up to 32 more wait their turn and
 *     any further one is refused at once (TooManyLoginAttempts, a 429).
 *   - After 5 wrong passwords in a row, by one address or for one user
 *     name, each further wrong answer is held back 250 ms, doubling up to
 *     8 s. A right password is answered as soon as it is checked (no
 *     lockout). So a guesser gets at most 2 answers per 8 s per address,
 *     while the owner, from their own address, is neither queued nor held.
 *     From one address the owner and a guesser cannot be told apart.
 *   - Counts reset on success (the user name's) or after 15 quiet minutes.
 * - A successful login is remembered for 5 minutes as an HMAC of the
 *   password under a per-process random key (never the password itself), so
 *   Windows' many requests do not each pay for scrypt; it is compared in
 *   constant time. Identical attempts in flight share one check.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import pLimit, { type LimitFunction } from 'p-limit';
import type { AuthResult, Directory } from '../../policy/directory/directory.js';
import { normalizeUserName } from '../../policy/directory/user-name.js';
import { systemClock, type Clock } from '../../shares/clock.js';

export interface Credentials {
  /** What the user typed, e.g. `alice`, `CORP\\alice` or `alice@corp.example`. */
  login: string;
  /** The account name the login means (throttling and caching key). */
  user: string;
  password: string;
}

const FREE_FAILURES = 5;
const BASE_DELAY_MS = 250;
const MAX_DELAY_MS = 8000;
const FAILURE_MEMORY_MS = 15 * 60 * 1000;
const CACHE_TTL_MS = 5 * 60 * 1000;
const MAX_TRACKED = 10_000;
const MAX_CHECKS = 2;
const MAX_IN_PROGRESS_PER_SOURCE = 2;
const MAX_WAITING_PER_SOURCE = 32;
export const MAX_LOGIN_CHARS = 256;

/** Too many login attempts from one client address at once; the caller answers 429. */
export class TooManyLoginAttempts extends Error {
  readonly code = 'ERR_LOGIN_THROTTLED';
  constructor() {
    super('too many login attempts from your address at once; try again in a few seconds');
    this.name = 'TooManyLoginAttempts';
  }
}

/** Parses `Authorization: Basic ...`; undefined when absent or malformed. */
export function parseBasic(header: string | undefined): Credentials | undefined {
  const m = /^\s*basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  const login = decoded.slice(0, colon).trim();
  const user = normalizeUserName(login);
  return user ? { login, user, password: decoded.slice(colon + 1) } : undefined;
}

interface FailureState {
  count: number;
  last: number;
}

export class Authenticator {
  /** Wrong passwords in a row, by user name and by client address (`@` + address). */
  private readonly failures = new Map<string, FailureState>();
  private readonly cache = new Map<string, { mac: Buffer; expires: number; result: AuthResult }>();
  private readonly macKey = randomBytes(32);
  private readonly checks = pLimit(MAX_CHECKS);
  private readonly sources = new Map<string, LimitFunction>();
  private readonly inFlight = new Map<string, Promise<AuthResult>>();

  constructor(
    /** The directory online; offline, the take-out keys (slot T is the password check). */
    private readonly directory: Pick<Directory, 'authenticate'>,
    private readonly now: Clock = systemClock,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {}

  /** How long the next wrong answer for `user` from `source` is held back (for tests and the log). */
  delayFor(user: string, source = ''): number {
    return Math.max(this.delayOf(user), this.delayOf(`@${source}`));
  }

  /**
   * Checks the credentials with the directory (or the recent-login cache).
   * `source` is the client's address. Throws TooManyLoginAttempts when that
   * address has too many attempts waiting already.
   */
  async verify(creds: Credentials, source = ''): Promise<AuthResult> {
    const mac = createHmac('sha256', this.macKey).update(creds.login).update('\0').update(creds.password).digest();
    const cached = this.cache.get(creds.user);
    if (cached && cached.expires > this.now() && timingSafeEqual(cached.mac, mac)) return cached.result;
    // Windows sends several requests at once with the same credentials: one check for them all.
    const key = `${source}\0${creds.user}\0${mac.toString('hex')}`;
    const shared = this.inFlight.get(key);
    if (shared) return shared;
    let lane = this.sources.get(source);
    if (!lane) this.sources.set(source, (lane = pLimit(MAX_IN_PROGRESS_PER_SOURCE)));
    if (lane.pendingCount >= MAX_WAITING_PER_SOURCE) throw new TooManyLoginAttempts();
    const attempt = lane(() => this.attempt(creds, mac, source)).finally(() => {
      this.inFlight.delete(key);
      if (lane.activeCount === 0 && lane.pendingCount === 0 && this.sources.get(source) === lane) this.sources.delete(source);
    });
    this.inFlight.set(key, attempt);
    return attempt;
  }

  private async attempt(creds: Credentials, mac: Buffer, source: string): Promise<AuthResult> {
    const result: AuthResult =
      creds.login.length > MAX_LOGIN_CHARS ? { ok: false, reason: 'wrong user name or password' } : await this.checks(() => this.directory.authenticate(creds.login, creds.password));
    if (result.ok) {
      this.failures.delete(creds.user);
      this.remember(this.cache, creds.user, { mac, expires: this.now() + CACHE_TTL_MS, result });
      return result;
    }
    this.countFailure(creds.user);
    this.countFailure(`@${source}`);
    const delay = this.delayFor(creds.user, source);
    if (delay > 0) await this.sleep(delay);
    return result;
  }

  private delayOf(key: string): number {
    const state = this.failures.get(key);
    if (!state || this.now() - state.last > FAILURE_MEMORY_MS || state.count <= FREE_FAILURES) return 0;
    return Math.min(BASE_DELAY_MS * 2 ** (state.count - FREE_FAILURES - 1), MAX_DELAY_MS);
  }

  private countFailure(key: string): void {
    const state = this.failures.get(key);
    const fresh = !state || this.now() - state.last > FAILURE_MEMORY_MS;
    this.remember(this.failures, key, { count: fresh ? 1 : state.count + 1, last: this.now() });
  }

  /** Forgets every remembered login (e.g. when the service locks). */
  forget(): void {
    this.cache.clear();
  }

  private remember<T>(map: Map<string, T>, key: string, value: T): void {
    map.delete(key);
    map.set(key, value);
    if (map.size > MAX_TRACKED) map.delete(map.keys().next().value!);
  }
}
