/**
 * An independent decoder of the object format v1, written from docs/format.md
 * alone with WebCrypto (HKDF, AES-GCM). It deliberately imports nothing from
 * crypto/: if it decrypts the committed vectors, the specification and the
 * implementation agree.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { webcrypto } from 'node:crypto';

const subtle = webcrypto.subtle;
type Key = webcrypto.CryptoKey;

// ---- the specification, section 1 --------------------------------------------

const MAGIC = new TextEncoder().encode('mydocobj'); // 6d 79 64 6f 63 6f 62 6a
const HEADER_LEN = 106;
const CHUNK = 65536; // plaintext bytes per chunk
const TAG = 16;
const SEALED = CHUNK + TAG; // 65552
const WRAP_AAD_LEN = 46; // header bytes 0..45: magic .. key id
const WRAP_INFO = 'mydoc object v1 file-key wrap';
const PAYLOAD_INFO = 'mydoc object v1 payload';

class SpecError extends Error {}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const hex = (s: string): Uint8Array => Uint8Array.from(s.match(/../g) ?? [], (b) => parseInt(b, 16));
const toHex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const equal = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/** Section 1.6: plaintext size from the object size, or undefined when no valid object has that size. */
function plaintextSizeOf(objectSize: number): number | undefined {
  const payload = objectSize - HEADER_LEN;
  if (!Number.isSafeInteger(objectSize) || payload < TAG) return undefined;
  if (payload === TAG) return 0;
  const n = Math.ceil(payload / SEALED);
  const last = payload - (n - 1) * SEALED;
  if (last <= TAG) return undefined;
  return payload - n * TAG;
}

/** Section 1.6, the other way round. */
function objectSizeOf(plaintextSize: number): number {
  const n = plaintextSize === 0 ? 1 : Math.ceil(plaintextSize / CHUNK);
  return HEADER_LEN + plaintextSize + n * TAG;
}

/** Section 1.3: HKDF-SHA-256 with a 32-byte output. */
async function hkdf32(ikm: Uint8Array, salt: Uint8Array, info: string): Promise<Uint8Array> {
  const base = await subtle.importKey('raw', ikm, 'HKDF', false, ['deriveBits']);
  return new Uint8Array(await subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt, info: utf8(info) }, base, 256));
}

async function aesKey(raw: Uint8Array): Promise<Key> {
  return subtle.importKey('raw', raw, { name: 'AES-GCM' }, false, ['decrypt']);
}

/** AES-256-GCM open of ciphertext || 16-byte tag; throws when the tag does not verify. */
async function gcmOpen(key: Key, iv: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Promise<Uint8Array> {
  if (sealed.length < TAG) throw new SpecError('sealed data shorter than a tag');
  return new Uint8Array(await subtle.decrypt({ name: 'AES-GCM', iv, additionalData: aad, tagLength: 128 }, key, sealed));
}

/** Section 1.5: 88-bit big-endian chunk counter, then the final flag byte (0x01 last chunk, 0x00 others). */
function chunkNonce(index: number, final: boolean): Uint8Array {
  const nonce = new Uint8Array(12);
  let n = BigInt(index);
  for (let i = 10; i >= 0; i--) {
    nonce[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  nonce[11] = final ? 0x01 : 0x00;
  return nonce;
}

interface OpenedHeader {
  header: Uint8Array;
  fileId: Uint8Array;
  keyId: Uint8Array;
  wrapNonce: Uint8Array;
  fileKey: Uint8Array;
  payloadKey: Key;
}

/** Sections 1.1-1.3: checks the fixed fields, the key id, unwraps the file key and derives the payload key. */
async function openHeader(object: Uint8Array, dekId: Uint8Array, dek: Uint8Array): Promise<OpenedHeader> {
  if (object.length < HEADER_LEN) throw new SpecError('truncated header');
  const header = object.slice(0, HEADER_LEN);
  const view = new DataView(header.buffer);
  if (!equal(header.subarray(0, 8), MAGIC)) throw new SpecError('bad magic');
  if (header[8] !== 1) throw new SpecError('unsupported version');
  if (header[9] !== 1) throw new SpecError('unsupported suite');
  if (view.getUint32(10, false) !== CHUNK) throw new SpecError('unsupported chunk size');
  const fileId = header.slice(14, 30);
  const keyId = header.slice(30, 46);
  const wrapNonce = header.slice(46, 58);
  if (!equal(keyId, dekId)) throw new SpecError('sealed under another DEK');
  const wrapKey = await aesKey(await hkdf32(dek, fileId, WRAP_INFO));
  const fileKey = await gcmOpen(wrapKey, wrapNonce, header.subarray(0, WRAP_AAD_LEN), header.subarray(58, 106));
  const payloadKey = await aesKey(await hkdf32(fileKey, fileId, PAYLOAD_INFO));
  return { header, fileId, keyId, wrapNonce, fileKey, payloadKey };
}

/** Section 1.4: opens chunk `index`; AAD is the whole 106-byte header. */
function openChunk(h: OpenedHeader, index: number, sealed: Uint8Array, final: boolean): Promise<Uint8Array> {
  return gcmOpen(h.payloadKey, chunkNonce(index, final), h.header, sealed);
}

/** The whole decoder: returns the plaintext, or throws. */
async function decodeObject(object: Uint8Array, dekId: Uint8Array, dek: Uint8Array): Promise<Uint8Array> {
  const size = plaintextSizeOf(object.length);
  if (size === undefined) throw new SpecError(`invalid object size ${object.length}`);
  const h = await openHeader(object, dekId, dek);
  const chunks = size === 0 ? 1 : Math.ceil(size / CHUNK);
  const out = new Uint8Array(size);
  for (let i = 0; i < chunks; i++) {
    const start = HEADER_LEN + i * SEALED;
    const end = Math.min(start + SEALED, object.length);
    out.set(await openChunk(h, i, object.subarray(start, end), i === chunks - 1), i * CHUNK);
  }
  return out;
}

// ---- the committed vectors ------------------------------------------------------

interface VectorFile {
  dekId: string;
  dek: string;
  vectors: { name: string; plaintext: { length: number; pattern: string }; fileId: string; fileKey: string; wrapNonce: string; ciphertext: string }[];
}

const file = JSON.parse(readFileSync(new URL('../../test/vectors/object-v1.json', import.meta.url), 'utf8')) as VectorFile;
const dekId = hex(file.dekId);
const dek = hex(file.dek);
const pattern = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7) % 251);
const vector = (name: string): Uint8Array => {
  const v = file.vectors.find((x) => x.name === name);
  assert.ok(v, `vector "${name}" exists`);
  return hex(v.ciphertext);
};
/** A tag that did not verify (WebCrypto's OperationError), as opposed to a refused field. */
const authFailure = (err: unknown): boolean => (err as { name?: unknown } | null)?.name === 'OperationError';
const THREE = 'three chunks (2 x 64 KiB + 500)';
const ONE_PLUS = 'one chunk and one byte (64 KiB + 1)';

test('spec decoder: all five committed vectors decrypt to byte i = (i*7) mod 251', async () => {
  assert.equal(file.vectors.length, 5);
  assert.deepEqual(
    file.vectors.map((v) => v.plaintext.length),
    [0, 1, 65536, 65537, 2 * 65536 + 500],
  );
  for (const v of file.vectors) {
    const object = hex(v.ciphertext);
    assert.equal(plaintextSizeOf(object.length), v.plaintext.length, `${v.name}: size formula`);
    assert.equal(objectSizeOf(v.plaintext.length), object.length, `${v.name}: inverse size formula`);
    const h = await openHeader(object, dekId, dek);
    assert.equal(toHex(h.fileId), v.fileId, `${v.name}: file id`);
    assert.equal(toHex(h.keyId), file.dekId, `${v.name}: key id`);
    assert.equal(toHex(h.wrapNonce), v.wrapNonce, `${v.name}: wrap nonce`);
    assert.equal(toHex(h.fileKey), v.fileKey, `${v.name}: unwrapped file key`);
    const plain = await decodeObject(object, dekId, dek);
    assert.ok(equal(plain, pattern(v.plaintext.length)), `${v.name}: plaintext`);
  }
});

test('spec decoder: header bytes are exactly as the layout table says', () => {
  const h = vector('one byte').subarray(0, HEADER_LEN);
  assert.equal(toHex(h.subarray(0, 14)), '6d79646f636f626a' + '01' + '01' + '00010000');
  assert.equal(toHex(h.subarray(14, 30)), '11'.repeat(16));
  assert.equal(toHex(h.subarray(30, 46)), file.dekId);
  assert.equal(toHex(h.subarray(46, 58)), '31'.repeat(12));
});

test('spec decoder: the size formula accepts exactly the sizes a writer produces', () => {
  for (const n of [0, 1, 2, 65535, 65536, 65537, 131072, 131073, 2 * 65536 + 500, 10 * 65536]) {
    assert.equal(plaintextSizeOf(objectSizeOf(n)), n, `round trip of ${n}`);
  }
  for (const bad of [0, 105, 106, 121, HEADER_LEN + SEALED + 1, HEADER_LEN + SEALED + TAG, HEADER_LEN + 2 * SEALED + TAG, 1.5, Number.NaN]) {
    assert.equal(plaintextSizeOf(bad), undefined, `size ${bad} is invalid`);
  }
  assert.equal(plaintextSizeOf(122), 0);
  assert.equal(plaintextSizeOf(123), 1);
  assert.equal(plaintextSizeOf(HEADER_LEN + SEALED + TAG + 1), 65537);
});

test('spec decoder: one flipped bit in a chunk, or in the header, is refused', async () => {
  for (const offset of [HEADER_LEN + 5, HEADER_LEN + SEALED + 1000, HEADER_LEN + 2 * SEALED + 3, HEADER_LEN + SEALED - 1]) {
    const bad = vector(THREE);
    bad[offset]! ^= 0x01;
    await assert.rejects(decodeObject(bad, dekId, dek), authFailure, `bit flipped at ${offset}`);
  }
  // Fixed fields are refused as such; every other header bit breaks the wrap tag (the file id also changes the keys).
  for (const offset of [0, 8, 9, 13]) {
    const bad = vector(THREE);
    bad[offset]! ^= 0x80;
    await assert.rejects(decodeObject(bad, dekId, dek), SpecError, `header bit flipped at ${offset}`);
  }
  for (const offset of [14, 29, 47, 70, 100, 105]) {
    const bad = vector(THREE);
    bad[offset]! ^= 0x80;
    await assert.rejects(decodeObject(bad, dekId, dek), authFailure, `header bit flipped at ${offset}`);
  }
});

test('spec decoder: dropping the final chunk leaves a full chunk that does not authenticate as final', async () => {
  const whole = vector(ONE_PLUS);
  assert.equal(whole.length, HEADER_LEN + SEALED + TAG + 1);
  const cut = whole.subarray(0, HEADER_LEN + SEALED);
  // The size is a valid one (a 64 KiB object), so only the final flag can catch it.
  assert.equal(plaintextSizeOf(cut.length), 65536);
  await assert.rejects(decodeObject(cut, dekId, dek), authFailure);
  const h = await openHeader(cut, dekId, dek);
  const sealed = cut.subarray(HEADER_LEN);
  await assert.rejects(openChunk(h, 0, sealed, true), authFailure, 'chunk 0 opened as final');
  assert.ok(equal(await openChunk(h, 0, sealed, false), pattern(CHUNK)), 'the same chunk opens as non-final');
});

test('spec decoder: reordered chunks, spliced chunks and a wrong key id are refused', async () => {
  const three = vector(THREE);
  const swapped = three.slice();
  swapped.set(three.subarray(HEADER_LEN + SEALED, HEADER_LEN + 2 * SEALED), HEADER_LEN);
  swapped.set(three.subarray(HEADER_LEN, HEADER_LEN + SEALED), HEADER_LEN + SEALED);
  await assert.rejects(decodeObject(swapped, dekId, dek), authFailure, 'chunks 0 and 1 swapped');

  // Header of one object, chunks of another (same DEK, valid length): another payload key.
  const other = vector(ONE_PLUS);
  const spliced = new Uint8Array(other.length);
  spliced.set(three.subarray(0, HEADER_LEN));
  spliced.set(other.subarray(HEADER_LEN), HEADER_LEN);
  await assert.rejects(decodeObject(spliced, dekId, dek), authFailure, 'header of another object');

  // Truncated at a chunk boundary: the last remaining chunk was sealed as non-final.
  await assert.rejects(decodeObject(three.subarray(0, HEADER_LEN + 2 * SEALED), dekId, dek), authFailure, 'truncated to two chunks');

  // A DEK with another id is refused before any decryption; a rewritten key id breaks the wrap tag.
  await assert.rejects(decodeObject(three, hex('ff'.repeat(16)), dek), /another DEK/);
  const relabelled = three.slice();
  relabelled.set(hex('ff'.repeat(16)), 30);
  await assert.rejects(decodeObject(relabelled, hex('ff'.repeat(16)), dek), authFailure);
});
