/**
 * Files that name the process holding something (the vault lock, a backup's
 * hold on deletions). A file whose process is gone counts as absent.
 *
 * A pid alone does not name a process for good: pids restart at boot, so
 * after a power cut the next service easily gets the pid that the lock
 * names, and any program may get it later. So a holder file records the pid
 * with the boot it ran in (`/proc/sys/kernel/random/boot_id`) and the
 * process's start time (clock ticks since boot, field 22 of
 * `/proc/<pid>/stat`), and names a live holder only while that very process
 * runs: same boot, same pid, same start time.
 *
 * Files of older versions hold just the pid. Such a file names a live
 * holder only when that pid runs, is not this process (which never writes
 * one), is a mydoc process (its command line says so), and started before
 * the file was written.
 */
import { readFileSync, statSync } from 'node:fs';

export interface Holder {
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

/** This process, as a holder file records it. */
export function thisProcess(): Holder {
  self ??= { pid: process.pid, boot: bootId() ?? 'unknown', start: processStart(process.pid) ?? -1 };
  return self;
}

/** The content of a holder file naming this process. */
export function holderText(): string {
  return `${JSON.stringify(thisProcess())}\n`;
}

function parseHolder(text: string): Holder | number | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? value : undefined;
    const h = value as Partial<Holder> | null;
    if (h && Number.isSafeInteger(h.pid) && h.pid! > 0 && typeof h.boot === 'string' && Number.isSafeInteger(h.start)) return h as Holder;
  } catch {
    // not JSON
  }
  return undefined;
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

/** The pid in `file` when that process holds it; undefined when the file is missing, unreadable or stale. */
export function livePid(file: string): number | undefined {
  const text = readOrUndefined(file);
  if (text === undefined) return undefined;
  const holder = parseHolder(text.trim());
  if (holder === undefined) return undefined;
  if (typeof holder !== 'number') return holderRuns(holder) ? holder.pid : undefined;
  let writtenMs: number;
  try {
    writtenMs = statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
  return legacyHolderRuns(holder, writtenMs) ? holder : undefined;
}
