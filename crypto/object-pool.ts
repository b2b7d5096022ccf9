/**
 * Sealing and opening of object chunk runs (1 MiB) off the main thread, on a
 * piscina pool of worker threads (crypto/object-worker.ts): the cipher of a
 * big file works on one core while the main thread does the TLS, the HTTP and
 * the disk on the other. Piscina (maintained) gives the queue, the transfer
 * lists and a crashed worker's task failing instead of hanging, which plain
 * worker_threads would need by hand here.
 *
 * One thread by default (MYDOC_CRYPTO_THREADS overrides, 0 = in the main
 * thread): with the main thread busy with TLS, one cipher thread fills a
 * 2-core machine, and each extra thread is another V8 heap (several MiB of
 * resident memory). The thread is started on the first big transfer and
 * stops after a minute without work; a waiting idle thread does not keep the
 * process alive.
 *
 * Security considerations:
 * - The key is passed as a KeyObject (postMessage clones it inside the
 *   process); plaintext and ciphertext buffers are moved, not copied, so no
 *   extra copy of plaintext lingers in the main thread.
 * - A failed tag comes back as ObjectAuthError with only the verified
 *   chunks' plaintext (object-worker.ts).
 */
import type { KeyObject } from 'node:crypto';
import { Piscina } from 'piscina';
import { ObjectAuthError } from './errors.js';
import type { ChunkOpener, ChunkSealer } from './object-format.js';

export interface RunTask {
  op: 'seal' | 'open';
  header: Uint8Array;
  key: KeyObject;
  first: number;
  /** Plaintext (seal) or sealed chunks (open); moved to the worker. */
  data: Uint8Array;
  lastFinal: boolean;
}

/** A moved buffer, or a failed open: the message and the verified chunks' plaintext. */
export type RunResult = Uint8Array | { failed: string; verified: Uint8Array };

const IDLE_MS = 60_000;

function threadCount(): number {
  const raw = process.env['MYDOC_CRYPTO_THREADS'];
  const n = raw === undefined || raw === '' ? 1 : Number(raw);
  return Number.isInteger(n) && n >= 0 && n <= 16 ? n : 1;
}

let pool: Piscina<RunTask, RunResult> | undefined;
const threads = threadCount();

function thePool(): Piscina<RunTask, RunResult> {
  pool ??= new Piscina<RunTask, RunResult>({
    filename: new URL('./object-worker.js', import.meta.url).href,
    minThreads: 0,
    maxThreads: threads,
    idleTimeout: IDLE_MS,
    // No queue limit (piscina's default): each transfer keeps only a few runs in flight (object-io.ts).
  });
  return pool;
}

/** Whether runs go to worker threads at all (MYDOC_CRYPTO_THREADS=0 keeps them in the calling thread). */
export const offThread = threads > 0;

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

// The header is copied into its own small buffer: cloning a view of Node's shared pool would clone the whole pool slab.

/** An own ArrayBuffer holding exactly `data` (a Buffer from the shared pool cannot be moved). */
function movable(data: Buffer): Buffer {
  if (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) return data;
  const own = Buffer.allocUnsafeSlow(data.length);
  data.copy(own);
  return own;
}

/** Seals a run (ChunkSealer.sealRun) on a worker; `plain` is moved there and zeroed after sealing. */
export async function sealRunOffThread(sealer: ChunkSealer, first: number, plain: Buffer, lastFinal: boolean): Promise<Buffer> {
  if (!offThread) return sealer.sealRun(first, plain, lastFinal);
  const data = movable(plain);
  const out = await thePool().run({ op: 'seal', header: new Uint8Array(sealer.header), key: sealer.key, first, data, lastFinal }, { transferList: [data.buffer as ArrayBuffer] });
  return asBuffer(out as Uint8Array);
}

/** Opens a run (ChunkOpener.openRun) on a worker; `sealed` is moved there. */
export async function openRunOffThread(opener: ChunkOpener, first: number, sealed: Buffer, lastFinal: boolean): Promise<{ plain: Buffer; error?: ObjectAuthError }> {
  if (!offThread) return opener.openRun(first, sealed, lastFinal);
  const data = movable(sealed);
  const out = await thePool().run({ op: 'open', header: new Uint8Array(opener.header), key: opener.key, first, data, lastFinal }, { transferList: [data.buffer as ArrayBuffer] });
  if (out instanceof Uint8Array) return { plain: asBuffer(out) };
  return { plain: asBuffer(out.verified), error: new ObjectAuthError(out.failed) };
}
