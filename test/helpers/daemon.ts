/**
 * Test helper: a server program (slapd, samba, mydoc serve) run as a detached child — its
 * own session and process group — whose output is kept for error messages,
 * and which is stopped by its pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const OUTPUT_CAP = 256 * 1024;

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Daemon {
  child: ChildProcess;
  /** Resolves when the process has exited (code and signal null when it could not be started). */
  exited: Promise<ExitStatus>;
  /** The last 256 KiB of what it wrote to stdout and stderr. */
  output: () => string;
}

export interface LaunchOptions {
  /** Name used in errors, e.g. "slapd". */
  name: string;
  command: string;
  args: string[];
  /** Its environment (default this process's). */
  env?: NodeJS.ProcessEnv;
  /** Polled every 20 ms until true. */
  ready: () => Promise<boolean>;
  readyTimeoutMs: number;
  /** Where it should answer, for the timeout error (e.g. the URL). */
  where: string;
  /** Stop grace used when it fails to become ready. */
  graceMs: number;
}

/** Starts the program detached and resolves once `ready()` answers; fails with its output otherwise. */
export async function launchDaemon(opts: LaunchOptions): Promise<Daemon> {
  const child = spawn(opts.command, opts.args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
  let output = '';
  const append = (d: string) => {
    output += d;
    if (output.length > OUTPUT_CAP) output = output.slice(-OUTPUT_CAP);
  };
  child.stdout!.setEncoding('utf8').on('data', append);
  child.stderr!.setEncoding('utf8').on('data', append);
  // If the test process ends without stopping it, do not leave it behind (nor what it started).
  const killOnExit = () => signal(-child.pid!, 'SIGKILL');
  if (child.pid !== undefined) process.once('exit', killOnExit);
  // An object, so TypeScript does not narrow it to null (it is set in callbacks).
  const state: { exit: ExitStatus | null } = { exit: null };
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, sig) => resolve({ code, signal: sig }));
    child.once('error', (error) => {
      append(`\n[spawn error: ${error.message}]\n`);
      resolve({ code: null, signal: null });
    });
  }).then((status) => {
    process.removeListener('exit', killOnExit);
    state.exit = status;
    return status;
  });
  const daemon: Daemon = { child, exited, output: () => output };
  const deadline = Date.now() + opts.readyTimeoutMs;
  while (!(await opts.ready())) {
    if (state.exit !== null) throw new Error(`${opts.name} exited before it was ready (${state.exit.signal ?? `exit ${state.exit.code}`}):\n${output}`);
    if (Date.now() > deadline) {
      await stopDaemon(daemon, opts.graceMs);
      throw new Error(`${opts.name} did not answer on ${opts.where} within ${opts.readyTimeoutMs / 1000} s:\n${output}`);
    }
    await sleep(20);
  }
  return daemon;
}

/** SIGTERM to the pid, up to `graceMs` to exit, then SIGKILL to its whole process group; resolves once it exited. */
export async function stopDaemon(daemon: Daemon, graceMs: number): Promise<void> {
  const pid = daemon.child.pid!;
  signal(pid, 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const done = await Promise.race([daemon.exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), graceMs)))]);
  clearTimeout(timer);
  signal(-pid, 'SIGKILL'); // children it left behind, too
  if (!done) await daemon.exited;
}

function signal(target: number, s: NodeJS.Signals): void {
  try {
    process.kill(target, s);
  } catch {
    // already gone
  }
}

/**
 * Sends SIGSTOP and resolves once every thread of the process is stopped (state T in
 * /proc/<pid>/task/<tid>/stat). kill() returns before the threads stop: a request sent
 * at once can still be answered by a thread that had not stopped yet.
 */
export async function pauseProcess(pid: number, timeoutMs = 5_000): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  const started = Date.now();
  while (!allThreadsStopped(pid)) {
    if (Date.now() - started > timeoutMs) throw new Error(`process ${pid} did not stop within ${timeoutMs} ms of SIGSTOP`);
    await sleep(1);
  }
}

function allThreadsStopped(pid: number): boolean {
  const tasks = readdirSync(`/proc/${pid}/task`);
  return tasks.every((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    // The state follows the command name, which is in parentheses and may itself contain ") ".
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'T' || state === 't';
  });
}
