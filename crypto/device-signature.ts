/**
 * Signatures made with the PC's device key (P-256, ES256) over a payload,
 * as a flattened JWS (RFC 7515 §7.2.2): `{ protected, payload, signature }`.
 * The backup signs each manifest with it.
 *
 * Security considerations: ES256 signatures are malleable (s and n - s both
 * verify). Signing emits only the low-s form, and verification refuses the
 * high-s form, so one payload has exactly one accepted signature. The key id
 * is the key's JWK thumbprint (RFC 7638, SHA-256); it names the key, it is
 * not trusted by itself: the caller chooses the public key to verify with.
 */
import type { KeyObject } from 'node:crypto';
import { ES256_SIGNATURE_SIZE, isHighS, toLowS } from './es256-low-s.js';
import { FlattenedSign, base64url, calculateJwkThumbprint, exportJWK, flattenedVerify, type FlattenedJWS } from 'jose';


export type SignedPayload = FlattenedJWS;

export class SignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SignatureError';
  }
}

/** The key's RFC 7638 thumbprint (SHA-256, base64url, 43 characters). */
export async function keyThumbprint(publicKey: KeyObject): Promise<string> {
  return calculateJwkThumbprint(await exportJWK(publicKey), 'sha256');
}

/** Signs `payload` (ES256, low-s) with `privateKey`; `kid` is the public key's thumbprint. */
export async function signPayload(payload: Uint8Array, privateKey: KeyObject, publicKey: KeyObject, cty: string): Promise<SignedPayload> {
  const jws = await new FlattenedSign(payload).setProtectedHeader({ alg: 'ES256', kid: await keyThumbprint(publicKey), cty }).sign(privateKey);
  jws.signature = base64url.encode(toLowS(base64url.decode(jws.signature)));
  return jws;
}

/** True when `data` has the shape of a flattened JWS. */
export function isSignedPayload(data: unknown): data is SignedPayload {
  const d = data as Record<string, unknown> | null;
  return typeof d === 'object' && d !== null && typeof d.protected === 'string' && typeof d.payload === 'string' && typeof d.signature === 'string';
}

/** Checks `jws` against `publicKey` (ES256, low-s, content type `cty`) and returns the payload; SignatureError says why not. */
export async function verifyPayload(jws: SignedPayload, publicKey: KeyObject, cty: string): Promise<Buffer> {
  let sig: Uint8Array;
  try {
    sig = base64url.decode(jws.signature);
  } catch {
    throw new SignatureError('the signature is not base64url');
  }
  if (sig.length !== ES256_SIGNATURE_SIZE) throw new SignatureError('the signature is not an ES256 signature');
  if (isHighS(sig)) throw new SignatureError('the signature is not in its canonical (low-s) form');
  try {
    const { payload, protectedHeader } = await flattenedVerify(jws, publicKey, { algorithms: ['ES256'] });
    if (protectedHeader?.cty !== cty) throw new SignatureError(`the signed content is not of type ${cty}`);
    return Buffer.from(payload);
  } catch (err) {
    if (err instanceof SignatureError) throw err;
    throw new SignatureError('the signature does not verify with this device key');
  }
}
