/**
 * The directory interface the service authenticates against: the embedded
 * local directory (demo, tests) or the company directory over LDAP.
 */
import { InsecureLocalFileSecretSource, type NetworkSecretSource } from '../../crypto/network-secret.js';
import { probe, type LdapServerSettings } from './ldap/connection.js';
import { LdapAccounts, type LdapAccountSettings } from './ldap/directory.js';
import { LdapSecretSource, type LdapSecretSettings } from './ldap/secret-source.js';
import { LocalDirectory } from './local.js';
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

export type AuthResult = { ok: true; user: string; admin: boolean } | { ok: false; reason: string };

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

export class LocalDirectoryService implements Directory {
  readonly kind = 'local';
  readonly secrets: NetworkSecretSource;
  readonly servers: readonly string[] = [];
  private readonly users: LocalDirectory;

  constructor(usersFile: string, insecureSecretFile: string) {
    this.users = new LocalDirectory(usersFile);
    this.secrets = new InsecureLocalFileSecretSource(insecureSecretFile);
  }

  async authenticate(login: string, password: string): Promise<AuthResult> {
    const user = normalizeUserName(login);
    const role = await this.users.verify(user, password);
    return role ? { ok: true, user, admin: role.admin } : { ok: false, reason: 'wrong user name or password' };
  }

  async probe(): Promise<boolean> {
    return true;
  }
}

export type LdapDirectorySettings = LdapAccountSettings & LdapSecretSettings;

export class LdapDirectoryService implements Directory {
  readonly kind = 'ldap';
  readonly secrets: LdapSecretSource;
  readonly servers: readonly string[];
  private readonly accounts: LdapAccounts;

  constructor(private readonly settings: LdapDirectorySettings) {
    this.accounts = new LdapAccounts(settings);
    this.secrets = new LdapSecretSource(settings);
    this.servers = settings.urls;
  }

  authenticate(user: string, password: string): Promise<AuthResult> {
    return this.accounts.authenticate(user, password);
  }

  probe(server: string, signal: AbortSignal): Promise<boolean> {
    return probe(this.settings as LdapServerSettings, server, signal);
  }
}
