/**
 * One backup run of a data folder to a target.
 *
 * Order (an interrupted run loses nothing; the next run resumes):
 * 1. take the PC's lock on the target;
 * 2. per user: hold the vault's object deletions, copy the encrypted index
 *    (consistently, without the DEK) and the keyring (slots N and R) to a
 *    local staging folder, and list the objects;
 * 3. copy the objects the target lacks (immutable: one already there is never
 *    copied again), each atomically, checking the deadline between batches;
 * 4. copy the index snapshots and keyrings;
 * 5. write the manifest last: only then does the snapshot exist.
 * At the deadline the run stops before the next batch of objects and reports
 * "partial": the objects copied stay on the target and are not copied again.
 * Once every object is copied, the snapshot is finished even past the
 * deadline (indexes, keyrings and the manifest are small).
 *
 * The run never sees a key or a plaintext byte: it moves encrypted files.
 */
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { Keyring } from '../crypto/keyring.js';
import { KEYRING_FILE, listUserDirs } from '../shares/user-vaults.js';
import { Vault } from '../shares/vault.js';
import { hashFile } from './hash-file.js';
import { inParallel } from './parallel.js';
import { TargetLock } from './target-lock.js';
import { MANIFEST_FORMAT, MANIFEST_VERSION, listSnapshots, manifestPath, newSnapshotId, objectPath, readManifest, snapshotFilePath, snapshotTime, type Manifest, type ManifestFile, type ManifestUser } from './manifest.js';
import type { BackupTarget, Transfer } from './target.js';

/** A batch is one smbclient session on an SMB target: many small files share its start-up cost. */
const BATCH_FILES = 1000;
/** Bytes in a batch: at most 256 MiB, or 32 MiB when a deadline is near. */
const BATCH_BYTES = 256 * 1024 * 1024;
const BATCH_BYTES_DEADLINE = 32 * 1024 * 1024;

export interface BackupProgress {
  objectsCopied: number;
  objectsToCopy: number;
  bytesCopied: number;
  bytesToCopy: number;
}

export interface BackupOptions {
  dataDir: string;
  pcId: string;
  target: BackupTarget;
  /** Stop starting new copies at this time (ms since the epoch). Read before every batch, so a caller may bring it forward. */
  deadline?: { at: number | undefined };
  onProgress?: (p: BackupProgress) => void;
  now?: () => number;
  host?: string;
}

export interface BackupSummary {
  /** complete: a new snapshot exists; partial: the deadline came first (what was copied stays). */
  status: 'complete' | 'partial';
  /** The new snapshot's id (complete runs only). */
  snapshot: string | undefined;
  users: number;
  /** Objects in the snapshot. */
  objects: number;
  objectsCopied: number;
  bytesCopied: number;
  /** Bytes still to copy when a partial run stopped. */
  bytesLeft: number;
  seconds: number;
}

interface StagedUser {
  id: string;
  dir: string;
  /** Local staging copies of the index files and the keyring. */
  files: { local: string; name: string }[];
  objects: { id: string; local: string; size: number }[];
}

export async function runBackup(opts: BackupOptions): Promise<BackupSummary> {
  const now = opts.now ?? Date.now;
  const started = now();
  const { target, pcId } = opts;
  const host = opts.host ?? hostname();
  const deadlineReached = (): boolean => opts.deadline?.at !== undefined && now() >= opts.deadline.at;
  // Confirmed (after its settling pause) once the read-only work below is done.
  const lock = await TargetLock.acquire(target, pcId, { host, now, confirmLater: true });
  const releases: (() => Promise<void>)[] = [];
  let staging: string | undefined;
  try {
    const runDir = join(opts.dataDir, 'run');
    await mkdir(runDir, { recursive: true, mode: 0o700 });
    staging = await mkdtemp(join(runDir, 'backup-'));
    // Sizes and hashes of objects already listed (objects never change), and of those hashed below.
    const { known: hashes, latest } = await previousHashes(target, pcId);
    const onTarget = new Map((await target.list(`${pcId}/users`)).map((f) => [`users/${f.path}`, f.size]));
    const snapshot = newSnapshotId(Math.max(now(), latest === undefined ? 0 : snapshotTime(latest) + 1));
    const users: StagedUser[] = [];
    for (const dir of await listUserDirs(opts.dataDir)) {
      releases.push(await Vault.holdDeletions(dir));
      users.push(await stageUser(dir, join(staging, basename(dir))));
    }

    await lock.confirm();
    // Holding the lock, this is the only backup of this PC: what a killed run left goes.
    for (const name of await readdir(runDir)) {
      if (name.startsWith('backup-') && join(runDir, name) !== staging) await rm(join(runDir, name), { recursive: true, force: true });
    }
    // Listing the whole PC folder for leftovers costs time a shutdown does not have.
    if (opts.deadline?.at === undefined) await target.cleanTemporaries(pcId);

    const toCopy = users.flatMap((u) => u.objects.filter((o) => onTarget.get(objectPath(u.id, o.id)) !== o.size).map((o) => ({ user: u, object: o })));
    const progress: BackupProgress = { objectsCopied: 0, objectsToCopy: toCopy.length, bytesCopied: 0, bytesToCopy: toCopy.reduce((n, c) => n + c.object.size, 0) };
    const summary = (status: BackupSummary['status'], id?: string): BackupSummary => ({
      status,
      snapshot: id,
      users: users.length,
      objects: users.reduce((n, u) => n + u.objects.length, 0),
      objectsCopied: progress.objectsCopied,
      bytesCopied: progress.bytesCopied,
      bytesLeft: progress.bytesToCopy - progress.bytesCopied,
      seconds: (now() - started) / 1000,
    });
    opts.onProgress?.({ ...progress });

    // Batches grow or shrink so that each takes about 3 s, or with a deadline
    // a second at most (a quarter of the time left): many small files share
    // one SMB session, and the deadline is never overrun by much.
    // The next batch is hashed while the current one is copied.
    type Item = (typeof toCopy)[number];
    const prepare = async (batch: Item[]): Promise<Item[]> => {
      const present: Item[] = [];
      await inParallel(batch, async (item) => {
        // Hashed before the copy, so the copy reads from the page cache. An
        // object gone since the listing was an aborted write: not needed.
        const hashed = await hashFile(item.object.local).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return undefined;
          throw err;
        });
        if (!hashed) return;
        hashes.set(objectPath(item.user.id, item.object.id), hashed);
        present.push(item);
      }, 4);
      return present;
    };
    let msPerFile = 0;
    let next = 0;
    const takeNext = (): Item[] | undefined => {
      if (next >= toCopy.length) return undefined;
      const budgetMs = opts.deadline?.at === undefined ? 3000 : Math.max(50, Math.min(1000, (opts.deadline.at - now()) / 4));
      const batch = takeBatch(toCopy, next, msPerFile === 0 ? 1 : Math.max(1, Math.floor(budgetMs / msPerFile)), opts.deadline?.at === undefined ? BATCH_BYTES : BATCH_BYTES_DEADLINE);
      next += batch.length;
      return batch;
    };
    let batch = takeNext();
    let prepared = batch && prepare(batch);
    while (batch && prepared) {
      const present = await prepared;
      if (deadlineReached()) return summary('partial');
      const following = takeNext();
      const preparing = following && prepare(following);
      preparing?.catch(() => undefined); // awaited in the next round; must not go unhandled if this upload fails
      const uploadStart = now();
      await target.upload(present.map(({ user, object }) => ({ local: object.local, remote: `${pcId}/${objectPath(user.id, object.id)}` })));
      msPerFile = Math.max(0.01, (now() - uploadStart) / batch.length);
      progress.objectsCopied += batch.length;
      progress.bytesCopied += batch.reduce((n, c) => n + c.object.size, 0);
      opts.onProgress?.({ ...progress });
      batch = following;
      prepared = preparing;
    }

    const manifestUsers: ManifestUser[] = [];
    const snapshotFiles: Transfer[] = [];
    for (const u of users) {
      const files: ManifestFile[] = [];
      for (const f of u.files) {
        const path = snapshotFilePath(snapshot, u.id, f.name);
        files.push({ path, ...(await hashFile(f.local)) });
        snapshotFiles.push({ local: f.local, remote: `${pcId}/${path}` });
      }
      const objects: ManifestFile[] = [];
      for (const o of u.objects) {
        const path = objectPath(u.id, o.id);
        const prior = hashes.get(path);
        if (prior && prior.size === o.size) objects.push({ path, ...prior });
        else if (onTarget.get(path) === o.size) objects.push({ path, ...(await hashFile(o.local)) }); // copied by an interrupted run
        // else: an aborted write's object, gone before it was copied; no row refers to it
      }
      manifestUsers.push({ id: u.id, files, objects });
    }
    // Once the objects are there, the snapshot is finished even past the
    // deadline: the rest (indexes, keyrings, manifest) is small.
    await target.upload(snapshotFiles);
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      version: MANIFEST_VERSION,
      pcId,
      snapshot,
      host,
      startedAt: new Date(started).toISOString(),
      finishedAt: new Date(now()).toISOString(),
      users: manifestUsers,
    };
    await lock.assertHeld();
    await target.writeFile(manifestPath(pcId, snapshot), JSON.stringify(manifest));
    return summary('complete', snapshot);
  } finally {
    // Clean-up failures must not turn a complete backup into a failed one: a
    // hold of a dead process and a lock past 30 minutes count as gone.
    for (const release of releases) await release().catch(() => undefined);
    if (staging) await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    await lock.release().catch(() => undefined);
  }
}

/** Copies what the backup needs of one user folder into `stage`: index, keyring without slot T, the object list. */
async function stageUser(dir: string, stage: string): Promise<StagedUser> {
  await mkdir(stage, { mode: 0o700 });
  const files = Vault.snapshotIndex(dir, stage).map((name) => ({ local: join(stage, name), name }));
  const keyring = await Keyring.load(join(dir, KEYRING_FILE));
  await writeFile(join(stage, KEYRING_FILE), keyring.backupText(), { mode: 0o600 });
  files.push({ local: join(stage, KEYRING_FILE), name: KEYRING_FILE });
  const objects: StagedUser['objects'] = [];
  for (const { id, file } of await Vault.objectFiles(dir)) {
    if (!/^[0-9a-f]{32}$/.test(id)) continue;
    const size = await stat(file).then((s) => s.size, () => undefined); // gone: an aborted write's
    if (size !== undefined) objects.push({ id, local: file, size });
  }
  return { id: basename(dir), dir, files, objects };
}

/** Sizes and hashes of the objects in the latest complete snapshot (objects never change, so they carry over). */
async function previousHashes(target: BackupTarget, pcId: string): Promise<{ known: Map<string, { size: number; sha256: string }>; latest: string | undefined }> {
  const known = new Map<string, { size: number; sha256: string }>();
  const snapshots = await listSnapshots(target, pcId);
  const latest = snapshots[snapshots.length - 1];
  if (latest === undefined) return { known, latest };
  const manifest = await readManifest(target, pcId, latest).catch(() => undefined);
  for (const u of manifest?.users ?? []) for (const o of u.objects) known.set(o.path, { size: o.size, sha256: o.sha256 });
  return { known, latest };
}

/** Up to `maxFiles` items from `start`, and at most `maxBytes` (at least one item). */
function takeBatch<T extends { object: { size: number } }>(items: T[], start: number, maxFiles: number, maxBytes: number): T[] {
  const batch: T[] = [];
  let bytes = 0;
  for (let i = start; i < items.length && batch.length < Math.min(maxFiles, BATCH_FILES); i++) {
    if (batch.length > 0 && bytes + items[i]!.object.size > maxBytes) break;
    batch.push(items[i]!);
    bytes += items[i]!.object.size;
  }
  return batch;
}
