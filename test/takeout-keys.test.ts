/**
 * Every refused take-out key, crafted by hand and offered to the agent: each
 * is refused with its own code and audited. Plus the verifier's period to
 * the second, and EdDSA issuers end to end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, decodeJwt, jwtVerify, type JWTPayload } from 'jose';
import { loadIssuers } from '../server/agent/compose.js';
import { generateIssuerKeyPair, loadIssuerPublicKey } from '../policy/takeout/issuer-keys.js';
import { verifyTakeoutKey } from '../policy/takeout/token.js';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createPrivateKey } from 'node:crypto';
import { tempDir } from './helpers/keys.js';
import { startTakeoutFixture, type TakeoutFixture } from './helpers/takeout.js';

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** The order n of P-256 (FIPS 186-4 D.1.2.3). */
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/** An ES256 JWS's s value, and the same JWS with s replaced by `s(old)`. */
function sOf(token: string): bigint {
  return BigInt(`0x${Buffer.from(token.split('.')[2]!, 'base64url').subarray(32).toString('hex')}`);
}
function withS(token: string, s: bigint): string {
  const [h, p, sig] = token.split('.') as [string, string, string];
  const r = Buffer.from(sig, 'base64url').subarray(0, 32);
  return `${h}.${p}.${Buffer.concat([r, Buffer.from(s.toString(16).padStart(64, '0'), 'hex')]).toString('base64url')}`;
}
/** The other valid signature of the same key: (r, n - s). */
const flipS = (token: string) => withS(token, P256_N - sOf(token));
/** The low-s form (what the agent accepts), for keys crafted here with jose. */
const lowS = (token: string) => (sOf(token) > P256_N / 2n ? flipS(token) : token);

async function pendingRequest(f: TakeoutFixture): Promise<string> {
  const res = await f.request('POST', '/api/takeout/requests', { body: { days: 2, reason: 'trip' } });
  assert.equal(res.status, 201, res.body);
  return res.json<{ id: string }>().id;
}

/** A valid token for `id`, re-signed by the trusted issuer with `change` applied to its claims. */
async function resigned(f: TakeoutFixture, id: string, change: (claims: JWTPayload) => void): Promise<string> {
  const claims = decodeJwt(await f.signFor(id, 2));
  change(claims);
  return lowS(await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: f.issuer.kid, typ: 'mydoc-takeout+jwt' }).sign(f.issuer.signKey));
}

test('refused keys: each with its own code, audited; nothing installed', { timeout: 60_000 }, async () => {
  const f = await startTakeoutFixture();
  try {
    const id = await pendingRequest(f);
    const now = Math.floor(f.clock.now / 1000);
    const valid = await f.signFor(id, 2);
    const [h, p, s] = valid.split('.') as [string, string, string];
    const header = { alg: 'ES256', kid: f.issuer.kid, typ: 'mydoc-takeout+jwt' };
    const claims = decodeJwt(valid);
    const publicPem = await readFile(join(f.dir, 'issuer-public.pem'), 'utf8');
    const other = await generateIssuerKeyPair('ES256');

    const cases: [string, string, string][] = [
      ['another PC', await resigned(f, id, (c) => (c.aud = 'pc-other')), 'ERR_TAKEOUT_OTHER_PC'],
      ['another user', await resigned(f, id, (c) => (c.sub = 'bob')), 'ERR_TAKEOUT_OTHER_USER'],
      ['expired', await resigned(f, id, (c) => ((c.iat = c.nbf = now - 3 * 86_400), (c.exp = now - 1))), 'ERR_TAKEOUT_EXPIRED'],
      ['alg none', `${b64url({ ...header, alg: 'none' })}.${p}.`, 'ERR_TAKEOUT_ALG'],
      ['HS256 keyed with the public key PEM', await new SignJWT(claims).setProtectedHeader({ ...header, alg: 'HS256' }).sign(Buffer.from(publicPem)), 'ERR_TAKEOUT_ALG'],
      ['unknown kid', await new SignJWT(claims).setProtectedHeader({ ...header, kid: other.kid }).sign(createPrivateKey(other.privatePem.split(/(?=-----BEGIN)/)[0]!)), 'ERR_TAKEOUT_UNKNOWN_KID'],
      ['a trusted kid, signed by another key', await new SignJWT(claims).setProtectedHeader(header).sign(createPrivateKey(other.privatePem.split(/(?=-----BEGIN)/)[0]!)), 'ERR_TAKEOUT_SIGNATURE'],
      ['payload edited after signing', `${h}.${b64url({ ...claims, exp: (claims.exp as number) + 30 * 86_400 })}.${s}`, 'ERR_TAKEOUT_SIGNATURE'],
      ['longer than maxDays', await resigned(f, id, (c) => (c.exp = (c.nbf as number) + 15 * 86_400)), 'ERR_TAKEOUT_TOO_LONG'],
      ['another typ', lowS(await new SignJWT(claims).setProtectedHeader({ ...header, typ: 'JWT' }).sign(f.issuer.signKey)), 'ERR_TAKEOUT_MALFORMED'],
      ['the valid key with s replaced by n - s (high-s)', flipS(valid), 'ERR_TAKEOUT_SIGNATURE'],
      ['the valid key with stray bits after its signature', `${h}.${p}.${s.slice(0, -1)}${ALPHABET[ALPHABET.indexOf(s.at(-1)!) | 1]}`, 'ERR_TAKEOUT_SIGNATURE'],
      ['iss not the installing administrator', await resigned(f, id, (c) => (c.iss = 'mallory')), 'ERR_TAKEOUT_MALFORMED'],
      ['another request', await resigned(f, id, (c) => (c.jti = 'A'.repeat(22))), 'ERR_TAKEOUT_REQUEST'],
      ['not a JWT', 'garbage', 'ERR_TAKEOUT_MALFORMED'],
    ];
    for (const [what, token, code] of cases) {
      const res = await f.request('POST', `/api/takeout/requests/${id}/key`, { user: 'dave', body: { token } });
      assert.equal(res.status, 400, `${what}: ${res.body}`);
      assert.equal(res.json<{ error: { code: string } }>().error.code, code, what);
    }
    // Revoked: the administrator revokes the request's id before the key is installed.
    assert.equal((await f.request('POST', '/api/takeout/revocations', { user: 'dave', body: { jti: id } })).status, 200);
    const revoked = await f.request('POST', `/api/takeout/requests/${id}/key`, { user: 'dave', body: { token: valid } });
    assert.equal(revoked.json<{ error: { code: string } }>().error.code, 'ERR_TAKEOUT_REVOKED');
    // Only administrators install.
    assert.equal((await f.request('POST', `/api/takeout/requests/${id}/key`, { body: { token: valid } })).status, 403);

    const denied = (await f.audit()).filter((r) => r.action === 'takeout.approve').map((r) => `${r.decision} ${r.reason?.split(':')[0]}`);
    assert.deepEqual(denied, [...cases.map(([, , code]) => `deny ${code}`), 'deny ERR_TAKEOUT_REVOKED']);
    const log = JSON.stringify(await f.audit());
    assert.ok(!log.includes(valid) && !log.includes(p), 'no token in the audit log');
    const status = (await f.request('GET', '/api/takeout/status')).json<{ key?: unknown }>();
    assert.equal(status.key, undefined, 'nothing was installed');
  } finally {
    await f.close();
  }
});

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

test('ES256: keys are signed in the low-s form, and the high-s twin that node:crypto accepts is refused', { timeout: 60_000 }, async () => {
  const f = await startTakeoutFixture();
  try {
    const id = await pendingRequest(f);
    const issuer = (await loadIssuers(f.config)).get(f.issuer.kid)!;
    for (let i = 0; i < 40; i++) {
      const token = await f.signFor(id, 2);
      assert.ok(sOf(token) <= P256_N / 2n, 'signed low-s');
      // The twin verifies with jose (node:crypto) alone, so refusing it is this code's doing.
      const twin = flipS(token);
      assert.notEqual(twin, token);
      assert.equal((await jwtVerify(twin, issuer.verifyKey, { algorithms: ['ES256'] })).payload.jti, id);
      const opts = { issuers: new Map([[issuer.kid, issuer]]), pcId: f.config.pcId, user: 'alice', now: new Date(f.clock.now), maxDays: 14, isRevoked: () => false };
      assert.equal((await verifyTakeoutKey(token, opts)).jti, id);
      await assert.rejects(verifyTakeoutKey(twin, opts), { code: 'ERR_TAKEOUT_SIGNATURE', message: /low-s/ });
    }
    const twin = flipS(await f.signFor(id, 2));
    const res = await f.request('POST', `/api/takeout/requests/${id}/key`, { user: 'dave', body: { token: twin } });
    assert.deepEqual([res.status, res.json<{ error: { code: string } }>().error.code], [400, 'ERR_TAKEOUT_SIGNATURE']);
  } finally {
    await f.close();
  }
});

test('the verifier: valid from nbf to exp, to the second; sub and aud exact', { timeout: 60_000 }, async () => {
  const pair = await generateIssuerKeyPair('EdDSA');
  const { dir, cleanup } = await tempDir();
  try {
    await writeFile(join(dir, 'issuer.pem'), pair.publicPem);
    const issuer = await loadIssuerPublicKey(join(dir, 'issuer.pem'), 'issuer');
    assert.equal(issuer.alg, 'EdDSA');
    const signKey = createPrivateKey(pair.privatePem.split(/(?=-----BEGIN)/)[0]!);
    const nbf = 1_900_000_000;
    const exp = nbf + 86_400;
    const token = await new SignJWT({ kto: 'x' })
      .setProtectedHeader({ alg: 'EdDSA', kid: issuer.kid, typ: 'mydoc-takeout+jwt' })
      .setIssuer('dave').setSubject('alice').setAudience('pc-test').setJti('B'.repeat(22)).setIssuedAt(nbf).setNotBefore(nbf).setExpirationTime(exp)
      .sign(signKey);
    const at = (seconds: number, user = 'alice', pcId = 'pc-test') =>
      verifyTakeoutKey(token, { issuers: new Map([[issuer.kid, issuer]]), pcId, user, now: new Date(seconds * 1000), maxDays: 14, isRevoked: () => false });
    assert.equal((await at(nbf)).sub, 'alice');
    assert.equal((await at(exp - 1)).exp, exp);
    await assert.rejects(at(exp), { code: 'ERR_TAKEOUT_EXPIRED' });
    await assert.rejects(at(nbf - 1), { code: 'ERR_TAKEOUT_NOT_YET_VALID' });
    await assert.rejects(at(nbf, 'alicex'), { code: 'ERR_TAKEOUT_OTHER_USER' });
    await assert.rejects(at(nbf, 'alice', 'pc-tes'), { code: 'ERR_TAKEOUT_OTHER_PC' });
    await assert.rejects(
      verifyTakeoutKey(token, { issuers: new Map([[issuer.kid, issuer]]), pcId: 'pc-test', user: 'alice', now: new Date(nbf * 1000), maxDays: 14, isRevoked: () => true }),
      { code: 'ERR_TAKEOUT_REVOKED' },
    );
  } finally {
    await cleanup();
  }
});

test('EdDSA issuer: request, approval and offline use', { timeout: 60_000 }, async () => {
  const f = await startTakeoutFixture({ alg: 'EdDSA' });
  try {
    const put = await f.request('PUT', '/Documents/a.txt', { body: 'eddsa' });
    assert.equal(put.status, 201);
    const id = await pendingRequest(f);
    assert.equal((await f.request('POST', `/api/takeout/requests/${id}/key`, { user: 'dave', body: { token: await f.signFor(id, 1) } })).status, 200);
    await f.setOffline(true);
    assert.equal((await f.request('GET', '/Documents/a.txt')).body, 'eddsa');
  } finally {
    await f.close();
  }
});
