/**
 * The administrator's side of an approval (run by `mydoc takeout approve`
 * on the administrator's machine): opens the pending request's K_to with
 * the issuer private key, re-encrypts it to the PC's device key, and signs
 * the take-out key for `days` days from now.
 *
 * Security considerations: the issuer private key and K_to stay on the
 * administrator's machine (K_to only in memory, zeroed after use); the
 * request's binding (id, user, PC) is checked when K_to is opened and is
 * carried unchanged into the key; a period beyond the PC's maxDays is
 * refused before anything is signed.
 */
import type { KeyObject } from 'node:crypto';
import { openKto, sealKto } from '../envelope.js';
import { TakeoutError } from '../errors.js';
import type { IssuerPrivateKey } from '../issuer-keys.js';
import type { RequestDetail } from '../request.js';
import { signTakeoutKey } from '../token.js';

export interface ApprovalOptions {
  issuer: IssuerPrivateKey;
  /** The approving administrator: the key's `iss`. */
  admin: string;
  request: RequestDetail;
  devicePublicKey: KeyObject;
  days: number;
  /** ms since the epoch. */
  now: number;
}

/** Builds and signs the take-out key for a pending request. */
export async function buildTakeoutKey(opts: ApprovalOptions): Promise<{ token: string; jti: string; exp: number }> {
  const { request } = opts;
  if (!Number.isInteger(opts.days) || opts.days < 1 || opts.days > request.maxDays) {
    throw new TakeoutError('ERR_TAKEOUT_TOO_LONG', `days must be an integer from 1 to ${request.maxDays} (the PC's takeout.maxDays)`);
  }
  const envelope = request.envelopes[opts.issuer.kid];
  if (!envelope) throw new TakeoutError('ERR_TAKEOUT_UNKNOWN_KID', `PC "${request.pcId}" does not trust this issuer key (kid ${opts.issuer.kid})`);
  const binding = { rid: request.id, user: request.user, pcId: request.pcId };
  const kTo = await openKto(envelope, opts.issuer.decryptKey, 'mydoc-kto-request+json', binding);
  let kto: string;
  try {
    kto = await sealKto(kTo, binding, opts.devicePublicKey, 'mydoc-kto+json');
  } finally {
    kTo.fill(0);
  }
  const iat = Math.floor(opts.now / 1000);
  const exp = iat + opts.days * 86_400;
  const token = await signTakeoutKey({ issuer: opts.issuer, iss: opts.admin, sub: request.user, aud: request.pcId, jti: request.id, iat, nbf: iat, exp, kto });
  return { token, jti: request.id, exp };
}
