/** SHA-256 and size of a local file, as a manifest lists them; a regular file only, never through a link. */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { BackupError } from './errors.js';

const WHOLE_READ = 8 * 1024 * 1024;

export async function hashFile(file: string): Promise<{ size: number; sha256: string }> {
  const fh = await openRegular(file);
  try {
    // Most objects are small: one read, one hash update.
    const { size } = await fh.stat();
    if (size <= WHOLE_READ) {
      const data = await fh.readFile();
      return { size: data.length, sha256: createHash('sha256').update(data).digest('hex') };
    }
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(1024 * 1024);
    let total = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      total += bytesRead;
    }
    return { size: total, sha256: hash.digest('hex') };
  } finally {
    await fh.close();
  }
}

export function hashBytes(data: Uint8Array): { size: number; sha256: string } {
  return { size: data.length, sha256: createHash('sha256').update(data).digest('hex') };
}

/**
 * Opens `file` for reading if it is a regular file: a symbolic link (at its
 * last name) fails with O_NOFOLLOW, anything else (a fifo, a device, a
 * folder) after fstat. Both are ERR_BACKUP_NOT_REGULAR.
 */
export async function openRegular(file: string): Promise<FileHandle> {
  const fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ELOOP') throw new BackupError('ERR_BACKUP_NOT_REGULAR', `${file} is a symbolic link; backups read and write regular files only`, { cause: err });
    throw err;
  });
  if (!(await fh.stat()).isFile()) {
    await fh.close();
    throw new BackupError('ERR_BACKUP_NOT_REGULAR', `${file} is not a regular file; backups read and write regular files only`);
  }
  return fh;
}
