/**
 * Files a snapshot holds sealed to the organisation's recovery key: the PC's
 * audit log, and the local (demo) directory's users and network secrets.
 * Each is a compact JWE (ECDH-ES, A256GCM) to the recovery public key, so the
 * target never sees them in plaintext and only the recovery key opens them.
 *
 * Anyone can encrypt to a public key: what proves a sealed file is the PC's
 * is its SHA-256 in the manifest the PC signed.
 */
import type { KeyObject } from 'node:crypto';
import { CompactEncrypt, compactDecrypt } from 'jose';
import { BackupError } from './errors.js';

export const AUDIT_LOG_TYPE = 'mydoc-audit-log';
export const LOCAL_DIRECTORY_TYPE = 'mydoc-local-directory+json';

export async function seal(data: Uint8Array, recoveryPublicKey: KeyObject, cty: string): Promise<string> {
  return new CompactEncrypt(data).setProtectedHeader({ alg: 'ECDH-ES', enc: 'A256GCM', cty }).encrypt(recoveryPublicKey);
}

export async function unseal(text: string, recoveryPrivateKey: KeyObject, cty: string, what: string): Promise<Buffer> {
  try {
    const { plaintext, protectedHeader } = await compactDecrypt(text.trim(), recoveryPrivateKey, { keyManagementAlgorithms: ['ECDH-ES'], contentEncryptionAlgorithms: ['A256GCM'] });
    if (protectedHeader.cty !== cty) throw new Error('wrong content type');
    return Buffer.from(plaintext);
  } catch {
    throw new BackupError('ERR_BACKUP_RESTORE', `the ${what} of the backup did not open: this is not the recovery key it was sealed to`);
  }
}
