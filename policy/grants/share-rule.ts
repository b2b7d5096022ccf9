/**
 * A share rule as the console signs it and the owner's agent enforces it
 * (console.md, Sharing).
 *
 *   header  {"alg","kid":<console issuer kid>,"typ":"mydoc-share-rule+jwt"}
 *   claims  {"aud":<owner pcId>,"jti":<rule id>,"iat","exp":<the rule's expiry>,
 *            "iss":<the administrator who set it>, "usr":<owner user>,
 *            "fld":[names of the shared folder in the owner's vault],
 *            "gte":{"kind":"user"|"group","name":<AD user (normalised) or group DN / local name>},
 *            "acc":"read"|"readwrite"}
 * The agent checks `exp` on its own clock on every use, so expiry holds
 * while the console is down.
 */
import type { JWTPayload } from 'jose';
import type { IssuerPrivateKey, IssuerPublicKey } from '../takeout/issuer-keys.js';
import { GrantError } from './errors.js';
import { signConsoleJwt, verifyConsoleJwt } from './jws.js';

export const SHARE_RULE_TYP = 'mydoc-share-rule+jwt';

export interface ShareRule {
  id: string;
  pcId: string;
  /** The owner user. */
  user: string;
  folder: readonly string[];
  grantee: { kind: 'user' | 'group'; name: string };
  access: 'read' | 'readwrite';
  /** Who created it. */
  createdBy: string;
  /** Epoch seconds. */
  issuedAt: number;
  expires: number;
}

export async function signShareRule(rule: ShareRule, key: IssuerPrivateKey): Promise<string> {
  const claims: JWTPayload & { aud: string; jti: string; iat: number; exp: number } = {
    aud: rule.pcId, jti: rule.id, iat: rule.issuedAt, exp: rule.expires, iss: rule.createdBy, usr: rule.user, fld: [...rule.folder], gte: { ...rule.grantee }, acc: rule.access,
  };
  return signConsoleJwt(SHARE_RULE_TYP, claims, key);
}

export async function verifyShareRule(token: unknown, opts: { key: IssuerPublicKey; pcId: string; now: Date }): Promise<ShareRule> {
  const p = (await verifyConsoleJwt(token, SHARE_RULE_TYP, opts, 'share rule')) as Record<string, unknown>;
  const { jti, aud, iat, exp, iss, usr, fld, gte, acc } = p;
  const g = gte as { kind?: unknown; name?: unknown } | undefined;
  const ok =
    typeof jti === 'string' && jti !== '' && typeof aud === 'string' && typeof iat === 'number' && typeof exp === 'number' && typeof iss === 'string' && typeof usr === 'string' && usr !== '' &&
    Array.isArray(fld) && fld.length > 0 && fld.every((n) => typeof n === 'string' && n !== '' && n !== '.' && n !== '..' && !n.includes('/') && !n.includes('\\') && !n.includes('\u0000')) &&
    typeof g === 'object' && g !== null && (g.kind === 'user' || g.kind === 'group') && typeof g.name === 'string' && g.name !== '' && (acc === 'read' || acc === 'readwrite');
  if (!ok) throw new GrantError('ERR_GRANT_MALFORMED', 'the share rule has missing or ill-typed claims');
  return { id: jti, pcId: aud, user: usr, folder: fld as string[], grantee: { kind: g.kind as 'user' | 'group', name: g.name as string }, access: acc, createdBy: iss, issuedAt: iat, expires: exp };
}
