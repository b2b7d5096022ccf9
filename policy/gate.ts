/**
 * The gate: whether this PC serves documents now, and to whom.
 * - `online`: the company directory is reachable; every user may log in.
 * - `takeout`: the directory is unreachable, and at least one user holds a
 *   valid take-out key; only those users are admitted (`admits`), each to
 *   their own vault, opened through slot T.
 * - `locked`: the directory is unreachable and no take-out key is valid.
 * Going offline drops every key from memory (all vaults closed) and tells
 * the lock listeners (which abort open transfers and forget cached logins).
 * Coming back online closes the take-out sessions (users reopen through
 * slot N) and runs the take-out online check (slot T destroyed for keys used
 * offline, revoked or expired), then tells the online listeners.
 *
 * Security considerations: the initial state for a company directory is
 * unreachable until the first probe answers (nothing served on a guess).
 * The take-out policy decides with its own injected clock, so expiry to the
 * second is testable; a user without a valid key is refused before any
 * password is checked.
 */
import type { Sessions } from './sessions.js';

export type GateState = 'online' | 'locked' | 'takeout';

export const LOCKED_MESSAGE =
  'The service is locked: the company directory is unreachable and no take-out key is valid. Your documents are available again when this PC is back on the company network.';

/** What the gate needs of the take-out keys (policy/takeout/agent/takeout.ts). */
export interface TakeoutPolicy {
  /** True when some installed key is valid now. */
  anyValid(): boolean;
  /** Whether this user may use the share offline now (audits and locks on refusal). */
  admit(user: string): Promise<boolean>;
  /** The directory answers again. */
  onlineCheck(): Promise<void>;
}

export class Gate {
  private reachable: boolean;
  private readonly lockListeners: (() => void)[] = [];
  private readonly onlineListeners: (() => void)[] = [];

  constructor(
    private readonly sessions: Sessions,
    /** False for a company directory until the first probe answers; true for the local directory. */
    initiallyReachable: boolean,
    private readonly takeout?: TakeoutPolicy,
  ) {
    this.reachable = initiallyReachable;
  }

  /** True while the company directory is reachable. */
  get isReachable(): boolean {
    return this.reachable;
  }

  state(): GateState {
    if (this.reachable) return 'online';
    return this.takeout?.anyValid() ? 'takeout' : 'locked';
  }

  /** Whether `user` is let through now: always online; offline only with a valid take-out key. */
  async admits(user: string): Promise<boolean> {
    if (this.reachable) return true;
    return this.takeout ? this.takeout.admit(user) : false;
  }

  onLock(listener: () => void): void {
    this.lockListeners.push(listener);
  }

  onOnline(listener: () => void): void {
    this.onlineListeners.push(listener);
  }

  async setReachable(reachable: boolean): Promise<void> {
    if (reachable === this.reachable) return;
    this.reachable = reachable;
    if (reachable) {
      await this.sessions.lockTakeout();
      await this.takeout?.onlineCheck();
      for (const listener of this.onlineListeners) listener();
      return;
    }
    for (const listener of this.lockListeners) listener();
    await this.sessions.lockAll();
  }
}
