/**
 * The two reachability probes the LDAP probe benchmark (ldap-probe.bench.ts)
 * compares, for one PC and one server: the product's kept-open connection
 * (policy/directory/ldap/probe-connection.ts) and, as the baseline, the probe
 * as it was before it (main at 9c3c65c, connection.ts's probe()): a new TCP
 * connection, StartTLS and rootDSE read per probe, closed after it.
 */
import { newClient, tlsOptions, type LdapServerSettings } from '../../policy/directory/ldap/connection.js';
import { ProbeConnection } from '../../policy/directory/ldap/probe-connection.js';

export type ProbeKind = 'kept-open' | 'per-probe';

export type Probe = (signal: AbortSignal) => Promise<boolean>;

/** The probe before the kept-open connection, unchanged but for its name. */
async function probePerConnection(s: LdapServerSettings, url: string, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  const { client, secure, hostname } = newClient(s, url, 0);
  const aborted = new Promise<false>((resolve) => signal.addEventListener('abort', () => resolve(false), { once: true }));
  const read = (async () => {
    if (!secure) await client.startTLS(tlsOptions(s, hostname));
    await client.search('', { scope: 'base', filter: '(objectClass=*)', attributes: ['namingContexts'] });
    return true;
  })().catch(() => false);
  try {
    return await Promise.race([read, aborted]);
  } finally {
    await client.unbind().catch(() => undefined);
  }
}

/** One PC's probe of `url` of the given kind. */
export function probeOf(kind: ProbeKind, s: LdapServerSettings, url: string): Probe {
  if (kind === 'per-probe') return (signal) => probePerConnection(s, url, signal);
  const connection = new ProbeConnection(s, url);
  return (signal) => connection.probe(signal);
}
