/**
 * Restores a PC's snapshot into the data folder of a new PC: for each user,
 * the keyring of the snapshot is opened with the organisation's recovery
 * private key (slot R), the DEK is wrapped into new slots N and R of this
 * PC (so the user logs in as before), and the index and objects are copied
 * in, each checked against the manifest. Every user is restored into a
 * temporary folder and checked first; only then are they renamed into place.
 * A user who already has a vault on this PC is refused, never overwritten.
 * With the local (demo) directory, its users (password hashes) and network
 * secrets come back from the snapshot too (sealed to the recovery key):
 * users this PC does not know yet are added, none is replaced. The caller
 * makes sure the service is not running.
 */
import type { KeyObject } from 'node:crypto';
import { access, mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { writeFileAtomic } from '../crypto/atomic-file.js';
import { dirname, join } from 'node:path';
import { Keyring } from '../crypto/keyring.js';
import type { NetworkSecretSource } from '../crypto/network-secret.js';
import { KEYRING_FILE, userDir } from '../shares/vault/user-vaults.js';
import { Vault } from '../shares/vault/vault.js';
import { BackupError } from './errors.js';
import { fetchAndUnlock, fetchVerified, localUserPath } from './fetch.js';
import { LOCAL_DIRECTORY_FILE, findSnapshot, sealedFilePath, type DeviceTrust, type Manifest, type ManifestUser } from './manifest.js';
import { LOCAL_DIRECTORY_TYPE, unseal } from './sealed.js';
import type { BackupTarget } from './target.js';
import { dataFolder } from '../shares/data-folder.js';

export interface RestoreOptions {
  target: BackupTarget;
  /** The PC whose backup is restored. */
  fromPcId: string;
  /** 'latest' or a snapshot id. */
  snapshot: string;
  recoveryPrivateKey: KeyObject;
  /** The new PC: its data folder, id, network secret source and recovery public key. */
  dataDir: string;
  pcId: string;
  source: NetworkSecretSource;
  recoveryPublicKey: KeyObject;
  /** The device key the snapshot's manifest must be signed with. */
  trust: DeviceTrust;
  /** The new PC's local directory files, when it uses the local (demo) directory. */
  localDirectory?: { usersFile: string; secretFile: string } | undefined;
  onUser?: (user: string, objects: number) => void;
}

export interface RestoreSummary {
  snapshot: string;
  users: string[];
  objects: number;
  bytes: number;
  /** Users added to the local directory from the snapshot. */
  directoryUsers: string[];
}

export async function restoreSnapshot(opts: RestoreOptions): Promise<RestoreSummary> {
  const manifest = await findSnapshot(opts.target, opts.fromPcId, opts.snapshot, opts.trust);
  const runDir = dataFolder(opts.dataDir).run;
  await mkdir(runDir, { recursive: true, mode: 0o700 });
  const summary: RestoreSummary = { snapshot: manifest.snapshot, users: [], objects: 0, bytes: 0, directoryUsers: [] };
  // Every keyring is opened before anything is written, so a wrong recovery
  // key or an existing user stops the restore with the data folder untouched.
  const staging = await mkdtemp(join(runDir, 'restore-'));
  try {
    const opened: { entry: ManifestUser; user: string; keyring: Keyring; dest: string }[] = [];
    for (const entry of manifest.users) {
      const keyringOnly = entry.files.filter((f) => f.path.endsWith(`/${KEYRING_FILE}`));
      const { keyring, user } = await fetchAndUnlock(opts.target, opts.fromPcId, keyringOnly, join(staging, entry.id), opts.recoveryPrivateKey);
      const dest = userDir(opts.dataDir, opts.pcId, user);
      if (await access(dest).then(() => true, () => false)) {
        throw new BackupError('ERR_BACKUP_RESTORE', `user "${user}" already has a vault on this PC (${dest}); refusing to overwrite it`);
      }
      opened.push({ entry, user, keyring, dest });
    }
    // Every user is fetched, checked and opened before any is put in place.
    const ready: { user: string; stage: string; dest: string; entry: ManifestUser }[] = [];
    for (const { entry, user, keyring, dest } of opened) {
      const stage = join(staging, entry.id, 'new');
      const files = [...entry.files.filter((f) => !f.path.endsWith(`/${KEYRING_FILE}`)), ...entry.objects];
      await fetchVerified(opts.target, opts.fromPcId, files, (f) => localUserPath(stage, f));
      const restored = await Keyring.create(join(stage, KEYRING_FILE), { user, pcId: opts.pcId, source: opts.source, recoveryPublicKey: opts.recoveryPublicKey, dataKey: keyring.dataKey });
      try {
        (await Vault.open(stage, restored.dataKey)).close();
      } finally {
        restored.lock();
        keyring.lock();
      }
      ready.push({ user, stage, dest, entry });
    }
    for (const { user, stage, dest, entry } of ready) {
      await mkdir(dirname(dest), { recursive: true, mode: 0o700 });
      // mkdir without `recursive` fails if anything is there: the folder is ours, then replaced by the restored one.
      await mkdir(dest, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'EEXIST') throw new BackupError('ERR_BACKUP_RESTORE', `user "${user}" already has a vault on this PC (${dest}); refusing to overwrite it`);
        throw err;
      });
      await rename(stage, dest);
      summary.users.push(user);
      summary.objects += entry.objects.length;
      summary.bytes += entry.objects.reduce((n, o) => n + o.size, 0);
      opts.onUser?.(user, entry.objects.length);
    }
    if (opts.localDirectory) summary.directoryUsers = await restoreLocalDirectory(opts, manifest, staging);
    return summary;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * Adds the snapshot's local directory users and network secrets that this
 * PC does not have yet (never replacing one); returns the users added.
 * Slot N of every restored vault was sealed with this PC's own secret
 * source, which keeps the secret it made then.
 */
async function restoreLocalDirectory(opts: RestoreOptions, manifest: Manifest, staging: string): Promise<string[]> {
  const listed = manifest.sealed.find((f) => f.path === sealedFilePath(manifest.snapshot, LOCAL_DIRECTORY_FILE));
  if (!listed || !opts.localDirectory) return [];
  const local = join(staging, LOCAL_DIRECTORY_FILE);
  await fetchVerified(opts.target, opts.fromPcId, [listed], () => local);
  const content = JSON.parse((await unseal(await readFile(local, 'utf8'), opts.recoveryPrivateKey, LOCAL_DIRECTORY_TYPE, 'local directory')).toString('utf8')) as { users: string | null; secrets: string | null };
  const added: string[] = [];
  if (content.users) {
    const theirs = JSON.parse(content.users) as { format: string; version: number; users: Record<string, unknown> };
    const ours = (await readJson(opts.localDirectory.usersFile)) as typeof theirs | undefined;
    const merged = ours ?? { ...theirs, users: {} };
    if (merged.format !== theirs.format || merged.version !== theirs.version) throw new BackupError('ERR_BACKUP_RESTORE', `the local directory ${opts.localDirectory.usersFile} is not of the format the snapshot's is`);
    for (const [name, record] of Object.entries(theirs.users)) {
      if (merged.users[name] === undefined) {
        merged.users[name] = record;
        added.push(name);
      }
    }
    if (added.length > 0) await writeFileAtomic(opts.localDirectory.usersFile, JSON.stringify(merged, null, 2) + '\n', 0o600);
  }
  if (content.secrets) {
    const theirs = JSON.parse(content.secrets) as Record<string, string>;
    const ours = ((await readJson(opts.localDirectory.secretFile)) as Record<string, string> | undefined) ?? {};
    const missing = Object.keys(theirs).filter((user) => ours[user] === undefined);
    for (const user of missing) ours[user] = theirs[user]!;
    if (missing.length > 0) await writeFileAtomic(opts.localDirectory.secretFile, JSON.stringify(ours, null, 2) + '\n', 0o600);
  }
  return added.sort();
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new BackupError('ERR_BACKUP_RESTORE', `${file} is not valid JSON; fix or remove it before restoring`);
  }
}
