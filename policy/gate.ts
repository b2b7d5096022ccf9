/**
 * The gate: whether this PC serves documents now. `online` while the company
 * directory is reachable; `locked` otherwise (the take-out state comes with
 * take-out keys). Locking drops every key from memory (all vaults closed)
 * and tells the listeners (which abort open transfers and forget cached
 * logins).
 */
import type { Sessions } from './sessions.js';

export type GateState = 'online' | 'locked' | 'takeout';

export const LOCKED_MESSAGE =
  'The service is locked: the company directory is unreachable and no take-out key is valid. Your documents are available again when this PC is back on the company network.';

export class Gate {
  private reachable: boolean;
  private readonly lockListeners: (() => void)[] = [];

  constructor(
    private readonly sessions: Sessions,
    /** False for a company directory until the first probe answers; true for the local directory. */
    initiallyReachable: boolean,
  ) {
    this.reachable = initiallyReachable;
  }

  state(): GateState {
    return this.reachable ? 'online' : 'locked';
  }

  onLock(listener: () => void): void {
    this.lockListeners.push(listener);
  }

  async setReachable(reachable: boolean): Promise<void> {
    if (reachable === this.reachable) return;
    this.reachable = reachable;
    if (reachable) return;
    for (const listener of this.lockListeners) listener();
    await this.sessions.lockAll();
  }
}
