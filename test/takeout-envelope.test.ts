/**
 * K_to's envelope (policy/takeout/envelope.ts) on its own: sealed to a
 * P-256 key and opened only with the matching private key, the expected
 * kind, and the same request, user and PC; anything else fails alike
 * (ERR_TAKEOUT_SECRET) without key material in the message.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { CompactEncrypt } from 'jose';
import { openKto, recipientKeyId, sealKto } from '../policy/takeout/envelope.js';

const pair = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
const binding = { rid: 'R'.repeat(22), user: 'alice', pcId: 'pc-1' };

function refused(kTo: Buffer, pattern: RegExp) {
  return (err: unknown) => {
    assert.equal((err as { code?: string }).code, 'ERR_TAKEOUT_SECRET');
    assert.match((err as Error).message, pattern);
    assert.ok(!(err as Error).message.includes(kTo.toString('base64url')), 'no K_to in the message');
    return true;
  };
}

test('sealed to a key, opened with its private half, for the same request, user and PC', { timeout: 30_000 }, async () => {
  const { privateKey, publicKey } = pair();
  const kTo = randomBytes(32);
  const jwe = await sealKto(kTo, binding, publicKey, 'mydoc-kto+json');
  assert.ok(!jwe.includes(kTo.toString('base64url')), 'K_to is not in the clear');
  assert.ok((await openKto(jwe, privateKey, 'mydoc-kto+json', binding)).equals(kTo));
  assert.equal(await recipientKeyId(privateKey), await recipientKeyId(createPublicKey(privateKey)), 'the kid is the same from either half');
  assert.notEqual(await recipientKeyId(publicKey), await recipientKeyId(pair().publicKey));
});

test('another key, another kind, another request, user or PC, or a tampered envelope: refused alike', { timeout: 30_000 }, async () => {
  const { privateKey, publicKey } = pair();
  const kTo = randomBytes(32);
  const jwe = await sealKto(kTo, binding, publicKey, 'mydoc-kto+json');
  await assert.rejects(openKto(jwe, pair().privateKey, 'mydoc-kto+json', binding), refused(kTo, /does not open with this key/));
  await assert.rejects(openKto(jwe, privateKey, 'mydoc-kto-request+json', binding), refused(kTo, /does not open with this key/), 'a request envelope is not a key envelope');
  for (const change of [{ rid: 'S'.repeat(22) }, { user: 'bob' }, { pcId: 'pc-2' }]) {
    await assert.rejects(openKto(jwe, privateKey, 'mydoc-kto+json', { ...binding, ...change }), refused(kTo, /bound to another request, user or PC/), JSON.stringify(change));
  }
  const [h, k, iv, c, t] = jwe.split('.') as [string, string, string, string, string];
  const flipped = Buffer.from(c, 'base64url');
  flipped[0]! ^= 1;
  await assert.rejects(openKto([h, k, iv, flipped.toString('base64url'), t].join('.'), privateKey, 'mydoc-kto+json', binding), refused(kTo, /does not open/));
});

test('only ECDH-ES with A256GCM opens, and K_to must be 32 bytes', { timeout: 30_000 }, async () => {
  const { privateKey, publicKey } = pair();
  const kTo = randomBytes(32);
  const payload = (kto: Buffer) => Buffer.from(JSON.stringify({ v: 1, ...binding, kto: kto.toString('base64url') }));
  const wrapped = await new CompactEncrypt(payload(kTo)).setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', cty: 'mydoc-kto+json' }).encrypt(publicKey);
  await assert.rejects(openKto(wrapped, privateKey, 'mydoc-kto+json', binding), refused(kTo, /does not open/), 'ECDH-ES+A256KW');
  const cbc = await new CompactEncrypt(payload(kTo)).setProtectedHeader({ alg: 'ECDH-ES', enc: 'A256CBC-HS512', cty: 'mydoc-kto+json' }).encrypt(publicKey);
  await assert.rejects(openKto(cbc, privateKey, 'mydoc-kto+json', binding), refused(kTo, /does not open/), 'A256CBC-HS512');
  const short = await new CompactEncrypt(payload(kTo.subarray(0, 16))).setProtectedHeader({ alg: 'ECDH-ES', enc: 'A256GCM', cty: 'mydoc-kto+json' }).encrypt(publicKey);
  await assert.rejects(openKto(short, privateKey, 'mydoc-kto+json', binding), refused(kTo, /wrong size/));
});
