/**
 * Where a PC's backup lives on a target, and the manifest of a snapshot.
 *
 *   <pcId>/lock                                 who is backing up (JSON)
 *   <pcId>/users/<uid>/objects/<2 hex>/<32 hex> encrypted objects, as in the vault
 *   <pcId>/snapshots/<snapshot>/<uid>/index.db  encrypted index (and index.db-wal)
 *   <pcId>/snapshots/<snapshot>/<uid>/keyring.json  slots N and R
 *   <pcId>/manifests/<snapshot>.json            written last: the snapshot exists
 *
 * A snapshot is complete exactly when its manifest exists; the manifest lists
 * every file the snapshot needs with its size and SHA-256. Snapshot ids sort
 * by time, to the millisecond (`20261126T093833512Z-1a2b`), and each is later
 * than the one before it. Paths in a manifest are relative to the
 * PC's folder and hold only ids and hashes.
 */
import { randomBytes } from 'node:crypto';
import { checkTargetPath } from './path-target.js';
import { BackupError } from './errors.js';
import type { BackupTarget } from './target.js';

export const MANIFEST_FORMAT = 'mydoc-backup-manifest';
export const MANIFEST_VERSION = 1;
const SNAPSHOT_ID = /^\d{8}T\d{9}Z-[0-9a-f]{4}$/;
const USER_ID = /^[0-9a-f]{32}$/;
const OBJECT_ID = /^[0-9a-f]{32}$/;
const SHA256 = /^[0-9a-f]{64}$/;
/** The only files a snapshot holds per user. */
const SNAPSHOT_FILES = ['index.db', 'index.db-wal', 'keyring.json'];

export interface ManifestFile {
  /** Relative to the PC's folder on the target. */
  path: string;
  size: number;
  sha256: string;
}

export interface ManifestUser {
  /** The user folder's name (a hash: it does not show who the user is). */
  id: string;
  /** The index files and the keyring of this snapshot. */
  files: ManifestFile[];
  objects: ManifestFile[];
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  version: typeof MANIFEST_VERSION;
  pcId: string;
  snapshot: string;
  host: string;
  startedAt: string;
  finishedAt: string;
  users: ManifestUser[];
}

export const lockPath = (pcId: string): string => `${pcId}/lock`;
export const objectPath = (userId: string, objectId: string): string => `users/${userId}/objects/${objectId.slice(0, 2)}/${objectId}`;
export const snapshotFilePath = (snapshot: string, userId: string, name: string): string => `snapshots/${snapshot}/${userId}/${name}`;
export const manifestsDir = (pcId: string): string => `${pcId}/manifests`;
export const manifestPath = (pcId: string, snapshot: string): string => `${pcId}/manifests/${snapshot}.json`;

export function newSnapshotId(now: number): string {
  const stamp = new Date(now).toISOString().replace(/[-:.]/g, '');
  return `${stamp}-${randomBytes(2).toString('hex')}`;
}

export function isSnapshotId(id: string): boolean {
  return SNAPSHOT_ID.test(id);
}

/** The snapshot time encoded in its id (ms since the epoch). */
export function snapshotTime(id: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z/.exec(id)!;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!, +m[7]!);
}

/** The PCs that have a backup folder on the target. */
export async function listPcs(target: BackupTarget): Promise<string[]> {
  const files = await target.list('');
  const pcs = new Set<string>();
  for (const f of files) {
    const [pc, dir] = f.path.split('/');
    if (pc && dir === 'manifests') pcs.add(pc);
  }
  return [...pcs].sort();
}

/** Ids of the complete snapshots of a PC, oldest first. */
export async function listSnapshots(target: BackupTarget, pcId: string): Promise<string[]> {
  const files = await target.list(manifestsDir(pcId));
  return files
    .map((f) => f.path.replace(/\.json$/, ''))
    .filter(isSnapshotId)
    .sort();
}

export async function readManifest(target: BackupTarget, pcId: string, snapshot: string): Promise<Manifest> {
  const path = manifestPath(pcId, snapshot);
  const text = (await target.readFile(path)).toString('utf8');
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new BackupError('ERR_BACKUP_MANIFEST', `the manifest ${path} is not valid JSON (damaged?)`);
  }
  return checkManifest(data, path, pcId, snapshot);
}

/** The snapshot named `which` ('latest' or an id), with its manifest. */
export async function findSnapshot(target: BackupTarget, pcId: string, which = 'latest'): Promise<Manifest> {
  const snapshots = await listSnapshots(target, pcId);
  if (snapshots.length === 0) throw new BackupError('ERR_BACKUP_NO_SNAPSHOT', `there is no complete backup of PC ${pcId} on the ${target.description}`);
  if (which === 'latest') return readManifest(target, pcId, snapshots[snapshots.length - 1]!);
  if (!snapshots.includes(which)) throw new BackupError('ERR_BACKUP_NO_SNAPSHOT', `PC ${pcId} has no snapshot ${which} (it has ${snapshots.join(', ')})`);
  return readManifest(target, pcId, which);
}

function checkManifest(data: unknown, path: string, pcId: string, snapshot: string): Manifest {
  const bad = (what: string): never => {
    throw new BackupError('ERR_BACKUP_MANIFEST', `the manifest ${path} is malformed: ${what}`);
  };
  const m = data as Manifest;
  if (typeof m !== 'object' || m === null || m.format !== MANIFEST_FORMAT) bad('not a mydoc backup manifest');
  if (m.version !== MANIFEST_VERSION) bad(`version ${String(m.version)} is not supported`);
  if (m.pcId !== pcId || m.snapshot !== snapshot) bad('it names another PC or snapshot');
  if (!Array.isArray(m.users)) bad('no user list');
  const checkFile = (f: ManifestFile): void => {
    if (typeof f?.path !== 'string' || !Number.isSafeInteger(f.size) || f.size < 0 || typeof f.sha256 !== 'string' || !SHA256.test(f.sha256)) bad('a file entry is incomplete');
    try {
      checkTargetPath(f.path);
    } catch {
      bad(`invalid path ${JSON.stringify(f.path)}`);
    }
  };
  for (const u of m.users) {
    if (typeof u?.id !== 'string' || !USER_ID.test(u.id) || !Array.isArray(u.files) || !Array.isArray(u.objects)) bad('a user entry is incomplete');
    u.files.forEach(checkFile);
    u.objects.forEach(checkFile);
    for (const o of u.objects) if (!OBJECT_ID.test(o.path.slice(-32)) || o.path !== objectPath(u.id, o.path.slice(-32))) bad(`object path ${o.path} is not where objects live`);
    for (const f of u.files) if (!SNAPSHOT_FILES.some((name) => f.path === snapshotFilePath(snapshot, u.id, name))) bad(`file ${f.path} is not an index or keyring of its snapshot`);
  }
  return m;
}
