/**
 * Refusals of take-out keys in the audit log: each with its own code, and
 * each (user, code) recorded once until the next online check, so a client
 * retrying cannot flood the log.
 */
import type { AuditLog } from '../../audit/log.js';
import type { TakeoutErrorCode } from '../errors.js';
import type { TakeoutStore } from './store.js';

export class Refusals {
  /** `user \0 code` of refusals already audited since the last online check. */
  private readonly recorded = new Set<string>();

  constructor(
    private readonly audit: AuditLog,
    private readonly store: TakeoutStore,
  ) {}

  async record(user: string, code: TakeoutErrorCode, message: string): Promise<void> {
    const key = `${user}\0${code}`;
    if (this.recorded.has(key)) return;
    this.recorded.add(key);
    const action = code === 'ERR_TAKEOUT_EXPIRED' ? 'takeout.expire' : code === 'ERR_TAKEOUT_CLOCK' ? 'takeout.clock' : 'takeout.refuse';
    await this.audit.append({ actor: user, action, target: this.store.state.keys[user]?.jti, decision: 'deny', reason: `${code}: ${message}` });
  }

  /** The directory answered: refusals are recorded afresh. */
  clear(): void {
    this.recorded.clear();
  }
}
