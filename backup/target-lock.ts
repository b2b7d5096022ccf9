/**
 * The lock file of a PC's backup folder on a target: JSON with the host, the
 * pid, the start time and a random token. One backup (or prune) of a PC at a
 * time. A lock is stale, and taken over, when the target's clock says it was
 * last written more than 30 minutes ago, or when it names this host and a
 * process that no longer runs. The holder rewrites it every 5 minutes.
 *
 * A target has no exclusive create over SMB, so the lock is written, and read
 * back after a pause long enough for a rival's write at the same moment to
 * land: whoever's token is in the file then holds it. The holder checks the
 * token again before every step that commits (a manifest, a deletion), and
 * refreshes the file only while the token is still its own.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { isProcessAlive } from '../shares/vault/pid-file.js';
import { BackupError } from './errors.js';
import { lockPath } from './manifest.js';
import type { BackupTarget } from './target.js';
import { systemClock, type Clock } from '../shares/clock.js';

export const LOCK_STALE_MS = 30 * 60 * 1000;
const REFRESH_MS = 5 * 60 * 1000;
/**
 * Time between writing the lock and reading it back: a rival that saw no
 * lock writes right away, so its write lands within about one write's time
 * after ours. Three times our own write's time, and at least 100 ms.
 */
const settleMs = (writeMs: number): number => Math.max(100, 3 * writeMs);

interface LockContent {
  host: string;
  pid: number;
  startedAt: string;
  token: string;
}

export class TargetLock {
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly target: BackupTarget,
    private readonly path: string,
    private readonly content: LockContent,
    private readonly pcId: string,
    private readonly settledAt: number,
  ) {}

  /** Waits until a rival's write at the same moment would have landed, then checks the lock is ours. */
  async confirm(): Promise<void> {
    const wait = this.settledAt - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    await this.assertHeld();
  }

  /**
   * Writes the lock. With `confirmLater`, the caller may do read-only work
   * meanwhile and must `confirm()` before it changes anything on the target.
   */
  static async acquire(target: BackupTarget, pcId: string, opts: { host?: string; now?: Clock; confirmLater?: boolean } = {}): Promise<TargetLock> {
    const path = lockPath(pcId);
    const host = opts.host ?? hostname();
    const existing = await target.stat(path);
    if (existing) {
      const holder = await readLock(target, path);
      const age = (await target.now()) - existing.mtimeMs;
      // On this host: a dead pid, or our own pid (one backup per process at a time,
      // so it is an earlier life of this pid, e.g. pid 1 in a container).
      const deadHere = holder !== undefined && holder.host === host && (holder.pid === process.pid || !isProcessAlive(holder.pid));
      if (age < LOCK_STALE_MS && !deadHere) {
        const who = holder ? `host ${holder.host} (pid ${holder.pid}) since ${holder.startedAt}` : 'an unreadable lock';
        throw new BackupError(
          'ERR_BACKUP_LOCKED',
          `a backup of PC ${pcId} is running on ${who}; its lock ${path} on the ${target.description} is ${Math.round(age / 1000)} s old and is taken over once it is 30 minutes old`,
        );
      }
    }
    const content: LockContent = { host, pid: process.pid, startedAt: new Date((opts.now ?? systemClock)()).toISOString(), token: randomBytes(16).toString('hex') };
    const writeStart = Date.now();
    await target.writeFile(path, JSON.stringify(content));
    const lock = new TargetLock(target, path, content, pcId, Date.now() + settleMs(Date.now() - writeStart));
    if (!opts.confirmLater) await lock.confirm();
    lock.timer = setInterval(() => {
      lock.refreshing = lock
        .assertHeld()
        .then(() => target.writeFile(path, JSON.stringify(content)))
        .catch(() => undefined);
    }, REFRESH_MS);
    lock.timer.unref();
    return lock;
  }

  /** Throws ERR_BACKUP_LOCKED unless the lock file still holds our token. */
  async assertHeld(): Promise<void> {
    const current = await readLock(this.target, this.path);
    if (current?.token !== this.content.token) {
      const who = current ? `host ${current.host} (pid ${current.pid})` : 'nobody (it was removed)';
      throw new BackupError('ERR_BACKUP_LOCKED', `the lock of PC ${this.pcId} on the ${this.target.description} is now held by ${who}; stopping`);
    }
  }

  /** Removes the lock if it is still ours. */
  async release(): Promise<void> {
    clearInterval(this.timer);
    await this.refreshing;
    const current = await readLock(this.target, this.path).catch(() => undefined);
    if (current?.token === this.content.token) await this.target.remove(this.path);
  }
}

async function readLock(target: BackupTarget, path: string): Promise<LockContent | undefined> {
  try {
    const data = JSON.parse((await target.readFile(path)).toString('utf8')) as LockContent;
    return typeof data.host === 'string' && Number.isInteger(data.pid) && typeof data.token === 'string' ? data : undefined;
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_TARGET_NOT_FOUND' || err instanceof SyntaxError) return undefined;
    throw err;
  }
}
