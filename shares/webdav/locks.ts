/**
 * WebDAV write locks (RFC 4918 §6, §7) for one user's namespace, kept in
 * memory.
 *
 * A path is an array of folded name keys (`foldName`), [] being the root;
 * the caller folds, so keys are compared with `===`. A lock of depth
 * infinity covers its root and every descendant, a lock of depth 0 its root
 * only. An exclusive lock conflicts with every other lock whose scope
 * overlaps its own; shared locks conflict only with exclusive ones. Locks do
 * not follow a resource that is moved or deleted: `moved` and `removed` drop
 * them. Expired locks are purged lazily, at the start of every call; a lock
 * is live while `now() < expiresAt`.
 *
 * Security considerations:
 * - Lock tokens are random (`urn:uuid:` + a v4 UUID) but not secrets:
 *   lockdiscovery shows them. Locks protect against lost updates between the
 *   user's own clients, not against other users, who cannot reach this
 *   namespace at all.
 * - Timeouts are capped (`maxTimeoutSeconds`, 3600 s by default) so a client
 *   that disappears cannot keep a document locked for long, and an
 *   administrator can list and clear locks.
 * - Locks are lost on restart; clients see an unknown token and lock again.
 * - Returned locks are copies: callers cannot alter the manager's state.
 */
import type { Clock } from '../clock.js';
import { randomUUID } from 'node:crypto';

export type LockScope = 'exclusive' | 'shared';
export type LockDepth = 0 | 'infinity';

export interface Lock {
  /** `urn:uuid:<uuid>` */
  token: string;
  root: string[];
  /** The lockroot href to report, as given at creation. */
  rootHref: string;
  scope: LockScope;
  depth: LockDepth;
  /** The `owner` element, verbatim; may be ''. */
  ownerXml: string;
  timeoutSeconds: number;
  expiresAt: number;
  /** The user who took the lock. */
  principal: string;
}

export interface LockRequest {
  path: string[];
  rootHref: string;
  scope: LockScope;
  depth: LockDepth;
  ownerXml: string;
  timeoutSeconds: number;
  principal: string;
}

/** The RFC 4918 precondition a lock error stands for. */
export type LockCondition = 'no-conflicting-lock' | 'lock-token-submitted';

/** LOCK refused: an existing lock conflicts (423, `no-conflicting-lock`). */
export class LockConflictError extends Error {
  readonly code = 'ERR_LOCKED';
  readonly condition: LockCondition = 'no-conflicting-lock';
  constructor(readonly rootHref: string) {
    super(`a conflicting lock is held on ${rootHref}`);
    this.name = 'LockConflictError';
  }
}

/** A write refused: the token of a lock on the resource was not submitted (423, `lock-token-submitted`). */
export class LockedError extends Error {
  readonly code = 'ERR_LOCKED';
  readonly condition: LockCondition = 'lock-token-submitted';
  constructor(readonly rootHref: string) {
    super(`the resource is locked (lock root ${rootHref}) and its lock token was not submitted`);
    this.name = 'LockedError';
  }
}

/** No live lock with that token covers the path (refresh, UNLOCK). */
export class LockNotFoundError extends Error {
  readonly code = 'ERR_LOCK_NOT_FOUND';
  constructor(readonly token: string) {
    super(`no lock ${token} covers this resource`);
    this.name = 'LockNotFoundError';
  }
}

/** A user holds as many live locks as the manager allows (shared locks never conflict, so they could pile up). */
export class LockLimitError extends Error {
  readonly code = 'ERR_LOCK_LIMIT';
  constructor(readonly limit: number) {
    super(`too many locks: at most ${limit} live locks per user`);
    this.name = 'LockLimitError';
  }
}

/** Live locks one user may hold. */
export const MAX_LOCKS = 10_000;

export class LockManager {
  readonly #locks = new Map<string, Lock>();

  constructor(
    private readonly now: Clock,
    readonly maxTimeoutSeconds = 3600,
  ) {}

  /** Creates a lock; throws LockConflictError when it would overlap an incompatible lock. */
  lock(req: LockRequest): Lock {
    this.#purge();
    for (const existing of this.#locks.values()) {
      const overlaps = covers(existing, req.path) || (req.depth === 'infinity' && isWithin(existing.root, req.path));
      if (overlaps && (req.scope === 'exclusive' || existing.scope === 'exclusive')) throw new LockConflictError(existing.rootHref);
    }
    if (this.#locks.size >= MAX_LOCKS) throw new LockLimitError(MAX_LOCKS);
    const timeoutSeconds = this.#cap(req.timeoutSeconds);
    const lock: Lock = {
      token: `urn:uuid:${randomUUID()}`,
      root: [...req.path],
      rootHref: req.rootHref,
      scope: req.scope,
      depth: req.depth,
      ownerXml: req.ownerXml,
      timeoutSeconds,
      expiresAt: this.now() + timeoutSeconds * 1000,
      principal: req.principal,
    };
    this.#locks.set(lock.token, lock);
    return copy(lock);
  }

  /** Restarts a lock's timeout (token with or without `<>`); throws LockNotFoundError unless the live lock covers `path`. */
  refresh(token: string, path: string[], timeoutSeconds: number): Lock {
    const lock = this.#covering(token, path);
    lock.timeoutSeconds = this.#cap(timeoutSeconds);
    lock.expiresAt = this.now() + lock.timeoutSeconds * 1000;
    return copy(lock);
  }

  /** Removes a lock (token with or without `<>`) from any resource within its scope. */
  unlock(token: string, path: string[]): void {
    this.#locks.delete(this.#covering(token, path).token);
  }

  /** Live locks whose scope contains `path`. */
  locksCovering(path: string[]): Lock[] {
    this.#purge();
    return [...this.#locks.values()].filter((lock) => covers(lock, path)).map(copy);
  }

  /**
   * Throws LockedError unless the submitted tokens (with or without `<>`)
   * unlock `path` and, with `includeDescendants`, every resource below it
   * that is a lock root. A resource is unlocked when the token of its
   * exclusive lock is submitted, or, when shared locks cover it, the token
   * of at least one of them.
   */
  checkWrite(path: string[], submittedTokens: string[], opts: { includeDescendants?: boolean } = {}): void {
    this.#purge();
    const submitted = new Set(submittedTokens.map(bareToken));
    const targets = [path];
    if (opts.includeDescendants === true) for (const lock of this.#locks.values()) if (isWithin(lock.root, path)) targets.push(lock.root);
    for (const target of targets) {
      const covering = [...this.#locks.values()].filter((lock) => covers(lock, target));
      const exclusive = covering.find((lock) => lock.scope === 'exclusive' && !submitted.has(lock.token));
      if (exclusive !== undefined) throw new LockedError(exclusive.rootHref);
      const shared = covering.filter((lock) => lock.scope === 'shared');
      if (shared.length > 0 && !shared.some((lock) => submitted.has(lock.token))) throw new LockedError(shared[0]!.rootHref);
    }
  }

  /**
   * After a MOVE: drops the locks rooted at or below the source (locks do
   * not move with the resource) and at or below the destination (whatever
   * was there has been replaced).
   */
  moved(from: string[], to: string[]): void {
    this.#purge();
    this.#drop((lock) => isWithin(lock.root, from) || isWithin(lock.root, to));
  }

  /** After a DELETE: drops the locks rooted at or below `path`. */
  removed(path: string[]): void {
    this.#purge();
    this.#drop((lock) => isWithin(lock.root, path));
  }

  /** Every live lock (administration). */
  list(): Lock[] {
    this.#purge();
    return [...this.#locks.values()].map(copy);
  }

  /** Removes one live lock (token with or without `<>`) or, without a token, all of them; returns how many. */
  clear(token?: string): number {
    this.#purge();
    if (token !== undefined) return this.#locks.delete(bareToken(token)) ? 1 : 0;
    const count = this.#locks.size;
    this.#locks.clear();
    return count;
  }

  #covering(token: string, path: string[]): Lock {
    this.#purge();
    const bare = bareToken(token);
    const lock = this.#locks.get(bare);
    if (lock === undefined || !covers(lock, path)) throw new LockNotFoundError(bare);
    return lock;
  }

  #cap(timeoutSeconds: number): number {
    return timeoutSeconds >= 1 ? Math.min(Math.floor(timeoutSeconds), this.maxTimeoutSeconds) : this.maxTimeoutSeconds;
  }

  #purge(): void {
    const now = this.now();
    this.#drop((lock) => lock.expiresAt <= now);
  }

  #drop(predicate: (lock: Lock) => boolean): void {
    for (const [token, lock] of this.#locks) if (predicate(lock)) this.#locks.delete(token);
  }
}

/** True when `path` lies at or below `ancestor`. */
function isWithin(path: readonly string[], ancestor: readonly string[]): boolean {
  if (path.length < ancestor.length) return false;
  for (let i = 0; i < ancestor.length; i++) if (path[i] !== ancestor[i]) return false;
  return true;
}

function covers(lock: Lock, path: readonly string[]): boolean {
  return lock.depth === 'infinity' ? isWithin(path, lock.root) : path.length === lock.root.length && isWithin(path, lock.root);
}

function bareToken(token: string): string {
  const trimmed = token.trim();
  return trimmed.startsWith('<') && trimmed.endsWith('>') ? trimmed.slice(1, -1).trim() : trimmed;
}

function copy(lock: Lock): Lock {
  return { ...lock, root: [...lock.root] };
}
