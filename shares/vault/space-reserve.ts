/**
 * Room kept back on the data disk so that a full disk can still be freed.
 * SQLite must journal a deletion before it deletes anything, so on a disk
 * with no free block a DELETE would fail for ever. Each vault folder keeps a
 * file `space-reserve` of 8 MiB of zeros (nothing of anyone's data); when an
 * index change that frees space (a deletion, the clean-up at open) finds the
 * disk full, the reserve is given up and the change retried. It is taken
 * again as soon as the disk has room for it, and nothing new is written
 * while it is missing, so the disk is never full without one.
 */
import { randomBytes } from 'node:crypto';
import { rmSync, statfsSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

export const RESERVE_FILE = 'space-reserve';
export const RESERVE_BYTES = 8 * 1024 * 1024;
const PIECE = 1024 * 1024;

/** Whether an error means the disk (or the user's disk quota) is full. */
export function isDiskFull(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL';
}

/** Bytes free for this process on the disk holding `dir`. */
export function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

/** Gives up the reserve of the vault folder `dir`; false when there was none. */
export function releaseReserve(dir: string): boolean {
  try {
    rmSync(join(dir, RESERVE_FILE));
    return true;
  } catch {
    return false;
  }
}

/**
 * Takes the reserve of `dir` again when it is missing and the disk has room
 * for it (and 1 MiB more). Resolves to whether the reserve is in place.
 */
export async function restoreReserve(dir: string): Promise<boolean> {
  const file = join(dir, RESERVE_FILE);
  const handle = await open(file, 'r').catch(() => undefined);
  if (handle) {
    await handle.close();
    return true;
  }
  if (freeBytes(dir) < RESERVE_BYTES + PIECE) return false;
  const tmp = join(dir, `${RESERVE_FILE}.${randomBytes(4).toString('hex')}`);
  try {
    // Written, not sparse: the blocks must really be taken.
    const fh = await open(tmp, 'wx', 0o600);
    try {
      const zeros = Buffer.alloc(PIECE);
      for (let at = 0; at < RESERVE_BYTES; at += PIECE) await fh.write(zeros, 0, PIECE, at);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
    return true;
  } catch (err) {
    await rm(tmp, { force: true });
    if (!isDiskFull(err)) throw err;
    return false;
  }
}
