/**
 * The forwarding core of the console's WebDAV (/pcs and /shared): one
 * client request becomes one streamed /link/dav request down the PC's link
 * (LinkHub.stream), with a grant the console signs for it alone, and the
 * agent's answer goes back to the client as it comes.
 *
 *   client  --HTTPS-->  console  --h2 stream /link/dav<raw path>, mydoc-grant-->  agent
 *
 * Streaming: the request body is piped up and the answer body down, each
 * with backpressure (HTTP/2 flow control on the link, Node's stream piping
 * toward the client), so a 1 GiB GET or PUT holds a few windows in memory,
 * never the file. A client that goes away aborts the link stream (RST_STREAM),
 * so the agent stops reading the vault.
 *
 * Failures, each with a plain sentence and never a hang: a PC without a link
 * answers 503 at once, "PC X was last seen at T" (from the store); no answer
 * headers within the deadline 504; a link that breaks 502. An agent's
 * refusal ({"error":{"code","message"}}, e.g. an expired grant) is relayed
 * with its status and its sentence. A link that goes down mid-answer (the
 * agent stopped) breaks the client's response off at once, a slow client's
 * too: never a partial answer ended as if whole, never a hang.
 *
 * Security considerations: the grant is minted here per request (fresh
 * random id, GRANT_SECONDS) from what the caller decided; the caller (the
 * /pcs or /shared routes) decides who may do what; this module never widens
 * it. Only the WebDAV headers listed in FORWARDED_HEADERS go down (never the
 * client's Authorization or cookies); hop-by-hop headers of the answer are
 * dropped. The issuer key is used to sign and never logged; no path or file
 * name is logged (they are users' data).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import { PassThrough, type Readable } from 'node:stream';
import type { FastifyBaseLogger, FastifyReply } from 'fastify';
import { GRANT_SECONDS, signGrant, type Grant } from '../../../policy/grants/grant.js';
import type { IssuerPrivateKey } from '../../../policy/takeout/issuer-keys.js';
import type { Clock } from '../../../shares/clock.js';
import { originOf } from '../../../shares/webdav/paths.js';
import { LinkError } from '../../link/errors.js';
import { GRANT_HEADER, LINK_PATHS } from '../../link/protocol.js';
import { cutShort, type LinkHub } from '../link/hub.js';
import type { ConsoleStore } from '../store/store.js';
import { formatTime } from '../web/format.js';

/** The request headers that go down the link with a WebDAV request (lower case). */
export const FORWARDED_HEADERS = [
  'depth',
  'destination',
  'overwrite',
  'if',
  'lock-token',
  'timeout',
  'content-type',
  'content-length',
  'range',
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
  'if-range',
  'translate',
  'accept',
] as const;

/** Answer headers never relayed to the client (hop-by-hop, or set by the console's own server). */
const DROPPED_ANSWER_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer', 'date', 'set-cookie']);

/** How long the agent has to send its answer headers (a large PROPFIND starts streaming well before). */
export const FORWARD_TIMEOUT_MS = 30_000;

/** An answer's body may pause this long while the client is waiting for it (not while the client is the slow one). */
export const ANSWER_IDLE_MS = 60_000;

/** The most bytes of an agent's JSON refusal that are read. */
const MAX_REFUSAL_BYTES = 16 * 1024;
/** The largest piece the relay writes to the client at once (what came from the link in one turn, up to this). */
const RELAY_PIECE_BYTES = 256 * 1024;
/** How much of an answer the relay holds before it stops reading the link stream: a few TLS records, not the file. */
const RELAY_BUFFER_BYTES = 1024 * 1024;

export interface ForwardDeps {
  hub: Pick<LinkHub, 'stream'>;
  store: Pick<ConsoleStore, 'getPc'>;
  /** The console's issuer key: grants are signed with it. */
  issuerKey: IssuerPrivateKey;
  clock: Clock;
  logger: Pick<FastifyBaseLogger, 'debug' | 'warn'>;
  timeoutMs?: number;
  answerIdleMs?: number;
}

/** What the caller decided the grant says; the id, PC, method and times are set here. */
export type GrantFields = Omit<Grant, 'id' | 'pcId' | 'method' | 'issuedAt' | 'expires'>;

export interface ForwardRequest {
  pcId: string;
  method: string;
  /** The raw request URL the console received (not decoded; a query is cut off). */
  rawUrl: string;
  headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>;
  /** The request body, piped up as it is read; undefined for none. */
  body?: Readable | undefined;
  grant: GrantFields;
}

export type ForwardAnswer =
  | { ok: true; requestId: string; status: number; headers: Record<string, string | string[]>; body: Readable }
  /** Not answered by the agent's WebDAV: offline, timeout, broken link, or the agent's refusal (`code` is its code). */
  | { ok: false; requestId: string; status: number; code: string; message: string };

/** What was answered, for the caller's audit line. */
export interface ForwardOutcome {
  requestId: string;
  status: number;
  /** The refusal's code when the agent's WebDAV did not answer. */
  code?: string;
}

/** The link path of a console request: LINK_PATHS.dav + its raw path (no query; an absolute-form target's scheme and authority dropped). */
export function linkPath(rawUrl: string): string {
  const path = rawUrl.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '') || '/';
  const cut = path.search(/[?#]/);
  return LINK_PATHS.dav + (cut >= 0 ? path.slice(0, cut) : path);
}

function forwardedHeaders(headers: ForwardRequest['headers']): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name of FORWARDED_HEADERS) {
    const value = headers[name];
    if (typeof value === 'string') out[name] = value;
  }
  return out;
}

function answerHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') || value === undefined || DROPPED_ANSWER_HEADERS.has(name)) continue;
    out[name] = value;
  }
  return out;
}

async function readRefusal(body: Readable): Promise<{ code: string; message: string } | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      size += (chunk as Buffer).length;
      if (size > MAX_REFUSAL_BYTES) {
        body.destroy();
        return undefined;
      }
      chunks.push(chunk as Buffer);
    }
    const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error?: { code?: unknown; message?: unknown } };
    const { code, message } = parsed.error ?? {};
    return typeof code === 'string' && typeof message === 'string' ? { code, message } : undefined;
  } catch {
    return undefined;
  }
}

/** The sentence for a PC without a link: when it was last seen, from the store. */
async function offlineMessage(store: ForwardDeps['store'], pcId: string): Promise<string> {
  const row = await store.getPc(pcId).catch(() => undefined);
  if (row?.lastSeenAt == null) return `PC ${pcId} is not connected to the console (it has not been seen yet)`;
  return `PC ${pcId} is not connected to the console; it was last seen at ${formatTime(row.lastSeenAt)}`;
}

/**
 * Signs the request's grant and opens its /link/dav stream; resolves once the
 * agent's answer headers are in (or with the refusal). Aborting `signal`
 * resets the link stream, also after the answer has started.
 */
export async function openForward(deps: ForwardDeps, req: ForwardRequest, signal?: AbortSignal): Promise<ForwardAnswer> {
  const requestId = randomUUID();
  const issuedAt = Math.floor(deps.clock() / 1000);
  const token = await signGrant({ ...req.grant, id: requestId, pcId: req.pcId, method: req.method, issuedAt, expires: issuedAt + GRANT_SECONDS }, deps.issuerKey);
  const host = typeof req.headers.host === 'string' && originOf(req.headers.host) ? req.headers.host : undefined;
  const headers: OutgoingHttpHeaders = {
    ':method': req.method,
    ':path': linkPath(req.rawUrl),
    // The client's host, so the agent resolves a Destination against the console's origin.
    ...(host ? { ':authority': host } : {}),
    [GRANT_HEADER]: token,
    ...forwardedHeaders(req.headers),
  };
  const refused = (status: number, code: string, message: string): ForwardAnswer => ({ ok: false, requestId, status, code, message });
  let answer;
  try {
    answer = await deps.hub.stream(req.pcId, headers, req.body, { timeoutMs: deps.timeoutMs ?? FORWARD_TIMEOUT_MS, ...(signal ? { signal } : {}) });
  } catch (err) {
    const code = err instanceof LinkError ? err.code : 'ERR_LINK_BROKEN';
    deps.logger.debug({ pcId: req.pcId, requestId, code }, 'dav forward: no answer from the agent');
    switch (code) {
      case 'ERR_LINK_OFFLINE':
        return refused(503, code, await offlineMessage(deps.store, req.pcId));
      case 'ERR_LINK_TIMEOUT':
        return refused(504, code, `PC ${req.pcId} did not answer within ${Math.round((deps.timeoutMs ?? FORWARD_TIMEOUT_MS) / 1000)} s`);
      default:
        return refused(502, code, `the link to PC ${req.pcId} broke during the request; try again`);
    }
  }
  const type = answer.headers['content-type'];
  if (answer.status >= 400 && typeof type === 'string' && type.startsWith('application/json')) {
    const refusal = await readRefusal(answer.body);
    return refused(answer.status, refusal?.code ?? 'ERR_AGENT_REFUSED', refusal?.message ?? `PC ${req.pcId} refused the request`);
  }
  // Consumed at once, with backpressure: an HTTP/2 stream the remote has ended is drained by Node if nothing
  // reads it, so an answer left unread while the caller writes its audit line would be lost.
  const body = new PassThrough({ highWaterMark: RELAY_BUFFER_BYTES });
  relay(answer.body, body, `the link to PC ${req.pcId} went down during the answer`);
  watchIdle(answer.body, body, deps.answerIdleMs ?? ANSWER_IDLE_MS, `PC ${req.pcId} stopped sending its answer`);
  return { ok: true, requestId, status: answer.status, headers: answerHeaders(answer.headers), body };
}

/**
 * Copies a link stream into the relay with backpressure, in pieces of up to
 * RELAY_PIECE_BYTES: the HTTP/2 stream gives ~8 KiB chunks (its frames cut
 * by the TLS records), and each chunk written on its own would be its own
 * TLS record and write on the client's socket; what arrived in one turn of
 * the event loop goes out as one piece. The relay ends only when the agent
 * ended its answer; when the link went down or the stream was reset
 * (cutShort), it is destroyed with an error, so the client's response breaks
 * off at once instead of ending as if whole or staying open.
 * stream.pipeline does neither here: for a link stream closed with part of
 * it unread (a slow client's, or a reading one's relay full for a moment)
 * Node emits only 'close', and pipeline keeps waiting for an 'end' (its
 * readable state has ended) that never comes; for one read to the last
 * byte it ends the relay as if the answer were whole.
 * The relay closing first (the client went away) destroys the link stream,
 * which resets it, so the agent stops reading the vault.
 */
function relay(source: Readable, relayed: PassThrough, message: string): void {
  const broken = (err?: Error) => relayed.destroy(err ?? new LinkError('ERR_LINK_BROKEN', message));
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let flushing: NodeJS.Immediate | undefined;
  const flush = () => {
    flushing = undefined;
    if (pendingBytes === 0 || relayed.destroyed) return;
    const piece = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    if (!relayed.write(piece)) {
      source.pause();
      relayed.once('drain', () => source.resume());
    }
  };
  source.on('data', (chunk: Buffer) => {
    pending.push(chunk);
    pendingBytes += chunk.length;
    if (pendingBytes >= RELAY_PIECE_BYTES) {
      if (flushing) clearImmediate(flushing);
      flush();
    } else {
      flushing ??= setImmediate(flush);
    }
  });
  source.once('error', broken);
  source.once('end', () => {
    if (cutShort(source)) return broken();
    if (flushing) clearImmediate(flushing);
    flush();
    relayed.end();
  });
  source.once('close', () => {
    if (!source.readableEnded) broken();
  });
  relayed.once('close', () => {
    if (flushing) clearImmediate(flushing);
    if (!source.readableEnded) source.destroy();
  });
}

/**
 * Ends an answer whose agent stops sending while the client waits (the
 * relay's buffer is not full): a stuck agent never holds a client forever.
 * A slow client is not cut off (its backpressure fills the buffer).
 */
function watchIdle(source: Readable, relay: PassThrough, idleMs: number, message: string): void {
  let last = Date.now();
  source.on('data', () => {
    last = Date.now();
  });
  const timer = setInterval(() => {
    if (!relay.writableNeedDrain && Date.now() - last > idleMs) source.destroy(new LinkError('ERR_LINK_TIMEOUT', message));
  }, Math.max(10, Math.floor(idleMs / 4)));
  timer.unref();
  relay.once('close', () => clearInterval(timer));
  source.once('close', () => clearInterval(timer));
}

/** A plain-text answer: the sentence and a newline. */
export function sendPlain(reply: FastifyReply, status: number, message: string, headers: Record<string, string> = {}): FastifyReply {
  return reply.code(status).headers({ ...headers, 'content-type': 'text/plain; charset=utf-8' }).send(`${message}\n`);
}

/** What forwardToAgent does besides forwarding. */
export interface ForwardOptions {
  /** Replaces answer headers (the web page's download makes every file an attachment). */
  override?: Record<string, string>;
  /** Runs once the outcome is known and before the client is answered (the caller's audit line). */
  onOutcome?: (outcome: ForwardOutcome) => Promise<void>;
}

/**
 * Forwards one request and answers the client with what comes back,
 * streamed. The client going away (the response closing unfinished)
 * resets the link stream. Resolves once the answer has started (its
 * status known, `onOutcome` done); the route handler then returns `reply`.
 */
export async function forwardToAgent(deps: ForwardDeps, req: ForwardRequest, reply: FastifyReply, opts: ForwardOptions = {}): Promise<ForwardOutcome> {
  const abort = new AbortController();
  const res = reply.raw;
  const onClose = () => {
    if (!res.writableFinished) abort.abort();
  };
  res.once('close', onClose);
  const answer = await openForward(deps, req, abort.signal);
  if (!answer.ok) {
    res.off('close', onClose);
    const outcome = { requestId: answer.requestId, status: answer.status, code: answer.code };
    await opts.onOutcome?.(outcome);
    await sendPlain(reply, answer.status, answer.message);
    return outcome;
  }
  const outcome = { requestId: answer.requestId, status: answer.status };
  answer.body.once('error', (err: Error) => {
    // The link broke (or was reset) mid-answer: the client's response cannot be completed.
    if (!abort.signal.aborted) deps.logger.warn({ pcId: req.pcId, requestId: answer.requestId, err: err.message }, 'dav forward: the answer broke off');
    res.destroy();
  });
  try {
    await opts.onOutcome?.(outcome);
  } catch (err) {
    answer.body.destroy();
    throw err;
  }
  reply.code(answer.status).headers({ ...answer.headers, ...opts.override });
  if (answer.status === 204 || answer.status === 304 || req.method === 'HEAD') {
    // No body in these answers: the (empty) link stream is drained, not sent.
    answer.body.resume();
    void reply.send();
  } else {
    void reply.send(answer.body);
  }
  return outcome;
}
