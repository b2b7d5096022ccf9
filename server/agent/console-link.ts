/**
 * The agent's link to its console (`console:` in the configuration): the
 * agent dials the console's link port over TLS, presenting a certificate
 * for its device key and trusting only `console.caFile`; on that socket it
 * serves HTTP/2 (the console is the client): who it is, the console's
 * welcome or refusal, its events stream (a status at once, then every
 * heartbeat at the console's interval +-20 %, and at once when its state
 * changes), the routes it is given (take-out, the share rule set) and the
 * streamed /link/dav requests (link-dav.ts). A link that goes down is
 * dialed again with exponential backoff and full jitter (1 s to 5 min).
 * Nothing here is on the path of serving the share: a missing or hung
 * console costs log lines and retries, never a request.
 *
 * Security considerations: the console must present a certificate that
 * chains to `console.caFile` and names the URL's host; any other is
 * refused (logged with the reason) before a byte is sent. The enrolment
 * token is sent only in the identity answer, and only until a console has
 * welcomed this PC with it; then its SHA-256 (never the token) is kept in
 * the data folder so it is not sent again (a new token in the
 * configuration is sent once more). The token is never logged. The first
 * welcome's console key is pinned (console-key.ts); a different one later
 * is logged and not taken. Bodies from
 * the console are capped (wire.ts); a console silent for three heartbeat
 * intervals is dropped and dialed again.
 */
import { createHash, timingSafeEqual, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http2, { type Http2Session, type ServerHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { isIP } from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import type { FastifyBaseLogger } from 'fastify';
import { writeFileAtomic } from '../../crypto/atomic-file.js';
import { dataFolder } from '../../shares/data-folder.js';
import { deviceCertificate } from '../link/device-identity.js';
import { LINK_ALPN, LINK_PATHS, type AgentEvent, type IdentityAnswer } from '../link/protocol.js';
import type { PcStatus } from '../link/status.js';
import { asRefusal, asWelcome, readJson } from '../link/wire.js';
import { AgentError } from './errors.js';
import { ConsoleKeyPin } from './console-key.js';

/** Console -> agent routes by LINK_PATHS value. */
export type LinkRoutes = Record<string, (body: unknown) => Promise<{ status: number; body?: unknown }>>;

export interface ConsoleLinkOptions {
  url: string;
  caFile: string;
  pcId: string;
  dataDir: string;
  deviceKey: KeyObject;
  devicePublicPem: string;
  enrolmentToken: string | undefined;
  agentVersion: string;
  status: () => Promise<PcStatus>;
  routes: LinkRoutes;
  /** The console key pinned from the first welcome (console-key.ts); absent: loaded from the data folder at the first dial. */
  consoleKey?: ConsoleKeyPin;
  /** Serves a streamed request (any method) on a path under LINK_PATHS.dav + '/': the handler answers on the stream itself. */
  dav?: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => Promise<void>;
  logger: Pick<FastifyBaseLogger, 'info' | 'warn' | 'error' | 'debug'>;
  /** In [0, 1): the jitter's source (default Math.random). */
  random?: () => number;
  /** Reconnect backoff: the first delay's bound and the cap (default 1 s and 5 min). */
  backoff?: { baseMs: number; capMs: number };
}

const DEFAULT_BACKOFF = { baseMs: 1000, capMs: 5 * 60_000 };
/** From dialing to the TLS handshake's end, and from there to the welcome. */
const CONNECT_TIMEOUT_MS = 10_000;
const WELCOME_TIMEOUT_MS = 30_000;
const SILENT_INTERVALS = 3;
/** Events kept while the link is down (take-out requests); the oldest go first. */
const MAX_QUEUED_EVENTS = 100;
const TLS_TRUST_ERRORS = new Set(['SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_SIGNATURE_FAILURE', 'CERT_UNTRUSTED']);

const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();

/**
 * Throws AgentError ERR_NODE_VERSION unless this Node.js has
 * http2.performServerHandshake (Node 20.12 and later), which the link needs to
 * serve HTTP/2 on the socket it dialed. `nodeHttp2` is for tests.
 */
export function requireLinkSupport(nodeHttp2: { performServerHandshake?: unknown } = http2, nodeVersion = process.version): void {
  if (typeof nodeHttp2.performServerHandshake !== 'function') {
    throw new AgentError('ERR_NODE_VERSION', `the console link needs Node.js 20.12 or later (http2.performServerHandshake); this is Node.js ${nodeVersion}: upgrade Node.js or remove the console section of the configuration`);
  }
}

/** One live link: the socket, its HTTP/2 session, and what the console has said on it. */
interface Live {
  socket: TLSSocket;
  session: Http2Session | undefined;
  welcomed: boolean;
  tokenSent: string | undefined;
  heartbeatMs: number;
  lastHeard: number;
  events: ServerHttp2Stream | undefined;
  /** The welcome's deadline, the ping interval and the next heartbeat: one each, replaced when set again, cleared when the socket closes. */
  welcomeTimer: NodeJS.Timeout | undefined;
  pinger: NodeJS.Timeout | undefined;
  heartbeat: NodeJS.Timeout | undefined;
}

export class ConsoleLink {
  private stopped = false;
  private live: Live | undefined;
  private wake: (() => void) | undefined;
  private readonly queue: AgentEvent[] = [];
  private acceptedToken: Buffer | null | undefined;
  private consoleKey: ConsoleKeyPin | undefined;
  private certificate: string | undefined;
  private sending = false;
  private sendAgain = false;
  private readonly random: () => number;
  private readonly backoff: { baseMs: number; capMs: number };
  private readonly running: Promise<void>;
  private readonly target: { host: string; port: number; servername: string | undefined };

  private constructor(private readonly opts: ConsoleLinkOptions) {
    this.random = opts.random ?? Math.random;
    this.consoleKey = opts.consoleKey;
    this.backoff = opts.backoff ?? DEFAULT_BACKOFF;
    const url = new URL(opts.url);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    this.target = { host, port: Number(url.port || 443), servername: isIP(host) ? undefined : host };
    this.running = this.run();
  }

  /** Starts dialing at once; throws only AgentError ERR_NODE_VERSION (see `requireLinkSupport`), every other failure is logged and retried. */
  static start(opts: ConsoleLinkOptions): ConsoleLink {
    requireLinkSupport();
    return new ConsoleLink(opts);
  }

  /** True while the console has welcomed this PC and its events stream is open. */
  get connected(): boolean {
    const live = this.live;
    return live !== undefined && live.welcomed && live.events !== undefined && !live.events.closed && !live.socket.destroyed;
  }

  /** Sends an event up the link now, or when the link is next up. */
  push(event: AgentEvent): void {
    if (this.connected) this.write(event);
    else {
      this.queue.push(event);
      if (this.queue.length > MAX_QUEUED_EVENTS) this.queue.shift();
    }
  }

  /** The state changed: report the status now (not at the next heartbeat). */
  statusChanged(): void {
    if (this.connected) void this.sendStatus();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    if (this.live) this.end(this.live);
    await this.running;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      const welcomed = await this.connectOnce().catch((err: Error) => {
        this.opts.logger.error({ err: err.message }, 'console link: unexpected failure');
        return false;
      });
      if (this.stopped) break;
      if (welcomed) failures = 0;
      const delayMs = this.random() * Math.min(this.backoff.capMs, this.backoff.baseMs * 2 ** failures);
      failures = Math.min(failures + 1, 40);
      this.opts.logger.info({ delayMs: Math.round(delayMs) }, `console link: next attempt in ${(delayMs / 1000).toFixed(1)} s`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delayMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** One dial: resolves when that link is over, with whether the console welcomed this PC on it. */
  private async connectOnce(): Promise<boolean> {
    const { url, caFile, logger } = this.opts;
    let ca: string;
    try {
      ca = await readFile(caFile, 'utf8');
    } catch (err) {
      logger.error(`console link: cannot read console.caFile ${caFile} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); not dialing the console`);
      return false;
    }
    this.certificate ??= await deviceCertificate(this.opts.deviceKey, this.opts.devicePublicPem, this.opts.pcId);
    if (this.acceptedToken === undefined) this.acceptedToken = await this.readMarker();
    this.consoleKey ??= await ConsoleKeyPin.load(this.opts.dataDir);
    if (this.stopped) return false;
    return new Promise<boolean>((resolve) => {
      const socket = tls.connect({
        host: this.target.host,
        port: this.target.port,
        ...(this.target.servername ? { servername: this.target.servername } : {}),
        ca,
        key: this.opts.deviceKey.export({ type: 'pkcs8', format: 'pem' }),
        cert: this.certificate,
        ALPNProtocols: [LINK_ALPN],
        minVersion: 'TLSv1.3',
      });
      const live: Live = { socket, session: undefined, welcomed: false, tokenSent: undefined, heartbeatMs: 60_000, lastHeard: Date.now(), events: undefined, welcomeTimer: undefined, pinger: undefined, heartbeat: undefined };
      this.live = live;
      const connectTimer = setTimeout(() => {
        logger.warn(`console link: the console at ${url} did not complete the TLS handshake within ${CONNECT_TIMEOUT_MS / 1000} s`);
        socket.destroy();
      }, CONNECT_TIMEOUT_MS);
      socket.once('secureConnect', () => {
        clearTimeout(connectTimer);
        if (socket.alpnProtocol !== LINK_ALPN) {
          logger.error(`console link: the server at ${url} does not speak ${LINK_ALPN}; is console.url the console's link port?`);
          socket.destroy();
          return;
        }
        this.serve(live);
      });
      socket.once('error', (err: NodeJS.ErrnoException) => this.logSocketError(err, live));
      socket.once('close', () => {
        clearTimeout(connectTimer);
        clearTimeout(live.welcomeTimer);
        clearInterval(live.pinger);
        clearTimeout(live.heartbeat);
        live.session?.destroy();
        if (this.live === live) this.live = undefined;
        if (live.welcomed) logger.warn(`console link: the link to ${url} is down`);
        resolve(live.welcomed);
      });
    });
  }

  private logSocketError(err: NodeJS.ErrnoException, live: Live): void {
    const { url, caFile, logger } = this.opts;
    const code = err.code ?? 'unknown';
    if (TLS_TRUST_ERRORS.has(code)) logger.error({ code }, `console link: refusing the console at ${url}: its certificate does not chain to console.caFile ${caFile} (${code})`);
    else if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') logger.error({ code }, `console link: refusing the console at ${url}: its certificate is not for ${this.target.host}`);
    else if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') logger.error({ code }, `console link: refusing the console at ${url}: its certificate is not valid now (${code})`);
    else if (!live.welcomed) logger.warn({ code }, `console link: cannot reach the console at ${url} (${code})`);
    else logger.debug({ code }, 'console link: socket error');
  }

  private serve(live: Live): void {
    const session = http2.performServerHandshake(live.socket);
    live.session = session;
    session.on('error', (err) => this.opts.logger.debug({ err: err.message }, 'console link: session error'));
    session.once('close', () => live.socket.destroy());
    session.on('stream', (stream, headers) => {
      live.lastHeard = Date.now();
      stream.on('error', () => undefined);
      void this.onStream(live, stream, headers).catch((err: Error) => {
        this.opts.logger.warn({ err: err.message, path: headers[':path'] }, 'console link: a request from the console failed');
        answer(stream, 500, { error: { code: 'ERR_INTERNAL', message: 'internal error' } });
      });
    });
    live.welcomeTimer = setTimeout(() => {
      if (!live.welcomed) {
        this.opts.logger.warn(`console link: the console at ${this.opts.url} did not welcome this PC within ${WELCOME_TIMEOUT_MS / 1000} s`);
        live.socket.destroy();
      }
    }, WELCOME_TIMEOUT_MS);
  }

  private async onStream(live: Live, stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> {
    const path = headers[':path'];
    const method = headers[':method'];
    if (path === LINK_PATHS.identity && method === 'GET') {
      const token = this.opts.enrolmentToken;
      const send = token !== undefined && !this.wasAccepted(token);
      live.tokenSent = send ? token : undefined;
      const identity: IdentityAnswer = { pcId: this.opts.pcId, agentVersion: this.opts.agentVersion, ...(send ? { enrolmentToken: token } : {}) };
      return answer(stream, 200, identity);
    }
    if (path === LINK_PATHS.refusal && method === 'POST') {
      const refusal = asRefusal(await readJson(stream));
      if (refusal) this.opts.logger.error({ code: refusal.code }, `console link: the console at ${this.opts.url} refused this PC: ${refusal.message} (${refusal.code})`);
      else this.opts.logger.error(`console link: the console at ${this.opts.url} refused this PC`);
      return answer(stream, 204);
    }
    if (path === LINK_PATHS.welcome && method === 'POST') {
      const welcome = asWelcome(await readJson(stream));
      if (!welcome) return answer(stream, 400, { error: { code: 'ERR_LINK_ANSWER', message: 'the welcome is not in the protocol' } });
      if (live.tokenSent !== undefined) await this.remember(live.tokenSent);
      // Pinned at the first welcome; a different key later is logged and not taken (grants signed with it are refused).
      await this.consoleKey?.offer(welcome.consoleKey, this.opts.logger);
      live.welcomed = true;
      live.heartbeatMs = welcome.heartbeatSeconds * 1000;
      this.opts.logger.info(`console link: connected to ${this.opts.url}${welcome.enrolled ? ' (this PC is now enrolled)' : ''}; status every ${welcome.heartbeatSeconds} s`);
      this.schedulePing(live);
      return answer(stream, 204);
    }
    if (!live.welcomed) return answer(stream, 403, { error: { code: 'ERR_LINK_NOT_WELCOMED', message: 'the console has not welcomed this PC on this link' } });
    if (path === LINK_PATHS.events && method === 'GET') {
      live.events?.close();
      live.events = stream;
      stream.respond({ ':status': 200, 'content-type': 'application/x-ndjson' });
      stream.once('close', () => {
        if (live.events === stream) live.socket.destroy();
      });
      for (const event of this.queue.splice(0)) this.write(event);
      await this.sendStatus();
      this.scheduleHeartbeat(live);
      return;
    }
    if (path !== undefined && path.startsWith(LINK_PATHS.dav + '/') && this.opts.dav) return this.opts.dav(stream, headers);
    const route = path !== undefined && method === 'POST' && Object.hasOwn(this.opts.routes, path) ? this.opts.routes[path] : undefined;
    if (!route) return answer(stream, 404, { error: { code: 'ERR_LINK_NO_ROUTE', message: `no route ${method ?? ''} ${path ?? ''}` } });
    const result = await route(await readJson(stream));
    answer(stream, result.status, result.body);
    // What the console asked may have changed the state (a take-out key installed or revoked).
    this.statusChanged();
  }

  private schedulePing(live: Live): void {
    clearInterval(live.pinger);
    live.pinger = setInterval(() => {
      const silentMs = Date.now() - live.lastHeard;
      if (silentMs > SILENT_INTERVALS * live.heartbeatMs) {
        this.opts.logger.warn(`console link: the console at ${this.opts.url} has not answered for ${Math.round(silentMs / 1000)} s; dialing again`);
        live.socket.destroy();
        return;
      }
      try {
        live.session?.ping((err) => {
          if (!err) live.lastHeard = Date.now();
        });
      } catch {
        // closing; its close event follows
      }
    }, live.heartbeatMs);
  }

  /** Keeps one heartbeat timer per link: each one, when it fires, sends the status and sets the next in its place. */
  private scheduleHeartbeat(live: Live): void {
    clearTimeout(live.heartbeat);
    const timer: NodeJS.Timeout = setTimeout(() => {
      if (this.live !== live || live.socket.destroyed || live.heartbeat !== timer) return;
      void this.sendStatus().then(() => {
        if (live.heartbeat === timer && this.live === live && !live.socket.destroyed) this.scheduleHeartbeat(live);
      });
    }, live.heartbeatMs * (0.8 + 0.4 * this.random()));
    live.heartbeat = timer;
  }

  /** Writes the current status; a change while one is being read is sent right after. */
  private async sendStatus(): Promise<void> {
    if (this.sending) {
      this.sendAgain = true;
      return;
    }
    this.sending = true;
    try {
      do {
        this.sendAgain = false;
        const status = await this.opts.status().catch((err: Error) => {
          this.opts.logger.error({ err: err.message }, 'console link: cannot read this PC\'s status');
          return undefined;
        });
        if (status && this.connected) this.write({ type: 'status', status });
      } while (this.sendAgain);
    } finally {
      this.sending = false;
    }
  }

  private write(event: AgentEvent): void {
    this.live?.events?.write(JSON.stringify(event) + '\n');
  }

  private end(live: Live): void {
    live.session?.close();
    live.socket.destroy();
  }

  private wasAccepted(token: string): boolean {
    return this.acceptedToken !== null && this.acceptedToken !== undefined && timingSafeEqual(this.acceptedToken, sha256(token));
  }

  private async readMarker(): Promise<Buffer | null> {
    try {
      const marker = JSON.parse(await readFile(dataFolder(this.opts.dataDir).consoleEnrolment, 'utf8')) as { tokenSha256?: unknown };
      return typeof marker.tokenSha256 === 'string' && /^[0-9a-f]{64}$/.test(marker.tokenSha256) ? Buffer.from(marker.tokenSha256, 'hex') : null;
    } catch {
      return null;
    }
  }

  private async remember(token: string): Promise<void> {
    const hash = sha256(token);
    await writeFileAtomic(dataFolder(this.opts.dataDir).consoleEnrolment, JSON.stringify({ tokenSha256: hash.toString('hex'), at: new Date().toISOString() }) + '\n', 0o600);
    this.acceptedToken = hash;
  }
}

function answer(stream: ServerHttp2Stream, status: number, body?: unknown): void {
  if (stream.closed || stream.headersSent) return;
  if (body === undefined) {
    stream.respond({ ':status': status }, { endStream: true });
    return;
  }
  stream.respond({ ':status': status, 'content-type': 'application/json' });
  stream.end(JSON.stringify(body));
}
