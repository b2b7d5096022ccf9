/**
 * Sealing of object chunk runs (1 MiB) off the main thread, on a piscina
 * pool of worker threads (crypto/object-worker.ts): while a big file is
 * written, its cipher works on one core and the main thread does the TLS,
 * the HTTP and the disk on the other. Piscina (maintained) gives the queue,
 * the transfer lists and a crashed worker's task failing instead of hanging,
 * which plain worker_threads would need by hand here. Reads open their runs
 * in the calling thread (object-io.ts says why).
 *
 * One thread by default (MYDOC_CRYPTO_THREADS overrides, 0 = in the calling
 * thread): with the main thread busy with TLS, one cipher thread fills a
 * 2-core machine, and each extra thread is another V8 heap (several MiB of
 * resident memory). The thread starts on the first big write and stops
 * after a minute without work; an idle thread does not keep the process
 * alive.
 *
 * Memory: a seal is lent two run buffers (the plaintext and the one it seals
 * into), moved there and back, and the caller returns them here once written
 * (recycle): a steady write allocates no new run buffers, and memory is
 * allocated and freed on the main thread only.
 *
 * Security considerations:
 * - The key is passed as a KeyObject (postMessage clones it inside the
 *   process); buffers are moved, not copied.
 * - A lent plaintext buffer comes back zeroed; recycled buffers hold only
 *   ciphertext or zeros.
 */
import type { KeyObject } from 'node:crypto';
import { Piscina } from 'piscina';
import { SEALED_RUN_SIZE, type ChunkSealer } from './object-format.js';

export interface SealTask {
  header: Uint8Array;
  key: KeyObject;
  first: number;
  lastFinal: boolean;
  /** The plaintext run; lent, comes back zeroed. */
  plain: Uint8Array;
  /** A run buffer to seal into (SEALED_RUN_SIZE bytes); lent, comes back sealed. */
  into: Uint8Array;
}

export interface SealResult {
  /** Bytes of `sealed` that hold the sealed run. */
  length: number;
  sealed: Uint8Array;
  plain: Uint8Array;
}

const IDLE_MS = 60_000;
/** Run buffers kept for reuse (each SEALED_RUN_SIZE bytes); a few transfers' worth. */
const MAX_SPARE = 16;

function threadCount(): number {
  const raw = process.env['MYDOC_CRYPTO_THREADS'];
  const n = raw === undefined || raw === '' ? 1 : Number(raw);
  return Number.isInteger(n) && n >= 0 && n <= 16 ? n : 1;
}

const threads = threadCount();
let pool: Piscina<SealTask, SealResult> | undefined;

function thePool(): Piscina<SealTask, SealResult> {
  if (pool) return pool;
  pool = new Piscina<SealTask, SealResult>({
    filename: new URL('./object-worker.js', import.meta.url).href,
    minThreads: 0,
    maxThreads: threads,
    idleTimeout: IDLE_MS,
    // No queue limit (piscina's default): each transfer keeps only a few runs in flight (object-io.ts).
  });
  // A worker that dies fails the task it was running (its caller sees the error); piscina replaces it.
  pool.on('error', () => undefined);
  return pool;
}

/** Whether runs go to worker threads at all (MYDOC_CRYPTO_THREADS=0 keeps them in the calling thread). */
export const offThread = threads > 0;

const spare: ArrayBuffer[] = [];
/** Buffers this module lent out and that may come back through recycle(). */
const lent = new WeakSet<ArrayBufferLike>();

/** A run buffer (SEALED_RUN_SIZE bytes), reused when one is spare. Give it back with recycle() once it is no longer used. */
export function runBuffer(): Buffer {
  const ab = spare.pop() ?? new ArrayBuffer(SEALED_RUN_SIZE);
  lent.add(ab);
  return Buffer.from(ab);
}

/** Takes back run buffers (from runBuffer or a sealed run) the caller is done with; ignores any other buffer. */
export function recycle(buffers: readonly Buffer[]): void {
  for (const b of buffers) {
    if (!lent.has(b.buffer)) continue;
    lent.delete(b.buffer);
    if (spare.length < MAX_SPARE) spare.push(b.buffer as ArrayBuffer);
  }
}

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/**
 * Seals a run on a worker: `plain` (a runBuffer, up to RUN_SIZE bytes used)
 * goes there and comes back zeroed into the spare buffers; resolves to the
 * sealed run, in a run buffer to recycle() once written.
 */
export async function sealRunOffThread(sealer: ChunkSealer, first: number, plain: Buffer, lastFinal: boolean): Promise<Buffer> {
  if (!offThread) {
    const sealed = sealer.sealRun(first, plain, lastFinal, runBuffer());
    plain.fill(0);
    recycle([plain]);
    return sealed;
  }
  const into = runBuffer();
  lent.delete(into.buffer);
  lent.delete(plain.buffer);
  const out = await thePool().run(
    // The header is copied to a buffer of its own: a view of Node's shared pool would clone the whole slab.
    { header: new Uint8Array(sealer.header), key: sealer.key, first, lastFinal, plain, into },
    { transferList: [plain.buffer as ArrayBuffer, into.buffer as ArrayBuffer] },
  );
  const back = asBuffer(out.plain);
  lent.add(back.buffer);
  recycle([back]);
  const sealed = asBuffer(out.sealed).subarray(0, out.length);
  lent.add(sealed.buffer);
  return sealed;
}
