/**
 * The company directory over LDAP as the service uses it: logins checked
 * against the directory's accounts (accounts.ts), slot N's network secrets
 * kept in the directory (secret-source.ts), and its servers probed for
 * reachability, each over its own kept-open connection (probe-connection.ts).
 */
import type { AuthResult, Directory } from '../directory.js';
import { LdapAuthenticator, type LdapAccountSettings } from './accounts.js';
import { ProbeConnection } from './probe-connection.js';
import { LdapSecretSource, type LdapSecretSettings } from './secret-source.js';

export type LdapDirectorySettings = LdapAccountSettings & LdapSecretSettings;

export class LdapDirectory implements Directory {
  readonly kind = 'ldap';
  readonly secrets: LdapSecretSource;
  readonly servers: readonly string[];
  private readonly accounts: LdapAuthenticator;
  /** The kept-open probe connection of each server. */
  private readonly probes: ReadonlyMap<string, ProbeConnection>;

  constructor(settings: LdapDirectorySettings) {
    this.accounts = new LdapAuthenticator(settings);
    this.secrets = new LdapSecretSource(settings);
    this.servers = settings.urls;
    this.probes = new Map(settings.urls.map((url) => [url, new ProbeConnection(settings, url)]));
  }

  authenticate(user: string, password: string): Promise<AuthResult> {
    return this.accounts.authenticate(user, password);
  }

  probe(server: string, signal: AbortSignal): Promise<boolean> {
    return this.probes.get(server)?.probe(signal) ?? Promise.resolve(false);
  }
}
