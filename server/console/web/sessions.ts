/**
 * The web page's sessions: in memory only (a console restart logs every
 * administrator out), each with an idle and an absolute expiry and its own
 * CSRF token (the synchronizer-token pattern: every form carries the
 * session's token and every POST must send it back). Before login there is
 * no session: the login form's cookie and CSRF token are stateless
 * (LoginForms, HMACs under a per-process key), so no number of login pages
 * fetched can push out anything the console keeps, and a login works
 * however many were fetched.
 *
 * Security considerations:
 * - Session ids and CSRF tokens are 32 random bytes (base64url); the id
 *   travels only in a `__Host-` cookie (`Secure; HttpOnly; SameSite=Strict;
 *   Path=/`, no Domain), so no script, no other site and no other host can
 *   read or plant it.
 * - A login starts a new session (a session id known before the login is
 *   worth nothing after it); logout and expiry forget the session at once.
 * - Sessions are looked up by the SHA-256 of their id, so the map's keys are
 *   not usable cookies; CSRF tokens are compared in constant time.
 * - Idle 30 minutes, absolute 8 hours. At most 10,000 sessions are kept
 *   (only a successful login makes one); the oldest goes first.
 * - The login form's cookie is `<issued>.<nonce>.<HMAC>` and its CSRF token
 *   another HMAC of the same `<issued>.<nonce>`, under a key of 32 random
 *   bytes made when the process starts (never stored): a cookie not made by
 *   this process, or older than 10 minutes, is refused, and the token of one
 *   cookie is worth nothing with another. Both are compared in constant time.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../../../shares/clock.js';
import type { Admin } from '../admins.js';

export const SESSION_COOKIE = '__Host-mydoc-console';
export const IDLE_MS = 30 * 60 * 1000;
export const ABSOLUTE_MS = 8 * 60 * 60 * 1000;
export const ANONYMOUS_MS = 10 * 60 * 1000;
const MAX_SESSIONS = 10_000;

export interface Session {
  admin: Admin;
  csrf: string;
  created: number;
  lastUsed: number;
}

function token(): string {
  return randomBytes(32).toString('base64url');
}

/** Constant-time equality of a secret and what was sent. */
function sameSecret(secret: string, sent: unknown): boolean {
  if (typeof sent !== 'string') return false;
  const a = Buffer.from(secret);
  const b = Buffer.from(sent);
  return a.length === b.length && timingSafeEqual(a, b);
}

function keyOf(id: string): string {
  return createHash('sha256').update(id).digest('base64url');
}

export class Sessions {
  private readonly byKey = new Map<string, Session>();

  constructor(private readonly clock: Clock) {}

  /** A new session of `admin` (who just logged in) and its id for the cookie. */
  create(admin: Admin): { id: string; session: Session } {
    this.makeRoom();
    const id = token();
    const now = this.clock();
    const session: Session = { admin, csrf: token(), created: now, lastUsed: now };
    this.byKey.set(keyOf(id), session);
    return { id, session };
  }

  /** The live session of a cookie value (its idle time restarts), or undefined. */
  get(id: string | undefined): Session | undefined {
    if (id === undefined || id === '') return undefined;
    const key = keyOf(id);
    const session = this.byKey.get(key);
    if (!session) return undefined;
    const now = this.clock();
    if (this.expired(session, now)) {
      this.byKey.delete(key);
      return undefined;
    }
    session.lastUsed = now;
    return session;
  }

  /** Forgets a session (logout). */
  end(id: string | undefined): void {
    if (id !== undefined) this.byKey.delete(keyOf(id));
  }

  /** True when `sent` is the session's CSRF token. */
  static csrfMatches(session: Session, sent: unknown): boolean {
    return sameSecret(session.csrf, sent);
  }

  get size(): number {
    return this.byKey.size;
  }

  private expired(s: Session, now: number): boolean {
    return now - s.lastUsed > IDLE_MS || now - s.created > ABSOLUTE_MS;
  }

  private makeRoom(): void {
    if (this.byKey.size < MAX_SESSIONS) return;
    const now = this.clock();
    for (const [key, s] of this.byKey) if (this.expired(s, now)) this.byKey.delete(key);
    if (this.byKey.size < MAX_SESSIONS) return;
    // Oldest first (insertion order).
    this.byKey.delete(this.byKey.keys().next().value!);
  }
}

/** The login form's stateless cookie and CSRF token (see the module's header). */
export class LoginForms {
  private readonly key = randomBytes(32);

  constructor(private readonly clock: Clock) {}

  /** A new login form: the cookie value to set and the CSRF token its form carries. */
  issue(): { cookie: string; csrf: string } {
    const body = `${this.clock().toString(36)}.${token()}`;
    return { cookie: `${body}.${this.mac('cookie', body)}`, csrf: this.mac('csrf', body) };
  }

  /** The CSRF token of a login form cookie made by this process less than ANONYMOUS_MS ago; undefined otherwise. */
  csrfOf(cookie: string | undefined): string | undefined {
    const parts = cookie?.split('.') ?? [];
    if (parts.length !== 3) return undefined;
    const body = `${parts[0]}.${parts[1]}`;
    if (!sameSecret(this.mac('cookie', body), parts[2])) return undefined;
    const age = this.clock() - parseInt(parts[0]!, 36);
    if (!(age >= 0 && age <= ANONYMOUS_MS)) return undefined;
    return this.mac('csrf', body);
  }

  /** True when `sent` is the CSRF token of the login form `cookie`. */
  matches(cookie: string | undefined, sent: unknown): boolean {
    const csrf = this.csrfOf(cookie);
    return csrf !== undefined && sameSecret(csrf, sent);
  }

  private mac(purpose: 'cookie' | 'csrf', body: string): string {
    return createHmac('sha256', this.key).update(`${purpose}:${body}`).digest('base64url');
  }
}
