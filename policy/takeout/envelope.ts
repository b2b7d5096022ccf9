/**
 * K_to in transit: a JWE (compact, `ECDH-ES` + `A256GCM`) to a public key,
 * whose plaintext binds K_to to its request, user and PC:
 *   {"v":1,"rid":<request id>,"user":<canonical user>,"pcId":<PC id>,"kto":<base64url of 32 bytes>}
 * Two kinds, told apart by the protected `cty`:
 * - `mydoc-kto-request+json`: to the issuer's encryption key, kept by the
 *   agent with a pending request (the agent cannot open it);
 * - `mydoc-kto+json`: to this PC's device key, inside the signed take-out key.
 *
 * Security considerations: only ECDH-ES with A256GCM is accepted on opening;
 * the opener checks rid, user and PC against what it expects, so K_to cannot
 * be moved to another request, user or PC. Buffers holding K_to are zeroed
 * by the caller after use; errors never hold key material.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { CompactEncrypt, calculateJwkThumbprint, compactDecrypt, exportJWK } from 'jose';
import { TAKEOUT_SECRET_SIZE } from '../../crypto/keyring.js';
import { TakeoutError } from './errors.js';

export type EnvelopeKind = 'mydoc-kto-request+json' | 'mydoc-kto+json';

export interface EnvelopeBinding {
  rid: string;
  user: string;
  pcId: string;
}

/** RFC 7638 thumbprint of a recipient key (public, or the public half of a private key). */
export async function recipientKeyId(key: KeyObject): Promise<string> {
  return calculateJwkThumbprint(await exportJWK(key.type === 'private' ? createPublicKey(key) : key));
}

/** Encrypts K_to with its binding to `recipient`. */
export async function sealKto(kTo: Buffer, binding: EnvelopeBinding, recipient: KeyObject, kind: EnvelopeKind): Promise<string> {
  const payload = Buffer.from(JSON.stringify({ v: 1, rid: binding.rid, user: binding.user, pcId: binding.pcId, kto: kTo.toString('base64url') }));
  try {
    return await new CompactEncrypt(payload).setProtectedHeader({ alg: 'ECDH-ES', enc: 'A256GCM', cty: kind, kid: await recipientKeyId(recipient) }).encrypt(recipient);
  } finally {
    payload.fill(0);
  }
}

/** Decrypts K_to and checks its binding; ERR_TAKEOUT_SECRET on any mismatch. */
export async function openKto(jwe: string, privateKey: KeyObject, kind: EnvelopeKind, expected: EnvelopeBinding): Promise<Buffer> {
  let payload: { v?: unknown; rid?: unknown; user?: unknown; pcId?: unknown; kto?: unknown };
  try {
    const { plaintext, protectedHeader } = await compactDecrypt(jwe, privateKey, { keyManagementAlgorithms: ['ECDH-ES'], contentEncryptionAlgorithms: ['A256GCM'] });
    if (protectedHeader.cty !== kind) throw new Error('wrong content type');
    payload = JSON.parse(Buffer.from(plaintext).toString('utf8'));
    plaintext.fill(0);
  } catch {
    throw new TakeoutError('ERR_TAKEOUT_SECRET', 'the take-out secret does not open with this key');
  }
  if (payload.v !== 1 || payload.rid !== expected.rid || payload.user !== expected.user || payload.pcId !== expected.pcId || typeof payload.kto !== 'string') {
    throw new TakeoutError('ERR_TAKEOUT_SECRET', 'the take-out secret is bound to another request, user or PC');
  }
  const kTo = Buffer.from(payload.kto, 'base64url');
  if (kTo.length !== TAKEOUT_SECRET_SIZE) throw new TakeoutError('ERR_TAKEOUT_SECRET', 'the take-out secret has the wrong size');
  return kTo;
}
