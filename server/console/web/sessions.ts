/**
 * The web page's sessions: in memory only (a console restart logs every
 * administrator out), each with an idle and an absolute expiry and its own
 * CSRF token (the synchronizer-token pattern: every form carries the
 * session's token and every POST must send it back).
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
 * - Idle 30 minutes, absolute 8 hours; a session before login (it carries
 *   the login form's token) lives 10 minutes. At most 10,000 sessions are
 *   kept: a flood of anonymous ones pushes out the oldest anonymous ones
 *   first, never a logged-in administrator's while anonymous ones remain.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../../../shares/clock.js';
import type { Admin } from '../admins.js';

export const SESSION_COOKIE = '__Host-mydoc-console';
export const IDLE_MS = 30 * 60 * 1000;
export const ABSOLUTE_MS = 8 * 60 * 60 * 1000;
export const ANONYMOUS_MS = 10 * 60 * 1000;
const MAX_SESSIONS = 10_000;

export interface Session {
  /** Undefined before login. */
  admin: Admin | undefined;
  csrf: string;
  created: number;
  lastUsed: number;
}

function token(): string {
  return randomBytes(32).toString('base64url');
}

function keyOf(id: string): string {
  return createHash('sha256').update(id).digest('base64url');
}

export class Sessions {
  private readonly byKey = new Map<string, Session>();

  constructor(private readonly clock: Clock) {}

  /** A new session (anonymous, or logged in as `admin`) and its id for the cookie. */
  create(admin: Admin | undefined): { id: string; session: Session } {
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
    if (typeof sent !== 'string') return false;
    const a = Buffer.from(session.csrf);
    const b = Buffer.from(sent);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  get size(): number {
    return this.byKey.size;
  }

  private expired(s: Session, now: number): boolean {
    if (s.admin === undefined) return now - s.created > ANONYMOUS_MS;
    return now - s.lastUsed > IDLE_MS || now - s.created > ABSOLUTE_MS;
  }

  private makeRoom(): void {
    if (this.byKey.size < MAX_SESSIONS) return;
    const now = this.clock();
    for (const [key, s] of this.byKey) if (this.expired(s, now)) this.byKey.delete(key);
    if (this.byKey.size < MAX_SESSIONS) return;
    // Oldest first (insertion order): an anonymous one if there is one, else the oldest of all.
    for (const [key, s] of this.byKey) {
      if (s.admin === undefined) {
        this.byKey.delete(key);
        return;
      }
    }
    this.byKey.delete(this.byKey.keys().next().value!);
  }
}
