/**
 * The crypto worker (a piscina worker thread, started by crypto/object-pool.ts):
 * seals one run of object chunks (crypto/object-format.ts, up to 1 MiB) into
 * a buffer it is lent, so that the main thread keeps the TLS, the HTTP and
 * the disk of a write while the cipher runs on the other core. Buffers are
 * allocated by the main thread and come back to it (memory freed across
 * threads would stay with this thread's malloc arena).
 *
 * Security considerations:
 * - The worker is a thread of the same process: the payload key (a KeyObject,
 *   cloned by postMessage) and the bytes never leave the process; it keeps
 *   nothing between tasks.
 * - The plaintext a task was lent is zeroed before it goes back.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { ChunkSealer } from './object-format.js';
import type { SealResult, SealTask } from './object-pool.js';

/**
 * A young-generation collection every few runs. The cipher makes a new
 * 64 KiB buffer per chunk; V8 frees dead buffers only when its heap asks
 * for a collection (after about 64 MiB of them), and this thread allocates
 * almost nothing else, so without it the worker's garbage alone would add
 * tens of MiB to the resident memory (measured: a 1 GiB write, 109 -> 84 MiB).
 * `--expose-gc` only gives `gc` to contexts made after it (here the one vm
 * context); a minor collection of this small heap takes well under a
 * millisecond.
 */
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as (opts: { type: 'minor' }) => void;
const RUNS_PER_COLLECTION = 4;
let runs = 0;

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

export default function seal(task: SealTask): SealResult {
  if (++runs % RUNS_PER_COLLECTION === 0) collect({ type: 'minor' });
  const plain = asBuffer(task.plain);
  const sealed = new ChunkSealer(asBuffer(task.header), task.key).sealRun(task.first, plain, task.lastFinal, asBuffer(task.into));
  plain.fill(0);
  const result: SealResult = { length: sealed.length, sealed: task.into, plain: task.plain };
  // Both buffers move back to the main thread (not copied).
  return move({ [transferableSymbol]: [task.into.buffer, task.plain.buffer], [valueSymbol]: result } as never) as unknown as SealResult;
}
