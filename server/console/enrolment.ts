/**
 * One-time enrolment tokens (`mydoc console pc add`): 32 random bytes in
 * base64url behind a recognisable prefix, so a token pasted in the wrong
 * place (a log, a ticket) is easy to find and tell apart.
 *
 * Security considerations: the console stores only a token's SHA-256
 * (`hashEnrolmentToken`), so a token read off the store cannot enrol a PC;
 * the store looks a token up by its hash and checks it once, atomically
 * (single use), for the PC it was made for and before it expires. A token
 * is printed once, to the administrator, and never logged or audited.
 */
import { createHash, randomBytes } from 'node:crypto';

export const ENROLMENT_TOKEN_PREFIX = 'mydoc-enrol-';
const TOKEN_BYTES = 32;
const TOKEN = new RegExp(`^${ENROLMENT_TOKEN_PREFIX}[A-Za-z0-9_-]{${Math.ceil((TOKEN_BYTES * 4) / 3)}}$`);

/** A fresh token and the hash the store keeps of it. */
export function newEnrolmentToken(): { token: string; hash: Buffer } {
  const token = ENROLMENT_TOKEN_PREFIX + randomBytes(TOKEN_BYTES).toString('base64url');
  return { token, hash: hashEnrolmentToken(token) };
}

/** True when `text` has the shape of a token this console issues. */
export function isEnrolmentToken(text: string): boolean {
  return TOKEN.test(text);
}

/** The SHA-256 of a token, as the store keeps it. */
export function hashEnrolmentToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
