/**
 * The low-s form of ES256 (P-256 ECDSA) signatures. ECDSA signatures are
 * malleable: if (r, s) verifies, so does (r, n - s), and node:crypto (which
 * jose uses) accepts both. Signers here emit only s <= n/2 (as Bitcoin's
 * BIP 62 and Ethereum's EIP-2 do) and verifiers refuse the other form, so a
 * payload has exactly one accepted signature text.
 *
 * Signatures are JOSE's: r || s, 32 bytes each (RFC 7518 §3.4).
 */

/** The order of P-256 (FIPS 186-4 D.1.2.3), and half of it: the largest low-s value. */
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const HALF_N = N >> 1n;
export const ES256_SIGNATURE_SIZE = 64;

const toBigInt = (b: Uint8Array): bigint => BigInt(`0x${Buffer.from(b).toString('hex') || '0'}`);

/** Whether a 64-byte ES256 signature is in its high-s form (refused). */
export function isHighS(signature: Uint8Array): boolean {
  return signature.length === ES256_SIGNATURE_SIZE && toBigInt(signature.subarray(32)) > HALF_N;
}

/** The low-s form of a 64-byte ES256 signature (itself when it is low-s already). */
export function toLowS(signature: Uint8Array): Buffer {
  const sig = Buffer.from(signature);
  if (!isHighS(sig)) return sig;
  const low = Buffer.from((N - toBigInt(sig.subarray(32))).toString(16).padStart(64, '0'), 'hex');
  return Buffer.concat([sig.subarray(0, 32), low]);
}
