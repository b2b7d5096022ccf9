/**
 * The unlocked vaults of the users currently using the share: opened at a
 * user's first authenticated request (keyring slot N with the directory's
 * network secret), kept with that user's WebDAV lock table, and all dropped
 * by `lockAll()` (keys out of memory, vaults closed).
 */
import { openUserVault, canonicalUser } from '../shares/user-vaults.js';
import type { Vault } from '../shares/vault.js';
import { LockManager } from '../shares/webdav/locks.js';
import type { Keyring } from '../crypto/keyring.js';
import { KeyringError } from '../crypto/errors.js';
import type { Directory } from './directory.js';

export interface UserSession {
  user: string;
  vault: Vault;
  locks: LockManager;
}

interface OpenSession extends UserSession {
  keyring: Keyring;
}

export class Sessions {
  private readonly open = new Map<string, Promise<OpenSession>>();

  constructor(
    private readonly dataDir: string,
    private readonly pcId: string,
    private readonly directory: Directory,
    /** Enrols a user who has no vault on this PC yet (first online login); absent: no enrolment. */
    private readonly enrol?: (user: string) => Promise<void>,
    private readonly now: () => number = Date.now,
  ) {}

  /** The user's session, opening their vault on first use. */
  async get(user: string): Promise<UserSession> {
    const key = canonicalUser(user);
    let pending = this.open.get(key);
    if (!pending) {
      pending = this.openSession(key);
      this.open.set(key, pending);
      pending.catch(() => this.open.delete(key));
    }
    return pending;
  }

  /** Every open session (for the admin lock listing and metrics). */
  async all(): Promise<UserSession[]> {
    return this.allOpen();
  }

  private async allOpen(): Promise<OpenSession[]> {
    const settled = await Promise.allSettled(this.open.values());
    return settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  }

  /** Drops every key from memory and closes every vault. */
  async lockAll(): Promise<void> {
    const sessions = await this.allOpen();
    this.open.clear();
    for (const s of sessions) {
      s.vault.close();
      s.keyring.lock();
    }
  }

  private async openSession(user: string): Promise<OpenSession> {
    const open = () => openUserVault(this.dataDir, this.pcId, user, this.directory.secrets);
    const { keyring, vault } = await open().catch(async (err: unknown) => {
      if (!(err instanceof KeyringError && err.code === 'ERR_KEYRING_MISSING') || !this.enrol) throw err;
      await this.enrol(user);
      return open();
    });
    return { user, keyring, vault, locks: new LockManager(this.now) };
  }
}
