/**
 * The signed JWTs the console sends its agents besides take-out keys
 * (grant.ts, share-rule.ts): one way to sign them with the console's
 * issuer key and one way to check them against the key the agent pinned.
 *
 * Security considerations (RFC 8725): the algorithm must be the pinned
 * key's (ES256 or EdDSA; `none` and HMAC are refused before any key is
 * touched); `kid` must be the pinned key's; `typ` must be the caller's, so
 * a grant cannot pass as a share rule or a take-out key, nor the other way
 * round; `aud` must be this PC. ES256 signatures are made and accepted in
 * their low-s form only, so one grant has one text. No clock tolerance.
 */
import { SignJWT, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { isHighS, toLowS } from '../../crypto/es256-low-s.js';
import type { IssuerPrivateKey, IssuerPublicKey } from '../takeout/issuer-keys.js';
import { GrantError, type GrantErrorCode } from './errors.js';

function refuse(code: GrantErrorCode, message: string): never {
  throw new GrantError(code, message);
}

/** Signs `claims` (NumericDate times) as a JWT of type `typ` for PC `aud`. */
export async function signConsoleJwt(typ: string, claims: JWTPayload & { aud: string; jti: string; iat: number; exp: number }, key: IssuerPrivateKey): Promise<string> {
  const token = await new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, typ }).sign(key.signKey);
  if (key.alg !== 'ES256') return token;
  const dot = token.lastIndexOf('.');
  return `${token.slice(0, dot)}.${toLowS(Buffer.from(token.slice(dot + 1), 'base64url')).toString('base64url')}`;
}

/** Verifies a JWT of type `typ` for PC `pcId` against the pinned console key at `now`; throws GrantError. */
export async function verifyConsoleJwt(token: unknown, typ: string, opts: { key: IssuerPublicKey; pcId: string; now: Date }, what: string): Promise<JWTPayload> {
  if (typeof token !== 'string' || token.split('.').length !== 3) refuse('ERR_GRANT_MALFORMED', `not a ${what} (not a signed JWT)`);
  let alg: string;
  let kid: unknown;
  try {
    const h = decodeProtectedHeader(token);
    alg = String(h.alg);
    kid = h.kid;
  } catch {
    return refuse('ERR_GRANT_MALFORMED', `not a ${what} (unreadable header)`);
  }
  if (alg !== opts.key.alg) refuse('ERR_GRANT_SIGNATURE', `the ${what} is not signed with the console's key (algorithm ${alg.slice(0, 16)})`);
  if (kid !== opts.key.kid) refuse('ERR_GRANT_SIGNATURE', `the ${what} is not signed with the console's key (another key id)`);
  const segment = token.slice(token.lastIndexOf('.') + 1);
  const signature = Buffer.from(segment, 'base64url');
  if (signature.toString('base64url') !== segment || (alg === 'ES256' && isHighS(signature))) refuse('ERR_GRANT_SIGNATURE', `the ${what}'s signature is not in its one accepted form`);
  try {
    const { payload } = await jwtVerify(token, opts.key.verifyKey, { algorithms: [opts.key.alg], typ, audience: opts.pcId, currentDate: opts.now, requiredClaims: ['aud', 'jti', 'iat', 'exp'] });
    return payload;
  } catch (err) {
    const e = err as { code?: string; claim?: string };
    if (e.code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') refuse('ERR_GRANT_SIGNATURE', `the ${what}'s signature does not verify with the console's key`);
    if (e.code === 'ERR_JWT_EXPIRED') refuse('ERR_GRANT_EXPIRED', `the ${what} has expired`);
    if (e.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' && e.claim === 'aud') refuse('ERR_GRANT_OTHER_PC', `the ${what} is for another PC`);
    if (e.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' && e.claim === 'typ') refuse('ERR_GRANT_MALFORMED', `not a ${what} (type ${typ} expected)`);
    return refuse('ERR_GRANT_MALFORMED', `not a valid ${what}`);
  }
}
