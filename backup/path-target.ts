/**
 * A backup target that is a folder: a mounted NAS share (NFS, CIFS) or any
 * local folder (the embedded default).
 *
 * Every file is written to `.tmp-<random>` in its folder, fsynced, renamed
 * into place, and the folder fsynced: after a crash or a power cut a name
 * holds a complete file or nothing. "Disk full" and "no such folder" become
 * TargetErrors.
 *
 * Regular files only, never through a link: whoever can write to the NAS
 * could put a symbolic link there (resolved on this machine, for NFS), so
 * every name below the root is checked with lstat and files are opened with
 * O_NOFOLLOW; a link is an error (ERR_TARGET_IO), never followed. The local
 * file an upload reads must be a regular file too.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fsyncDir } from '../crypto/atomic-file.js';
import { openRegular } from './hash-file.js';
import { inParallel } from './parallel.js';
import { TargetError, type BackupTarget, type TargetFile, type Transfer } from './target.js';

const TMP_PREFIX = '.tmp-';
const COPY_CHUNK = 1024 * 1024;

/** Copies an open file into another, from their current positions to the end. */
async function copyHandle(from: FileHandle, to: FileHandle): Promise<void> {
  const buf = Buffer.allocUnsafe(COPY_CHUNK);
  for (;;) {
    const { bytesRead } = await from.read(buf, 0, COPY_CHUNK, null);
    if (bytesRead === 0) return;
    await to.write(buf, 0, bytesRead);
  }
}

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
    if (dir !== '') await this.noLinks(dir);
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
          const s = await lstat(join(base, child));
          out.push({ path: child, size: s.size, mtimeMs: s.mtimeMs });
        }
      }
    };
    await walk('');
    return out;
  }

  async stat(path: string): Promise<TargetFile | undefined> {
    try {
      await this.noLinks(path);
      const s = await lstat(this.abs(path));
      return s.isFile() ? { path, size: s.size, mtimeMs: s.mtimeMs } : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw this.fail(err, path);
    }
  }

  async readFile(path: string): Promise<Buffer> {
    try {
      await this.noLinks(path);
      const fh = await this.openRemote(path);
      try {
        return await fh.readFile();
      } finally {
        await fh.close();
      }
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
      for (const d of new Set(files.map((f) => dirname(f.remote)))) await this.noLinks(d).catch((err: unknown) => {
        throw this.fail(err, d);
      });
      await inParallel(files, async (f) => {
        const file = this.abs(f.remote);
        const tmp = join(dirname(file), `${TMP_PREFIX}${randomBytes(8).toString('hex')}`);
        placed.push({ tmp, file, remote: f.remote });
        try {
          await mkdir(dirname(file), { recursive: true, mode: 0o700 });
          const from = await openRegular(f.local);
          try {
            const fh = await open(tmp, 'wx', 0o600);
            try {
              await copyHandle(from, fh);
              await fh.sync();
            } finally {
              await fh.close();
            }
          } finally {
            await from.close();
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
        await this.noLinks(f.remote);
        const from = await this.openRemote(f.remote);
        try {
          const to = await open(f.local, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600);
          try {
            await copyHandle(from, to);
          } finally {
            await to.close();
          }
        } finally {
          await from.close();
        }
      } catch (err) {
        throw this.fail(err, f.remote);
      }
    }
  }

  async remove(path: string): Promise<void> {
    try {
      await this.noLinks(dirname(path));
      await rm(this.abs(path), { force: true });
    } catch (err) {
      throw this.fail(err, path);
    }
  }

  async removeDir(dir: string): Promise<void> {
    try {
      await this.noLinks(dir);
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
      await mkdir(this.root, { recursive: true, mode: 0o700 });
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
      await this.noLinks(dirname(path));
      await mkdir(dirname(file), { recursive: true, mode: 0o700 });
      await write(tmp);
      await rename(tmp, file);
      await fsyncDir(dirname(file));
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw this.fail(err, path);
    }
  }

  /** Refuses a target path any of whose names (below the root) is a symbolic link; names that do not exist end the check. */
  private async noLinks(path: string): Promise<void> {
    if (path === '.' || path === '') return;
    const parts = checkTargetPath(path).split('/');
    for (let i = 1; i <= parts.length; i++) {
      const s = await lstat(join(this.root, ...parts.slice(0, i))).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
        throw err;
      });
      if (!s) return;
      if (s.isSymbolicLink()) throw new TargetError('ERR_TARGET_IO', `${parts.slice(0, i).join('/')} in the backup ${this.description} is a symbolic link; refusing to follow it`);
    }
  }

  /** Opens a file on the target for reading: a regular file, never through a link. */
  private async openRemote(path: string): Promise<FileHandle> {
    const fh = await open(this.abs(path), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ELOOP') throw new TargetError('ERR_TARGET_IO', `${path} in the backup ${this.description} is a symbolic link; refusing to follow it`);
      throw err;
    });
    if (!(await fh.stat()).isFile()) {
      await fh.close();
      throw new TargetError('ERR_TARGET_IO', `${path} in the backup ${this.description} is not a regular file`);
    }
    return fh;
  }

  /** The local path of a target path; '' (the root) only where `root` allows it (listings). */
  private abs(path: string, root: 'root-allowed' | 'file' = 'file'): string {
    if (path === '' && root === 'root-allowed') return this.root;
    return join(this.root, ...checkTargetPath(path).split('/'));
  }

  private fail(err: unknown, path: string): Error {
    if (err instanceof TargetError || (err as { code?: string }).code === 'ERR_BACKUP_NOT_REGULAR') return err as Error;
    const code = (err as NodeJS.ErrnoException).code;
    const where = `${path} in the backup ${this.description}`;
    if (code === 'ENOSPC' || code === 'EDQUOT') return new TargetError('ERR_TARGET_FULL', `the backup target is full: no space left to write ${where}`, { cause: err });
    if (code === 'ENOENT') return new TargetError('ERR_TARGET_NOT_FOUND', `${where} does not exist`, { cause: err });
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return new TargetError('ERR_TARGET_IO', `no permission to write ${where} (${code})`, { cause: err });
    return new TargetError('ERR_TARGET_IO', `cannot access ${where}: ${(err as Error).message}`, { cause: err });
  }
}
