/**
 * Restores a PC's snapshot into the data folder of a new PC: for each user,
 * the keyring of the snapshot is opened with the organisation's recovery
 * private key (slot R), the DEK is wrapped into new slots N and R of this
 * PC (so the user logs in as before), and the index and objects are copied
 * in, each checked against the manifest. Every user is restored into a
 * temporary folder and checked first; only then are they renamed into place.
 * A user who already has a vault on this PC is refused, never overwritten.
 * The caller makes sure the service is not running.
 */
import type { KeyObject } from 'node:crypto';
import { access, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Keyring } from '../crypto/keyring.js';
import type { NetworkSecretSource } from '../crypto/network-secret.js';
import { KEYRING_FILE, userDir } from '../shares/user-vaults.js';
import { Vault } from '../shares/vault.js';
import { BackupError } from './errors.js';
import { fetchAndUnlock, fetchVerified, localUserPath } from './fetch.js';
import { findSnapshot, type ManifestUser } from './manifest.js';
import type { BackupTarget } from './target.js';

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
  onUser?: (user: string, objects: number) => void;
}

export interface RestoreSummary {
  snapshot: string;
  users: string[];
  objects: number;
  bytes: number;
}

export async function restoreSnapshot(opts: RestoreOptions): Promise<RestoreSummary> {
  const manifest = await findSnapshot(opts.target, opts.fromPcId, opts.snapshot);
  await mkdir(join(opts.dataDir, 'run'), { recursive: true, mode: 0o700 });
  const summary: RestoreSummary = { snapshot: manifest.snapshot, users: [], objects: 0, bytes: 0 };
  // Every keyring is opened before anything is written, so a wrong recovery
  // key or an existing user stops the restore with the data folder untouched.
  const staging = await mkdtemp(join(opts.dataDir, 'run', 'restore-'));
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
    return summary;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
