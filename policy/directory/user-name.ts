/**
 * User names as people type them at a Windows login: `DOMAIN\user` (the
 * down-level logon name), `user@domain` (the user principal name) or just
 * `user`.
 */
import { canonicalUser } from '../../shares/vault/user-vaults.js';

/** "DOMAIN\\user" and "user@domain" become "user", in the vault's canonical form (NFC, lower case). */
export function normalizeUserName(raw: string): string {
  let user = raw.trim();
  const backslash = user.lastIndexOf('\\');
  if (backslash >= 0) user = user.slice(backslash + 1);
  const at = user.indexOf('@');
  if (at >= 0) user = user.slice(0, at);
  return canonicalUser(user);
}
