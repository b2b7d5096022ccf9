/**
 * A grant: the console's signed permission for one request to one PC's
 * data, minted per request and checked by the agent before it opens
 * anything (console.md, Rights and privacy).
 *
 *   header  {"alg":"ES256"|"EdDSA","kid":<console issuer kid>,"typ":"mydoc-grant+jwt"}
 *   claims  {"aud":<pcId>,"jti":<request id>,"iat","exp":<at most GRANT_MAX_SECONDS later>,
 *            "sub":<who: the administrator, or the share's grantee>,
 *            "knd":"admin"|"share", "rol":<the role that allowed it: data | share>,
 *            "usr":<the owner user>, "acc":"list"|"read"|"readwrite",
 *            "mth":<the HTTP method>, "base":<the console's href prefix, e.g. "/pcs/PC1/alice">,
 *            "root":[names: the vault folder that `base` maps to; [] for admin browsing],
 *            "pfx":[names: the vault folder the request must stay in],
 *            "rul":<share rule id, share only>, "grp":[the grantee's groups, nested resolved, share only]}
 *
 * `list` allows names, sizes and dates (PROPFIND, HEAD, OPTIONS); `read`
 * also contents (GET); `readwrite` (shares only) also changes.
 * The agent refuses a request id it has seen (one grant, one request).
 */
import type { JWTPayload } from 'jose';
import type { IssuerPrivateKey, IssuerPublicKey } from '../takeout/issuer-keys.js';
import { GrantError } from './errors.js';
import { signConsoleJwt, verifyConsoleJwt } from './jws.js';

export const GRANT_TYP = 'mydoc-grant+jwt';
/** The longest a grant lives. */
export const GRANT_MAX_SECONDS = 300;
/** How long the console makes them live. */
export const GRANT_SECONDS = 60;

export type GrantKind = 'admin' | 'share';
export type GrantAccess = 'list' | 'read' | 'readwrite';

export interface Grant {
  /** The request id (jti). */
  id: string;
  pcId: string;
  /** The administrator or grantee the request is for. */
  actor: string;
  kind: GrantKind;
  role: string;
  /** The owner of the data. */
  user: string;
  access: GrantAccess;
  method: string;
  base: string;
  root: readonly string[];
  prefix: readonly string[];
  ruleId?: string;
  groups?: readonly string[];
  /** Epoch seconds. */
  issuedAt: number;
  expires: number;
}

const isNames = (v: unknown): v is string[] => Array.isArray(v) && v.every((n) => typeof n === 'string' && n !== '' && n !== '.' && n !== '..' && !n.includes('/') && !n.includes('\\') && !n.includes('\u0000'));
const isText = (v: unknown): v is string => typeof v === 'string' && v !== '' && v.length <= 1024;

export async function signGrant(grant: Grant, key: IssuerPrivateKey): Promise<string> {
  if (grant.expires - grant.issuedAt > GRANT_MAX_SECONDS) throw new GrantError('ERR_GRANT_MALFORMED', `a grant lives at most ${GRANT_MAX_SECONDS} s`);
  const claims: JWTPayload & { aud: string; jti: string; iat: number; exp: number } = {
    aud: grant.pcId,
    jti: grant.id,
    iat: grant.issuedAt,
    exp: grant.expires,
    sub: grant.actor,
    knd: grant.kind,
    rol: grant.role,
    usr: grant.user,
    acc: grant.access,
    mth: grant.method,
    base: grant.base,
    root: [...grant.root],
    pfx: [...grant.prefix],
    ...(grant.ruleId !== undefined ? { rul: grant.ruleId } : {}),
    ...(grant.groups !== undefined ? { grp: [...grant.groups] } : {}),
  };
  return signConsoleJwt(GRANT_TYP, claims, key);
}

/** Verifies a grant's signature (the pinned console key), PC and time; the caller checks the request against it. */
export async function verifyGrant(token: unknown, opts: { key: IssuerPublicKey; pcId: string; now: Date }): Promise<Grant> {
  const p = (await verifyConsoleJwt(token, GRANT_TYP, opts, 'grant')) as Record<string, unknown>;
  const { jti, aud, iat, exp, sub, knd, rol, usr, acc, mth, base, root, pfx, rul, grp } = p;
  const ok =
    isText(jti) && isText(aud) && typeof iat === 'number' && typeof exp === 'number' && isText(sub) && (knd === 'admin' || knd === 'share') && isText(rol) && isText(usr) &&
    (acc === 'list' || acc === 'read' || acc === 'readwrite') && isText(mth) && typeof base === 'string' && base.startsWith('/') && isNames(root) && isNames(pfx) &&
    (rul === undefined || isText(rul)) && (grp === undefined || (Array.isArray(grp) && grp.every(isText)));
  if (!ok) throw new GrantError('ERR_GRANT_MALFORMED', 'the grant has missing or ill-typed claims');
  if (exp - iat > GRANT_MAX_SECONDS) throw new GrantError('ERR_GRANT_MALFORMED', `the grant lives longer than ${GRANT_MAX_SECONDS} s`);
  if (knd === 'admin' && acc === 'readwrite') throw new GrantError('ERR_GRANT_ACCESS', 'administrators read; they do not write into users\' areas');
  if (knd === 'share' && (rul === undefined || grp === undefined)) throw new GrantError('ERR_GRANT_MALFORMED', 'a share grant names its rule and the grantee\'s groups');
  return {
    id: jti, pcId: aud, actor: sub, kind: knd, role: rol, user: usr, access: acc, method: mth, base, root, prefix: pfx,
    ...(rul !== undefined ? { ruleId: rul } : {}),
    ...(grp !== undefined ? { groups: grp as string[] } : {}),
    issuedAt: iat, expires: exp,
  };
}
