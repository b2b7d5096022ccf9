/**
 * One backup run of a data folder to a target.
 *
 * Order (an interrupted run loses nothing; the next run resumes):
 * 1. take the PC's lock on the target;
 * 2. per user: hold the vault's object deletions, read the encrypted index
 *    (consistently, without the DEK) and the keyring (slots N and R) into
 *    memory, and list the objects: nothing is written to the data disk, so a
 *    full one can still be backed up;
 * 3. copy the objects the target lacks (immutable: one already there is never
 *    copied again), each atomically, checking the deadline between batches;
 * 4. write the index snapshots, keyrings and sealed files (the audit log and
 *    the local directory, sealed to the recovery key);
 * 5. write the manifest last, signed with the device key: only then does the
 *    snapshot exist.
 * At the deadline the run stops before the next batch of objects and reports
 * "partial": the objects copied stay on the target and are not copied again.
 * Once every object is copied, the snapshot is finished even past the
 * deadline (indexes, keyrings and the manifest are small).
 *
 * Only regular files are copied: an object that is a link (or a fifo, a
 * device) is skipped and counted, a link in an object folder's place too; an
 * index or keyring that is not a regular file fails the run.
 *
 * The run never sees a vault key or a plaintext byte of a vault: it moves
 * encrypted files. The audit log and the local directory are sealed here.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { lstat, readdir, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Keyring } from '../crypto/keyring.js';
import { KEYRING_FILE, listUserDirs } from '../shares/vault/user-vaults.js';
import { Vault } from '../shares/vault/vault.js';
import { trustOf } from './device-trust.js';
import { BackupError } from './errors.js';
import { hashBytes, hashFile, openRegular } from './hash-file.js';
import { inParallel } from './parallel.js';
import { AUDIT_LOG_TYPE, LOCAL_DIRECTORY_TYPE, seal } from './sealed.js';
import { TargetLock } from './target-lock.js';
import {
  AUDIT_FILE,
  LOCAL_DIRECTORY_FILE,
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
  devicePublicPath,
  listSnapshots,
  manifestPath,
  newSnapshotId,
  objectPath,
  readManifest,
  rollbackNotice,
  sealedFilePath,
  signManifest,
  snapshotFilePath,
  snapshotTime,
  type DeviceTrust,
  type Manifest,
  type ManifestFile,
  type ManifestUser,
} from './manifest.js';
import type { BackupTarget } from './target.js';
import { systemClock, type Clock } from '../shares/clock.js';
import { dataFolder } from '../shares/data-folder.js';

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
  /** The PC's device key pair: signs each manifest. */
  deviceKey: { privateKey: KeyObject; publicKey: KeyObject };
  /** The organisation's recovery public key: seals the audit log and the local directory. */
  recoveryPublicKey: KeyObject;
  /** The audit log to seal into the snapshot (left out when it does not exist). */
  auditLog?: string;
  /** The local (demo) directory's files to seal into the snapshot (those that exist). */
  localDirectory?: { usersFile: string; secretFile: string };
  /** The newest snapshot this PC wrote before (its own record): a target whose newest one is older is reported. */
  newestWritten?: string | undefined;
  /** Stop starting new copies at this time (ms since the epoch). Read before every batch, so a caller may bring it forward. */
  deadline?: { at: number | undefined };
  onProgress?: (p: BackupProgress) => void;
  now?: Clock;
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
  /** Bytes of the objects copied. */
  bytesCopied: number;
  /** Bytes of the indexes (with their WAL), keyrings, sealed files and manifest written: copied whole into every snapshot. */
  indexBytes: number;
  /** Bytes still to copy when a partial run stopped. */
  bytesLeft: number;
  /** Files in object folders that are not regular files (links, fifos), not copied. */
  skipped: number;
  /** Sentences for the log: a rollback seen on the target, manifests refused. */
  warnings: string[];
  seconds: number;
}

interface StagedUser {
  id: string;
  dir: string;
  /** The index files and the keyring, in memory. */
  files: { name: string; data: Buffer }[];
  objects: { id: string; local: string; size: number }[];
}

export async function runBackup(opts: BackupOptions): Promise<BackupSummary> {
  const now = opts.now ?? systemClock;
  const started = now();
  const { target, pcId } = opts;
  const host = opts.host ?? hostname();
  const deadlineReached = (): boolean => opts.deadline?.at !== undefined && now() >= opts.deadline.at;
  const trust = await trustOf(opts.deviceKey.publicKey);
  const warnings: string[] = [];
  // Confirmed (after its settling pause) once the read-only work below is done.
  const lock = await TargetLock.acquire(target, pcId, { host, now, confirmLater: true });
  const releases: (() => Promise<void>)[] = [];
  try {
    // Sizes and hashes of objects already listed (objects never change), and of those hashed below.
    const { known: hashes, latest } = await previousHashes(target, pcId, trust, warnings);
    const rollback = rollbackNotice(pcId, latest, opts.newestWritten);
    if (rollback) warnings.push(rollback);
    const onTarget = new Map((await target.list(`${pcId}/users`)).map((f) => [`users/${f.path}`, f.size]));
    const after = [latest, opts.newestWritten].filter((id): id is string => id !== undefined).map((id) => snapshotTime(id) + 1);
    const snapshot = newSnapshotId(Math.max(now(), ...after));
    const users: StagedUser[] = [];
    const skipped = { count: 0 };
    for (const dir of await listUserDirs(opts.dataDir)) {
      releases.push(await Vault.holdDeletions(dir));
      users.push(await stageUser(dir, skipped));
    }

    await lock.confirm();
    await checkDeviceKey(target, pcId, opts.deviceKey.publicKey, trust);
    // Staging folders of older versions, killed mid-run: they only take room.
    const runDir = dataFolder(opts.dataDir).run;
    for (const name of await readdir(runDir).catch(() => [] as string[])) {
      if (name.startsWith('backup-')) await rm(join(runDir, name), { recursive: true, force: true });
    }
    // Listing the whole PC folder for leftovers costs time a shutdown does not have.
    if (opts.deadline?.at === undefined) await target.cleanTemporaries(pcId);

    const toCopy = users.flatMap((u) => u.objects.filter((o) => onTarget.get(objectPath(u.id, o.id)) !== o.size).map((o) => ({ user: u, object: o })));
    const progress: BackupProgress = { objectsCopied: 0, objectsToCopy: toCopy.length, bytesCopied: 0, bytesToCopy: toCopy.reduce((n, c) => n + c.object.size, 0) };
    let indexBytes = 0;
    const summary = (status: BackupSummary['status'], id?: string): BackupSummary => ({
      status,
      snapshot: id,
      users: users.length,
      objects: users.reduce((n, u) => n + u.objects.length, 0),
      objectsCopied: progress.objectsCopied,
      bytesCopied: progress.bytesCopied,
      indexBytes,
      bytesLeft: progress.bytesToCopy - progress.bytesCopied,
      skipped: skipped.count,
      warnings,
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
    const written: { path: string; data: Buffer | string }[] = [];
    for (const u of users) {
      const files: ManifestFile[] = [];
      for (const f of u.files) {
        const path = snapshotFilePath(snapshot, u.id, f.name);
        files.push({ path, ...hashBytes(f.data) });
        written.push({ path, data: f.data });
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
    const sealed: ManifestFile[] = [];
    for (const { name, data } of await sealedFiles(opts)) {
      const path = sealedFilePath(snapshot, name);
      sealed.push({ path, ...hashBytes(Buffer.from(data)) });
      written.push({ path, data });
    }
    // Once the objects are there, the snapshot is finished even past the
    // deadline: the rest (indexes, keyrings, sealed files, manifest) is small.
    // Written from memory: nothing is staged on the data disk.
    for (const w of written) {
      await target.writeFile(`${pcId}/${w.path}`, w.data);
      indexBytes += Buffer.byteLength(w.data);
    }
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      version: MANIFEST_VERSION,
      pcId,
      snapshot,
      host,
      startedAt: new Date(started).toISOString(),
      finishedAt: new Date(now()).toISOString(),
      deviceKey: trust.thumbprint,
      users: manifestUsers,
      sealed,
    };
    await lock.assertHeld();
    const signed = await signManifest(manifest, opts.deviceKey.privateKey, opts.deviceKey.publicKey);
    await target.writeFile(manifestPath(pcId, snapshot), signed);
    indexBytes += Buffer.byteLength(signed);
    return summary('complete', snapshot);
  } finally {
    // Clean-up failures must not turn a complete backup into a failed one: a
    // hold of a dead process and a lock past 30 minutes count as gone.
    for (const release of releases) await release().catch(() => undefined);
    await lock.release().catch(() => undefined);
  }
}

/**
 * Reads what the backup needs of one user folder into memory: index,
 * keyring without slot T, and the list of objects that are regular files
 * (others are counted in `skipped`).
 */
async function stageUser(dir: string, skipped: { count: number }): Promise<StagedUser> {
  let files: { name: string; data: Buffer }[];
  try {
    files = Vault.snapshotIndex(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new BackupError('ERR_BACKUP_NOT_REGULAR', `the index of the vault ${dir} is a symbolic link; backups read regular files only`, { cause: err });
    throw err;
  }
  const keyringFile = join(dir, KEYRING_FILE);
  await (await openRegular(keyringFile)).close();
  const keyring = await Keyring.load(keyringFile);
  files.push({ name: KEYRING_FILE, data: Buffer.from(keyring.backupText()) });
  const objects: StagedUser['objects'] = [];
  const folderOk = new Map<string, boolean>();
  const isRealDir = async (d: string): Promise<boolean> => {
    let ok = folderOk.get(d);
    if (ok === undefined) folderOk.set(d, (ok = await lstat(d).then((s) => s.isDirectory(), () => false)));
    return ok;
  };
  for (const { id, file } of await Vault.objectFiles(dir)) {
    if (!/^[0-9a-f]{32}$/.test(id)) continue;
    const info = await lstat(file).catch(() => undefined); // gone: an aborted write's
    if (!info) continue;
    // A link, or a file reached through a linked folder, is never followed.
    if (!info.isFile() || !(await isRealDir(dirname(file))) || !(await isRealDir(dirname(dirname(file))))) {
      skipped.count++;
      continue;
    }
    objects.push({ id, local: file, size: info.size });
  }
  return { id: basename(dir), dir, files, objects };
}

/** The sealed files of a snapshot: the audit log (up to its last complete line) and the local directory's files. */
async function sealedFiles(opts: BackupOptions): Promise<{ name: string; data: string }[]> {
  const out: { name: string; data: string }[] = [];
  const audit = opts.auditLog === undefined ? undefined : await readRegular(opts.auditLog);
  if (audit) {
    // The service may be appending: a line in progress is left for the next snapshot.
    const complete = audit.subarray(0, audit.lastIndexOf(0x0a) + 1);
    out.push({ name: AUDIT_FILE, data: await seal(complete, opts.recoveryPublicKey, AUDIT_LOG_TYPE) });
  }
  if (opts.localDirectory) {
    const users = await readRegular(opts.localDirectory.usersFile);
    const secrets = await readRegular(opts.localDirectory.secretFile);
    if (users || secrets) {
      const content = { format: 'mydoc-local-directory', version: 1, users: users?.toString('utf8') ?? null, secrets: secrets?.toString('utf8') ?? null };
      out.push({ name: LOCAL_DIRECTORY_FILE, data: await seal(Buffer.from(JSON.stringify(content)), opts.recoveryPublicKey, LOCAL_DIRECTORY_TYPE) });
    }
  }
  return out;
}

/** A regular file's bytes; undefined when it does not exist; never through a link. */
async function readRegular(file: string): Promise<Buffer | undefined> {
  const fh = await openRegular(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!fh) return undefined;
  try {
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/** Writes the device public key on the first backup; a different one there means someone replaced it (or another PC uses this id). */
async function checkDeviceKey(target: BackupTarget, pcId: string, publicKey: KeyObject, trust: DeviceTrust): Promise<void> {
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const there = await target.readFile(devicePublicPath(pcId)).catch((err: { code?: string }) => {
    if (err.code === 'ERR_TARGET_NOT_FOUND') return undefined;
    throw err;
  });
  if (there === undefined) return target.writeFile(devicePublicPath(pcId), pem);
  const theirs = await (async () => {
    try {
      return (await trustOf(createPublicKey(there))).thumbprint;
    } catch {
      return 'not a public key';
    }
  })();
  if (theirs !== trust.thumbprint) {
    throw new BackupError('ERR_BACKUP_DEVICE_KEY', `${devicePublicPath(pcId)} on the ${target.description} is not this PC's device key (${theirs}, this PC's is ${trust.thumbprint}): someone replaced it, or another PC uses the id ${pcId}; not backing up`);
  }
}

/**
 * Sizes and hashes of the objects in the newest snapshot this PC signed
 * (objects never change, so they carry over). Newer manifests that do not
 * verify are reported in `warnings` and otherwise ignored.
 */
async function previousHashes(target: BackupTarget, pcId: string, trust: DeviceTrust, warnings: string[]): Promise<{ known: Map<string, { size: number; sha256: string }>; latest: string | undefined }> {
  const known = new Map<string, { size: number; sha256: string }>();
  const snapshots = await listSnapshots(target, pcId);
  for (let i = snapshots.length - 1; i >= 0; i--) {
    let manifest: Manifest;
    try {
      manifest = await readManifest(target, pcId, snapshots[i]!, trust);
    } catch (err) {
      if (!(err instanceof BackupError)) throw err;
      warnings.push(`${err.message}; ignored`);
      continue;
    }
    for (const u of manifest.users) for (const o of u.objects) known.set(o.path, { size: o.size, sha256: o.sha256 });
    return { known, latest: snapshots[i] };
  }
  return { known, latest: undefined };
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
