/**
 * The fastify assembly: HTTPS, the transport settings the Windows WebDAV
 * client needs, `/healthz`, `/metrics`, Basic authentication, the take-out
 * API (takeout-routes.ts), the user's page (user-page.ts: a browser's GET of
 * `/` asking for HTML) and the WebDAV share at the root of the origin: the
 * user's own vault with their read-only access notices file at its root
 * (shares/webdav/notices-store.ts).
 *
 * Security considerations:
 * - HTTPS only; HTTP/1.1 only (the Windows client does not use HTTP/2).
 * - Every request except OPTIONS and `/healthz` is authenticated; a missing
 *   or wrong password gets 401 with exactly one `WWW-Authenticate: Basic`
 *   challenge; no cookies.
 * - Offline (the gate is not online), a request naming a user without a
 *   valid take-out key gets the 403 locked sentence before any password is
 *   checked; a user with one is authenticated by opening their slot T (with
 *   the same throttling and login cache as online) and gets their own
 *   vault only. Cached offline logins are forgotten whenever a take-out
 *   session locks and when the directory is back.
 * - Request paths never reach the fastify router: every DAV request is routed
 *   as one route and the raw URL is decoded once by the WebDAV layer. No
 *   answer names that internal route: a method the share does not implement
 *   gets 501 with the Allow list, `/healthz` and `/metrics` 405.
 * - `/healthz` (no login) says only `ok` or `locked`: no version, no
 *   take-out state. `/metrics` is for administrators only.
 * - State-changing API requests must be same-origin JSON (api-guard.ts).
 * - A body framed with a transfer coding other than chunked is refused
 *   (501): it would be stored still encoded.
 * - `Expect: 100-continue`: when the headers alone decide the answer (a
 *   coding, method, origin or content type refused, the PC locked, no
 *   credentials, a body over the limit), that answer is sent instead of
 *   100 Continue, and the connection is closed (RFC 9110 10.1.1).
 * - Error bodies are plain sentences, never stack traces or server paths;
 *   secrets and Authorization headers are never logged.
 */
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { AuthResult, Directory } from '../../policy/directory/directory.js';
import type { Sessions, UserSession } from '../../policy/sessions.js';
import { LOCKED_MESSAGE, type Gate } from '../../policy/gate.js';
import type { AuditLog } from '../../policy/audit/log.js';
import type { Takeout } from '../../policy/takeout/agent/takeout.js';
import { ALLOW, DavHandler, DAV_METHODS, optionsResponse, putSizeRefusal, type DavLimits } from '../../shares/webdav/handler.js';
import type { DavResponse } from '../../shares/webdav/responses.js';
import { VaultDavStore } from '../../shares/vault/dav-store.js';
import { NOTICE_LIMIT } from '../../shares/vault/notice-log.js';
import { noticesStore } from '../../shares/webdav/notices-store.js';
import { Authenticator, MAX_LOGIN_CHARS, parseBasic } from '../http/basic-auth.js';
import { codeOf, plainAnswer as plain, statusOf, useErrorStatus } from '../http/error-status.js';
import { LOGIN_STATUS, REQUEST_STATUS, UNLOCK_STATUS, type RequestRefusalCode, type UnlockErrorCode } from './error-status.js';
import { Metrics, label } from './metrics.js';
import { apiRequestRefusal } from '../http/api-guard.js';
import { registerTakeoutRoutes, type ApiCaller } from './takeout-routes.js';
import { isUserPageRequest, registerUserPage, sendLockedPage, USER_PAGE_ROUTE } from './user-page.js';
import type { SessionLocks } from './session-locks.js';
import type { Clock } from '../../shares/clock.js';
import { pinoOptions, type LogOptions } from '../http/log-options.js';

export const KEEP_ALIVE_MS = 70_000;
const HEADERS_TIMEOUT_MS = 75_000;
/** The Windows WebDAV client cannot handle files of 4 GiB or more. */
export const MAX_FILE_BYTES = 0xffffffff;
export const MAX_XML_BYTES = 1024 * 1024;
const DAV_ROUTE = '/.mydoc-dav';
const REALM = 'Basic realm="mydoc", charset="UTF-8"';

export interface AppOptions extends LogOptions {
  tls: { key: string; cert: string };
  directory: Directory;
  sessions: Sessions;
  /** The WebDAV lock table of each open session. */
  locks: SessionLocks;
  gate: Gate;
  audit: AuditLog;
  takeout: Takeout;
  /** `takeout.maxDays`, for the user's page. */
  takeoutMaxDays: number;
  /** This PC's id and device public key (PEM, and its RFC 7638 id), for the take-out approval. */
  pcId: string;
  devicePublicPem: string;
  deviceKeyId: string;
  version: string;
  /** Free space reported to clients. */
  quotaBytes: () => number;
  /** When the last complete backup finished (ms since the epoch), if ever. */
  lastCompleteBackup?: () => Promise<number | undefined>;
  /** The clock of the WebDAV share (lock time left), as of its lock tables (default the system clock). */
  clock?: Clock;
}

declare module 'fastify' {
  interface FastifyRequest {
    mydocUser?: string;
  }
}

function send(reply: FastifyReply, res: DavResponse): FastifyReply {
  reply.code(res.status);
  for (const [k, v] of Object.entries(res.headers)) reply.header(k, v);
  return reply.send(res.body ?? '');
}

/** A user name as logs and the audit log record it: whatever was sent, cut to the longest login that is checked. */
function loggable(user: string): string {
  return user.length > MAX_LOGIN_CHARS ? `${[...user].slice(0, MAX_LOGIN_CHARS).join('')}… (${user.length} characters)` : user;
}

/** An answer decided from the request line and headers alone, before any body is read. */
interface EarlyAnswer {
  status: number;
  message: string;
  /** An API error code: the answer is the API's JSON error. */
  code?: string;
  headers?: Record<string, string>;
}

/** A refusal of the request as sent, with the status the agent's table gives its code; a plain sentence. */
function refuse(code: RequestRefusalCode, message: string, headers?: Record<string, string>): EarlyAnswer {
  return { status: REQUEST_STATUS[code], message, ...(headers ? { headers } : {}) };
}

/** The API guard's refusal (http/api-guard.ts), answered as the API's JSON error. */
function apiRefused(method: string, url: string, headers: IncomingMessage['headers']): EarlyAnswer | undefined {
  const refusal = apiRequestRefusal(method, url, headers);
  return refusal && { status: REQUEST_STATUS[refusal.code], code: refusal.code, message: refusal.message };
}

function earlyResponse(a: EarlyAnswer): { headers: Record<string, string | number>; body: Buffer } {
  const body = Buffer.from(a.code ? JSON.stringify({ error: { code: a.code, message: a.message } }) : `${a.message}\n`, 'utf8');
  const type = a.code ? 'application/json' : 'text/plain; charset=utf-8';
  // The body was not read: the connection cannot carry another request.
  return { headers: { ...a.headers, 'content-type': type, 'content-length': body.length, connection: 'close' }, body };
}

function answerEarly(reply: FastifyReply, a: EarlyAnswer): FastifyReply {
  const { headers, body } = earlyResponse(a);
  reply.code(a.status);
  for (const [k, v] of Object.entries(headers)) reply.header(k, v);
  return reply.send(body);
}

/** 501 for a transfer coding other than chunked (RFC 9112 6.1): the body would be stored still encoded. */
function transferCodingRefusal(value: string | undefined): EarlyAnswer | undefined {
  if (value === undefined) return undefined;
  const codings = value.split(',').map((c) => c.trim().toLowerCase());
  if (codings.every((c) => c === 'chunked')) return undefined;
  return refuse('ERR_HTTP_TRANSFER_CODING', 'only the chunked transfer coding is supported: send the body as it is, with Content-Length or Transfer-Encoding: chunked');
}

const notImplemented = (method: string): EarlyAnswer => refuse('ERR_HTTP_METHOD', `the method ${method} is not implemented here`, { allow: ALLOW });

const UNLOCK_MESSAGES: Record<UnlockErrorCode, (err: Error) => string> = {
  ERR_NETWORK_SECRET_UNAVAILABLE: (err) => `your documents cannot be unlocked now: ${err.message}`,
  ERR_NETWORK_SECRET_ABSENT: (err) => `your documents cannot be unlocked now: ${err.message}`,
  ERR_SLOT_OPEN: (err) => `your documents cannot be unlocked on this PC: ${err.message}`,
  ERR_KEYRING_MISSING: () => 'you have no documents on this PC (user not enrolled)',
  ERR_VAULT_BUSY: () => 'your documents are open in another mydoc process on this PC; they can be served once it has stopped',
};

/** The answer to a vault that does not open at login, by the error's code; undefined for any other error. */
function unlockFailure(err: unknown): { status: number; message: string } | undefined {
  const status = statusOf(UNLOCK_STATUS, err);
  return status === undefined ? undefined : { status, message: UNLOCK_MESSAGES[codeOf(err) as UnlockErrorCode](err as Error) };
}

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    https: { key: opts.tls.key, cert: opts.tls.cert, minVersion: 'TLSv1.2' },
    keepAliveTimeout: KEEP_ALIVE_MS,
    requestTimeout: 0,
    connectionTimeout: 0,
    exposeHeadRoutes: false,
    return503OnClosing: true,
    logController: new LogController({ disableRequestLogging: true }),
    logger: { ...pinoOptions(opts), redact: ['req.headers.authorization'] },
    rewriteUrl: (req) => {
      const url = req.url ?? '/';
      if (isUserPageRequest(req.method, url, req.headers.accept)) return USER_PAGE_ROUTE;
      return url === '/healthz' || url === '/metrics' || url.startsWith('/api/') ? url : DAV_ROUTE;
    },
  });
  app.server.headersTimeout = HEADERS_TIMEOUT_MS;

  const authenticator = new Authenticator(opts.directory);
  // Offline, the password is checked by opening the user's slot T.
  const offlineAuthenticator = new Authenticator({ authenticate: (login, password) => opts.takeout.authenticate(login, password) });
  opts.takeout.onLock(() => offlineAuthenticator.forget());
  opts.gate.onOnline(() => {
    offlineAuthenticator.forget();
    loggedIn.clear();
  });
  const metrics = new Metrics(async () => {
    const sessions = await opts.sessions.all();
    const locks = opts.locks.all().flatMap((t) => t.locks.list());
    return {
      mydoc_sessions_open: { help: 'Users whose vault is unlocked.', values: { '': sessions.length } },
      mydoc_gate_state: {
        help: 'The gate: 1 for the current state (online, takeout or locked).',
        values: Object.fromEntries(['online', 'takeout', 'locked'].map((state) => [`{state="${state}"}`, opts.gate.state() === state ? 1 : 0])),
      },
      mydoc_backup_last_complete_timestamp_seconds: {
        help: 'When the last complete backup to the NAS finished (Unix time; 0: never).',
        values: { '': Math.round(((await opts.lastCompleteBackup?.()) ?? 0) / 1000) },
      },
      mydoc_build_info: { help: 'The running version of mydoc (always 1).', values: { [`{version="${label(opts.version)}"}`]: 1 } },
      mydoc_webdav_locks: {
        help: 'Active WebDAV locks by scope.',
        values: { '{scope="exclusive"}': locks.filter((l) => l.scope === 'exclusive').length, '{scope="shared"}': locks.filter((l) => l.scope === 'shared').length },
      },
    };
  });
  const limits: DavLimits = { maxFileBytes: MAX_FILE_BYTES, maxXmlBytes: MAX_XML_BYTES, quotaBytes: opts.quotaBytes };

  for (const method of DAV_METHODS) {
    if (!app.supportedMethods.includes(method)) app.addHttpMethod(method, { hasBody: ['PROPFIND', 'PROPPATCH', 'LOCK', 'MKCOL'].includes(method) });
  }
  // Bodies stay streams: the WebDAV layer reads them itself, with its own limits.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req: FastifyRequest, payload: Readable, done: (err: Error | null, body?: unknown) => void) => done(null, payload));

  app.addHook('onResponse', async (req, reply) => {
    const bytesIn = Number(req.headers['content-length'] ?? 0) || 0;
    const bytesOut = Number(reply.getHeader('content-length') ?? 0) || 0;
    metrics.observe(req.method, reply.statusCode, reply.elapsedTime / 1000, bytesIn, bytesOut);
    // No URLs in the log: file names are the users' data.
    req.log.debug({ method: req.method, status: reply.statusCode, ms: Math.round(reply.elapsedTime), user: req.mydocUser }, 'request');
  });

  // Only fastify's own errors have a status here: the WebDAV handler answers its errors itself, the API in its own context.
  useErrorStatus(app, {}, (reply, a) => plain(reply, a.status, a.message));

  // Requests in flight: aborted when the gate locks.
  const active = new Set<FastifyRequest['raw']>();
  /** Users whose login was recorded in the audit log since the last lock. */
  const loggedIn = new Set<string>();
  opts.gate.onLock(() => {
    authenticator.forget();
    loggedIn.clear();
    for (const raw of active) raw.destroy();
    active.clear();
  });
  app.addHook('onRequest', async (req, reply) => {
    const refused = transferCodingRefusal(req.headers['transfer-encoding']) ?? apiRefused(req.method, req.url, req.headers);
    if (refused) return answerEarly(reply, refused);
    if (req.method === 'OPTIONS' || req.url === '/healthz') return;
    if (!opts.gate.isReachable) {
      // Offline: only users with a valid take-out key; a request without credentials is
      // challenged only when someone could answer it (Windows asks for them on a 401).
      const creds = parseBasic(req.headers.authorization);
      const admitted = creds ? await opts.gate.admits(creds.user) : opts.gate.state() === 'takeout';
      if (!admitted) return req.url === USER_PAGE_ROUTE ? sendLockedPage(reply, REQUEST_STATUS.ERR_PC_LOCKED, LOCKED_MESSAGE) : plain(reply, REQUEST_STATUS.ERR_PC_LOCKED, LOCKED_MESSAGE);
    }
    active.add(req.raw);
    req.raw.once('close', () => active.delete(req.raw));
  });

  // Anyone may ask: nothing here about the version or who holds a take-out key.
  app.get('/healthz', async () => ({ state: opts.gate.state() === 'locked' ? 'locked' : 'ok' }));

  app.get('/metrics', async (req, reply) => {
    const caller = await authenticate(req, reply);
    if (!caller) return reply;
    if (!caller.admin) return plain(reply, REQUEST_STATUS.ERR_ADMIN_ONLY, 'the metrics are for administrators only');
    return reply.type('text/plain; version=0.0.4').send(await metrics.render());
  });

  // What the router does not know: no internal route name in the answer.
  app.setNotFoundHandler((req, reply) => {
    if (req.url === '/healthz' || req.url === '/metrics') return plain(reply, REQUEST_STATUS.ERR_HTTP_GET_ONLY, `${req.url} answers GET only`, { allow: 'GET' });
    if (req.url.startsWith('/api/')) return reply.code(REQUEST_STATUS.ERR_API_NOT_FOUND).type('application/json').send(JSON.stringify({ error: { code: 'ERR_API_NOT_FOUND', message: 'there is no such API request' } }));
    return answerEarly(reply, notImplemented(req.method));
  });

  /**
   * Expect: 100-continue. Node sends 100 by itself unless this event is handled: the
   * answer is decided from the headers first, and 100 invites the body only when they
   * leave it open.
   */
  const beforeBody = (req: IncomingMessage): EarlyAnswer | undefined => {
    const method = req.method ?? '';
    const url = req.url ?? '/';
    const refused = transferCodingRefusal(req.headers['transfer-encoding']) ?? apiRefused(method, url, req.headers);
    if (refused) return refused;
    const isApi = url.startsWith('/api/');
    if (url === '/healthz' || url === '/metrics') return method === 'GET' ? undefined : refuse('ERR_HTTP_GET_ONLY', `${url} answers GET only`, { allow: 'GET' });
    if (!isApi && !(DAV_METHODS as readonly string[]).includes(method)) return notImplemented(method);
    if (method === 'OPTIONS') return undefined;
    if (opts.gate.state() === 'locked') return refuse('ERR_PC_LOCKED', LOCKED_MESSAGE);
    if (!parseBasic(req.headers.authorization)) return refuse('ERR_AUTH_REQUIRED', 'authentication required', { 'www-authenticate': REALM });
    if (!isApi && method === 'PUT') {
      const refusal = putSizeRefusal(req.headers['content-length'], limits);
      return refusal && { status: refusal.status, message: refusal.message };
    }
    const length = Number(req.headers['content-length'] ?? 0);
    if (!isApi && length > MAX_XML_BYTES) return refuse('ERR_HTTP_BODY_TOO_LARGE', `the request body is larger than ${MAX_XML_BYTES} bytes`);
    return undefined;
  };
  app.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const answer = beforeBody(req);
    if (answer) {
      const { headers, body } = earlyResponse(answer);
      res.writeHead(answer.status, headers).end(body);
      app.log.debug({ method: req.method, status: answer.status }, 'answered before the body (Expect: 100-continue)');
      return;
    }
    res.writeContinue();
    app.server.emit('request', req, res);
  });

  async function authenticate(req: FastifyRequest, reply: FastifyReply): Promise<ApiCaller | undefined> {
    const creds = parseBasic(req.headers.authorization);
    const online = opts.gate.isReachable;
    const checker = online ? authenticator : offlineAuthenticator;
    let result: AuthResult | undefined;
    try {
      result = creds ? await checker.verify(creds, req.ip) : undefined;
    } catch (err) {
      switch (codeOf(err)) {
        case 'ERR_LOGIN_THROTTLED':
          plain(reply, LOGIN_STATUS.ERR_LOGIN_THROTTLED, (err as Error).message, { 'retry-after': '5' });
          return undefined;
        // The directory stopped answering before the gate has locked.
        case 'ERR_DIRECTORY_UNREACHABLE':
          req.log.warn({ code: 'ERR_DIRECTORY_UNREACHABLE' }, 'login: the directory did not answer');
          plain(reply, LOGIN_STATUS.ERR_DIRECTORY_UNREACHABLE, 'the company directory does not answer, so your password cannot be checked now; try again in a moment', { 'retry-after': '5' });
          return undefined;
      }
      throw err;
    }
    if (!creds || !result?.ok) {
      if (creds && result && !result.ok) {
        const actor = loggable(creds.user);
        req.log.info({ user: actor, reason: result.reason, delayMs: checker.delayFor(creds.user, req.ip) }, 'authentication failed');
        await opts.audit.append({ actor, action: 'login', decision: 'deny', reason: result.reason });
      }
      const message = !creds ? 'authentication required' : result && !result.ok && result.reason !== 'wrong user name or password' ? `login refused: ${result.reason}` : 'wrong user name or password';
      plain(reply, REQUEST_STATUS.ERR_AUTH_REQUIRED, message, { 'www-authenticate': REALM });
      return undefined;
    }
    req.mydocUser = result.user;
    if (!loggedIn.has(result.user)) {
      loggedIn.add(result.user);
      await opts.audit.append({ actor: result.user, action: 'login', decision: 'allow', reason: !online ? 'take-out' : result.admin ? 'administrator' : undefined });
    }
    return { user: result.user, admin: result.admin };
  }

  /** The vault session of an authenticated user: online their own, offline their take-out session (undefined without one). */
  const sessionOf = async (user: string): Promise<UserSession | undefined> =>
    opts.gate.isReachable ? opts.sessions.get(user) : opts.sessions.takeoutSession(user);

  registerUserPage(app, {
    takeout: opts.takeout,
    gate: opts.gate,
    pcId: opts.pcId,
    maxDays: opts.takeoutMaxDays,
    authenticate,
    notices: async (user, limit) => {
      const session = await sessionOf(user);
      if (!session) throw Object.assign(new Error('no session'), { code: 'ERR_PC_LOCKED' });
      return session.vault.notices(limit);
    },
  });
  registerTakeoutRoutes(app, { takeout: opts.takeout, gate: opts.gate, pcId: opts.pcId, devicePublicPem: opts.devicePublicPem, deviceKeyId: opts.deviceKeyId, authenticate });

  app.route({
    method: [...DAV_METHODS],
    url: DAV_ROUTE,
    handler: async (req, reply) => {
      const url = (req.raw as { originalUrl?: string }).originalUrl ?? req.raw.url ?? '/';
      if (req.method === 'OPTIONS') return send(reply, optionsResponse());
      const caller = await authenticate(req, reply);
      if (!caller) return reply;
      const user = caller.user;
      let session: UserSession;
      try {
        const takeoutSession = opts.gate.isReachable ? undefined : await opts.sessions.takeoutSession(user);
        if (!opts.gate.isReachable && !takeoutSession) return plain(reply, REQUEST_STATUS.ERR_PC_LOCKED, LOCKED_MESSAGE);
        session = takeoutSession ?? (await opts.sessions.get(user));
      } catch (err) {
        const failure = unlockFailure(err);
        if (!failure) throw err;
        req.log.warn({ user, code: (err as { code?: string }).code }, 'vault unlock failed');
        return plain(reply, failure.status, failure.message);
      }
      // The user's own drive: their access notices at its root, read-only (notices-store.ts).
      const vault = session.vault;
      const store = noticesStore(new VaultDavStore(vault), () => vault.notices(NOTICE_LIMIT));
      const handler = new DavHandler(store, opts.locks.of(session), limits, opts.clock);
      const body = req.body as Readable | undefined;
      const res = await handler.handle({ method: req.method, url, headers: req.headers, body, principal: user });
      if (res.status >= 500) req.log.error({ method: req.method, status: res.status, cause: res.cause }, 'WebDAV request failed');
      if (body && !body.readableEnded && res.status >= 400) reply.header('connection', 'close');
      return send(reply, res);
    },
  });

  return app;
}
