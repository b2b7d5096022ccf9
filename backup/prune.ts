/**
 * Removes all but the newest `keep` snapshots of a PC, under the PC's lock:
 * first each old manifest (the snapshot ceases to exist), then its index
 * and keyring copies, then the objects that only removed snapshots listed.
 * Objects that no manifest lists (copied by an interrupted run) stay: the
 * next backup uses them. Snapshot folders without a manifest go. Never run
 * at shutdown.
 *
 * Only snapshots whose manifest this PC's device key signed count: a forged
 * manifest (however new its id) can neither push a real snapshot out nor
 * keep objects alive; it is left in place and counted in `refused`.
 */
import { BackupError } from './errors.js';
import { listSnapshots, manifestPath, readManifest, type DeviceTrust, type Manifest } from './manifest.js';
import { TargetLock } from './target-lock.js';
import type { BackupTarget } from './target.js';

export interface PruneSummary {
  kept: string[];
  removed: string[];
  objectsRemoved: number;
  /** Snapshot folders that never got a manifest. */
  unfinishedRemoved: number;
  /** Manifests this PC did not sign (unsigned or wrongly signed): left alone. */
  refused: string[];
}

export async function pruneBackups(target: BackupTarget, pcId: string, keep: number, trust: DeviceTrust): Promise<PruneSummary> {
  if (!Number.isInteger(keep) || keep < 1) throw new BackupError('ERR_BACKUP_RESTORE', `--keep must be a whole number of at least 1 (got ${keep})`);
  const lock = await TargetLock.acquire(target, pcId);
  try {
    const all = await listSnapshots(target, pcId);
    const manifests = new Map<string, Manifest>();
    const refused: string[] = [];
    for (const s of all) {
      try {
        manifests.set(s, await readManifest(target, pcId, s, trust));
      } catch (err) {
        if (!(err instanceof BackupError)) throw err;
        refused.push(s);
      }
    }
    const snapshots = all.filter((s) => manifests.has(s));
    const kept = snapshots.slice(-keep);
    const removed = snapshots.slice(0, Math.max(0, snapshots.length - keep));
    const stillListed = new Set<string>();
    for (const s of kept) for (const u of manifests.get(s)!.users) for (const o of u.objects) stillListed.add(o.path);
    const orphaned = new Set<string>();
    await lock.assertHeld();
    for (const s of removed) {
      for (const u of manifests.get(s)!.users) for (const o of u.objects) if (!stillListed.has(o.path)) orphaned.add(o.path);
      await target.remove(manifestPath(pcId, s));
      await target.removeDir(`${pcId}/snapshots/${s}`);
    }
    await lock.assertHeld();
    for (const path of orphaned) await target.remove(`${pcId}/${path}`);
    // Snapshot folders without a manifest: left by runs stopped before their manifest.
    const complete = new Set(all);
    const unfinished = new Set((await target.list(`${pcId}/snapshots`)).map((f) => f.path.split('/')[0]!).filter((id) => !complete.has(id)));
    for (const id of unfinished) await target.removeDir(`${pcId}/snapshots/${id}`);
    return { kept, removed, objectsRemoved: orphaned.size, unfinishedRemoved: unfinished.size, refused };
  } finally {
    await lock.release();
  }
}
