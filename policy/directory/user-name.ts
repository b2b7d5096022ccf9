/**
 * User names as people type them at a Windows login: `DOMAIN\user` (the
 * down-level logon name), `user@domain` (the user principal name) or just
 * `user`. Every place that reads a typed login goes through this module.
 *
 * The domain of a down-level name ends at the FIRST backslash (a NetBIOS
 * domain name holds none); what follows is the account name, kept whole. A
 * second backslash is therefore part of the account name, which no
 * directory accepts, so such a login names no user (it is not shortened
 * to its last part).
 */
import { canonicalUser } from '../../shares/vault/user-vaults.js';

/** The login without surrounding spaces and without a leading `DOMAIN\`; a `user@domain` is kept whole. */
export function withoutDomain(login: string): string {
  const name = login.trim();
  const backslash = name.indexOf('\\');
  return backslash >= 0 ? name.slice(backslash + 1) : name;
}

/** `user@domain` without `@domain` (the name itself when it has no `@`). */
export function withoutUpnSuffix(name: string): string {
  const at = name.indexOf('@');
  return at >= 0 ? name.slice(0, at) : name;
}

/** "DOMAIN\\user" and "user@domain" become "user", in the vault's canonical form (NFC, lower case). */
export function normalizeUserName(login: string): string {
  return canonicalUser(withoutUpnSuffix(withoutDomain(login)));
}
