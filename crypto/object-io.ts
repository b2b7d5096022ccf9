/**
 * Node stream and file-handle access to encrypted objects: streaming
 * encryption and decryption, and range reads that touch only the chunks a
 * range needs. Large reads and writes are batched (about 1 MiB per system
 * call) so that the thread pool round trips do not dominate.
 *
 * Range reads open runs of up to 1 MiB (object-format.ts RUN_CHUNKS) into
 * one plaintext piece each, a few runs ahead of the consumer
 * (READ_AHEAD_RUNS), reusing their sealed read buffers: a GET holds a few
 * MiB whatever the file's size, and hands the response 1 MiB pieces rather
 * than 64 KiB ones. The runs are opened in the calling thread: measured, a
 * crypto worker thread (piscina) cost more CPU in all (moving buffers, its
 * collections, wake-ups) and gained no time on a 2-core machine.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { FileHandle } from 'node:fs/promises';
import {
  CHUNK_SIZE,
  HEADER_SIZE,
  SEALED_CHUNK_SIZE,
  TAG_SIZE,
  RUN_CHUNKS,
  ObjectDecryptor,
  ObjectEncryptor,
  chunkCount,
  openHeader,
  plaintextSize,
  type ChunkOpener,
  type DataKey,
  type ObjectRandomness,
} from './object-format.js';
import { ObjectFormatError, type ObjectAuthError } from './errors.js';

/** Runs (1 MiB each) a read keeps in flight ahead of its consumer: each read from disk, then opened. */
const READ_AHEAD_RUNS = 3;

/** A Transform from plaintext to a sealed object. */
export function createEncryptStream(dek: DataKey, random?: ObjectRandomness): Transform & { readonly fileId: Buffer } {
  const encryptor = new ObjectEncryptor(dek, random);
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      for (const piece of encryptor.update(chunk)) this.push(piece);
      done();
    },
    flush(done: TransformCallback) {
      for (const piece of encryptor.final()) this.push(piece);
      done();
    },
  });
  return Object.assign(stream, { fileId: encryptor.fileId });
}

/** A Transform from a sealed object to its plaintext; fails with ObjectAuthError/ObjectFormatError. */
export function createDecryptStream(dek: DataKey): Transform {
  const decryptor = new ObjectDecryptor(dek);
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      try {
        for (const piece of decryptor.update(chunk)) this.push(piece);
        done();
      } catch (err) {
        done(err as Error);
      }
    },
    flush(done: TransformCallback) {
      try {
        for (const piece of decryptor.final()) this.push(piece);
        done();
      } catch (err) {
        done(err as Error);
      }
    },
  });
}

/** Random access to one object file. The caller owns and closes the handle. */
export class ObjectReader {
  private constructor(
    private readonly fh: FileHandle,
    private readonly opener: ChunkOpener,
    /** Plaintext size, computed from the object's size alone. */
    readonly size: number,
    /** The random file id in the object's (authenticated) header. */
    readonly fileId: Buffer,
  ) {}

  static async open(fh: FileHandle, dek: DataKey): Promise<ObjectReader> {
    const { size } = await fh.stat();
    const plain = plaintextSize(size);
    const header = Buffer.alloc(HEADER_SIZE);
    const { bytesRead } = await fh.read(header, 0, HEADER_SIZE, 0);
    if (bytesRead !== HEADER_SIZE) throw new ObjectFormatError('object header is truncated');
    const opener = openHeader(header, dek);
    return new ObjectReader(fh, opener, plain, opener.fileId);
  }

  /** Yields the plaintext bytes [start, end) (end clamped to the size), decrypting only the chunks they touch. */
  async *read(start = 0, end = this.size): AsyncGenerator<Buffer> {
    end = Math.min(end, this.size);
    if (start < 0 || start > end) throw new RangeError(`invalid range ${start}-${end} of ${this.size}`);
    const total = chunkCount(this.size);
    if (start === end) {
      if (this.size === 0) this.opener.open(0, await this.readSealed(0, 1), true); // authenticate the empty object
      return;
    }
    const first = Math.floor(start / CHUNK_SIZE);
    const last = Math.floor((end - 1) / CHUNK_SIZE);
    const spare: Buffer[] = [];
    const openRun = (run: number): Promise<{ plain: Buffer; error?: ObjectAuthError }> => {
      const count = Math.min(RUN_CHUNKS, last - run + 1);
      const lastFinal = run + count === total;
      const pending = this.readSealed(run, count, spare.pop()).then((sealed) => {
        try {
          return this.opener.openRun(run, sealed, lastFinal);
        } finally {
          spare.push(sealed); // opened: the buffer serves a later read of this range
        }
      });
      pending.catch(() => undefined); // awaited below; never left unhandled
      return pending;
    };
    const ahead: Promise<{ plain: Buffer; error?: ObjectAuthError }>[] = [];
    let next = first;
    const fill = (): void => {
      for (; ahead.length < READ_AHEAD_RUNS && next <= last; next += RUN_CHUNKS) ahead.push(openRun(next));
    };
    fill();
    try {
      for (let run = first; ahead.length > 0; run += RUN_CHUNKS) {
        const { plain, error } = await ahead.shift()!;
        fill();
        const runStart = run * CHUNK_SIZE;
        const from = Math.max(start - runStart, 0);
        const to = Math.min(end - runStart, plain.length);
        if (from < to) yield from === 0 && to === plain.length ? plain : plain.subarray(from, to);
        if (error) throw error;
      }
    } finally {
      // Stopped early (failed, or the consumer went away): no read stays pending on the caller's handle.
      await Promise.allSettled(ahead);
    }
  }

  /** Where the sealed chunks [firstChunk, firstChunk + count) lie in the file. */
  private sealedSpan(firstChunk: number, count: number): { offset: number; length: number } {
    const offset = HEADER_SIZE + firstChunk * SEALED_CHUNK_SIZE;
    const lastChunk = firstChunk + count - 1;
    const totalChunks = chunkCount(this.size);
    const lastLength = lastChunk === totalChunks - 1 ? this.size - lastChunk * CHUNK_SIZE + TAG_SIZE : SEALED_CHUNK_SIZE;
    return { offset, length: (count - 1) * SEALED_CHUNK_SIZE + lastLength };
  }

  /**
   * Reads sealed chunks into a buffer of its own (never Node's shared pool),
   * or into `reuse` (a buffer this returned before) when that is large enough.
   */
  private async readSealed(firstChunk: number, count: number, reuse?: Buffer): Promise<Buffer> {
    const { offset, length } = this.sealedSpan(firstChunk, count);
    const buf = reuse && reuse.buffer.byteLength >= length ? Buffer.from(reuse.buffer, 0, length) : Buffer.allocUnsafeSlow(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await this.fh.read(buf, got, length - got, offset + got);
      if (bytesRead === 0) throw new ObjectFormatError('object ended early while reading (was it truncated meanwhile?)');
      got += bytesRead;
    }
    return buf;
  }
}
