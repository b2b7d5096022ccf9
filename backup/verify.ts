/**
 * Checks a PC's backup on its target without any key: every complete
 * snapshot's manifest must parse, every file it lists must exist with its
 * size, and a share of the files (`readDataPercent`, chosen at random each
 * run) is downloaded and re-hashed. Each bad file is reported by its path.
 * A manifest that is unsigned, or that the trusted device key did not sign,
 * is reported as damaged (with which of the two it is), and a newest snapshot
 * older than the newest one seen before as a rollback. Verify never changes
 * the target.
 */
import { randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashFile } from './hash-file.js';
import { listSnapshots, readManifest, rollbackNotice, type DeviceTrust, type ManifestFile } from './manifest.js';
import { TargetLock } from './target-lock.js';
import type { BackupTarget } from './target.js';

const BATCH_FILES = 100;

export interface DamagedFile {
  /** Path on the target. */
  path: string;
  problem: string;
  /** An object (copied again by the next backup once removed), rather than a manifest, index or keyring. */
  object: boolean;
}

export interface VerifyReport {
  snapshots: number;
  files: number;
  filesRead: number;
  bytesRead: number;
  damaged: DamagedFile[];
  /** Damaged objects removed by `repair` (the next backup copies them again). */
  repaired: string[];
  /** The newest snapshot whose manifest verified. */
  newest: string | undefined;
  /** Set when the newest snapshot is older than `newestSeen`: snapshots were removed or rolled back. */
  rollback: string | undefined;
}

/**
 * Removes the damaged objects a report names, under the PC's lock, so that
 * the next backup copies them again from the PC (objects never change, so
 * every snapshot that lists one is whole again). Manifests, indexes and
 * keyrings are left alone: they are not copied again.
 */
export async function repairObjects(target: BackupTarget, pcId: string, report: VerifyReport): Promise<void> {
  const objects = report.damaged.filter((d) => d.object).map((d) => d.path);
  if (objects.length === 0) return;
  const lock = await TargetLock.acquire(target, pcId);
  try {
    for (const path of objects) {
      await target.remove(path);
      report.repaired.push(path);
    }
  } finally {
    await lock.release();
  }
}

export async function verifyBackup(target: BackupTarget, pcId: string, trust: DeviceTrust, opts: { readDataPercent?: number; newestSeen?: string | undefined } = {}): Promise<VerifyReport> {
  const readDataPercent = opts.readDataPercent ?? 0;
  const report: VerifyReport = { snapshots: 0, files: 0, filesRead: 0, bytesRead: 0, damaged: [], repaired: [], newest: undefined, rollback: undefined };
  const files = new Map<string, ManifestFile>();
  const objects = new Set<string>();
  for (const snapshot of await listSnapshots(target, pcId)) {
    try {
      const manifest = await readManifest(target, pcId, snapshot, trust);
      for (const u of manifest.users) {
        for (const f of [...u.files, ...u.objects]) files.set(f.path, f);
        for (const o of u.objects) objects.add(o.path);
      }
      for (const f of manifest.sealed) files.set(f.path, f);
      report.snapshots++;
      report.newest = snapshot;
    } catch (err) {
      report.damaged.push({ path: `${pcId}/manifests/${snapshot}.json`, problem: (err as Error).message, object: false });
    }
  }
  report.rollback = rollbackNotice(pcId, report.newest, opts.newestSeen);
  report.files = files.size;
  const present = new Map((await target.list(pcId)).map((f) => [f.path, f.size]));
  const damaged = (f: ManifestFile, problem: string) => report.damaged.push({ path: `${pcId}/${f.path}`, problem, object: objects.has(f.path) });
  const intact: ManifestFile[] = [];
  for (const f of files.values()) {
    const size = present.get(f.path);
    if (size === undefined) damaged(f, 'missing');
    else if (size !== f.size) damaged(f, `size ${size}, the manifest says ${f.size}`);
    else intact.push(f);
  }
  const sample = pick(intact, Math.ceil((intact.length * readDataPercent) / 100));
  const scratch = await mkdtemp(join(tmpdir(), 'mydoc-verify-'));
  try {
    // In batches: one SMB session carries many files.
    for (let i = 0; i < sample.length; i += BATCH_FILES) {
      const batch = sample.slice(i, i + BATCH_FILES);
      const local = (n: number) => join(scratch, String(n));
      await target.download(batch.map((f, n) => ({ local: local(n), remote: `${pcId}/${f.path}` })));
      for (const [n, f] of batch.entries()) {
        const got = await hashFile(local(n));
        await rm(local(n), { force: true });
        report.filesRead++;
        report.bytesRead += got.size;
        if (got.sha256 !== f.sha256) damaged(f, 'content does not match its SHA-256 in the manifest');
      }
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  report.damaged.sort((a, b) => a.path.localeCompare(b.path));
  return report;
}

/** `count` items chosen at random (partial Fisher-Yates). */
function pick<T>(items: T[], count: number): T[] {
  const a = [...items];
  const n = Math.min(count, a.length);
  for (let i = 0; i < n; i++) {
    const j = i + randomInt(a.length - i);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a.slice(0, n);
}
