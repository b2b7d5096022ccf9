/**
 * Downloads files a manifest lists into a local folder and checks each one
 * against the manifest's size and SHA-256 before anything uses it. A
 * damaged or missing file fails with ERR_BACKUP_DAMAGED naming its path on
 * the target.
 */
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BackupError } from './errors.js';
import { hashFile } from './run.js';
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
