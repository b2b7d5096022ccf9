/**
 * The reachability probe's kept-open connection to one directory server: a
 * probe is one anonymous rootDSE read over a connection that stays open
 * between probes, so a steady-state probe costs the server one small request
 * and no TCP connection or TLS handshake (10,000 PCs at the default interval
 * would otherwise make 2,000 handshakes per second per server).
 *
 * When the connection is replaced:
 * - it broke (closed or reset: the server restarted or went away, or closed
 *   an idle connection): the probe tries once more on a new connection,
 *   within the same deadline, so a server that is back answers at once and a
 *   gone one (connection refused) fails at once;
 * - a probe on it was aborted (the monitor's deadline passed without an
 *   answer: the server hangs or the path drops packets): no later probe uses
 *   it, and it is closed when its last probe in flight ends. The next probe
 *   opens a new connection, which on a hung server hangs in its handshake
 *   until that probe's own deadline. So every probe is still bounded by the
 *   monitor's deadline and a hung or gone server fails every round, as with
 *   a connection per probe: the lock bound (reachability.ts) is unchanged.
 *
 * Security considerations: the connection is TLS as every directory
 * connection (StartTLS on ldap:// URLs, verified against the configured CA);
 * a broken client is never reused (connection.ts: ldapts would reconnect it
 * in plain LDAP, where anyone on the path could answer the probe and keep a
 * cut-off PC open). The socket is unref'd while no probe uses it: an idle
 * probe connection does not keep the process alive.
 */
import type { Socket } from 'node:net';
import type { Client, SearchOptions } from 'ldapts';
import { newClient, tlsOptions, type LdapServerSettings } from './connection.js';

const ROOT_DSE: SearchOptions = { scope: 'base', filter: '(objectClass=*)', attributes: ['namingContexts'] };

interface Link {
  client: Client;
  /** Its socket, once made: ref'd while a probe uses it. */
  socket: Socket | undefined;
  /**
   * Resolves when the socket closed. Tracked here, not by ldapts's
   * isConnected: after StartTLS ldapts still reports a closed connection as
   * connected, and a request on it then never settles.
   */
  closed: Promise<Outcome>;
  isClosed: boolean;
  /** Resolves when the TLS connection is up; rejects when it could not be made. */
  ready: Promise<unknown>;
  /** Probes waiting on it. */
  users: number;
  /** No new probe uses it; it is closed when its last probe ends. */
  retired: boolean;
}

type Outcome = 'answered' | 'broken' | 'late';

export class ProbeConnection {
  private link: Link | undefined;
  /** Connections opened so far (each one TCP connection and TLS handshake). */
  opened = 0;

  constructor(
    private readonly s: LdapServerSettings,
    private readonly url: string,
  ) {}

  /** True when the server answers before `signal` aborts; false at once when it aborts, or when the server cannot be reached. */
  async probe(signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return false;
    const kept = this.usable();
    const outcome = await this.ask(kept ?? this.open(), signal);
    if (outcome === 'broken' && kept && !signal.aborted) return (await this.ask(this.open(), signal)) === 'answered';
    return outcome === 'answered';
  }

  /** Closes the connection now; probes in flight on it fail. The next probe opens a new one. */
  close(): void {
    if (this.link) this.drop(this.link);
  }

  /** The kept-open connection, unless it broke or was retired. */
  private usable(): Link | undefined {
    const link = this.link;
    if (!link || link.retired) return undefined;
    if (link.isClosed) {
      this.drop(link);
      return undefined;
    }
    return link;
  }

  private open(): Link {
    // No ldapts timeouts: the monitor's deadline (the probe's signal) bounds every step, the handshake included.
    let closed = (_: Outcome) => {};
    const link: Link = { client: undefined!, socket: undefined, users: 0, retired: false, ready: Promise.resolve(), isClosed: false, closed: new Promise((resolve) => (closed = resolve)) };
    const { client, secure, hostname } = newClient(this.s, this.url, 0, (socket) => {
      link.socket = socket;
      socket.once('close', () => {
        link.isClosed = true;
        closed('broken');
      });
    });
    link.client = client;
    // ldapts connects lazily: on ldaps:// a first read makes the TLS handshake.
    link.ready = secure ? client.search('', { ...ROOT_DSE, attributes: ['1.1'] }) : client.startTLS(tlsOptions(this.s, hostname));
    link.ready.catch(() => undefined);
    this.link = link;
    this.opened++;
    return link;
  }

  private async ask(link: Link, signal: AbortSignal): Promise<Outcome> {
    link.users++;
    link.socket?.ref();
    let onAbort = () => {};
    const late = new Promise<Outcome>((resolve) => {
      onAbort = () => resolve('late');
      signal.addEventListener('abort', onAbort, { once: true });
    });
    const read = link.ready.then(() => link.client.search('', ROOT_DSE)).then(
      (): Outcome => 'answered',
      (): Outcome => 'broken',
    );
    const outcome = await Promise.race([read, link.closed, late]);
    signal.removeEventListener('abort', onAbort);
    if (--link.users === 0) link.socket?.unref();
    if (outcome === 'broken') this.drop(link);
    else if (outcome === 'late') this.retire(link);
    else if (link.retired && link.users === 0) this.drop(link);
    return outcome;
  }

  private retire(link: Link): void {
    link.retired = true;
    if (this.link === link) this.link = undefined;
    if (link.users === 0) this.drop(link);
  }

  private drop(link: Link): void {
    link.retired = true;
    if (this.link === link) this.link = undefined;
    void link.client.unbind().catch(() => undefined);
  }
}
