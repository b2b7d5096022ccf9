/**
 * Where a PC's backup lives on a target, and the manifest of a snapshot.
 *
 *   <pcId>/lock                                 who is backing up (JSON)
 *   <pcId>/device-public.pem                    the PC's device public key (first backup)
 *   <pcId>/users/<uid>/objects/<2 hex>/<32 hex> encrypted objects, as in the vault
 *   <pcId>/snapshots/<snapshot>/<uid>/index.db  encrypted index (and index.db-wal)
 *   <pcId>/snapshots/<snapshot>/<uid>/keyring.json  slots N and R
 *   <pcId>/snapshots/<snapshot>/audit.log.jwe   the audit log, sealed to the recovery key
 *   <pcId>/snapshots/<snapshot>/local-directory.jwe  the local directory, sealed likewise
 *   <pcId>/manifests/<snapshot>.json            written last: the snapshot exists
 *
 * A snapshot is complete exactly when its manifest exists; the manifest lists
 * every file the snapshot needs with its size and SHA-256. Snapshot ids sort
 * by time, to the millisecond (`20261126T093833512Z-1a2b`), and each is later
 * than the one before it. Paths in a manifest are relative to the
 * PC's folder and hold only ids and hashes.
 *
 * The manifest is signed with the PC's device key (a flattened JWS, ES256,
 * low-s): a reader refuses an unsigned manifest and one the device key it
 * trusts did not sign, so a NAS writer can remove snapshots but cannot forge
 * or alter one. Which key a reader trusts is decided by `device-trust.ts`.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { isSignedPayload, signPayload, SignatureError, verifyPayload } from '../crypto/device-signature.js';
import { checkTargetPath } from './path-target.js';
import { BackupError } from './errors.js';
import type { BackupTarget } from './target.js';

export const MANIFEST_FORMAT = 'mydoc-backup-manifest';
export const MANIFEST_VERSION = 2;
/** The content type in the manifest signature's header. */
export const MANIFEST_CONTENT_TYPE = 'mydoc-backup-manifest+json';
const SNAPSHOT_ID = /^\d{8}T\d{9}Z-[0-9a-f]{4}$/;
const USER_ID = /^[0-9a-f]{32}$/;
const OBJECT_ID = /^[0-9a-f]{32}$/;
const SHA256 = /^[0-9a-f]{64}$/;
/** The only files a snapshot holds per user. */
const SNAPSHOT_FILES = ['index.db', 'index.db-wal', 'keyring.json'];
/** The sealed files a snapshot may hold (one each). */
export const AUDIT_FILE = 'audit.log.jwe';
export const LOCAL_DIRECTORY_FILE = 'local-directory.jwe';
const SEALED_FILES = [AUDIT_FILE, LOCAL_DIRECTORY_FILE];

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
  /** Thumbprint (RFC 7638) of the device key that signs this manifest. */
  deviceKey: string;
  users: ManifestUser[];
  /** Files sealed to the recovery key (`snapshots/<snapshot>/<name>`): the audit log, the local directory. */
  sealed: ManifestFile[];
}

/** The device public key a reader checks manifest signatures with, and its thumbprint. */
export interface DeviceTrust {
  key: KeyObject;
  thumbprint: string;
}

export const lockPath = (pcId: string): string => `${pcId}/lock`;
export const objectPath = (userId: string, objectId: string): string => `users/${userId}/objects/${objectId.slice(0, 2)}/${objectId}`;
export const snapshotFilePath = (snapshot: string, userId: string, name: string): string => `snapshots/${snapshot}/${userId}/${name}`;
export const manifestsDir = (pcId: string): string => `${pcId}/manifests`;
export const manifestPath = (pcId: string, snapshot: string): string => `${pcId}/manifests/${snapshot}.json`;
export const sealedFilePath = (snapshot: string, name: string): string => `snapshots/${snapshot}/${name}`;
export const devicePublicPath = (pcId: string): string => `${pcId}/device-public.pem`;

/** The manifest file's text: the manifest, signed with the device key. */
export async function signManifest(manifest: Manifest, privateKey: KeyObject, publicKey: KeyObject): Promise<string> {
  return JSON.stringify(await signPayload(Buffer.from(JSON.stringify(manifest)), privateKey, publicKey, MANIFEST_CONTENT_TYPE));
}

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

/**
 * Reads a manifest and checks its signature with `trust`: ERR_BACKUP_UNSIGNED
 * for a manifest without a signature, ERR_BACKUP_SIGNATURE for one the
 * trusted device key did not sign.
 */
export async function readManifest(target: BackupTarget, pcId: string, snapshot: string, trust: DeviceTrust): Promise<Manifest> {
  const path = manifestPath(pcId, snapshot);
  const text = (await target.readFile(path)).toString('utf8');
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new BackupError('ERR_BACKUP_MANIFEST', `the manifest ${path} is not valid JSON (damaged?)`);
  }
  if (!isSignedPayload(data)) {
    throw new BackupError('ERR_BACKUP_UNSIGNED', `the manifest ${path} is not signed; refusing it (a manifest of an older mydoc, or one put there by someone who can write to the ${target.description})`);
  }
  let payload: Buffer;
  try {
    payload = await verifyPayload(data, trust.key, MANIFEST_CONTENT_TYPE);
  } catch (err) {
    if (!(err instanceof SignatureError)) throw err;
    throw new BackupError('ERR_BACKUP_SIGNATURE', `the manifest ${path} is wrongly signed: ${err.message} (${trust.thumbprint}); refusing it`);
  }
  let manifest: unknown;
  try {
    manifest = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new BackupError('ERR_BACKUP_MANIFEST', `the manifest ${path} is malformed: its signed content is not JSON`);
  }
  const m = checkManifest(manifest, path, pcId, snapshot);
  if (m.deviceKey !== trust.thumbprint) throw new BackupError('ERR_BACKUP_SIGNATURE', `the manifest ${path} is wrongly signed: it names the device key ${String(m.deviceKey)}, not ${trust.thumbprint}; refusing it`);
  return m;
}

/** The snapshot named `which` ('latest': the newest manifest, which must then verify), with its manifest. */
export async function findSnapshot(target: BackupTarget, pcId: string, which: string, trust: DeviceTrust): Promise<Manifest> {
  const snapshots = await listSnapshots(target, pcId);
  if (snapshots.length === 0) throw new BackupError('ERR_BACKUP_NO_SNAPSHOT', `there is no complete backup of PC ${pcId} on the ${target.description}`);
  if (which === 'latest') return readManifest(target, pcId, snapshots[snapshots.length - 1]!, trust);
  if (!snapshots.includes(which)) throw new BackupError('ERR_BACKUP_NO_SNAPSHOT', `PC ${pcId} has no snapshot ${which} (it has ${snapshots.join(', ')})`);
  return readManifest(target, pcId, which, trust);
}

/**
 * A sentence when the newest snapshot on the target is older than the newest
 * one known to have been written (`newestSeen`): snapshots were removed, or
 * an older manifest was put back (a rollback). Undefined otherwise.
 */
export function rollbackNotice(pcId: string, newestOnTarget: string | undefined, newestSeen: string | undefined): string | undefined {
  if (newestSeen === undefined || (newestOnTarget !== undefined && newestOnTarget >= newestSeen)) return undefined;
  return `ROLLBACK: the newest snapshot of PC ${pcId} on the target is ${newestOnTarget ?? '(none)'}, older than ${newestSeen}, the newest one seen before: snapshots were removed or an older manifest was put back`;
}

function checkManifest(data: unknown, path: string, pcId: string, snapshot: string): Manifest {
  const bad = (what: string): never => {
    throw new BackupError('ERR_BACKUP_MANIFEST', `the manifest ${path} is malformed: ${what}`);
  };
  const m = data as Manifest;
  if (typeof m !== 'object' || m === null || m.format !== MANIFEST_FORMAT) bad('not a mydoc backup manifest');
  if (m.version !== MANIFEST_VERSION) bad(`version ${String(m.version)} is not supported`);
  if (m.pcId !== pcId || m.snapshot !== snapshot) bad('it names another PC or snapshot');
  if (!Array.isArray(m.users) || !Array.isArray(m.sealed)) bad('no user list or no sealed file list');
  if (typeof m.deviceKey !== 'string') bad('no device key');
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
  m.sealed.forEach(checkFile);
  for (const f of m.sealed) if (!SEALED_FILES.some((name) => f.path === sealedFilePath(snapshot, name))) bad(`file ${f.path} is not a sealed file of its snapshot`);
  return m;
}
