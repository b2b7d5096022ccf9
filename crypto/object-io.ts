/**
 * Node stream and file-handle access to encrypted objects: streaming
 * encryption and decryption, and range reads that touch only the chunks a
 * range needs. Large reads and writes are batched (about 1 MiB per system
 * call) so that the thread pool round trips do not dominate.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { FileHandle } from 'node:fs/promises';
import {
  CHUNK_SIZE,
  HEADER_SIZE,
  SEALED_CHUNK_SIZE,
  TAG_SIZE,
  ObjectDecryptor,
  ObjectEncryptor,
  chunkCount,
  openHeader,
  plaintextSize,
  type ChunkOpener,
  type DataKey,
  type ObjectRandomness,
} from './object-format.js';
import { ObjectFormatError } from './errors.js';

/** Chunks read per system call by ObjectReader (16 x 64 KiB = 1 MiB). */
const READ_BATCH_CHUNKS = 16;

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
    const readBatch = (batch: number): Promise<Buffer> => {
      const pending = this.readSealed(batch, Math.min(READ_BATCH_CHUNKS, last - batch + 1));
      pending.catch(() => undefined); // awaited below; never left unhandled
      return pending;
    };
    // One read stays ahead of decryption, so the disk and the cipher overlap.
    let next = readBatch(first);
    for (let batch = first; batch <= last; batch += READ_BATCH_CHUNKS) {
      const count = Math.min(READ_BATCH_CHUNKS, last - batch + 1);
      const sealed = await next;
      if (batch + READ_BATCH_CHUNKS <= last) next = readBatch(batch + READ_BATCH_CHUNKS);
      for (let i = 0; i < count; i++) {
        const index = batch + i;
        const piece = sealed.subarray(i * SEALED_CHUNK_SIZE, Math.min((i + 1) * SEALED_CHUNK_SIZE, sealed.length));
        const plain = this.opener.open(index, piece, index === total - 1);
        const chunkStart = index * CHUNK_SIZE;
        const from = Math.max(start - chunkStart, 0);
        const to = Math.min(end - chunkStart, plain.length);
        yield from === 0 && to === plain.length ? plain : plain.subarray(from, to);
      }
    }
  }

  private async readSealed(firstChunk: number, count: number): Promise<Buffer> {
    const offset = HEADER_SIZE + firstChunk * SEALED_CHUNK_SIZE;
    const lastChunk = firstChunk + count - 1;
    const totalChunks = chunkCount(this.size);
    const lastLength = lastChunk === totalChunks - 1 ? this.size - lastChunk * CHUNK_SIZE + TAG_SIZE : SEALED_CHUNK_SIZE;
    const length = (count - 1) * SEALED_CHUNK_SIZE + lastLength;
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await this.fh.read(buf, got, length - got, offset + got);
      if (bytesRead === 0) throw new ObjectFormatError('object ended early while reading (was it truncated meanwhile?)');
      got += bytesRead;
    }
    return buf;
  }
}
