/**
 * What the console's two WebDAV trees (/pcs for administrators, /shared for
 * grantees) share before they differ: the internal routes their URLs are
 * rewritten to, one route per tree with bodies left as streams, the raw URL
 * decoded once, the login with its one challenge, and the answers of the
 * virtual levels.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify';
import type { Readable } from 'node:stream';
import { DAV_METHODS, optionsResponse } from '../../../shares/webdav/handler.js';
import { toDavError, type DavError } from '../../../shares/webdav/errors.js';
import { decodePath } from '../../../shares/webdav/paths.js';
import { errorResponse } from '../../../shares/webdav/responses.js';
import { sendPlain } from './forward.js';
import { virtualDepth, virtualListing, virtualPropfind, type VirtualChild } from './virtual.js';

/** The internal routes the console's WebDAV URLs are rewritten to (never a path a client names). */
export const DAV_ROUTES = { pcs: '/.console-dav/pcs', shared: '/.console-dav/shared' } as const;

/** The app's rewriteUrl: /pcs and /shared URLs (with or without a trailing path) go to their one route each. */
export function davRoute(url: string): string {
  for (const [top, route] of Object.entries(DAV_ROUTES)) {
    const prefix = `/${top}`;
    if (url === prefix || url.startsWith(`${prefix}/`) || url.startsWith(`${prefix}?`)) return route;
  }
  return url;
}

/** The URL the client sent (before the rewrite). */
export function rawUrlOf(req: FastifyRequest): string {
  return (req.raw as { originalUrl?: string }).originalUrl ?? req.raw.url ?? '/';
}

/** Registers the methods WebDAV needs on the app (once; /shared uses them too). */
export function addDavMethods(app: FastifyInstance): void {
  for (const method of DAV_METHODS) {
    if (!app.supportedMethods.includes(method)) app.addHttpMethod(method, { hasBody: ['PROPFIND', 'PROPPATCH', 'LOCK', 'MKCOL'].includes(method) });
  }
}

/** One route for a whole tree (every WebDAV method); bodies stay streams, forwarded as they come or read with a cap. */
export function registerDavRoute(app: FastifyInstance, url: string, handler: RouteHandlerMethod): void {
  addDavMethods(app);
  app.register(async (dav) => {
    dav.removeAllContentTypeParsers();
    dav.addContentTypeParser('*', (_req: FastifyRequest, payload: Readable, done: (err: Error | null, body?: unknown) => void) => done(null, payload));
    dav.route({ method: [...DAV_METHODS], url, exposeHeadRoute: false, handler });
  });
}

/** A body the answer does not read: the connection cannot carry another request after it. */
export function dropBody(req: FastifyRequest, reply: FastifyReply): void {
  const body = req.body as Readable | undefined;
  if (body && !body.readableEnded) {
    reply.header('connection', 'close');
    body.resume();
  }
}

export function sendDav(reply: FastifyReply, err: DavError): FastifyReply {
  const res = errorResponse(err);
  return reply.code(res.status).headers(res.headers).send(res.body);
}

/** A login as a tree checks it: the caller, or the refusal to answer with. */
export type DavLogin<T> = ({ ok: true } & T) | { ok: false; status: number; message: string; retryAfter?: number };

/**
 * Decodes the request's path once (400 for "%2F", "..", NUL, bad UTF-8),
 * requires the tree's first name (else 404), answers OPTIONS, and checks
 * the login (401 with one challenge in `realm`). Resolves with the names
 * and the login, or undefined once it has answered.
 */
export async function openDavRequest<T>(req: FastifyRequest, reply: FastifyReply, top: string, realm: string, verify: () => Promise<DavLogin<T>>): Promise<{ names: string[]; login: { ok: true } & T } | undefined> {
  let names: string[];
  try {
    names = decodePath(rawUrlOf(req));
  } catch (err) {
    dropBody(req, reply);
    await sendDav(reply, toDavError(err));
    return undefined;
  }
  if (names[0] !== top) {
    dropBody(req, reply);
    await sendPlain(reply, 404, 'there is no such resource');
    return undefined;
  }
  if (req.method === 'OPTIONS') {
    const o = optionsResponse();
    await reply.code(o.status).headers(o.headers).send();
    return undefined;
  }
  const login = await verify();
  if (!login.ok) {
    dropBody(req, reply);
    const headers: Record<string, string> = login.status === 401 ? { 'www-authenticate': realm } : {};
    if (login.retryAfter !== undefined) headers['retry-after'] = String(login.retryAfter);
    await sendPlain(reply, login.status, login.message, headers);
    return undefined;
  }
  return { names, login };
}

/** PROPFIND (Depth 0 or 1), GET or HEAD of a virtual folder. */
export async function sendVirtual(req: FastifyRequest, reply: FastifyReply, self: string[], modified: number, children: VirtualChild[], now: number): Promise<FastifyReply> {
  try {
    if (req.method === 'PROPFIND') {
      const answer = await virtualPropfind({ self, modified, children, depth: virtualDepth(req.headers.depth), body: req.body as Readable | undefined, now });
      return reply.code(answer.status).headers(answer.headers).send(answer.body);
    }
  } catch (err) {
    dropBody(req, reply);
    return sendDav(reply, toDavError(err));
  }
  dropBody(req, reply);
  const body = virtualListing(children);
  reply.code(200).headers({ 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length });
  return reply.send(req.method === 'HEAD' ? undefined : body);
}
