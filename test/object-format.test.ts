import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  CHUNK_SIZE,
  HEADER_SIZE,
  RUN_CHUNKS,
  RUN_SIZE,
  SEALED_CHUNK_SIZE,
  ObjectDecryptor,
  ObjectEncryptor,
  objectSize,
  plaintextSize,
  type DataKey,
} from '../crypto/object-format.js';
import { ObjectReader, createDecryptStream, createEncryptStream } from '../crypto/object-io.js';
import { ObjectAuthError, ObjectFormatError, ObjectKeyError } from '../crypto/errors.js';
import { dataKeyFromHex, patternBytes, randomDataKey, tempDir } from './helpers/keys.js';

interface VectorFile {
  dekId: string;
  dek: string;
  vectors: { name: string; plaintext: { length: number }; fileId: string; fileKey: string; wrapNonce: string; ciphertext: string }[];
}

const vectorFile = JSON.parse(readFileSync(new URL('../../test/vectors/object-v1.json', import.meta.url), 'utf8')) as VectorFile;
const vectorKey = dataKeyFromHex(vectorFile.dekId, vectorFile.dek);
const vectorPlain = (n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7) % 251));

function seal(dek: DataKey, plain: Buffer): Buffer {
  const enc = new ObjectEncryptor(dek);
  return Buffer.concat([...enc.update(plain), ...enc.final()]);
}

/** Decrypts in pieces of `step` bytes; returns what was released before any error, and the error. */
function openAll(dek: DataKey, sealed: Buffer, step = 7777): { released: Buffer; error: unknown } {
  const dec = new ObjectDecryptor(dek);
  const out: Buffer[] = [];
  try {
    for (let i = 0; i < sealed.length; i += step) out.push(...dec.update(sealed.subarray(i, i + step)));
    out.push(...dec.final());
    return { released: Buffer.concat(out), error: undefined };
  } catch (error) {
    return { released: Buffer.concat(out), error };
  }
}

test('committed vectors: encryption reproduces them byte for byte and decryption returns the plaintext', () => {
  assert.equal(vectorFile.vectors.length, 5);
  for (const v of vectorFile.vectors) {
    const plain = vectorPlain(v.plaintext.length);
    const enc = new ObjectEncryptor(vectorKey, { fileId: Buffer.from(v.fileId, 'hex'), fileKey: Buffer.from(v.fileKey, 'hex'), wrapNonce: Buffer.from(v.wrapNonce, 'hex') });
    const sealed = Buffer.concat([...enc.update(plain), ...enc.final()]);
    assert.equal(sealed.toString('hex'), v.ciphertext, v.name);
    const { released, error } = openAll(vectorKey, Buffer.from(v.ciphertext, 'hex'));
    assert.equal(error, undefined, v.name);
    assert.ok(released.equals(plain), v.name);
    assert.equal(plaintextSize(sealed.length), v.plaintext.length, v.name);
  }
});

test('round trip at the lengths around chunk boundaries, fed in odd piece sizes', () => {
  const dek = randomDataKey();
  for (const n of [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE + 500, 3 * CHUNK_SIZE, 1_000_003]) {
    const plain = patternBytes(n, n);
    for (const step of [1_000_003, 65536, 4093]) {
      const enc = new ObjectEncryptor(dek);
      const pieces: Buffer[] = [];
      for (let i = 0; i < plain.length; i += step) pieces.push(...enc.update(plain.subarray(i, i + step)));
      pieces.push(...enc.final());
      const sealed = Buffer.concat(pieces);
      assert.equal(sealed.length, objectSize(n), `size of ${n}`);
      assert.equal(plaintextSize(sealed.length), n);
      const { released, error } = openAll(dek, sealed, step);
      assert.equal(error, undefined);
      assert.ok(released.equals(plain), `content of ${n} fed by ${step}`);
    }
  }
});

test('plaintext size is computed from the object size alone, and impossible sizes are refused', () => {
  assert.equal(plaintextSize(HEADER_SIZE + 16), 0);
  assert.equal(plaintextSize(HEADER_SIZE + 17), 1);
  assert.equal(plaintextSize(HEADER_SIZE + SEALED_CHUNK_SIZE), CHUNK_SIZE);
  assert.equal(plaintextSize(HEADER_SIZE + SEALED_CHUNK_SIZE + 17), CHUNK_SIZE + 1);
  for (const bad of [0, HEADER_SIZE, HEADER_SIZE + 15, HEADER_SIZE + SEALED_CHUNK_SIZE + 16, HEADER_SIZE + SEALED_CHUNK_SIZE + 3]) {
    assert.throws(() => plaintextSize(bad), ObjectFormatError, `size ${bad}`);
  }
});

test('streams: encrypt and decrypt through Node pipelines', async () => {
  const dek = randomDataKey();
  const plain = patternBytes(5 * CHUNK_SIZE + 123, 3);
  const sealedParts: Buffer[] = [];
  await pipeline(Readable.from([plain.subarray(0, 100_000), plain.subarray(100_000)]), createEncryptStream(dek), async function* (src) {
    for await (const c of src) sealedParts.push(c as Buffer);
  });
  const sealed = Buffer.concat(sealedParts);
  const out: Buffer[] = [];
  await pipeline(Readable.from([sealed]), createDecryptStream(dek), async function* (src) {
    for await (const c of src) out.push(c as Buffer);
  });
  assert.ok(Buffer.concat(out).equals(plain));
});

test('a wrong data key is refused before any byte is released', () => {
  const sealed = seal(randomDataKey(), patternBytes(1000));
  const other = randomDataKey();
  const wrongKey = openAll(other, sealed);
  assert.ok(wrongKey.error instanceof ObjectKeyError);
  assert.equal(wrongKey.released.length, 0);
  // Same key id, different secret: the header does not authenticate.
  const dek = randomDataKey();
  const sealed2 = seal(dek, patternBytes(1000));
  const impostor = { id: dek.id, key: randomDataKey().key };
  const { released, error } = openAll(impostor, sealed2);
  assert.ok(error instanceof ObjectAuthError);
  assert.equal(released.length, 0);
});

// ---- tamper matrix -----------------------------------------------------------

const dek = randomDataKey();
const plain = patternBytes(4 * CHUNK_SIZE + 1000, 9); // five chunks: 4 full + 1000 bytes
const sealed = seal(dek, plain);
const chunkAt = (buf: Buffer, i: number): Buffer => buf.subarray(HEADER_SIZE + i * SEALED_CHUNK_SIZE, HEADER_SIZE + (i + 1) * SEALED_CHUNK_SIZE);
const chunks = (buf: Buffer): Buffer[] => {
  const out = [];
  for (let off = HEADER_SIZE; off < buf.length; off += SEALED_CHUNK_SIZE) out.push(buf.subarray(off, off + SEALED_CHUNK_SIZE));
  return out;
};
const header = sealed.subarray(0, HEADER_SIZE);
const other = seal(dek, patternBytes(4 * CHUNK_SIZE + 1000, 10));

const tampered: { name: string; bytes: Buffer; firstBadChunk: number; type: typeof ObjectAuthError | typeof ObjectFormatError }[] = [
  { name: 'truncation at a chunk boundary', bytes: sealed.subarray(0, HEADER_SIZE + 3 * SEALED_CHUNK_SIZE), firstBadChunk: 2, type: ObjectAuthError },
  { name: 'a chunk dropped', bytes: Buffer.concat([header, ...chunks(sealed).filter((_, i) => i !== 1)]), firstBadChunk: 1, type: ObjectAuthError },
  { name: 'chunks reordered', bytes: Buffer.concat([header, chunkAt(sealed, 0), chunkAt(sealed, 2), chunkAt(sealed, 1), ...chunks(sealed).slice(3)]), firstBadChunk: 1, type: ObjectAuthError },
  { name: 'a chunk copied from another file', bytes: Buffer.concat([header, chunkAt(sealed, 0), chunkAt(other, 1), ...chunks(sealed).slice(2)]), firstBadChunk: 1, type: ObjectAuthError },
  {
    name: 'a zeroed chunk',
    bytes: Buffer.concat([header, chunkAt(sealed, 0), chunkAt(sealed, 1), Buffer.alloc(SEALED_CHUNK_SIZE), ...chunks(sealed).slice(3)]),
    firstBadChunk: 2,
    type: ObjectAuthError,
  },
  { name: 'a 4-byte tag on the final chunk', bytes: sealed.subarray(0, sealed.length - 12), firstBadChunk: 4, type: ObjectAuthError },
  { name: 'an appended chunk', bytes: Buffer.concat([sealed, chunkAt(sealed, 0)]), firstBadChunk: 4, type: ObjectAuthError },
  { name: 'an appended copy of the final chunk', bytes: Buffer.concat([sealed, sealed.subarray(HEADER_SIZE + 4 * SEALED_CHUNK_SIZE)]), firstBadChunk: 4, type: ObjectAuthError },
];

for (const t of tampered) {
  test(`tamper: ${t.name} fails with a typed error and releases nothing from the bad chunk`, async () => {
    const { released, error } = openAll(dek, t.bytes);
    assert.ok(error instanceof t.type, `expected ${t.type.name}, got ${String(error)}`);
    assert.ok(released.length <= t.firstBadChunk * CHUNK_SIZE, `released ${released.length} bytes`);
    assert.ok(released.equals(plain.subarray(0, released.length)), 'only genuine plaintext was released');
    // The same through the stream API.
    const out: Buffer[] = [];
    await assert.rejects(
      pipeline(Readable.from([t.bytes]), createDecryptStream(dek), async function* (src) {
        for await (const c of src) out.push(c as Buffer);
      }),
      t.type,
    );
    assert.ok(Buffer.concat(out).length <= t.firstBadChunk * CHUNK_SIZE);
  });
}

for (let bit = 0; bit < HEADER_SIZE * 8; bit += 13) {
  test(`tamper: header bit ${bit} flipped is refused before any plaintext`, () => {
    const bytes = Buffer.from(sealed);
    bytes[bit >> 3]! ^= 1 << (bit & 7);
    const { released, error } = openAll(dek, bytes);
    assert.ok(error instanceof ObjectAuthError || error instanceof ObjectFormatError || error instanceof ObjectKeyError, String(error));
    assert.equal(released.length, 0);
  });
}

test('tamper: a 4-byte tag on an empty object is refused', () => {
  const empty = seal(dek, Buffer.alloc(0));
  const { released, error } = openAll(dek, empty.subarray(0, empty.length - 12));
  assert.ok(error instanceof ObjectFormatError || error instanceof ObjectAuthError);
  assert.equal(released.length, 0);
});

// ---- range reads -------------------------------------------------------------

test('range reads match the plaintext byte for byte across chunk boundaries and read only the chunks they need', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const file = join(dir, 'obj');
    const data = patternBytes(3 * CHUNK_SIZE + 777, 5);
    await writeFile(file, seal(dek, data));
    const fh = await open(file, 'r');
    const reads: number[] = [];
    const originalRead = fh.read.bind(fh);
    (fh as unknown as { read: typeof fh.read }).read = ((buf: Buffer, off: number, len: number, pos: number) => {
      reads.push(len);
      return originalRead(buf, off, len, pos);
    }) as typeof fh.read;
    try {
      const reader = await ObjectReader.open(fh, dek);
      assert.equal(reader.size, data.length);
      const ranges: [number, number][] = [
        [0, data.length],
        [0, 1],
        [CHUNK_SIZE - 1, CHUNK_SIZE + 1],
        [CHUNK_SIZE, 2 * CHUNK_SIZE],
        [100, 3 * CHUNK_SIZE + 100],
        [data.length - 1, data.length],
        [data.length - 500, data.length + 1000],
        [5, 5],
      ];
      for (const [s, e] of ranges) {
        const out: Buffer[] = [];
        for await (const piece of reader.read(s, e)) out.push(piece);
        assert.ok(Buffer.concat(out).equals(data.subarray(s, Math.min(e, data.length))), `range ${s}-${e}`);
      }
      reads.length = 0;
      for await (const _ of reader.read(2 * CHUNK_SIZE + 10, 2 * CHUNK_SIZE + 20)) void _;
      assert.deepEqual(reads, [SEALED_CHUNK_SIZE], 'one chunk read for a range inside one chunk');
    } finally {
      await fh.close();
    }
  } finally {
    await cleanup();
  }
});

test('range read of a tampered chunk fails, ranges elsewhere still read', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const file = join(dir, 'obj');
    const bytes = Buffer.from(sealed);
    bytes[HEADER_SIZE + 2 * SEALED_CHUNK_SIZE + 5]! ^= 0xff;
    await writeFile(file, bytes);
    const fh = await open(file, 'r');
    try {
      const reader = await ObjectReader.open(fh, dek);
      const good: Buffer[] = [];
      for await (const p of reader.read(0, 2 * CHUNK_SIZE)) good.push(p);
      assert.ok(Buffer.concat(good).equals(plain.subarray(0, 2 * CHUNK_SIZE)));
      const released: Buffer[] = [];
      await assert.rejects(async () => {
        for await (const p of reader.read(CHUNK_SIZE, 3 * CHUNK_SIZE)) released.push(p);
      }, ObjectAuthError);
      assert.equal(Buffer.concat(released).length, CHUNK_SIZE, 'only the good chunk before the bad one');
    } finally {
      await fh.close();
    }
  } finally {
    await cleanup();
  }
});

// ---- big objects: read in runs of 1 MiB ---------------------------------------------

test('a big object reads back in runs: whole, and ranges across run boundaries', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const file = join(dir, 'obj');
    const data = patternBytes(5 * RUN_SIZE + 12_345, 9);
    await writeFile(file, seal(dek, data));
    const fh = await open(file, 'r');
    try {
      const reader = await ObjectReader.open(fh, dek);
      const ranges: [number, number][] = [
        [0, data.length],
        [RUN_SIZE - 1, 3 * RUN_SIZE + 1],
        [CHUNK_SIZE + 3, data.length - 2],
        [data.length - RUN_SIZE - 10, data.length],
      ];
      for (const [s, e] of ranges) {
        const out: Buffer[] = [];
        for await (const piece of reader.read(s, e)) {
          assert.ok(piece.length <= RUN_SIZE, 'pieces of at most one run');
          out.push(piece);
        }
        assert.ok(Buffer.concat(out).equals(data.subarray(s, e)), `range ${s}-${e}`);
      }
    } finally {
      await fh.close();
    }
  } finally {
    await cleanup();
  }
});

test('a tampered chunk in a big object: a read releases exactly the chunks before it, then ObjectAuthError', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const data = patternBytes(4 * RUN_SIZE, 11);
    const good = seal(dek, data);
    const bad = 2 * RUN_CHUNKS + 5; // chunk 5 of the third run
    const cases: [string, (b: Buffer) => Buffer, number][] = [
      ['flipped byte', (b) => { b[HEADER_SIZE + bad * SEALED_CHUNK_SIZE + 100]! ^= 1; return b; }, bad * CHUNK_SIZE],
      ['swapped chunks', (b) => {
        const at = (i: number) => HEADER_SIZE + i * SEALED_CHUNK_SIZE;
        const a = Buffer.from(b.subarray(at(bad), at(bad + 1)));
        b.copy(b, at(bad), at(bad + 1), at(bad + 2));
        a.copy(b, at(bad + 1));
        return b;
      }, bad * CHUNK_SIZE],
      ['last chunk dropped', (b) => b.subarray(0, b.length - SEALED_CHUNK_SIZE), -1],
    ];
    for (const [name, tamper, releasedBytes] of cases) {
      const file = join(dir, name.replace(/ /g, '-'));
      const bytes = tamper(Buffer.from(good));
      await writeFile(file, bytes);
      const fh = await open(file, 'r');
      try {
        const reader = await ObjectReader.open(fh, dek);
        const released: Buffer[] = [];
        await assert.rejects(async () => {
          for await (const p of reader.read()) released.push(p);
        }, ObjectAuthError, name);
        const got = Buffer.concat(released);
        const expected = releasedBytes >= 0 ? releasedBytes : reader.size - (reader.size % CHUNK_SIZE || CHUNK_SIZE);
        assert.equal(got.length, expected, `${name}: only verified chunks are released`);
        assert.ok(got.equals(data.subarray(0, got.length)), name);
      } finally {
        await fh.close();
      }
    }
  } finally {
    await cleanup();
  }
});
