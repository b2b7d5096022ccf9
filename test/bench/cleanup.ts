/**
 * Clean-up for the WebDAV benchmarks: child processes (Apache, `mydoc serve`)
 * and temporary folders are registered here and released in reverse
 * order by `cleanupAll()`, which the benchmarks call in a `finally`. If the
 * process is interrupted (SIGINT, SIGTERM) or exits without it, the exit
 * hook still signals the registered processes by pid (SIGTERM) and removes
 * the folders.
 */
import { rmSync } from 'node:fs';

interface Resource {
  /** Async release (normal path). */
  release: () => Promise<void>;
  /** Last-resort synchronous release (process exit). */
  releaseSync: () => void;
  done: boolean;
}

const resources: Resource[] = [];
let hooked = false;

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', () => {
    for (const r of [...resources].reverse()) {
      if (r.done) continue;
      r.done = true;
      try {
        r.releaseSync();
      } catch {
        // best effort at exit
      }
    }
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`[bench] ${signal}: cleaning up\n`);
      void cleanupAll().finally(() => process.exit(130));
    });
  }
}

/** Registers a resource; returns a function releasing it now (idempotent). */
export function register(release: () => Promise<void>, releaseSync: () => void): () => Promise<void> {
  hook();
  const r: Resource = { release, releaseSync, done: false };
  resources.push(r);
  return async () => {
    if (r.done) return;
    r.done = true;
    await r.release();
  };
}

/** Registers a temporary folder, removed at clean-up. */
export function registerDir(dir: string): () => Promise<void> {
  const remove = () => rmSync(dir, { recursive: true, force: true });
  return register(async () => remove(), remove);
}

/** Registers a child process, killed by pid at clean-up (SIGTERM, then SIGKILL after `graceMs`). */
export function registerProcess(pid: number, exited: Promise<unknown>, graceMs = 5_000): () => Promise<void> {
  const alive = { value: true };
  void exited.then(() => (alive.value = false));
  const kill = (signal: NodeJS.Signals) => {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  };
  return register(
    async () => {
      if (!alive.value) return;
      kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const done = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), graceMs)))]);
      clearTimeout(timer);
      if (!done) {
        kill('SIGKILL');
        await exited;
      }
    },
    () => {
      // At exit there is no waiting: SIGTERM lets Apache take its workers down with it.
      if (alive.value) kill('SIGTERM');
    },
  );
}

/** Releases everything still registered, newest first; never throws (errors go to stderr). */
export async function cleanupAll(): Promise<void> {
  for (const r of [...resources].reverse()) {
    if (r.done) continue;
    r.done = true;
    try {
      await r.release();
    } catch (err) {
      process.stderr.write(`[bench] clean-up failed: ${(err as Error).message}\n`);
    }
  }
  resources.length = 0;
}
