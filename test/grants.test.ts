/**
 * The console's grants and share rules as the agent checks them: each
 * forgery, swap and expiry refused with its own code; the accepted forms
 * read back exactly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { SignJWT, decodeJwt } from 'jose';
import { GrantError, type GrantErrorCode } from '../policy/grants/errors.js';
import { GRANT_MAX_SECONDS, signGrant, verifyGrant, type Grant } from '../policy/grants/grant.js';
import { signShareRule, verifyShareRule, type ShareRule } from '../policy/grants/share-rule.js';
import { generateIssuerKeyPair, parseIssuerPublicKey, type IssuerPrivateKey, type IssuerPublicKey } from '../policy/takeout/issuer-keys.js';
import { verifyTakeoutKey } from '../policy/takeout/token.js';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { toLowS } from '../crypto/es256-low-s.js';

/** A hand-made ES256 JWS in its low-s form (the one form accepted), so a test refusal is for what it changes. */
function lowS(token: string): string {
  const dot = token.lastIndexOf('.');
  return token.startsWith('eyJhbGciOiJFUzI1NiI') ? `${token.slice(0, dot)}.${toLowS(Buffer.from(token.slice(dot + 1), 'base64url')).toString('base64url')}` : token;
}

const PEM_BLOCK = /-----BEGIN ([A-Z ]+)-----[\s\S]*?-----END \1-----/g;

async function issuer(alg: 'ES256' | 'EdDSA'): Promise<{ priv: IssuerPrivateKey; pub: IssuerPublicKey }> {
  const pair = await generateIssuerKeyPair(alg);
  const [sign, dec] = pair.privatePem.match(PEM_BLOCK)!;
  const pub = await parseIssuerPublicKey(pair.publicPem, 'test key');
  return { pub, priv: { kid: pair.kid, alg, signKey: createPrivateKey(sign!), decryptKey: createPrivateKey(dec!) } };
}

const NOW = new Date('2026-12-02T12:00:00Z');
const T = Math.floor(NOW.getTime() / 1000);

function grant(change: Partial<Grant> = {}): Grant {
  return { id: randomUUID(), pcId: 'PC1', actor: 'bob', kind: 'admin', role: 'data', user: 'alice', access: 'read', method: 'GET', base: '/pcs/PC1/alice', root: [], prefix: ['Documents'], issuedAt: T - 1, expires: T + 60, ...change };
}

async function refusedWith(promise: Promise<unknown>, code: GrantErrorCode): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof GrantError, String(err));
    assert.equal(err.code, code, err.message);
    return true;
  });
}

for (const alg of ['ES256', 'EdDSA'] as const) {
  test(`${alg} grants: read back exactly; another key, PC, type, lifetime, expiry and forged headers are refused`, async () => {
    const { priv, pub } = await issuer(alg);
    const other = await issuer(alg);
    const opts = { key: pub, pcId: 'PC1', now: NOW };
    const g = grant();
    assert.deepEqual(await verifyGrant(await signGrant(g, priv), opts), g);
    const share = grant({ kind: 'share', role: 'share', access: 'readwrite', ruleId: 'r1', groups: ['cn=a'], root: ['Projects'], prefix: ['Projects'], method: 'PUT' });
    assert.deepEqual(await verifyGrant(await signGrant(share, priv), opts), share);

    await refusedWith(verifyGrant(await signGrant(g, other.priv), opts), 'ERR_GRANT_SIGNATURE');
    await refusedWith(verifyGrant(await signGrant(g, priv), { ...opts, pcId: 'PC2' }), 'ERR_GRANT_OTHER_PC');
    await refusedWith(verifyGrant(await signGrant(g, priv), { ...opts, now: new Date((T + 60) * 1000) }), 'ERR_GRANT_EXPIRED');
    await refusedWith(signGrant(grant({ expires: T - 1 + GRANT_MAX_SECONDS + 1 }), priv), 'ERR_GRANT_MALFORMED');
    await refusedWith(verifyGrant(await signGrant(grant({ kind: 'admin', access: 'readwrite' }), priv), opts), 'ERR_GRANT_ACCESS');
    await refusedWith(verifyGrant(await signGrant(grant({ kind: 'share' }), priv), opts), 'ERR_GRANT_MALFORMED');
    await refusedWith(verifyGrant(await signGrant(grant({ prefix: ['..'] }), priv), opts), 'ERR_GRANT_MALFORMED');
    await refusedWith(verifyGrant(await signGrant(grant({ prefix: ['a/b'] }), priv), opts), 'ERR_GRANT_MALFORMED');
    await refusedWith(verifyGrant(undefined, opts), 'ERR_GRANT_MALFORMED');
    await refusedWith(verifyGrant('not.a.jwt', opts), 'ERR_GRANT_MALFORMED');

    // The right key's claims, but another typ, alg none, HS256 keyed with the public PEM, a longer life.
    const claims = decodeJwt(await signGrant(g, priv));
    const typed = async (typ: string) => lowS(await new SignJWT(claims).setProtectedHeader({ alg, kid: priv.kid, typ }).sign(priv.signKey));
    await refusedWith(verifyGrant(await typed('mydoc-share-rule+jwt'), opts), 'ERR_GRANT_MALFORMED');
    await refusedWith(verifyGrant(await typed('JWT'), opts), 'ERR_GRANT_MALFORMED');
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    await refusedWith(verifyGrant(`${b64({ alg: 'none', kid: priv.kid, typ: 'mydoc-grant+jwt' })}.${b64(claims)}.`, opts), 'ERR_GRANT_SIGNATURE');
    const publicPem = createPublicKey(priv.signKey).export({ type: 'spki', format: 'pem' });
    const hs = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: priv.kid, typ: 'mydoc-grant+jwt' }).sign(Buffer.from(publicPem));
    await refusedWith(verifyGrant(hs, opts), 'ERR_GRANT_SIGNATURE');
    const long = lowS(await new SignJWT({ ...claims, exp: T + GRANT_MAX_SECONDS + 10 }).setProtectedHeader({ alg, kid: priv.kid, typ: 'mydoc-grant+jwt' }).sign(priv.signKey));
    await refusedWith(verifyGrant(long, opts), 'ERR_GRANT_MALFORMED');

    // A grant is not a take-out key, and a take-out verifier refuses it.
    await assert.rejects(verifyTakeoutKey(await signGrant(g, priv), { issuers: new Map([[pub.kid, pub]]), pcId: 'PC1', user: 'alice', now: NOW, maxDays: 30, isRevoked: () => false }), { code: 'ERR_TAKEOUT_MALFORMED' });
  });
}

test('share rules: read back; a grant or another key does not pass as one; expiry on the verifier\'s clock', async () => {
  const { priv, pub } = await issuer('ES256');
  const other = await issuer('ES256');
  const opts = { key: pub, pcId: 'PC1', now: NOW };
  const rule: ShareRule = { id: 'rule-1', pcId: 'PC1', user: 'alice', folder: ['Documents', 'Projects'], grantee: { kind: 'group', name: 'cn=team' }, access: 'read', createdBy: 'carol', issuedAt: T, expires: T + 86_400 };
  assert.deepEqual(await verifyShareRule(await signShareRule(rule, priv), opts), rule);
  await refusedWith(verifyShareRule(await signShareRule(rule, other.priv), opts), 'ERR_GRANT_SIGNATURE');
  await refusedWith(verifyShareRule(await signShareRule(rule, priv), { ...opts, pcId: 'PC2' }), 'ERR_GRANT_OTHER_PC');
  await refusedWith(verifyShareRule(await signShareRule(rule, priv), { ...opts, now: new Date((T + 86_400) * 1000) }), 'ERR_GRANT_EXPIRED');
  await refusedWith(verifyShareRule(await signShareRule({ ...rule, folder: [] }, priv), opts), 'ERR_GRANT_MALFORMED');
  await refusedWith(verifyShareRule(await signGrant(grant(), priv), opts), 'ERR_GRANT_MALFORMED');
  await refusedWith(verifyGrant(await signShareRule(rule, priv), opts), 'ERR_GRANT_MALFORMED');
});
