/**
 * Encrypt and decrypt throughput of the object format (ObjectEncryptor /
 * ObjectDecryptor fed 1 MiB pieces) against raw AES-256-GCM from node:crypto
 * over the same bytes in one update+final call. All in memory.
 *
 * The one-call baseline allocates one output buffer as large as the input,
 * and faulting in its pages costs more than the cipher; so a second baseline,
 * raw AES-256-GCM in 64 KiB calls (one cipher per chunk, as the format does,
 * without HKDF, nonces or header), isolates what the format itself costs.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { ObjectDecryptor, ObjectEncryptor, objectSize } from '../../crypto/object-format.js';
import { randomDataKey } from '../helpers/keys.js';
import { MiB, alternating, emit, progress, scaledBytes, throughputFigure, timed } from './measure.js';

const RUNS = 5;
const PIECE = MiB;
const bytes = scaledBytes(256 * MiB);

const plain = randomBytes(bytes);
const dek = randomDataKey();
const rawKey = randomBytes(32);
const iv = randomBytes(12);

function rawEncrypt(): { body: Buffer; tag: Buffer } {
  const cipher = createCipheriv('aes-256-gcm', rawKey, iv, { authTagLength: 16 });
  const body = cipher.update(plain);
  cipher.final();
  return { body, tag: cipher.getAuthTag() };
}

function rawDecrypt(sealed: { body: Buffer; tag: Buffer }): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', rawKey, iv, { authTagLength: 16 });
  decipher.setAuthTag(sealed.tag);
  const out = decipher.update(sealed.body);
  decipher.final();
  return out;
}

const CHUNK = 64 * 1024;

function rawChunkedEncrypt(sink: (piece: Buffer) => void): void {
  for (let pos = 0; pos < plain.length; pos += CHUNK) {
    const cipher = createCipheriv('aes-256-gcm', rawKey, iv, { authTagLength: 16 });
    sink(cipher.update(plain.subarray(pos, pos + CHUNK)));
    cipher.final();
    sink(cipher.getAuthTag());
  }
}

/** Encrypts `plain` in 1 MiB pieces; `sink` sees every output piece. */
function objectEncrypt(sink: (piece: Buffer) => void): void {
  const enc = new ObjectEncryptor(dek);
  for (let pos = 0; pos < plain.length; pos += PIECE) {
    for (const piece of enc.update(plain.subarray(pos, pos + PIECE))) sink(piece);
  }
  for (const piece of enc.final()) sink(piece);
}

/** Decrypts `sealed` in 1 MiB pieces; `sink` sees every plaintext piece. */
function objectDecrypt(sealed: Buffer, sink: (piece: Buffer) => void): void {
  const dec = new ObjectDecryptor(dek);
  for (let pos = 0; pos < sealed.length; pos += PIECE) {
    for (const piece of dec.update(sealed.subarray(pos, pos + PIECE))) sink(piece);
  }
  for (const piece of dec.final()) sink(piece);
}

// Untimed warm-up that also checks both paths round-trip the bytes.
progress(`object-format: ${bytes} bytes, ${RUNS} runs`);
const rawSealed = rawEncrypt();
if (!rawDecrypt(rawSealed).equals(plain)) throw new Error('raw AES-GCM round trip failed');
const pieces: Buffer[] = [];
objectEncrypt((p) => pieces.push(p));
const sealed = Buffer.concat(pieces);
pieces.length = 0;
if (sealed.length !== objectSize(bytes)) throw new Error(`object is ${sealed.length} bytes, expected ${objectSize(bytes)}`);
let checked = 0;
objectDecrypt(sealed, (p) => {
  if (!p.equals(plain.subarray(checked, checked + p.length))) throw new Error(`object round trip differs near byte ${checked}`);
  checked += p.length;
});
if (checked !== bytes) throw new Error(`object round trip gave ${checked} bytes, expected ${bytes}`);

// Timed runs. Outputs are counted and dropped, as a streaming writer would.
const encrypt = { candidate: [] as number[], baseline: [] as number[] };
const chunked = { candidate: [] as number[], baseline: [] as number[] };
const decrypt = { candidate: [] as number[], baseline: [] as number[] };
let produced = 0;
const count = (p: Buffer): void => {
  produced += p.length;
};
for (let run = 0; run < RUNS; run++) {
  await alternating(
    run,
    async () => {
      encrypt.baseline.push(await timed(() => void rawEncrypt()));
    },
    async () => {
      encrypt.candidate.push(await timed(() => objectEncrypt(count)));
    },
  );
  await alternating(
    run,
    async () => {
      decrypt.baseline.push(await timed(() => void rawDecrypt(rawSealed)));
    },
    async () => {
      decrypt.candidate.push(await timed(() => objectDecrypt(sealed, count)));
    },
  );
  await alternating(
    run,
    async () => {
      chunked.baseline.push(await timed(() => rawChunkedEncrypt(() => undefined)));
    },
    async () => {
      chunked.candidate.push(await timed(() => objectEncrypt(() => undefined)));
    },
  );
  progress(`object-format: run ${run + 1}/${RUNS} done`);
}
if (produced !== RUNS * (sealed.length + bytes)) throw new Error(`timed runs produced ${produced} bytes, expected ${RUNS * (sealed.length + bytes)}`);

const note = { piece: PIECE, baselineOp: 'one createCipheriv/createDecipheriv aes-256-gcm update+final over the whole buffer' };
emit(throughputFigure('object.encrypt', bytes, encrypt, note));
emit(throughputFigure('object.decrypt', bytes, decrypt, note));
emit(throughputFigure('object.encrypt-vs-64KiB-calls', bytes, chunked, { piece: PIECE, baselineOp: 'raw aes-256-gcm, one createCipheriv+update+final per 64 KiB' }));
