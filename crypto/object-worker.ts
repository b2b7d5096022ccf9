/**
 * The crypto worker (a piscina worker thread, started by crypto/object-pool.ts):
 * seals or opens one run of object chunks (crypto/object-format.ts, up to
 * 1 MiB) so that the main thread keeps the TLS, the HTTP and the disk I/O
 * while the cipher runs on the other core.
 *
 * Security considerations:
 * - The worker is a thread of the same process: the payload key (a KeyObject,
 *   cloned by postMessage) and the bytes never leave the process; it keeps
 *   nothing between tasks.
 * - The plaintext a seal task was given is zeroed once sealed.
 * - An open task returns only plaintext whose tags verified: on a failed tag,
 *   the chunks before it and the error's message, nothing after.
 */
import { move } from 'piscina';
import { ChunkOpener, ChunkSealer } from './object-format.js';
import type { RunResult, RunTask } from './object-pool.js';

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

export default function runTask(task: RunTask): RunResult {
  const header = asBuffer(task.header);
  const data = asBuffer(task.data);
  if (task.op === 'seal') {
    const sealed = new ChunkSealer(header, task.key).sealRun(task.first, data, task.lastFinal);
    data.fill(0);
    return move(sealed) as unknown as RunResult;
  }
  const { plain, error } = new ChunkOpener(header, task.key).openRun(task.first, data, task.lastFinal);
  if (error) return { failed: error.message, verified: plain };
  return move(plain) as unknown as RunResult;
}
