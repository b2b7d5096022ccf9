/**
 * Take-out keys: the JWT an administrator signs and its verification, the
 * same on installation and on every offline use.
 *
 * A take-out key is a JWS compact JWT:
 *   header  {"alg":"ES256"|"EdDSA","kid":<issuer kid>,"typ":"mydoc-takeout+jwt"}
 *   claims  {"iss":<approving administrator>,"sub":<user>,"aud":<pcId>,
 *            "jti":<request id>,"iat","nbf","exp":<NumericDate>,
 *            "kto":<JWE of K_to to this PC's device key, see envelope.ts>}
 * A key is valid from `nbf` (inclusive) to `exp` (exclusive), to the second.
 *
 * Security considerations (RFC 8725):
 * - The algorithm comes from an explicit allow-list (ES256, EdDSA) and must
 *   be the algorithm of the issuer key that `kid` names; `alg: none` and
 *   HS256 (e.g. an HMAC keyed with the public key's PEM) are refused before
 *   any key is touched. jose is given the same single-algorithm allow-list.
 * - The key is looked up by `kid` among the configured issuer public keys
 *   only; an unknown kid is refused (no embedded `jwk`/`x5c`/`jku`).
 * - `typ` must be `mydoc-takeout+jwt`, so no other JWT can pass as one.
 * - `aud` must be exactly this PC's id, `sub` exactly the user who logs in;
 *   no clock tolerance: expiry is to the second.
 * - One text per key: ECDSA signatures are malleable (if (r, s) verifies, so
 *   does (r, n - s)), and node:crypto, which jose uses, accepts both. So that
 *   nothing keyed on the token's text (the installed key, a cache, a log)
 *   can be given a second text of the same key, ES256 signatures are made
 *   and accepted in the low-s form only (s <= n/2, as in Bitcoin's BIP 62 and
 *   Ethereum's EIP-2), and the signature segment must be canonical
 *   base64url (no stray trailing bits). Ed25519 (RFC 8032) is not malleable:
 *   OpenSSL refuses s >= L.
 * - Each refusal has its own stable code for the audit log; the token itself
 *   is never put in a message.
 */
import { SignJWT, decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { isHighS, toLowS } from '../../crypto/es256-low-s.js';
import { ISSUER_ALGS, type IssuerAlg, type IssuerPrivateKey, type IssuerPublicKey } from './issuer-keys.js';
import { TakeoutError, type TakeoutErrorCode } from './errors.js';

export const TAKEOUT_TYP = 'mydoc-takeout+jwt';
const DAY_SECONDS = 86_400;
const REQUEST_ID = /^[A-Za-z0-9_-]{22}$/;

export interface TakeoutClaims {
  kid: string;
  iss: string;
  sub: string;
  aud: string;
  jti: string;
  iat: number;
  nbf: number;
  exp: number;
  /** JWE of K_to to this PC's device key. */
  kto: string;
}

export interface VerifyOptions {
  issuers: ReadonlyMap<string, IssuerPublicKey>;
  pcId: string;
  user: string;
  now: Date;
  maxDays: number;
  isRevoked: (jti: string) => boolean;
  /** On installation a key whose period starts later is accepted (it is checked at its start on use). */
  acceptFutureStart?: boolean;
}

/** Whether a string is a take-out request id (16 random bytes, base64url). */
export function isRequestId(value: unknown): value is string {
  return typeof value === 'string' && REQUEST_ID.test(value);
}

function refuse(code: TakeoutErrorCode, message: string): never {
  throw new TakeoutError(code, message);
}

function header(token: string): { alg: string; kid: unknown } {
  if (typeof token !== 'string' || token.split('.').length !== 3) refuse('ERR_TAKEOUT_MALFORMED', 'not a take-out key (not a signed JWT)');
  try {
    const h = decodeProtectedHeader(token);
    return { alg: String(h.alg), kid: h.kid };
  } catch {
    return refuse('ERR_TAKEOUT_MALFORMED', 'not a take-out key (unreadable header)');
  }
}

/** Refuses a signature segment that is not canonical base64url, or an ES256 signature in its high-s form. */
function checkSignatureForm(token: string, alg: string): void {
  const segment = token.slice(token.lastIndexOf('.') + 1);
  const signature = Buffer.from(segment, 'base64url');
  if (signature.toString('base64url') !== segment) refuse('ERR_TAKEOUT_SIGNATURE', 'the signature is not canonical base64url');
  if (alg === 'ES256' && isHighS(signature)) {
    refuse('ERR_TAKEOUT_SIGNATURE', 'the ES256 signature is not in its low-s form (s > n/2): another text of a key is refused');
  }
}

/** The same ES256 JWS with its signature in the low-s form (both forms verify; only the low-s one is accepted). */
function lowS(token: string): string {
  const dot = token.lastIndexOf('.');
  return `${token.slice(0, dot)}.${toLowS(Buffer.from(token.slice(dot + 1), 'base64url')).toString('base64url')}`;
}

/** The time to check an installation at: now, or the start of a period that begins later. */
function checkTime(token: string, opts: VerifyOptions): Date {
  if (!opts.acceptFutureStart) return opts.now;
  let nbf: unknown;
  try {
    nbf = decodeJwt(token).nbf;
  } catch {
    return opts.now;
  }
  return typeof nbf === 'number' && nbf * 1000 > opts.now.getTime() ? new Date(nbf * 1000) : opts.now;
}

function mapJoseError(err: unknown): never {
  if (err instanceof TakeoutError) throw err;
  const e = err as { code?: string; claim?: string };
  switch (e.code) {
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return refuse('ERR_TAKEOUT_SIGNATURE', 'the signature does not verify: the key was altered or not signed by this issuer');
    case 'ERR_JWT_EXPIRED':
      return refuse('ERR_TAKEOUT_EXPIRED', 'the take-out key has expired');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (e.claim === 'nbf') return refuse('ERR_TAKEOUT_NOT_YET_VALID', 'the take-out period has not begun');
      if (e.claim === 'aud') return refuse('ERR_TAKEOUT_OTHER_PC', 'the take-out key is for another PC');
      if (e.claim === 'sub') return refuse('ERR_TAKEOUT_OTHER_USER', 'the take-out key is for another user');
      return refuse('ERR_TAKEOUT_MALFORMED', `the take-out key has a missing or invalid "${e.claim ?? '?'}" claim`);
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return refuse('ERR_TAKEOUT_ALG', 'the signing algorithm is not allowed');
    default:
      return refuse('ERR_TAKEOUT_MALFORMED', 'not a valid take-out key');
  }
}

/** Verifies a take-out key for `user` on `pcId` at `now`; throws TakeoutError with the reason. */
export async function verifyTakeoutKey(token: string, opts: VerifyOptions): Promise<TakeoutClaims> {
  const { alg, kid } = header(token);
  if (!(ISSUER_ALGS as readonly string[]).includes(alg)) refuse('ERR_TAKEOUT_ALG', `the signing algorithm "${alg.slice(0, 16)}" is not allowed (only ES256 and EdDSA)`);
  const issuer = typeof kid === 'string' ? opts.issuers.get(kid) : undefined;
  if (!issuer) refuse('ERR_TAKEOUT_UNKNOWN_KID', 'the take-out key names no trusted issuer key (unknown kid)');
  if (issuer.alg !== alg) refuse('ERR_TAKEOUT_ALG', `the issuer key is for ${issuer.alg}, not ${alg}`);
  checkSignatureForm(token, alg);
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, issuer.verifyKey, {
      algorithms: [issuer.alg],
      typ: TAKEOUT_TYP,
      audience: opts.pcId,
      subject: opts.user,
      currentDate: checkTime(token, opts),
      requiredClaims: ['iss', 'sub', 'aud', 'jti', 'iat', 'nbf', 'exp'],
    }));
  } catch (err) {
    mapJoseError(err);
  }
  const { iss, sub, aud, jti, iat, nbf, exp, kto } = payload as Record<string, unknown>;
  if (typeof iss !== 'string' || iss === '' || typeof aud !== 'string' || typeof sub !== 'string' || !isRequestId(jti) || typeof kto !== 'string') {
    refuse('ERR_TAKEOUT_MALFORMED', 'the take-out key has missing or ill-typed claims');
  }
  const [i, n, e] = [iat, nbf, exp] as number[];
  if (!(e! > n!)) refuse('ERR_TAKEOUT_MALFORMED', 'the take-out period ends before it begins');
  if (e! - n! > opts.maxDays * DAY_SECONDS) refuse('ERR_TAKEOUT_TOO_LONG', `the take-out period is longer than takeout.maxDays (${opts.maxDays} days)`);
  if (opts.isRevoked(jti)) refuse('ERR_TAKEOUT_REVOKED', 'the take-out key was revoked');
  return { kid: kid as string, iss, sub, aud, jti, iat: i!, nbf: n!, exp: e!, kto };
}

/** The claims to sign (times in NumericDate seconds; `iss` is the approving administrator); `kid` comes from the issuer key. */
export type SignOptions = Omit<TakeoutClaims, 'kid'> & { issuer: IssuerPrivateKey };

/** Signs a take-out key (on the administrator's machine); an ES256 signature in its low-s form. */
export async function signTakeoutKey(opts: SignOptions): Promise<string> {
  const alg: IssuerAlg = opts.issuer.alg;
  const token = await new SignJWT({ kto: opts.kto })
    .setProtectedHeader({ alg, kid: opts.issuer.kid, typ: TAKEOUT_TYP })
    .setIssuer(opts.iss)
    .setSubject(opts.sub)
    .setAudience(opts.aud)
    .setJti(opts.jti)
    .setIssuedAt(opts.iat)
    .setNotBefore(opts.nbf)
    .setExpirationTime(opts.exp)
    .sign(opts.issuer.signKey);
  return alg === 'ES256' ? lowS(token) : token;
}
