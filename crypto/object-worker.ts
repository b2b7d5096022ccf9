/**
 * The crypto worker (a piscina worker thread, started by crypto/object-pool.ts):
 * seals one run of object chunks (crypto/object-format.ts, up to 1 MiB) into
 * a buffer it is lent, or reads one sealed run from the object's file and
 * opens it into a buffer it is lent (buffers are allocated by the main
 * thread, which frees them: memory freed across threads would stay with
 * this thread's malloc arena), so that the main thread keeps the TLS and the HTTP while the
 * cipher runs on the other core.
 *
 * Security considerations:
 * - The worker is a thread of the same process: the payload key (a KeyObject,
 *   cloned by postMessage) and the bytes never leave the process; it keeps
 *   nothing between tasks but its read buffer (ciphertext only).
 * - The plaintext a seal task was lent is zeroed before it goes back.
 * - An open task returns only plaintext whose tags verified: on a failed tag,
 *   the chunks before it and the error's message, nothing after.
 * - A read uses the caller's file descriptor only while the caller waits
 *   for the task (object-io.ts never closes the handle with a task pending).
 */
import { readSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { ChunkOpener, ChunkSealer, SEALED_RUN_SIZE } from './object-format.js';
import type { OpenTask, RunResult, SealTask } from './object-pool.js';

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/**
 * A young-generation collection every few runs. The cipher makes a new
 * 64 KiB buffer per chunk; V8 frees dead buffers only when its heap asks
 * for a collection (after about 64 MiB of them), and this thread allocates
 * almost nothing else, so without it the worker's garbage alone would add
 * tens of MiB to the resident memory. `--expose-gc` only gives `gc` to
 * contexts made after it (here the one vm context); a minor collection of
 * this small heap takes well under a millisecond.
 */
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as (opts: { type: 'minor' | 'major' }) => void;
const RUNS_PER_COLLECTION = 4;
let runs = 0;

/** The sealed bytes of the current read (reused: one per worker). */
const readBuffer = Buffer.allocUnsafeSlow(SEALED_RUN_SIZE);

/** `value` with `buffers` moved (not copied) to the main thread. */
function moveAll(value: RunResult, buffers: Uint8Array[]): RunResult {
  return move({ [transferableSymbol]: buffers.map((b) => b.buffer), [valueSymbol]: value } as never) as unknown as RunResult;
}

function seal(task: SealTask): RunResult {
  const plain = asBuffer(task.plain);
  const into = asBuffer(task.into);
  const sealed = new ChunkSealer(asBuffer(task.header), task.key).sealRun(task.first, plain, task.lastFinal, into);
  plain.fill(0);
  return moveAll({ kind: 'sealed', length: sealed.length, sealed: task.into, plain: task.plain }, [task.into, task.plain]);
}

function open(task: OpenTask): RunResult {
  const sealed = readBuffer.subarray(0, task.length);
  const into = asBuffer(task.into);
  for (let got = 0; got < task.length; ) {
    const n = readSync(task.fd, sealed, got, task.length - got, task.position + got);
    if (n === 0) return { kind: 'short' };
    got += n;
  }
  const { plain, error } = new ChunkOpener(asBuffer(task.header), task.key).openRun(task.first, sealed, task.lastFinal, into);
  const result: RunResult = error ? { kind: 'failed', message: error.message, plain } : { kind: 'opened', plain };
  return moveAll(result, [task.into]);
}

export default function runTask(task: SealTask | OpenTask): RunResult {
  if (++runs % RUNS_PER_COLLECTION === 0) collect({ type: 'minor' });
  return task.op === 'seal' ? seal(task) : open(task);
}
