/**
 * How a user's take-out ends: their take-out session locked, slot T
 * destroyed, the installed key (or the pending request) dropped. At each
 * `exp` a timer sweeps the expired keys; a refusal of an expired key and
 * the online check (online-check.ts) end keys too.
 *
 * Security considerations: slot T is removed only when it belongs to the
 * key or request being ended (a newer request's slot stays); the lock
 * listeners (which forget cached logins) run whenever a take-out session is
 * locked. Callers run `destroy` and `dropRequest` inside the serial queue.
 */
import type { Clock } from '../../../shares/clock.js';
import { join } from 'node:path';
import { Keyring } from '../../../crypto/keyring.js';
import { KeyringError } from '../../../crypto/errors.js';
import { KEYRING_FILE, userDir } from '../../../shares/vault/user-vaults.js';
import type { AuditLog } from '../../audit/log.js';
import type { Sessions } from '../../sessions.js';
import type { Refusals } from './refusals.js';
import type { Serial } from './serial.js';
import type { PendingRequest, TakeoutState, TakeoutStore } from './store.js';
import type { KeyValidity } from './validity.js';

const MAX_TIMER_MS = 2 ** 31 - 1;

export interface ExpiryOptions {
  dataDir: string;
  pcId: string;
  sessions: Sessions;
  audit: AuditLog;
}

export class Expiry {
  private readonly lockListeners: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly opts: ExpiryOptions,
    private readonly store: TakeoutStore,
    private readonly keys: KeyValidity,
    private readonly refusals: Refusals,
    private readonly serial: Serial,
    private readonly now: Clock,
  ) {}

  /** Called whenever take-out sessions are locked (expiry, revocation, clock). */
  onLock(listener: () => void): void {
    this.lockListeners.push(listener);
  }

  /** Locks the user's take-out session, if one is open, and tells the lock listeners. */
  async lockSession(user: string): Promise<void> {
    if (!(await this.opts.sessions.takeoutSession(user))) return;
    await this.opts.sessions.lock(user);
    for (const listener of this.lockListeners) listener();
  }

  /** Destroys the user's slot T and installed key (inside the serial queue). */
  async destroy(user: string, why: string): Promise<void> {
    const key = this.store.state.keys[user];
    if (!key) return;
    await this.lockSession(user);
    await this.removeSlot(user, key.jti);
    await this.store.update((d) => {
      delete d.keys[user];
    });
    this.keys.forget(user);
    await this.opts.audit.append({ actor: 'system', action: 'takeout.destroy', target: key.jti, decision: 'info', reason: `slot T of ${user} destroyed: ${why}` });
    this.schedule();
  }

  /** Drops a pending request and its slot T (inside the serial queue); `also` changes the state in the same write. */
  async dropRequest(request: PendingRequest, why: string, also?: (draft: TakeoutState) => void): Promise<void> {
    await this.removeSlot(request.user, request.rid);
    await this.store.update((d) => {
      delete d.requests[request.rid];
      also?.(d);
    });
    await this.opts.audit.append({ actor: 'system', action: 'takeout.destroy', target: request.rid, decision: 'info', reason: `pending request of ${request.user} dropped: ${why}` });
  }

  /** Locks the sessions of keys that expired and destroys their slot T (run by the timer at each `exp`). */
  sweep(): Promise<void> {
    return this.serial.run(async () => {
      const nowS = Math.floor(this.now() / 1000);
      for (const [user, key] of Object.entries(this.store.state.keys)) {
        if (nowS < key.exp) continue;
        await this.refusals.record(user, 'ERR_TAKEOUT_EXPIRED', 'the take-out key has expired');
        await this.destroy(user, 'expired');
      }
      this.schedule();
    });
  }

  /** Arms the timer for the next `exp` among installed keys. */
  schedule(): void {
    clearTimeout(this.timer);
    const next = Math.min(...Object.values(this.store.state.keys).map((k) => k.exp * 1000));
    if (!Number.isFinite(next)) return;
    this.timer = setTimeout(() => void this.sweep().catch(() => undefined), Math.min(MAX_TIMER_MS, Math.max(0, next - this.now())));
    this.timer.unref();
  }

  /** Stops the timer. */
  close(): void {
    clearTimeout(this.timer);
  }

  /** Removes the user's slot T when it belongs to `rid`. */
  private async removeSlot(user: string, rid: string): Promise<void> {
    let keyring: Keyring;
    try {
      keyring = await Keyring.load(join(userDir(this.opts.dataDir, this.opts.pcId, user), KEYRING_FILE));
    } catch (err) {
      if (err instanceof KeyringError && err.code === 'ERR_KEYRING_MISSING') return;
      throw err;
    }
    if (keyring.takeoutRequestId === rid) await keyring.removeTakeoutSlot();
  }
}
