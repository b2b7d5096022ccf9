/**
 * The WebDAV lock table (RFC 4918) of each open user session. Locks live in
 * memory as long as the session: a table is made at the session's first
 * WebDAV request and dropped when the session ends (`UserSession.ended`:
 * vault closed, keys dropped), so a user whose session is reopened starts
 * without locks, as after a restart. The policy layer knows nothing of
 * locks; it only says when a session ends.
 */
import type { UserSession } from '../../policy/sessions.js';
import { LockManager } from '../../shares/webdav/locks.js';
import { systemClock, type Clock } from '../../shares/clock.js';

export class SessionLocks {
  private readonly tables = new Map<UserSession, LockManager>();

  constructor(private readonly now: Clock = systemClock) {}

  /** The lock table of `session`, made at its first use (a session that has ended already gets one that is not kept). */
  of(session: UserSession): LockManager {
    let table = this.tables.get(session);
    if (table) return table;
    table = new LockManager(this.now);
    if (session.ended.aborted) return table;
    this.tables.set(session, table);
    session.ended.addEventListener('abort', () => this.tables.delete(session), { once: true });
    return table;
  }

  /** The lock tables of the open sessions, with their users (admin listing and clearing, metrics). */
  all(): { user: string; locks: LockManager }[] {
    return [...this.tables].map(([session, locks]) => ({ user: session.user, locks }));
  }
}
