/** Crash-safe small-file writes: temp file, fsync, rename, fsync of the folder. */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes `data` to `file` so that a crash leaves either the old or the new content. */
export async function writeFileAtomic(file: string, data: string | Buffer, mode = 0o600, flag: 'replace' | 'create' = 'replace'): Promise<void> {
  const dir = dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    if (flag === 'create') {
      // link() fails with EEXIST instead of replacing: no lost keyring.
      await link(tmp, file);
      await rm(tmp);
    } else {
      await rename(tmp, file);
    }
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dir);
}
