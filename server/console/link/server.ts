/**
 * The console's link port: a TLS server the agents dial. On each accepted
 * socket the console becomes the HTTP/2 client (node:http2 over the socket
 * the agent opened), asks the agent who it is, lets the registry admit or
 * refuse it, says so (welcome or refusal), and then keeps the PC's link
 * (hub.ts) until either side ends it. A newer link of a PC replaces its
 * older one.
 *
 * Security considerations: the TLS layer requests a client certificate but
 * does not judge it (agents present self-signed certificates for their
 * device keys); the handshake proves possession of the key, and the
 * registry pins that key by its device id: a socket without a certificate
 * is dropped before anything is read from it. TLS 1.3 only, ALPN
 * `mydoc-link/1` only. The admission (identity, welcome or refusal) has a
 * deadline, so a socket that stalls there holds nothing for long, and at
 * most MAX_ADMISSIONS run at once (more connections are dropped). The
 * enrolment token is passed to the registry and never logged.
 */
import http2, { type OutgoingHttpHeaders } from 'node:http2';
import type { Readable } from 'node:stream';
import tls, { type TLSSocket } from 'node:tls';
import { once } from 'node:events';
import { LINK_ALPN, LINK_PATHS, type Refusal, type Welcome } from '../../link/protocol.js';
import { peerIdentity } from '../../link/device-identity.js';
import { LinkError } from '../../link/errors.js';
import { asIdentity } from '../../link/wire.js';
import { DEFAULT_REQUEST_TIMEOUT_MS, LINK_SESSION_WINDOW, LINK_STREAM_WINDOW, PcLink, requestOn, type Admission, type LinkHub, type LinkLogger, type LinkRegistry, type LinkStreamAnswer } from './hub.js';

export interface LinkServerOptions {
  host: string;
  port: number;
  tls: { cert: string; key: string };
  heartbeatSeconds: number;
  /** The console's issuer public key (PEM), sent in every welcome for the agent to pin. */
  consoleKey: string;
  registry: LinkRegistry;
  logger: LinkLogger;
}

/** Admissions (identity, registry, welcome or refusal) in flight at once; a connection beyond it is dropped. */
export const MAX_ADMISSIONS = 64;

/** From the TLS handshake's start to the welcome or refusal. */
const ADMISSION_TIMEOUT_MS = 15_000;

class Hub implements LinkHub {
  readonly links = new Map<string, PcLink>();

  constructor(
    private readonly server: tls.Server,
    private readonly sockets: Set<TLSSocket>,
  ) {}

  get size(): number {
    return this.links.size;
  }

  isConnected(pcId: string): boolean {
    return this.links.get(pcId)?.isOpen ?? false;
  }

  request(pcId: string, path: string, body: unknown, opts: { timeoutMs?: number } = {}): Promise<{ status: number; body: unknown }> {
    const link = this.links.get(pcId);
    if (!link?.isOpen) return Promise.reject(new LinkError('ERR_LINK_OFFLINE', `PC ${pcId} is not connected`));
    return link.request(path, body, opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
  }

  stream(pcId: string, headers: OutgoingHttpHeaders, body: Readable | undefined, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<LinkStreamAnswer> {
    const link = this.links.get(pcId);
    if (!link?.isOpen) return Promise.reject(new LinkError('ERR_LINK_OFFLINE', `PC ${pcId} is not connected`));
    return link.stream(headers, body, opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, opts.signal);
  }

  /** Admissions in flight, by the pcId they claim: `drop` marks them, so one that was admitted before the drop is not linked after it. */
  readonly admitting = new Map<string, Set<{ dropped: boolean }>>();

  drop(pcId: string): void {
    for (const admission of this.admitting.get(pcId) ?? []) admission.dropped = true;
    this.links.get(pcId)?.close();
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const link of this.links.values()) link.close();
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}

export async function startLinkServer(opts: LinkServerOptions): Promise<LinkHub> {
  const sockets = new Set<TLSSocket>();
  const server = tls.createServer({
    cert: opts.tls.cert,
    key: opts.tls.key,
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.3',
    ALPNProtocols: [LINK_ALPN],
    handshakeTimeout: ADMISSION_TIMEOUT_MS,
  });
  const hub = new Hub(server, sockets);
  server.on('tlsClientError', (err, socket) => {
    opts.logger.debug({ address: socket.remoteAddress, err: err.message }, 'link: a TLS handshake failed');
  });
  let admitting = 0;
  let droppedSince = 0;
  server.on('secureConnection', (socket: TLSSocket) => {
    if (admitting >= MAX_ADMISSIONS) {
      // Each admission costs a store read and an audit record: beyond the cap, sockets are dropped unread.
      if (droppedSince++ === 0) opts.logger.warn({ address: socket.remoteAddress }, `link: ${MAX_ADMISSIONS} admissions in flight; dropping new connections until one ends`);
      socket.destroy();
      return;
    }
    if (droppedSince > 0) {
      opts.logger.warn({ dropped: droppedSince }, 'link: admitting again after dropping connections over the cap');
      droppedSince = 0;
    }
    admitting++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    admitSocket(socket, hub, opts)
      .catch((err: Error) => {
        opts.logger.error({ address: socket.remoteAddress, err: err.message }, 'link: admission failed unexpectedly; dropped');
        socket.destroy();
      })
      .finally(() => admitting--);
  });
  server.listen(opts.port, opts.host);
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err as Error))]);
  return hub;
}

async function admitSocket(socket: TLSSocket, hub: Hub, opts: LinkServerOptions): Promise<void> {
  const address = socket.remoteAddress ?? 'unknown';
  const certificate = socket.getPeerCertificate(true);
  if (socket.alpnProtocol !== LINK_ALPN || !certificate?.raw) {
    opts.logger.warn({ address }, `link: a connection without a device certificate or without ALPN ${LINK_ALPN}; dropped`);
    socket.destroy();
    return;
  }
  let peer: ReturnType<typeof peerIdentity> | undefined;
  let session: http2.ClientHttp2Session | undefined;
  const deadline = setTimeout(() => (session ?? socket).destroy(), ADMISSION_TIMEOUT_MS);
  try {
    peer = peerIdentity(certificate.raw);
    // Wide windows: a 1 GiB answer streams at the link's speed, not one 64 KiB window per round trip.
    session = http2.connect('https://agent.link', { createConnection: () => socket, settings: { initialWindowSize: LINK_STREAM_WINDOW } });
    const linked = session;
    linked.once('connect', () => linked.setLocalWindowSize(LINK_SESSION_WINDOW));
    session.on('error', (err) => opts.logger.debug({ address, err: err.message }, 'link: session error'));
    const answer = await requestOn(session, 'GET', LINK_PATHS.identity, undefined, ADMISSION_TIMEOUT_MS, 'identity');
    const identity = answer.status === 200 ? asIdentity(answer.body) : undefined;
    if (!identity) {
      opts.logger.warn({ address, deviceId: peer.deviceId }, 'link: the agent\'s identity answer is not in the protocol; dropped');
      session.destroy();
      return;
    }
    const pending = { dropped: false };
    const ofPc = hub.admitting.get(identity.pcId) ?? new Set();
    hub.admitting.set(identity.pcId, ofPc.add(pending));
    let admission: Admission;
    try {
      admission = await opts.registry.admit({ ...peer, identity, address });
      if (admission.ok && !pending.dropped) {
        const welcome: Welcome = { heartbeatSeconds: opts.heartbeatSeconds, enrolled: admission.enrolled, consoleKey: opts.consoleKey };
        const welcomed = await requestOn(session, 'POST', LINK_PATHS.welcome, welcome, ADMISSION_TIMEOUT_MS, 'welcome');
        if (welcomed.status !== 204) throw new LinkError('ERR_LINK_ANSWER', `welcome answered ${welcomed.status}`);
      }
    } finally {
      ofPc.delete(pending);
      if (ofPc.size === 0 && hub.admitting.get(identity.pcId) === ofPc) hub.admitting.delete(identity.pcId);
    }
    if (!admission.ok) {
      opts.logger.info({ address, pcId: identity.pcId, code: admission.refusal.code }, 'link: PC refused');
      await requestOn(session, 'POST', LINK_PATHS.refusal, admission.refusal satisfies Refusal, ADMISSION_TIMEOUT_MS, 'refusal').catch(() => undefined);
      session.close();
      return;
    }
    clearTimeout(deadline);
    if (session.destroyed) return;
    const { pcId } = admission;
    if (pending.dropped) {
      // Removed (pc remove) while it was being admitted: not linked.
      opts.logger.info({ address, pcId }, 'link: PC dropped during its admission; not linked');
      session.destroy();
      return;
    }
    hub.links.get(pcId)?.close();
    const link = new PcLink(pcId, session, opts.heartbeatSeconds * 1000, opts.registry, opts.logger, () => {
      if (hub.links.get(pcId) === link) {
        hub.links.delete(pcId);
        opts.registry.disconnected(pcId);
      }
    });
    hub.links.set(pcId, link);
    opts.registry.connected(pcId);
  } catch (err) {
    opts.logger.warn({ address, deviceId: peer?.deviceId, err: (err as Error).message }, 'link: admission failed; dropped');
    session?.destroy();
    socket.destroy();
  } finally {
    clearTimeout(deadline);
  }
}
