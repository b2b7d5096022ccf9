/**
 * Files that name the process holding something (the vault lock, a backup's
 * hold on deletions). A file whose process is gone counts as absent.
 *
 * A pid alone does not name a process for good: pids restart at boot, so
 * after a power cut the next service easily gets the pid that the lock
 * names, and any program may get it later. So a holder is named by a tag
 * `<pid>.<start>.<boot>`: the pid, the process's start time (clock ticks
 * since boot, field 22 of `/proc/<pid>/stat`) and the boot it ran in
 * (`/proc/sys/kernel/random/boot_id`). A tag names a live holder only while
 * that very process runs: same boot, same pid, same start time.
 *
 * A lock file is a symbolic link whose target is the tag: created
 * exclusively like a file, and kept in the inode itself (a target under 60
 * bytes on ext4), so taking a lock needs no free block on a full disk. A
 * hold file is empty, with the tag in its name.
 *
 * Lock files of older versions are regular files holding just the pid. Such
 * a file names a live holder only when that pid runs, is not this process
 * (which never writes one), is a mydoc process (its command line says so),
 * and started before the file was written.
 */
import { readFileSync, readlinkSync, statSync } from 'node:fs';
import { symlink } from 'node:fs/promises';

interface Holder {
  pid: number;
  boot: string;
  /** Start time of the process, in clock ticks since boot. */
  start: number;
}

/** Linux's USER_HZ, the unit of /proc/<pid>/stat's start time, on every architecture Node runs on. */
const TICKS_PER_SECOND = 100;

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOrUndefined(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

const bootId = (): string | undefined => readOrUndefined('/proc/sys/kernel/random/boot_id')?.trim();

/** Start time of `pid` in clock ticks since boot; undefined when it does not run (or /proc cannot tell). */
export function processStart(pid: number): number | undefined {
  const stat = readOrUndefined(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const start = Number(fields[19]);
  return Number.isSafeInteger(start) ? start : undefined;
}

let self: Holder | undefined;

/** This process, as its tag names it. */
export function thisProcess(): Holder {
  self ??= { pid: process.pid, boot: bootId() ?? 'unknown', start: processStart(process.pid) ?? -1 };
  return self;
}

/** This process as a tag for a file name: `<pid>.<start>.<boot>`. */
export function holderTag(): string {
  const me = thisProcess();
  return `${me.pid}.${me.start}.${me.boot}`;
}

/** Whether the process a tag of `holderTag()` names runs; any other text names none. */
export function tagRuns(tag: string): boolean {
  const m = /^(\d+)\.(-?\d+)\.([0-9a-f-]+|unknown)$/.exec(tag);
  return m !== null && holderRuns({ pid: Number(m[1]), start: Number(m[2]), boot: m[3]! });
}

/** Whether the process `h` names is running now (this one included). */
function holderRuns(h: Holder): boolean {
  const me = thisProcess();
  if (h.pid === me.pid) return h.boot === me.boot && h.start === me.start;
  const boot = bootId();
  if (boot === undefined) return isProcessAlive(h.pid); // no /proc: the pid is all there is
  return h.boot === boot && processStart(h.pid) === h.start;
}

/** Whether `pid`, named by a file of an older version written at `writtenMs`, is its writer. */
function legacyHolderRuns(pid: number, writtenMs: number): boolean {
  if (pid === process.pid || !isProcessAlive(pid)) return false;
  const cmdline = readOrUndefined(`/proc/${pid}/cmdline`);
  if (cmdline !== undefined && !cmdline.includes('mydoc')) return false;
  const start = processStart(pid);
  const btime = /^btime (\d+)$/m.exec(readOrUndefined('/proc/stat') ?? '');
  if (start === undefined || !btime) return true; // no /proc: the pid is all there is
  // btime is whole seconds, so this start time is early by up to a second:
  // a process that really started before the write always passes.
  return Number(btime[1]) * 1000 + (start * 1000) / TICKS_PER_SECOND < writtenMs;
}

/** Takes `file` as a lock naming this process; false when it exists already. */
export async function takeLock(file: string): Promise<boolean> {
  try {
    await symlink(holderTag(), file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/** The pid holding the lock `file` while that process runs; undefined when the file is missing, unreadable or stale. */
export function livePid(file: string): number | undefined {
  let tag: string;
  try {
    tag = readlinkSync(file);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EINVAL' ? legacyLockPid(file) : undefined;
  }
  return tagRuns(tag) ? Number.parseInt(tag, 10) : undefined;
}

/** The pid of an older version's lock file (a regular file holding the pid) while it holds. */
function legacyLockPid(file: string): number | undefined {
  let text: string;
  let writtenMs: number;
  try {
    text = readFileSync(file, 'utf8').trim();
    writtenMs = statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
  const pid = /^\d+$/.test(text) ? Number(text) : 0;
  return Number.isSafeInteger(pid) && pid > 0 && legacyHolderRuns(pid, writtenMs) ? pid : undefined;
}
