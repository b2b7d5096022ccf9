/**
 * Removes all but the newest `keep` snapshots of a PC, under the PC's lock:
 * first each old manifest (the snapshot ceases to exist), then its index
 * and keyring copies, then the objects that only removed snapshots listed.
 * Objects that no manifest lists (copied by an interrupted run) stay: the
 * next backup uses them. Snapshot folders without a manifest go. Never run
 * at shutdown.
 */
import { BackupError } from './errors.js';
import { listSnapshots, manifestPath, readManifest } from './manifest.js';
import { TargetLock } from './target-lock.js';
import type { BackupTarget } from './target.js';

export interface PruneSummary {
  kept: string[];
  removed: string[];
  objectsRemoved: number;
  /** Snapshot folders that never got a manifest. */
  unfinishedRemoved: number;
}

export async function pruneBackups(target: BackupTarget, pcId: string, keep: number): Promise<PruneSummary> {
  if (!Number.isInteger(keep) || keep < 1) throw new BackupError('ERR_BACKUP_RESTORE', `--keep must be a whole number of at least 1 (got ${keep})`);
  const lock = await TargetLock.acquire(target, pcId);
  try {
    const snapshots = await listSnapshots(target, pcId);
    const kept = snapshots.slice(-keep);
    const removed = snapshots.slice(0, Math.max(0, snapshots.length - keep));
    const stillListed = new Set<string>();
    for (const s of kept) for (const u of (await readManifest(target, pcId, s)).users) for (const o of u.objects) stillListed.add(o.path);
    const orphaned = new Set<string>();
    await lock.assertHeld();
    for (const s of removed) {
      const manifest = await readManifest(target, pcId, s).catch(() => undefined);
      for (const u of manifest?.users ?? []) for (const o of u.objects) if (!stillListed.has(o.path)) orphaned.add(o.path);
      await target.remove(manifestPath(pcId, s));
      await target.removeDir(`${pcId}/snapshots/${s}`);
    }
    await lock.assertHeld();
    for (const path of orphaned) await target.remove(`${pcId}/${path}`);
    // Snapshot folders without a manifest: left by runs stopped before their manifest.
    const complete = new Set(snapshots);
    const unfinished = new Set((await target.list(`${pcId}/snapshots`)).map((f) => f.path.split('/')[0]!).filter((id) => !complete.has(id)));
    for (const id of unfinished) await target.removeDir(`${pcId}/snapshots/${id}`);
    return { kept, removed, objectsRemoved: orphaned.size, unfinishedRemoved: unfinished.size };
  } finally {
    await lock.release();
  }
}
