/**
 * The contract every backup target keeps (a mounted folder, an SMB share).
 *
 * Paths are relative to the target's root, with `/` separators and no `..`;
 * they name only ids and hashes, never user data. A target never sees a key
 * or a plaintext byte: the backup hands it files that are encrypted already.
 *
 * Contract (tested against every target by one shared suite):
 * - `upload` and `writeFile` are atomic: the file appears under its name
 *   complete or not at all (temporary name, then rename). Parent folders are
 *   created as needed. An existing file of that name is replaced.
 * - `list` returns every file under a folder, recursively, with its size;
 *   temporary files of an interrupted upload are not listed. A missing
 *   folder lists as empty.
 * - `readFile`/`download` of a missing file fail with ERR_TARGET_NOT_FOUND.
 * - `remove` of a missing file succeeds; `removeDir` removes a folder tree.
 * - `cleanTemporaries` removes what interrupted uploads left (temporary
 *   files) under a folder; the backup calls it while it holds the lock.
 * - `now` is the target's own clock (the modification time it gives a file
 *   written now), so lock ages are judged by one clock.
 * - Errors are TargetErrors whose message names the target (never a
 *   password) and says what went wrong in a sentence.
 */
export type TargetErrorCode =
  | 'ERR_TARGET_AUTH'
  | 'ERR_TARGET_NO_SHARE'
  | 'ERR_TARGET_UNREACHABLE'
  | 'ERR_TARGET_FULL'
  | 'ERR_TARGET_NOT_FOUND'
  | 'ERR_TARGET_IO';

export class TargetError extends Error {
  constructor(
    readonly code: TargetErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'TargetError';
  }
}

export interface TargetFile {
  /** Relative to the folder that was listed. */
  path: string;
  size: number;
  /** Modification time in ms since the epoch, by the target's clock. */
  mtimeMs: number;
}

export interface Transfer {
  /** Local file. */
  local: string;
  /** Path on the target. */
  remote: string;
}

export interface BackupTarget {
  /** Where the target is, for messages (no credentials). */
  readonly description: string;
  /** Files under `dir` (recursive); [] when `dir` does not exist. */
  list(dir: string): Promise<TargetFile[]>;
  /** The file's size and time, or undefined when it does not exist. */
  stat(path: string): Promise<TargetFile | undefined>;
  readFile(path: string): Promise<Buffer>;
  writeFile(path: string, data: Buffer | string): Promise<void>;
  /** Copies local files to the target, in order; each one atomically. Stops at the first error. */
  upload(files: readonly Transfer[]): Promise<void>;
  /** Copies target files to local files, in order. Stops at the first error. */
  download(files: readonly Transfer[]): Promise<void>;
  remove(path: string): Promise<void>;
  removeDir(dir: string): Promise<void>;
  /** Removes temporary files of interrupted uploads under `dir`; returns how many. */
  cleanTemporaries(dir: string): Promise<number>;
  /** The target's clock, in ms since the epoch. */
  now(): Promise<number>;
}
