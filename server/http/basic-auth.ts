/**
 * HTTP Basic authentication against the directory.
 *
 * Security considerations:
 * - Basic is only ever offered over TLS (the server speaks nothing else).
 * - User names: "DOMAIN\user" and "user@domain" both mean "user". A login
 *   of more than 256 characters is wrong without being checked.
 * - Wrong guesses slow the guesser, never the owner's right password: the
 *   hold-back of login-throttle.ts (2 checks at a time in all, 2 attempts in
 *   progress per address, then 250 ms doubling to 8 s after 5 wrong ones in a
 *   row by one address or for one user name; no lockout).
 * - A successful login is remembered for 5 minutes as an HMAC of the
 *   password under a per-process random key (never the password itself), so
 *   Windows' many requests do not each pay for scrypt; it is compared in
 *   constant time. Identical attempts in flight share one check.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AuthResult, Directory } from '../../policy/directory/directory.js';
import { normalizeUserName } from '../../policy/directory/user-name.js';
import { systemClock, type Clock } from '../../shares/clock.js';
import { LoginThrottle, remember } from './login-throttle.js';

export { TooManyLoginAttempts } from './login-throttle.js';

export interface Credentials {
  /** What the user typed, e.g. `alice`, `CORP\\alice` or `alice@corp.example`. */
  login: string;
  /** The account name the login means (throttling and caching key). */
  user: string;
  password: string;
}

const CACHE_TTL_MS = 5 * 60 * 1000;
export const MAX_LOGIN_CHARS = 256;

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

export class Authenticator {
  private readonly throttle: LoginThrottle;
  private readonly cache = new Map<string, { mac: Buffer; expires: number; result: AuthResult }>();
  private readonly macKey = randomBytes(32);
  private readonly inFlight = new Map<string, Promise<AuthResult>>();

  constructor(
    /** The directory online; offline, the take-out keys (slot T is the password check). */
    private readonly directory: Pick<Directory, 'authenticate'>,
    private readonly now: Clock = systemClock,
    sleep?: (ms: number) => Promise<void>,
  ) {
    this.throttle = new LoginThrottle(now, sleep);
  }

  /** How long the next wrong answer for `user` from `source` is held back (for tests and the log). */
  delayFor(user: string, source = ''): number {
    return this.throttle.delayFor(user, source);
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
    const attempt = this.throttle.attempt(creds.user, source, () => this.check(creds)).then((result) => {
      if (result.ok) remember(this.cache, creds.user, { mac, expires: this.now() + CACHE_TTL_MS, result });
      return result;
    });
    const settled = attempt.finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, settled);
    return settled;
  }

  private async check(creds: Credentials): Promise<AuthResult> {
    if (creds.login.length > MAX_LOGIN_CHARS) return { ok: false, reason: 'wrong user name or password' };
    return this.directory.authenticate(creds.login, creds.password);
  }

  /** Forgets every remembered login (e.g. when the service locks). */
  forget(): void {
    this.cache.clear();
  }
}
