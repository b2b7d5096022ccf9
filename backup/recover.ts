/**
 * An administrator's read-only view of a PC's backup: with the recovery
 * private key and the target alone (no directory, no agent), list what was
 * on the PC and extract files or folders as plaintext.
 *
 * The keyrings and indexes of the snapshot are downloaded into a private
 * scratch folder (0700, removed at close), checked against the manifest,
 * opened through slot R, and objects are fetched only for what is
 * extracted. Extraction goes into a new or empty folder, creates every
 * folder under it itself and never overwrites a file. The PC's audit log,
 * sealed to the recovery key in the snapshot, can be written out too.
 */
import type { KeyObject } from 'node:crypto';
import { mkdir, mkdtemp, open, readdir, readFile, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { canonicalUser } from '../shares/vault/user-vaults.js';
import { Vault, type Entry } from '../shares/vault/vault.js';
import { BackupError } from './errors.js';
import { fetchAndUnlock, fetchVerified, localUserPath } from './fetch.js';
import { AUDIT_FILE, findSnapshot, objectPath, sealedFilePath, type DeviceTrust, type Manifest, type ManifestFile, type ManifestUser } from './manifest.js';
import { AUDIT_LOG_TYPE, unseal } from './sealed.js';
import type { BackupTarget } from './target.js';

export interface RecoveredUser {
  user: string;
  vault: Vault;
  dir: string;
  entry: ManifestUser;
}

export interface RecoveredBackup {
  snapshot: string;
  manifest: Manifest;
  /** The private scratch folder (removed at close). */
  scratch: string;
  users: RecoveredUser[];
  close(): Promise<void>;
}

export async function openBackup(opts: { target: BackupTarget; pcId: string; snapshot: string; recoveryPrivateKey: KeyObject; trust: DeviceTrust }): Promise<RecoveredBackup> {
  const manifest = await findSnapshot(opts.target, opts.pcId, opts.snapshot, opts.trust);
  const scratch = await mkdtemp(join(tmpdir(), 'mydoc-recover-'));
  const users: RecoveredUser[] = [];
  const close = async (): Promise<void> => {
    for (const u of users) u.vault.close();
    await rm(scratch, { recursive: true, force: true });
  };
  try {
    for (const entry of manifest.users) {
      const dir = join(scratch, entry.id);
      const { keyring, user } = await fetchAndUnlock(opts.target, opts.pcId, entry.files, dir, opts.recoveryPrivateKey);
      try {
        users.push({ user, vault: await Vault.openReadOnly(dir, keyring.dataKey), dir, entry });
      } finally {
        keyring.lock();
      }
    }
  } catch (err) {
    await close();
    throw err;
  }
  users.sort((a, b) => a.user.localeCompare(b.user));
  return { snapshot: manifest.snapshot, manifest, scratch, users, close };
}

/**
 * The PC's audit log as of the snapshot (checked against the manifest,
 * opened with the recovery key), or undefined when the snapshot has none
 * (made before audit logs were backed up, or the PC had no audit log).
 */
export async function readAuditLog(backup: RecoveredBackup, target: BackupTarget, pcId: string, recoveryPrivateKey: KeyObject): Promise<Buffer | undefined> {
  const listed = backup.manifest.sealed.find((f) => f.path === sealedFilePath(backup.snapshot, AUDIT_FILE));
  if (!listed) return undefined;
  const local = join(backup.scratch, AUDIT_FILE);
  await fetchVerified(target, pcId, [listed], () => local);
  try {
    return await unseal(await readFile(local, 'utf8'), recoveryPrivateKey, AUDIT_LOG_TYPE, 'audit log');
  } finally {
    await rm(local, { force: true });
  }
}

/** Every entry under `path` in a vault, depth first, parents before children. */
export function* walk(vault: Vault, path = '/'): Generator<Entry> {
  for (const e of vault.list(path)) {
    yield e;
    if (e.isDir) yield* walk(vault, e.path);
  }
}

/** Splits `/user/area/...` into the recovered user and the path inside their vault. */
function locate(backup: RecoveredBackup, path: string): { user: RecoveredUser; inner: string } {
  const [name, ...rest] = path.split('/').filter(Boolean);
  const user = name === undefined ? undefined : backup.users.find((u) => u.user === canonicalUser(name));
  if (!user) throw new BackupError('ERR_BACKUP_RESTORE', `no user "${name ?? ''}" in snapshot ${backup.snapshot} (users: ${backup.users.map((u) => u.user).join(', ') || 'none'}); paths start with /USER/`);
  return { user, inner: '/' + rest.join('/') };
}

export interface ExtractSummary {
  files: number;
  folders: number;
  bytes: number;
}

/**
 * Writes the file or folder at `path` (`/USER/...`; `/USER` is the whole
 * vault) under `toDir`, named by its last segment, with contents and
 * modification times. `toDir` must be new or empty: every folder under it
 * is created here (never followed), and no file is overwritten.
 */
export async function extract(backup: RecoveredBackup, target: BackupTarget, pcId: string, path: string, toDir: string): Promise<ExtractSummary> {
  const { user, inner } = locate(backup, path);
  const top = user.vault.stat(inner);
  if (!top) throw new BackupError('ERR_BACKUP_RESTORE', `${path} is not in snapshot ${backup.snapshot}`);
  const entries = top.isDir ? [top, ...walk(user.vault, inner)] : [top];
  const byPath = new Map(user.entry.objects.map((o) => [o.path, o]));
  const needed: ManifestFile[] = [];
  for (const e of entries) {
    if (e.isDir) continue;
    const listed = byPath.get(objectPath(user.entry.id, e.objectId!));
    if (!listed) throw new BackupError('ERR_BACKUP_DAMAGED', `the manifest of snapshot ${backup.snapshot} does not list the object of ${e.path}`);
    needed.push(listed);
  }
  const root = resolve(toDir);
  await mkdir(root, { recursive: true, mode: 0o700 });
  if ((await readdir(root)).length > 0) throw new BackupError('ERR_BACKUP_RESTORE', `${root} is not empty; extract into a new or empty folder`);
  await fetchVerified(target, pcId, needed, (f) => localUserPath(user.dir, f));
  // The top entry is named by its last segment (the user's name for a whole vault).
  const topName = inner === '/' ? user.user : top.name;
  const local = (e: Entry): string => {
    const out = join(root, topName, ...e.path.slice(top.path.length).split('/').filter(Boolean));
    if (!out.startsWith(root + sep)) throw new BackupError('ERR_BACKUP_RESTORE', `refusing to write ${out} outside ${root}`);
    return out;
  };
  const summary: ExtractSummary = { files: 0, folders: 0, bytes: 0 };
  for (const e of entries) {
    const out = local(e);
    if (e.isDir) {
      await mkdir(out, { mode: 0o700 }); // not recursive: the parent was made here, nothing is followed
      summary.folders++;
      continue;
    }
    const { stream } = await user.vault.read(e.path);
    const fh = await open(out, 'wx', 0o600).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'EEXIST') throw new BackupError('ERR_BACKUP_RESTORE', `${out} exists already; extract into an empty folder`);
      throw err;
    });
    await pipeline(stream, fh.createWriteStream());
    await utimes(out, e.accessed / 1000, e.modified / 1000);
    summary.files++;
    summary.bytes += e.size;
  }
  for (const e of entries.filter((x) => x.isDir).reverse()) await utimes(local(e), e.accessed / 1000, e.modified / 1000);
  return summary;
}
