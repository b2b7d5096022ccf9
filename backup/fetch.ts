/**
 * Downloads files a manifest lists into a local folder and checks each one
 * against the manifest's size and SHA-256 before anything uses it. A
 * damaged or missing file fails with ERR_BACKUP_DAMAGED naming its path on
 * the target.
 */
import type { KeyObject } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Keyring } from '../crypto/keyring.js';
import { KEYRING_FILE } from '../shares/vault/user-vaults.js';
import { BackupError } from './errors.js';
import { hashFile } from './hash-file.js';
import type { ManifestFile } from './manifest.js';
import type { BackupTarget } from './target.js';

const BATCH_FILES = 100;

/**
 * Downloads `files` (paths relative to the PC's folder) to `localOf(file)`,
 * in batches, verifying each. `onBatch` reports progress.
 */
export async function fetchVerified(
  target: BackupTarget,
  pcId: string,
  files: readonly ManifestFile[],
  localOf: (f: ManifestFile) => string,
  onBatch?: (done: number) => void,
): Promise<void> {
  for (let i = 0; i < files.length; i += BATCH_FILES) {
    const batch = files.slice(i, i + BATCH_FILES);
    for (const f of batch) await mkdir(dirname(localOf(f)), { recursive: true, mode: 0o700 });
    try {
      await target.download(batch.map((f) => ({ local: localOf(f), remote: `${pcId}/${f.path}` })));
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_TARGET_NOT_FOUND') {
        throw new BackupError('ERR_BACKUP_DAMAGED', `a file of the backup is missing on the ${target.description}: ${(err as Error).message}`, { cause: err });
      }
      throw err;
    }
    for (const f of batch) {
      const got = await hashFile(localOf(f));
      if (got.size !== f.size || got.sha256 !== f.sha256) {
        await rm(localOf(f), { force: true });
        throw new BackupError('ERR_BACKUP_DAMAGED', `the backup file ${pcId}/${f.path} is damaged (${got.size !== f.size ? `size ${got.size}, the manifest says ${f.size}` : 'its SHA-256 does not match the manifest'})`);
      }
    }
    onBatch?.(i + batch.length);
  }
}

/** Where a file of a user's snapshot lands in a local user folder: its name (index.db, keyring.json, objects/ab/ab…). */
export function localUserPath(userDir: string, f: ManifestFile): string {
  const parts = f.path.split('/');
  return parts[parts.length - 3] === 'objects' ? join(userDir, ...parts.slice(-3)) : join(userDir, parts[parts.length - 1]!);
}

/**
 * Fetches `files` of a snapshot's user (they must include the keyring) into
 * the local user folder `dir`, and opens the keyring through slot R. The
 * caller locks the keyring when done with it.
 */
export async function fetchAndUnlock(target: BackupTarget, pcId: string, files: readonly ManifestFile[], dir: string, recoveryPrivateKey: KeyObject): Promise<{ keyring: Keyring; user: string }> {
  if (!files.some((f) => f.path.endsWith(`/${KEYRING_FILE}`))) throw new BackupError('ERR_BACKUP_MANIFEST', `the snapshot lists no keyring for user folder ${basename(dir)}`);
  await fetchVerified(target, pcId, files, (f) => localUserPath(dir, f));
  const keyring = await Keyring.load(join(dir, KEYRING_FILE));
  const { user } = await keyring.unlockRecovery(recoveryPrivateKey);
  return { keyring, user };
}
