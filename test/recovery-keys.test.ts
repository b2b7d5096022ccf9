import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { generateP256KeyPair } from '../crypto/key-files.js';
import { HOLD_MS, RecoveryKeys, parseRecoveryKey } from '../server/console/recovery/recovery-keys.js';
import { RecoveryError } from '../server/console/recovery/errors.js';

const refused = (err: unknown) => err instanceof RecoveryError && err.code === 'ERR_RECOVERY_KEY';

test('a held recovery key is per session, dropped on request and after one hour', () => {
  let now = 1_000_000;
  const keys = new RecoveryKeys(() => now);
  const a = {};
  const b = {};
  const { privatePem } = generateP256KeyPair();
  assert.deepEqual(keys.hold(a, privatePem), { until: now + HOLD_MS });
  assert.equal(keys.get(a)?.key.asymmetricKeyType, 'ec');
  assert.equal(keys.get(b), undefined, 'another session holds nothing');
  now += HOLD_MS - 1;
  assert.ok(keys.get(a));
  now += 1;
  assert.equal(keys.get(a), undefined, 'one hour after it was given');
  keys.hold(b, privatePem);
  keys.drop(b);
  assert.equal(keys.get(b), undefined);
});

test('only a PEM P-256 private key is taken, and what was pasted is never repeated', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const encrypted = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }).toString();
  const pub = generateP256KeyPair().publicPem;
  for (const bad of ['', 'secret-looking garbage', rsa, encrypted, pub, `-----BEGIN PRIVATE KEY-----\n${'A'.repeat(5000)}\n`]) {
    assert.throws(() => parseRecoveryKey(bad), (err: unknown) => refused(err) && !(err as Error).message.includes('secret-looking') && !(err as Error).message.includes('AAAA'));
  }
  assert.equal(parseRecoveryKey(`\n  ${generateP256KeyPair().privatePem}\n`).asymmetricKeyDetails?.namedCurve, 'prime256v1');
});
