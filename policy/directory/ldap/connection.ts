/**
 * Connections to the company directory: failover across the configured
 * servers in order, TLS always (LDAPS, or StartTLS on ldap:// URLs). The
 * reachability probe keeps its own connection open (probe-connection.ts).
 *
 * Timeouts: every directory operation is bounded by `timeoutMs`
 * (`directory.ldap.timeoutSeconds`): ldapts bounds the TCP connection and
 * each request, and `connect` also bounds the StartTLS handshake, which
 * ldapts does not.
 *
 * Security considerations: certificates are verified against the configured
 * CA unless `insecureSkipVerify` is set, which the service logs loudly at
 * start; a refused certificate is reported as such (unknown CA, name
 * mismatch, expired), not as a server that is down. Passwords are never put
 * in errors. Plain LDAP without TLS is not offered: a simple bind would send
 * the password in the clear. A client makes one connection only: ldapts
 * silently reconnects a client whose connection closed on its next request,
 * and on an ldap:// URL that new connection is plain LDAP (StartTLS is not
 * redone), where anyone on the path could answer a search (a forged group
 * membership) or read it. Here such a request fails instead, and whoever
 * needs the directory again opens a new client (the probe does,
 * probe-connection.ts).
 */
import { connect as netConnect, isIP, Socket } from 'node:net';
import { checkServerIdentity, connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { Client, InvalidCredentialsError, type ClientOptions } from 'ldapts';
import { DirectoryUnreachableError } from '../errors.js';

export interface LdapServerSettings {
  /** ldaps://host:636 or ldap://host:389 (with StartTLS), tried in order. */
  urls: readonly string[];
  caPem: string | undefined;
  /** The name the server certificate is checked against, when it differs from the URL's host. */
  tlsServerName: string | undefined;
  insecureSkipVerify: boolean;
  /** Bound of each directory operation (directory.ldap.timeoutSeconds). */
  timeoutMs: number;
}

export function tlsOptions(s: LdapServerSettings, host: string): ConnectionOptions {
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

/** TLS verification failures (Node's codes) and what each means for the directory's certificate. */
const CERTIFICATE_PROBLEMS: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unknown CA: the certificate is not signed by the configured CA (directory.ldap.caFile)',
  UNABLE_TO_GET_ISSUER_CERT: 'unknown CA: the certificate is not signed by the configured CA (directory.ldap.caFile)',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unknown CA: the certificate is not signed by the configured CA (directory.ldap.caFile)',
  SELF_SIGNED_CERT_IN_CHAIN: 'unknown CA: the certificate is not signed by the configured CA (directory.ldap.caFile)',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'unknown CA: the certificate is self-signed and not the configured CA (directory.ldap.caFile)',
  CERT_SIGNATURE_FAILURE: 'unknown CA: the certificate\'s signature does not verify',
  ERR_TLS_CERT_ALTNAME_INVALID: 'name mismatch: the certificate does not name this server (see directory.ldap.tlsServerName)',
  CERT_HAS_EXPIRED: 'the certificate has expired',
  CERT_NOT_YET_VALID: 'the certificate is not yet valid',
};

/** "TLS certificate refused (…)" for a certificate failure, else undefined. */
export function certificateProblem(err: unknown): string | undefined {
  const problem = CERTIFICATE_PROBLEMS[(err as { code?: string })?.code ?? ''];
  return problem ? `TLS certificate refused (${problem}): ${(err as Error).message}` : undefined;
}

/** `step`, or a failure when it takes longer than `ms` (the caller closes the connection). */
async function within<T>(ms: number, step: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([step, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A socket that fails at once: what a client gets when it would connect a second time. */
function refusedSocket(): Socket {
  const socket = new Socket();
  socket.destroy(new Error('the connection to the directory closed; a client does not reconnect (a new connection would skip StartTLS)'));
  return socket;
}

/**
 * ldapts's transport hooks for one client: its first connection, then only
 * refused ones (see the head comment). `onSocket` is told of the TCP (or,
 * for ldaps://, TLS) socket when it is made.
 */
function oneConnection(secure: boolean, onSocket?: (socket: Socket) => void): Pick<ClientOptions, 'createConnection' | 'createSecureConnection'> {
  let connected = false;
  const first = <T extends Socket>(open: () => T): T | Socket => {
    if (connected) return refusedSocket();
    connected = true;
    const socket = open();
    onSocket?.(socket);
    return socket;
  };
  if (secure) return { createSecureConnection: ((port: number, host: string, options: ConnectionOptions) => first(() => tlsConnect(port, host, options))) as typeof tlsConnect };
  return { createConnection: ((port: number, host: string) => first(() => netConnect(port, host))) as typeof netConnect };
}

/** A client for `url` that makes one connection only; `onSocket` is told of its socket when it is made. */
export function newClient(s: LdapServerSettings, url: string, timeoutMs: number, onSocket?: (socket: Socket) => void): { client: Client; secure: boolean; hostname: string } {
  const { hostname, protocol } = new URL(url);
  const secure = protocol === 'ldaps:';
  const client = new Client({
    url,
    timeout: timeoutMs,
    connectTimeout: timeoutMs,
    ...(secure ? { tlsOptions: tlsOptions(s, hostname) } : {}),
    ...oneConnection(secure, onSocket),
    strictDN: false,
  });
  return { client, secure, hostname };
}

/**
 * Opens a TLS-protected connection to the first server that answers within
 * `timeoutMs`; throws DirectoryUnreachableError when none does, saying for
 * each server why (a refused certificate named as such).
 */
export async function connect(s: LdapServerSettings): Promise<Client> {
  const problems: string[] = [];
  let certificates = 0;
  for (const url of s.urls) {
    const { client, secure, hostname } = newClient(s, url, s.timeoutMs);
    try {
      // ldapts connects lazily: a rootDSE read makes the TLS handshake happen
      // here, so a dead or untrusted server fails over to the next one.
      await within<unknown>(s.timeoutMs, secure ? client.search('', { scope: 'base', filter: '(objectClass=*)', attributes: ['1.1'] }) : client.startTLS(tlsOptions(s, hostname)));
      return client;
    } catch (err) {
      const certificate = certificateProblem(err);
      if (certificate) certificates++;
      problems.push(`${url}: ${certificate ?? (err as Error).message}`);
      await client.unbind().catch(() => undefined);
    }
  }
  const head = certificates === problems.length && certificates > 0 ? 'the directory server\'s TLS certificate was refused' : 'no directory server answered';
  throw new DirectoryUnreachableError(`${head} (${problems.join('; ')})`);
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

/** AD's extended bind error codes ("data 52e" in the diagnostic message). */
const AD_BIND_REASONS: Record<string, string> = {
  '525': 'unknown user',
  '52e': 'wrong user name or password',
  '530': 'the account may not log on at this time',
  '531': 'the account may not log on at this workstation',
  '532': 'the password has expired',
  '533': 'the account is disabled',
  '701': 'the account has expired',
  '773': 'the password must be changed before logging on',
  '775': 'the account is locked out',
};

/** The reason for a failed bind, from AD's diagnostic message when there is one. */
export function bindFailureReason(err: unknown): string {
  const data = /data ([0-9a-f]{3})/i.exec((err as Error)?.message ?? '')?.[1]?.toLowerCase();
  if (data && AD_BIND_REASONS[data]) return AD_BIND_REASONS[data];
  if (err instanceof InvalidCredentialsError) return 'wrong user name or password';
  return 'the directory refused the login';
}
