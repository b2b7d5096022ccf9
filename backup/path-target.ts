/**
 * A backup target that is a folder: a mounted NAS share (NFS, CIFS) or any
 * local folder (the embedded default).
 *
 * Every file is written to `.tmp-<random>` in its folder, fsynced, renamed
 * into place, and the folder fsynced: after a crash or a power cut a name
 * holds a complete file or nothing. "Disk full" and "no such folder" become
 * TargetErrors.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fsyncDir } from '../crypto/atomic-file.js';
import { inParallel } from './parallel.js';
import { TargetError, type BackupTarget, type TargetFile, type Transfer } from './target.js';

const TMP_PREFIX = '.tmp-';

/** Checks a target path (only ids and hashes, `/`-separated, relative). */
export function checkTargetPath(path: string): string {
  if (!/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(path) || path.split('/').some((p) => p === '.' || p === '..')) {
    throw new TargetError('ERR_TARGET_IO', `invalid target path ${JSON.stringify(path)}`);
  }
  return path;
}

export class PathTarget implements BackupTarget {
  readonly description: string;

  constructor(private readonly root: string) {
    this.description = `folder ${root}`;
  }

  async list(dir: string): Promise<TargetFile[]> {
    const base = this.abs(dir, 'root-allowed');
    const out: TargetFile[] = [];
    const walk = async (rel: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(join(base, rel), { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
        throw this.fail(err, dir);
      }
      for (const e of entries) {
        const child = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) await walk(child);
        else if (e.isFile() && !e.name.startsWith(TMP_PREFIX)) {
          const s = await stat(join(base, child));
          out.push({ path: child, size: s.size, mtimeMs: s.mtimeMs });
        }
      }
    };
    await walk('');
    return out;
  }

  async stat(path: string): Promise<TargetFile | undefined> {
    try {
      const s = await stat(this.abs(path));
      return s.isFile() ? { path, size: s.size, mtimeMs: s.mtimeMs } : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw this.fail(err, path);
    }
  }

  async readFile(path: string): Promise<Buffer> {
    try {
      return await readFile(this.abs(path));
    } catch (err) {
      throw this.fail(err, path);
    }
  }

  async writeFile(path: string, data: Buffer | string): Promise<void> {
    await this.place(path, async (tmp) => {
      const fh = await open(tmp, 'wx', 0o600);
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
    });
  }

  /**
   * Copies a batch: every file to a temporary name, all fsynced together
   * (the disk can merge the flushes), then renamed into place and each
   * folder fsynced once.
   */
  async upload(files: readonly Transfer[]): Promise<void> {
    const placed: { tmp: string; file: string; remote: string }[] = [];
    try {
      await inParallel(files, async (f) => {
        const file = this.abs(f.remote);
        const tmp = join(dirname(file), `${TMP_PREFIX}${randomBytes(8).toString('hex')}`);
        placed.push({ tmp, file, remote: f.remote });
        try {
          await mkdir(dirname(file), { recursive: true });
          await copyFile(f.local, tmp);
          const fh = await open(tmp, 'r+');
          try {
            await fh.sync();
          } finally {
            await fh.close();
          }
        } catch (err) {
          throw this.fail(err, f.remote);
        }
      });
      for (const p of placed) await rename(p.tmp, p.file);
    } catch (err) {
      await Promise.all(placed.map((p) => rm(p.tmp, { force: true }).catch(() => undefined)));
      throw err instanceof TargetError ? err : this.fail(err, placed[0]?.remote ?? '');
    }
    await inParallel([...new Set(placed.map((p) => dirname(p.file)))], (d) => fsyncDir(d));
  }

  async download(files: readonly Transfer[]): Promise<void> {
    for (const f of files) {
      try {
        await copyFile(this.abs(f.remote), f.local);
      } catch (err) {
        throw this.fail(err, f.remote);
      }
    }
  }

  async remove(path: string): Promise<void> {
    try {
      await rm(this.abs(path), { force: true });
    } catch (err) {
      throw this.fail(err, path);
    }
  }

  async removeDir(dir: string): Promise<void> {
    try {
      await rm(this.abs(dir), { recursive: true, force: true });
    } catch (err) {
      throw this.fail(err, dir);
    }
  }

  async cleanTemporaries(dir: string): Promise<number> {
    let removed = 0;
    const walk = async (abs: string): Promise<void> => {
      const entries = await readdir(abs, { withFileTypes: true }).catch(() => []);
      for (const e of entries) {
        if (e.isDirectory()) await walk(join(abs, e.name));
        else if (e.name.startsWith(TMP_PREFIX)) {
          await rm(join(abs, e.name), { force: true });
          removed++;
        }
      }
    };
    await walk(this.abs(dir, 'root-allowed'));
    return removed;
  }

  async now(): Promise<number> {
    const probe = `${TMP_PREFIX}clock-${randomBytes(8).toString('hex')}`;
    try {
      await mkdir(this.root, { recursive: true });
      const fh = await open(join(this.root, probe), 'wx', 0o600);
      try {
        return (await fh.stat()).mtimeMs;
      } finally {
        await fh.close();
        await rm(join(this.root, probe), { force: true });
      }
    } catch (err) {
      throw this.fail(err, probe);
    }
  }

  /** Writes through a temporary name in the destination folder, then renames it into place. */
  private async place(path: string, write: (tmp: string) => Promise<void>): Promise<void> {
    const file = this.abs(path);
    const tmp = join(dirname(file), `${TMP_PREFIX}${randomBytes(8).toString('hex')}`);
    try {
      await mkdir(dirname(file), { recursive: true });
      await write(tmp);
      await rename(tmp, file);
      await fsyncDir(dirname(file));
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw this.fail(err, path);
    }
  }

  /** The local path of a target path; '' (the root) only where `root` allows it (listings). */
  private abs(path: string, root: 'root-allowed' | 'file' = 'file'): string {
    if (path === '' && root === 'root-allowed') return this.root;
    return join(this.root, ...checkTargetPath(path).split('/'));
  }

  private fail(err: unknown, path: string): TargetError {
    if (err instanceof TargetError) return err;
    const code = (err as NodeJS.ErrnoException).code;
    const where = `${path} in the backup ${this.description}`;
    if (code === 'ENOSPC' || code === 'EDQUOT') return new TargetError('ERR_TARGET_FULL', `the backup target is full: no space left to write ${where}`, { cause: err });
    if (code === 'ENOENT') return new TargetError('ERR_TARGET_NOT_FOUND', `${where} does not exist`, { cause: err });
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return new TargetError('ERR_TARGET_IO', `no permission to write ${where} (${code})`, { cause: err });
    return new TargetError('ERR_TARGET_IO', `cannot access ${where}: ${(err as Error).message}`, { cause: err });
  }
}
