/**
 * The directory interface the service authenticates against: the embedded
 * local directory (local/, demo and tests) or the company directory over
 * LDAP (ldap/). This module names what a directory does; it imports no
 * implementation.
 */
import type { NetworkSecretSource } from '../../crypto/network-secret.js';

export type AuthResult = { ok: true; user: string; admin: boolean } | { ok: false; reason: string };

/** A password check that also tells which of the groups asked for the account is in, nested groups included. */
export type MemberResult = { ok: true; user: string; groups: ReadonlySet<string> } | { ok: false; reason: string };

/** What the console's administrators log in against: accounts and their groups (local/members.ts, ldap/accounts.ts). */
export interface MemberDirectory {
  authenticateMember(login: string, password: string, groups: readonly string[]): Promise<MemberResult>;
}

export interface Directory {
  readonly kind: string;
  /** Checks a password. Constant time for the local directory; no lockout. */
  authenticate(user: string, password: string): Promise<AuthResult>;
  /** Where slot N's K_dir comes from for this directory. */
  readonly secrets: NetworkSecretSource;
  /** The servers the reachability monitor probes (none: always reachable). */
  readonly servers: readonly string[];
  /** True when `server` answers; gives up (false) when `signal` aborts. */
  probe(server: string, signal: AbortSignal): Promise<boolean>;
}
