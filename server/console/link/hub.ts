/**
 * The console's side of the agent links: the types the console's parts use
 * (`LinkHub`, what the link server offers; `LinkRegistry`, what it needs of
 * the registry) and `PcLink`, one admitted PC's live link: its HTTP/2
 * session (the console is the client on the socket the agent dialed), the
 * events stream it reads, the pings that tell a silent agent, and the
 * requests the console sends down.
 *
 * Security considerations: what the agent sends is checked before it is
 * passed on (wire.ts); every request has a deadline, so a hung agent never
 * holds a caller; an event line is capped at MAX_EVENT_LINE_BYTES; a PC that has been silent for three heartbeat intervals
 * is dropped.
 */
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { Readable } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import type { AgentEvent, IdentityAnswer, Refusal } from '../../link/protocol.js';
import { LINK_PATHS } from '../../link/protocol.js';
import type { PcStatus } from '../../link/status.js';
import { LinkError } from '../../link/errors.js';
import { asEvent, readJson, readJsonLines } from '../../link/wire.js';

export type LinkLogger = Pick<FastifyBaseLogger, 'info' | 'warn' | 'error' | 'debug'>;

export interface AdmitPeer {
  /** Hex SHA-256 of the SPKI of the key the agent's TLS certificate proved. */
  deviceId: string;
  devicePublicPem: string;
  identity: IdentityAnswer;
  /** The agent's address as the console sees it. */
  address: string;
}

export type Admission = { ok: true; pcId: string; enrolled: boolean } | { ok: false; refusal: Refusal };

/** Implemented by the console's registry over its store and audit trail. */
export interface LinkRegistry {
  admit(peer: AdmitPeer): Promise<Admission>;
  connected(pcId: string): void;
  disconnected(pcId: string): void;
  status(pcId: string, status: PcStatus): void;
  event(pcId: string, event: AgentEvent): void;
}

export interface LinkHub {
  isConnected(pcId: string): boolean;
  /** Rejects with LinkError ERR_LINK_OFFLINE ("PC X is not connected"), ERR_LINK_TIMEOUT, ERR_LINK_BROKEN or ERR_LINK_ANSWER. */
  request(pcId: string, path: string, body: unknown, opts?: { timeoutMs?: number }): Promise<{ status: number; body: unknown }>;
  /**
   * Opens one streamed request down the PC's link (a /link/dav request):
   * resolves with the agent's answer headers once they arrive, its body a
   * flow-controlled stream; `body`, when given, is piped up as the request
   * body. Rejects like `request` (ERR_LINK_OFFLINE at once for a PC without
   * a link; ERR_LINK_TIMEOUT when no answer headers come within timeoutMs of
   * the request, or of the last chunk of its body that went up).
   * Aborting `signal` resets the stream.
   */
  stream(pcId: string, headers: OutgoingHttpHeaders, body: Readable | undefined, opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<LinkStreamAnswer>;
  /** Closes the PC's link at once (pc remove). */
  drop(pcId: string): void;
  readonly size: number;
  close(): Promise<void>;
}

export interface LinkStreamAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  /** The answer's body; when the link goes down mid-answer it may just end or close (see `cutShort`). */
  body: Readable;
}

/**
 * At a link stream's 'end': whether it was closed (its link went down, or
 * it was reset: an rstCode other than NO_ERROR) rather than ended by the
 * agent. Node ends the readable side of such a stream too: an 'end' when
 * all of it was read, or only 'close' (no 'end', no 'error') when some is
 * still buffered. So an 'end' alone does not tell a whole answer.
 */
export function cutShort(body: Readable): boolean {
  const { rstCode } = body as Partial<Pick<http2.ClientHttp2Stream, 'rstCode'>>;
  return rstCode !== undefined && rstCode !== http2.constants.NGHTTP2_NO_ERROR;
}

/** The longest event line a PC may send (a status, a take-out request); a longer one drops its link. */
export const MAX_EVENT_LINE_BYTES = 64 * 1024;

/**
 * The console's receive windows on a link (HTTP/2 flow control): per stream,
 * and for the whole session. What an agent may send ahead of the console's
 * reading, so at most this much of an answer is held per link.
 */
export const LINK_STREAM_WINDOW = 4 * 1024 * 1024;
export const LINK_SESSION_WINDOW = 8 * 1024 * 1024;

/** A request's deadline unless the caller gives one. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** Silence (no event, no ping answer) for this many heartbeat intervals drops the link. */
export const SILENT_INTERVALS = 3;

/** One HTTP/2 request on a session: the answer's status and JSON body, both within `timeoutMs`. */
export async function requestOn(session: ClientHttp2Session, method: 'GET' | 'POST', path: string, body: unknown, timeoutMs: number, what: string): Promise<{ status: number; body: unknown }> {
  const deadline = Date.now() + timeoutMs;
  const headers = { ':method': method, ':path': path, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) };
  const answer = await streamOn(session, headers, body === undefined ? undefined : Readable.from([JSON.stringify(body)]), timeoutMs, what);
  const stream = answer.body as http2.ClientHttp2Stream;
  const timer = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), Math.max(0, deadline - Date.now()));
  try {
    return { status: answer.status, body: await readJson(stream) };
  } catch (err) {
    if (Date.now() >= deadline) throw new LinkError('ERR_LINK_TIMEOUT', `${what}: no answer within ${timeoutMs} ms`);
    throw new LinkError(stream.rstCode !== undefined && stream.rstCode !== 0 ? 'ERR_LINK_BROKEN' : 'ERR_LINK_ANSWER', `${what}: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}

/** One streamed request on a session (see LinkHub.stream). */
export function streamOn(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body: Readable | undefined, timeoutMs: number, what: string, signal?: AbortSignal): Promise<LinkStreamAnswer> {
  return new Promise((resolve, reject) => {
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(headers, { endStream: body === undefined, ...(signal ? { signal } : {}) });
    } catch (err) {
      return reject(new LinkError('ERR_LINK_BROKEN', `${what}: the link is closing (${(err as Error).message})`));
    }
    // The deadline counts from the last progress of the request body (an upload of 1 GiB takes longer than
    // the deadline; an agent that stops reading it, or stops before answering, does not hold the caller).
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        reject(new LinkError('ERR_LINK_TIMEOUT', `${what}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
    };
    arm();
    stream.once('response', (answer) => {
      clearTimeout(timer);
      body?.off('data', arm);
      resolve({ status: Number(answer[':status']), headers: answer, body: stream });
    });
    stream.once('error', (err) => {
      clearTimeout(timer);
      reject(new LinkError('ERR_LINK_BROKEN', `${what}: the link went down (${err.message})`));
    });
    stream.once('close', () => {
      clearTimeout(timer);
      reject(new LinkError('ERR_LINK_BROKEN', `${what}: the link went down`));
    });
    if (body) {
      body.once('error', () => stream.close(http2.constants.NGHTTP2_CANCEL));
      body.on('data', arm);
      body.pipe(stream);
    }
  });
}

/** An admitted PC's live link. `onClosed` runs once, when the session ends for any reason. */
export class PcLink {
  private lastHeard = Date.now();
  private readonly pinger: NodeJS.Timeout;
  private closed = false;

  constructor(
    readonly pcId: string,
    private readonly session: ClientHttp2Session,
    private readonly heartbeatMs: number,
    private readonly registry: LinkRegistry,
    private readonly logger: LinkLogger,
    onClosed: () => void,
  ) {
    session.once('close', () => {
      this.closed = true;
      clearInterval(this.pinger);
      onClosed();
    });
    this.pinger = setInterval(() => this.ping(), heartbeatMs);
    this.pinger.unref();
    this.readEvents();
  }

  get isOpen(): boolean {
    return !this.closed && !this.session.destroyed;
  }

  request(path: string, body: unknown, timeoutMs: number): Promise<{ status: number; body: unknown }> {
    return requestOn(this.session, 'POST', path, body, timeoutMs, `PC ${this.pcId} ${path}`);
  }

  stream(headers: OutgoingHttpHeaders, body: Readable | undefined, timeoutMs: number, signal?: AbortSignal): Promise<LinkStreamAnswer> {
    return streamOn(this.session, headers, body, timeoutMs, `PC ${this.pcId} ${String(headers[':method'] ?? '')}`, signal);
  }

  close(): void {
    this.session.destroy();
  }

  private ping(): void {
    const silentMs = Date.now() - this.lastHeard;
    if (silentMs > SILENT_INTERVALS * this.heartbeatMs) {
      this.logger.warn({ pcId: this.pcId, silentMs }, 'link: the PC has not answered for 3 heartbeat intervals; dropping its link');
      this.session.destroy();
      return;
    }
    try {
      this.session.ping((err) => {
        if (!err) this.lastHeard = Date.now();
      });
    } catch {
      // the session is closing; its close event follows
    }
  }

  private readEvents(): void {
    const stream = this.session.request({ ':method': 'GET', ':path': LINK_PATHS.events }, { endStream: true });
    stream.once('response', (headers) => {
      if (headers[':status'] !== 200) {
        this.logger.warn({ pcId: this.pcId, status: headers[':status'] }, 'link: the PC refused its events stream; dropping its link');
        this.session.destroy();
        return;
      }
      readJsonLines(stream, (value) => {
        this.lastHeard = Date.now();
        const event = asEvent(value);
        if (!event) {
          this.logger.warn({ pcId: this.pcId }, 'link: the PC sent an event that is not in the protocol; ignored');
          return;
        }
        if (event.type === 'status') this.registry.status(this.pcId, event.status);
        else this.registry.event(this.pcId, event);
      }, MAX_EVENT_LINE_BYTES).then(
        () => this.session.destroy(),
        (err: Error) => {
          this.logger.warn({ pcId: this.pcId, err: err.message }, 'link: the PC\'s events stream failed; dropping its link');
          this.session.destroy();
        },
      );
    });
    stream.on('error', () => this.session.destroy());
  }
}
