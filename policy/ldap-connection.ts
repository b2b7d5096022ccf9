/**
 * Connections to the company directory: failover across the configured
 * servers in order, TLS always (LDAPS, or StartTLS on ldap:// URLs), and the
 * reachability probe (an anonymous rootDSE read with a short timeout).
 *
 * Security considerations: certificates are verified against the configured
 * CA unless `insecureSkipVerify` is set, which the service logs loudly at
 * start. Passwords are never put in errors. Plain LDAP without TLS is not
 * offered: a simple bind would send the password in the clear.
 */
import { isIP } from 'node:net';
import { checkServerIdentity, type ConnectionOptions } from 'node:tls';
import { Client } from 'ldapts';

export interface LdapServerSettings {
  /** ldaps://host:636 or ldap://host:389 (with StartTLS), tried in order. */
  urls: readonly string[];
  caPem: string | undefined;
  /** The name the server certificate is checked against, when it differs from the URL's host. */
  tlsServerName: string | undefined;
  insecureSkipVerify: boolean;
  timeoutMs: number;
}

export class DirectoryUnreachableError extends Error {
  readonly code = 'ERR_DIRECTORY_UNREACHABLE';
  constructor(message: string) {
    super(message);
    this.name = 'DirectoryUnreachableError';
  }
}

function tlsOptions(s: LdapServerSettings, host: string): ConnectionOptions {
  return {
    ...(s.caPem ? { ca: s.caPem } : {}),
    // SNI takes names only (RFC 6066); an IP host is still checked against the certificate.
    ...(s.tlsServerName || isIP(host) === 0 ? { servername: s.tlsServerName ?? host } : {}),
    rejectUnauthorized: !s.insecureSkipVerify,
    minVersion: 'TLSv1.2',
    ...(s.tlsServerName ? { checkServerIdentity: checkName(s.tlsServerName) } : {}),
  };
}

/** Checks the certificate against the configured name rather than the URL's host (AD certificates carry the DC's FQDN, not its IP). */
function checkName(name: string): ConnectionOptions['checkServerIdentity'] {
  return (_host, cert) => checkServerIdentity(name, cert);
}

/** Opens a TLS-protected connection to the first server that answers; throws DirectoryUnreachableError when none does. */
export async function connect(s: LdapServerSettings): Promise<Client> {
  const problems: string[] = [];
  for (const url of s.urls) {
    const { hostname, protocol } = new URL(url);
    const secure = protocol === 'ldaps:';
    const client = new Client({ url, timeout: s.timeoutMs, connectTimeout: s.timeoutMs, ...(secure ? { tlsOptions: tlsOptions(s, hostname) } : {}), strictDN: false });
    try {
      // ldapts connects lazily: a rootDSE read makes the TLS handshake happen
      // here, so a dead or untrusted server fails over to the next one.
      if (!secure) await client.startTLS(tlsOptions(s, hostname));
      else await client.search('', { scope: 'base', filter: '(objectClass=*)', attributes: ['1.1'] });
      return client;
    } catch (err) {
      problems.push(`${url}: ${(err as Error).message}`);
      await client.unbind().catch(() => undefined);
    }
  }
  throw new DirectoryUnreachableError(`no directory server answered (${problems.join('; ')})`);
}

/** Runs `fn` on a connection bound as `dn`, then closes it. */
export async function withBind<T>(s: LdapServerSettings, dn: string, password: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = await connect(s);
  try {
    await client.bind(dn, password);
    return await fn(client);
  } finally {
    await client.unbind().catch(() => undefined);
  }
}

/** True when `url` answers an anonymous rootDSE read within the timeout. */
export async function probe(s: LdapServerSettings, url: string): Promise<boolean> {
  const { hostname, protocol } = new URL(url);
  const secure = protocol === 'ldaps:';
  const client = new Client({ url, timeout: s.timeoutMs, connectTimeout: s.timeoutMs, ...(secure ? { tlsOptions: tlsOptions(s, hostname) } : {}) });
  try {
    if (!secure) await client.startTLS(tlsOptions(s, hostname));
    await client.search('', { scope: 'base', filter: '(objectClass=*)', attributes: ['namingContexts'] });
    return true;
  } catch {
    return false;
  } finally {
    await client.unbind().catch(() => undefined);
  }
}
