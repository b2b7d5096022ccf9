/**
 * HTTP Basic authentication against the directory.
 *
 * Security considerations:
 * - Basic is only ever offered over TLS (the server speaks nothing else).
 * - User names: "DOMAIN\user" and "user@domain" both mean "user".
 * - Throttling, per user name: the first 5 wrong passwords in a row cost
 *   nothing extra; each further attempt for that name waits 250 ms, doubling
 *   up to 8 s, before the password is even checked (attempts for one name
 *   are queued, so parallel guesses do not escape). The right password still
 *   works after the wait (no lockout), other user names are not slowed, and
 *   the count resets on success or after 15 quiet minutes.
 * - A successful login is remembered for 5 minutes as an HMAC of the
 *   password under a per-process random key (never the password itself), so
 *   Windows' many requests do not each pay for scrypt; it is compared in
 *   constant time.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { normalizeUserName, type AuthResult, type Directory } from '../policy/directory.js';

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
  private readonly failures = new Map<string, FailureState>();
  private readonly cache = new Map<string, { mac: Buffer; expires: number; result: AuthResult }>();
  private readonly macKey = randomBytes(32);
  private readonly queues = new Map<string, Promise<void>>();

  constructor(
    /** The directory online; offline, the take-out keys (slot T is the password check). */
    private readonly directory: Pick<Directory, 'authenticate'>,
    private readonly now: () => number = Date.now,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {}

  /** The delay the next attempt for `user` will wait (for tests and the log). */
  delayFor(user: string): number {
    const state = this.failures.get(user);
    if (!state || this.now() - state.last > FAILURE_MEMORY_MS || state.count < FREE_FAILURES) return 0;
    return Math.min(BASE_DELAY_MS * 2 ** (state.count - FREE_FAILURES), MAX_DELAY_MS);
  }

  /** Checks the credentials with the directory (or the recent-login cache). */
  async verify(creds: Credentials): Promise<AuthResult> {
    const mac = createHmac('sha256', this.macKey).update(creds.login).update('\0').update(creds.password).digest();
    const cached = this.cache.get(creds.user);
    if (cached && cached.expires > this.now() && timingSafeEqual(cached.mac, mac)) return cached.result;
    // Attempts for one user name run one after another, so parallel guesses
    // queue behind each other's delays instead of all passing as "free".
    const previous = this.queues.get(creds.user) ?? Promise.resolve();
    const attempt = previous.then(() => this.check(creds, mac));
    const tail = attempt.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(creds.user, tail);
    void tail.then(() => {
      if (this.queues.get(creds.user) === tail) this.queues.delete(creds.user);
    });
    return attempt;
  }

  private async check(creds: Credentials, mac: Buffer): Promise<AuthResult> {
    const delay = this.delayFor(creds.user);
    if (delay > 0) await this.sleep(delay);
    const result = await this.directory.authenticate(creds.login, creds.password);
    if (result.ok) {
      this.failures.delete(creds.user);
      this.remember(this.cache, creds.user, { mac, expires: this.now() + CACHE_TTL_MS, result });
    } else {
      const state = this.failures.get(creds.user);
      const fresh = !state || this.now() - state.last > FAILURE_MEMORY_MS;
      this.remember(this.failures, creds.user, { count: fresh ? 1 : state.count + 1, last: this.now() });
    }
    return result;
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
