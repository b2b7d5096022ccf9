// Regenerates test/vectors/object-v1.json from fixed keys and randomness.
// Run only when the format version changes: the committed vectors are the
// reference that later code must keep reading and producing.
import { writeFileSync } from 'node:fs';
import { createSecretKey } from 'node:crypto';
import { ObjectEncryptor } from '../dist/crypto/object-format.js';

const hex = (s) => Buffer.from(s, 'hex');
const dek = { id: hex('00112233445566778899aabbccddeeff'), key: createSecretKey(hex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f')) };
const pattern = (n) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7) % 251));
const cases = [
  ['empty', 0],
  ['one byte', 1],
  ['exactly one chunk (64 KiB)', 65536],
  ['one chunk and one byte (64 KiB + 1)', 65537],
  ['three chunks (2 x 64 KiB + 500)', 2 * 65536 + 500],
];
const vectors = cases.map(([name, length], n) => {
  const random = {
    fileId: Buffer.alloc(16, 0x10 + n),
    fileKey: Buffer.alloc(32, 0x20 + n),
    wrapNonce: Buffer.alloc(12, 0x30 + n),
  };
  const enc = new ObjectEncryptor(dek, random);
  const ct = Buffer.concat([...enc.update(pattern(length)), ...enc.final()]);
  return { name, plaintext: { length, pattern: 'byte i = (i * 7) mod 251' }, fileId: random.fileId.toString('hex'), fileKey: random.fileKey.toString('hex'), wrapNonce: random.wrapNonce.toString('hex'), ciphertext: ct.toString('hex') };
});
const doc = {
  format: 'mydoc object format, version 1 (docs/format.md)',
  dekId: dek.id.toString('hex'),
  dek: dek.key.export().toString('hex'),
  vectors,
};
writeFileSync(new URL('../test/vectors/object-v1.json', import.meta.url), JSON.stringify(doc, null, 1) + '\n');
