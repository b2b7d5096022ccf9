/**
 * The unlocked vaults of the users currently using the share. Online, a
 * user's vault opens at their first authenticated request (keyring slot N
 * with the directory's network secret); offline, only through a keyring
 * already unlocked by a valid take-out key and the user's password
 * (`adoptTakeout`). Each session is one user's; `lockAll()` drops them all
 * (keys out of memory, vaults closed). When a session ends, its `ended`
 * signal aborts, so that whatever a caller keeps for the session (the
 * server's WebDAV lock tables) is released with it; this module does not
 * know what that is.
 *
 * Security considerations: sessions are keyed by the canonical user name,
 * and a session only ever holds the keyring and vault of its own user; a
 * take-out session is never created from another user's keyring. Offline
 * callers use `takeoutSession`, which never opens slot N.
 */
import { openUserVault, canonicalUser, userDir } from '../shares/vault/user-vaults.js';
import { Vault } from '../shares/vault/vault.js';
import type { Keyring } from '../crypto/keyring.js';
import { KeyringError } from '../crypto/errors.js';
import type { Directory } from './directory/directory.js';

/** How a session's keyring was opened: slot N (online) or slot T (take-out). */
export type SessionMode = 'network' | 'takeout';

export interface UserSession {
  user: string;
  mode: SessionMode;
  vault: Vault;
  /** Aborted when the session ends (vault closed, keys dropped). */
  ended: AbortSignal;
}

interface OpenSession extends UserSession {
  keyring: Keyring;
  end: AbortController;
  /** The user (not only the console link) has used it. */
  ownUse: boolean;
}

export class Sessions {
  private readonly open = new Map<string, Promise<OpenSession>>();

  constructor(
    private readonly dataDir: string,
    private readonly pcId: string,
    private readonly directory: Directory,
    /** Enrols a user who has no vault on this PC yet (first online login); absent: no enrolment. */
    private readonly enrol?: (user: string) => Promise<void>,
  ) {}

  /** The user's session, opening their vault through slot N on first use (online only). */
  async get(user: string): Promise<UserSession> {
    const session = await this.getOpen(user);
    session.ownUse = true;
    return session;
  }

  /**
   * The user's session for a request that came down the console link (an
   * administrator or a share's grantee): opened through slot N if needed,
   * without counting as the user's own use (see `lockIfLinkOnly`).
   */
  async getForLink(user: string): Promise<UserSession> {
    return this.getOpen(user);
  }

  /** Drops the user's session if only the console link has used it (idle link sessions close; the user's own stay). */
  async lockIfLinkOnly(user: string): Promise<void> {
    const key = canonicalUser(user);
    await this.lockWhere((s) => s.user === key && !s.ownUse);
  }

  /** The user's unlocked keyring (online: opens the session through slot N if needed). */
  async keyring(user: string): Promise<Keyring> {
    const session = await this.getOpen(user);
    session.ownUse = true;
    return session.keyring;
  }

  /** The user's take-out session, if one is open; never opens anything. */
  async takeoutSession(user: string): Promise<UserSession | undefined> {
    const pending = this.open.get(canonicalUser(user));
    const session = pending && (await pending.catch(() => undefined));
    return session?.mode === 'takeout' ? session : undefined;
  }

  /**
   * Opens `user`'s vault with `keyring`, unlocked through slot T. When a
   * session is open already, the new keyring is locked and the session kept.
   */
  async adoptTakeout(user: string, keyring: Keyring): Promise<void> {
    const key = canonicalUser(user);
    const existing = this.open.get(key);
    if (existing) {
      keyring.lock();
      await existing;
      return;
    }
    const pending = (async (): Promise<OpenSession> => {
      const vault = await Vault.open(userDir(this.dataDir, this.pcId, key), keyring.dataKey);
      return newSession(key, 'takeout', keyring, vault);
    })();
    this.open.set(key, pending);
    pending.catch(() => {
      this.open.delete(key);
      keyring.lock();
    });
    await pending;
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
    await this.lockWhere(() => true);
  }

  /** Drops the take-out sessions (back online: users reopen through slot N). */
  async lockTakeout(): Promise<void> {
    await this.lockWhere((s) => s.mode === 'takeout');
  }

  /** Drops one user's session, if open. */
  async lock(user: string): Promise<void> {
    const key = canonicalUser(user);
    await this.lockWhere((s) => s.user === key);
  }

  private async lockWhere(selected: (s: OpenSession) => boolean): Promise<void> {
    const entries = [...this.open.entries()];
    const settled = await Promise.allSettled(entries.map(([, pending]) => pending));
    settled.forEach((result, i) => {
      if (result.status !== 'fulfilled' || !selected(result.value)) return;
      const [key, pending] = entries[i]!;
      if (this.open.get(key) === pending) this.open.delete(key);
      result.value.vault.close();
      result.value.keyring.lock();
      result.value.end.abort();
    });
  }

  private getOpen(user: string): Promise<OpenSession> {
    const key = canonicalUser(user);
    let pending = this.open.get(key);
    if (!pending) {
      pending = this.openSession(key);
      this.open.set(key, pending);
      pending.catch(() => this.open.delete(key));
    }
    return pending;
  }

  private async openSession(user: string): Promise<OpenSession> {
    const open = () => openUserVault(this.dataDir, this.pcId, user, this.directory.secrets);
    const { keyring, vault } = await open().catch(async (err: unknown) => {
      if (!(err instanceof KeyringError && err.code === 'ERR_KEYRING_MISSING') || !this.enrol) throw err;
      await this.enrol(user);
      return open();
    });
    return newSession(user, 'network', keyring, vault);
  }
}

function newSession(user: string, mode: SessionMode, keyring: Keyring, vault: Vault): OpenSession {
  const end = new AbortController();
  return { user, mode, keyring, vault, end, ended: end.signal, ownUse: mode === 'takeout' };
}
