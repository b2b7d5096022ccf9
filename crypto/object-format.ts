/**
 * The encrypted object format, version 1 (specified in docs/format.md).
 *
 * Security considerations:
 * - Every chunk is AES-256-GCM with a 16-byte tag (`authTagLength: 16` on every
 *   cipher and decipher, so a short tag is never accepted).
 * - The nonce is a 88-bit big-endian chunk counter followed by a final-chunk
 *   flag byte (STREAM), and the whole header is every chunk's AAD: truncation,
 *   reordering, extension and chunks copied from another object all fail to
 *   authenticate.
 * - Plaintext of a chunk is released only after its tag verified.
 * - The payload key is HKDF-SHA-256(file key, file id); the file key is random
 *   per object and stored wrapped under a key derived from the user's DEK and
 *   the file id, so an object opens with the DEK alone.
 */
import { createCipheriv, createDecipheriv, createSecretKey, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { ObjectAuthError, ObjectFormatError, ObjectKeyError } from './errors.js';

export const MAGIC = Buffer.from('mydocobj', 'latin1');
export const FORMAT_VERSION = 1;
export const SUITE_AES256GCM_HKDF_SHA256 = 1;
export const CHUNK_SIZE = 64 * 1024;
export const TAG_SIZE = 16;
export const SEALED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE;
export const FILE_ID_SIZE = 16;
export const KEY_ID_SIZE = 16;
export const FILE_KEY_SIZE = 32;
export const WRAP_NONCE_SIZE = 12;

// Header layout (offsets in bytes).
const OFF_VERSION = 8;
const OFF_SUITE = 9;
const OFF_CHUNK_SIZE = 10;
const OFF_FILE_ID = 14;
const OFF_KEY_ID = OFF_FILE_ID + FILE_ID_SIZE; // 30
const OFF_WRAP_NONCE = OFF_KEY_ID + KEY_ID_SIZE; // 46
const OFF_WRAPPED_KEY = OFF_WRAP_NONCE + WRAP_NONCE_SIZE; // 58
const OFF_WRAP_TAG = OFF_WRAPPED_KEY + FILE_KEY_SIZE; // 90
export const HEADER_SIZE = OFF_WRAP_TAG + TAG_SIZE; // 106

const WRAP_INFO = Buffer.from('mydoc object v1 file-key wrap');
const PAYLOAD_INFO = Buffer.from('mydoc object v1 payload');

/** A user's data encryption key: its public identifier and the secret itself. */
export interface DataKey {
  readonly id: Buffer; // 16 bytes, written into every object header
  readonly key: KeyObject; // 32-byte AES key
}

/** The random values of one object. Only test vectors pass fixed ones. */
export interface ObjectRandomness {
  fileId: Buffer;
  fileKey: Buffer;
  wrapNonce: Buffer;
}

export function freshRandomness(): ObjectRandomness {
  return { fileId: randomBytes(FILE_ID_SIZE), fileKey: randomBytes(FILE_KEY_SIZE), wrapNonce: randomBytes(WRAP_NONCE_SIZE) };
}

function hkdfKey(ikm: KeyObject | Buffer, salt: Buffer, info: Buffer): KeyObject {
  const raw = Buffer.from(hkdfSync('sha256', ikm, salt, info, 32));
  const key = createSecretKey(raw);
  raw.fill(0);
  return key;
}

function wrapKey(dek: DataKey, fileId: Buffer): KeyObject {
  return hkdfKey(dek.key, fileId, WRAP_INFO);
}

function payloadKey(fileKey: Buffer, fileId: Buffer): KeyObject {
  return hkdfKey(fileKey, fileId, PAYLOAD_INFO);
}

function chunkNonce(index: number, final: boolean): Buffer {
  // 88-bit big-endian counter: the low 6 bytes carry the index (below 2^48
  // chunks, i.e. 16 EiB of plaintext), the top 5 bytes stay zero.
  const nonce = Buffer.alloc(12);
  nonce.writeUIntBE(index, 5, 6);
  nonce[11] = final ? 1 : 0;
  return nonce;
}

/** Plaintext size of an object, from its total size in bytes alone. */
export function plaintextSize(objectSize: number): number {
  const payload = objectSize - HEADER_SIZE;
  if (!Number.isSafeInteger(objectSize) || payload < TAG_SIZE) {
    throw new ObjectFormatError(`object is too short to be valid (${objectSize} bytes)`);
  }
  if (payload === TAG_SIZE) return 0;
  const chunks = Math.ceil(payload / SEALED_CHUNK_SIZE);
  const last = payload - (chunks - 1) * SEALED_CHUNK_SIZE;
  if (last <= TAG_SIZE) {
    throw new ObjectFormatError(`object size ${objectSize} is not a valid sealed length`);
  }
  return payload - chunks * TAG_SIZE;
}

/** Total object size for a plaintext of `size` bytes. */
export function objectSize(size: number): number {
  const chunks = size === 0 ? 1 : Math.ceil(size / CHUNK_SIZE);
  return HEADER_SIZE + size + chunks * TAG_SIZE;
}

/** Number of chunks of an object whose plaintext is `size` bytes (at least one). */
export function chunkCount(size: number): number {
  return size === 0 ? 1 : Math.ceil(size / CHUNK_SIZE);
}

export interface ParsedHeader {
  readonly header: Buffer;
  readonly fileId: Buffer;
  readonly keyId: Buffer;
}

/** Checks the fixed fields of a header; does not authenticate it. */
export function parseHeader(header: Buffer): ParsedHeader {
  if (header.length < HEADER_SIZE) throw new ObjectFormatError(`object header is truncated (${header.length} of ${HEADER_SIZE} bytes)`);
  if (!header.subarray(0, MAGIC.length).equals(MAGIC)) throw new ObjectFormatError('not a mydoc object (bad magic)');
  if (header[OFF_VERSION] !== FORMAT_VERSION) throw new ObjectFormatError(`unsupported object format version ${header[OFF_VERSION]}`);
  if (header[OFF_SUITE] !== SUITE_AES256GCM_HKDF_SHA256) throw new ObjectFormatError(`unsupported object cipher suite ${header[OFF_SUITE]}`);
  const chunkSize = header.readUInt32BE(OFF_CHUNK_SIZE);
  if (chunkSize !== CHUNK_SIZE) throw new ObjectFormatError(`unsupported object chunk size ${chunkSize}`);
  const h = Buffer.from(header.subarray(0, HEADER_SIZE));
  return { header: h, fileId: h.subarray(OFF_FILE_ID, OFF_KEY_ID), keyId: h.subarray(OFF_KEY_ID, OFF_WRAP_NONCE) };
}

/** Opens the header with the DEK and returns the chunk opener for this object. */
export function openHeader(header: Buffer, dek: DataKey): ChunkOpener {
  const parsed = parseHeader(header);
  if (!parsed.keyId.equals(dek.id)) {
    throw new ObjectKeyError(`object was sealed under key ${parsed.keyId.toString('hex')}, not ${dek.id.toString('hex')}`);
  }
  const h = parsed.header;
  const decipher = createDecipheriv('aes-256-gcm', wrapKey(dek, parsed.fileId), h.subarray(OFF_WRAP_NONCE, OFF_WRAPPED_KEY), {
    authTagLength: TAG_SIZE,
  });
  decipher.setAAD(h.subarray(0, OFF_WRAP_NONCE));
  decipher.setAuthTag(h.subarray(OFF_WRAP_TAG, HEADER_SIZE));
  let fileKey: Buffer;
  try {
    fileKey = Buffer.concat([decipher.update(h.subarray(OFF_WRAPPED_KEY, OFF_WRAP_TAG)), decipher.final()]);
  } catch {
    throw new ObjectAuthError('object header failed to authenticate: modified, or sealed under another key');
  }
  const opener = new ChunkOpener(h, payloadKey(fileKey, parsed.fileId));
  fileKey.fill(0);
  return opener;
}

/** Builds and seals a new header; returns it with the chunk sealer of the object. */
export function sealHeader(dek: DataKey, random: ObjectRandomness = freshRandomness()): { header: Buffer; fileId: Buffer; sealer: ChunkSealer } {
  const h = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(h, 0);
  h[OFF_VERSION] = FORMAT_VERSION;
  h[OFF_SUITE] = SUITE_AES256GCM_HKDF_SHA256;
  h.writeUInt32BE(CHUNK_SIZE, OFF_CHUNK_SIZE);
  random.fileId.copy(h, OFF_FILE_ID);
  dek.id.copy(h, OFF_KEY_ID);
  random.wrapNonce.copy(h, OFF_WRAP_NONCE);
  const fileId = h.subarray(OFF_FILE_ID, OFF_KEY_ID);
  const cipher = createCipheriv('aes-256-gcm', wrapKey(dek, fileId), random.wrapNonce, { authTagLength: TAG_SIZE });
  cipher.setAAD(h.subarray(0, OFF_WRAP_NONCE));
  const wrapped = Buffer.concat([cipher.update(random.fileKey), cipher.final()]);
  wrapped.copy(h, OFF_WRAPPED_KEY);
  cipher.getAuthTag().copy(h, OFF_WRAP_TAG);
  return { header: h, fileId: Buffer.from(fileId), sealer: new ChunkSealer(h, payloadKey(random.fileKey, fileId)) };
}

/** Chunks in one run (opened at once by ChunkOpener.openRun for reads): 16 x 64 KiB = 1 MiB of plaintext. */
export const RUN_CHUNKS = 16;
export const RUN_SIZE = RUN_CHUNKS * CHUNK_SIZE;

/** Seals chunks of one object. */
export class ChunkSealer {
  constructor(
    private readonly header: Buffer,
    private readonly key: KeyObject,
  ) {}

  /** Seals chunk `index`; returns ciphertext and tag (two buffers, for writev). */
  seal(index: number, plain: Buffer, final: boolean): [Buffer, Buffer] {
    const cipher = createCipheriv('aes-256-gcm', this.key, chunkNonce(index, final), { authTagLength: TAG_SIZE });
    cipher.setAAD(this.header);
    const body = cipher.update(plain);
    cipher.final();
    return [body, cipher.getAuthTag()];
  }
}

/** Opens chunks of one object; throws ObjectAuthError and releases nothing if a tag fails. */
export class ChunkOpener {
  constructor(
    private readonly header: Buffer,
    private readonly key: KeyObject,
  ) {}

  /** The object's random file id, from its authenticated header. */
  get fileId(): Buffer {
    return Buffer.from(this.header.subarray(OFF_FILE_ID, OFF_KEY_ID));
  }

  open(index: number, sealed: Buffer, final: boolean): Buffer {
    const validLength = final
      ? sealed.length > TAG_SIZE || (sealed.length === TAG_SIZE && index === 0)
      : sealed.length === SEALED_CHUNK_SIZE;
    if (!validLength || sealed.length > SEALED_CHUNK_SIZE) {
      throw new ObjectAuthError(`chunk ${index} has an invalid length (${sealed.length} bytes)`);
    }
    const decipher = createDecipheriv('aes-256-gcm', this.key, chunkNonce(index, final), { authTagLength: TAG_SIZE });
    decipher.setAAD(this.header);
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
    const plain = decipher.update(sealed.subarray(0, sealed.length - TAG_SIZE));
    try {
      decipher.final();
    } catch {
      plain.fill(0);
      throw new ObjectAuthError(`chunk ${index} failed to authenticate: the object was modified, truncated or reordered`);
    }
    return plain;
  }

  /**
   * Opens consecutive sealed chunks starting at `first` (laid out as on
   * disk; the last one is the object's final chunk when `lastFinal`) into one
   * plaintext buffer. When a tag fails, returns the plaintext of the chunks
   * before it (all verified) and the error; nothing of the failed chunk or
   * after it.
   */
  openRun(first: number, sealed: Uint8Array, lastFinal: boolean): { plain: Buffer; error?: ObjectAuthError } {
    const n = Math.max(1, Math.ceil(sealed.length / SEALED_CHUNK_SIZE));
    const out = Buffer.allocUnsafeSlow(Math.max(0, sealed.length - n * TAG_SIZE));
    let pos = 0;
    for (let i = 0; i < n; i++) {
      const piece = sealed.subarray(i * SEALED_CHUNK_SIZE, Math.min((i + 1) * SEALED_CHUNK_SIZE, sealed.length)) as Buffer;
      try {
        pos += this.open(first + i, piece, lastFinal && i === n - 1).copy(out, pos);
      } catch (err) {
        if (!(err instanceof ObjectAuthError)) throw err;
        out.fill(0, pos); // nothing but verified plaintext in the buffer handed back
        return { plain: out.subarray(0, pos), error: err };
      }
    }
    return { plain: out };
  }
}

/**
 * Incremental encryption of one object: feed plaintext with `update`, finish
 * with `final`. Returns ciphertext pieces ready for writev. A full chunk is
 * held back until it is known whether it is the last one.
 */
export class ObjectEncryptor {
  readonly header: Buffer;
  readonly fileId: Buffer;
  private readonly sealer: ChunkSealer;
  private readonly pending = Buffer.allocUnsafe(CHUNK_SIZE);
  private pendingLength = 0;
  private index = 0;
  private finished = false;
  private headerEmitted = false;

  constructor(dek: DataKey, random?: ObjectRandomness) {
    const sealed = sealHeader(dek, random);
    this.header = sealed.header;
    this.fileId = sealed.fileId;
    this.sealer = sealed.sealer;
  }

  update(data: Buffer): Buffer[] {
    if (this.finished) throw new Error('ObjectEncryptor.update after final');
    const out: Buffer[] = this.takeHeader();
    let pos = 0;
    while (pos < data.length) {
      if (this.pendingLength === CHUNK_SIZE) {
        out.push(...this.sealer.seal(this.index++, this.pending, false));
        this.pendingLength = 0;
      }
      if (this.pendingLength === 0 && data.length - pos > CHUNK_SIZE) {
        // More than a chunk remains in this call: seal straight from the input.
        out.push(...this.sealer.seal(this.index++, data.subarray(pos, pos + CHUNK_SIZE), false));
        pos += CHUNK_SIZE;
        continue;
      }
      const n = Math.min(CHUNK_SIZE - this.pendingLength, data.length - pos);
      data.copy(this.pending, this.pendingLength, pos, pos + n);
      this.pendingLength += n;
      pos += n;
    }
    return out;
  }

  final(): Buffer[] {
    if (this.finished) throw new Error('ObjectEncryptor.final called twice');
    this.finished = true;
    const out = this.takeHeader();
    out.push(...this.sealer.seal(this.index++, this.pending.subarray(0, this.pendingLength), true));
    this.pending.fill(0);
    return out;
  }

  private takeHeader(): Buffer[] {
    if (this.headerEmitted) return [];
    this.headerEmitted = true;
    return [this.header];
  }
}

/**
 * Incremental decryption of a whole object read in order. A sealed chunk is
 * held back until it is known whether it is the last one; plaintext is
 * returned only for chunks whose tags verified.
 */
export class ObjectDecryptor {
  private opener: ChunkOpener | undefined;
  private buffered: Buffer[] = [];
  private bufferedLength = 0;
  private index = 0;

  constructor(private readonly dek: DataKey) {}

  update(data: Buffer): Buffer[] {
    this.buffered.push(data);
    this.bufferedLength += data.length;
    const out: Buffer[] = [];
    if (!this.opener) {
      if (this.bufferedLength < HEADER_SIZE) return out;
      const all = this.take(this.bufferedLength);
      this.opener = openHeader(all.subarray(0, HEADER_SIZE), this.dek);
      this.put(all.subarray(HEADER_SIZE));
    }
    // Keep at least one byte beyond a full chunk before opening it as non-final.
    while (this.bufferedLength > SEALED_CHUNK_SIZE) {
      const all = this.take(this.bufferedLength);
      let pos = 0;
      while (all.length - pos > SEALED_CHUNK_SIZE) {
        out.push(this.opener.open(this.index++, all.subarray(pos, pos + SEALED_CHUNK_SIZE), false));
        pos += SEALED_CHUNK_SIZE;
      }
      this.put(all.subarray(pos));
    }
    return out;
  }

  final(): Buffer[] {
    if (!this.opener) {
      throw new ObjectFormatError(`object is too short to be valid (${this.bufferedLength} bytes)`);
    }
    const rest = this.take(this.bufferedLength);
    if (rest.length < TAG_SIZE || (rest.length === TAG_SIZE && this.index > 0)) {
      throw new ObjectAuthError('object is truncated: its final chunk is missing');
    }
    return [this.opener.open(this.index++, rest, true)];
  }

  private take(n: number): Buffer {
    const all = this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered, this.bufferedLength);
    this.buffered = [];
    this.bufferedLength = 0;
    return all.subarray(0, n);
  }

  private put(rest: Buffer): void {
    if (rest.length > 0) {
      this.buffered.push(rest);
      this.bufferedLength = rest.length;
    }
  }
}
