/**
 * The console's WebDAV for administrators: /pcs, one namespace over every
 * PC (issue 12).
 *
 *   /pcs/                    virtual: one folder per registered PC
 *   /pcs/<pcId>/             virtual: one folder per user that PC has ever reported (its known users,
 *                            signed in now or not: a closed vault is reached too, the agent opens it)
 *   /pcs/<pcId>/<user>/...   forwarded down the PC's link (forward.ts) to that user's vault
 *
 * Security considerations:
 * - Request paths never go through fastify's router or its decoding: the
 *   app rewrites /pcs URLs to one internal route (DAV_ROUTES, see
 *   `davRoute`), and the raw URL is decoded once by shares/webdav/paths.ts
 *   ("%2F", "..", NUL and bad UTF-8 are 400). The internal route's name is
 *   not reachable as a path of its own (it decodes to another first name: 404).
 * - Every request but OPTIONS is authenticated (Basic over HTTPS, the
 *   administrators' login with a 60 s memory: admin-basic.ts); a missing or
 *   wrong login gets 401 with exactly one WWW-Authenticate challenge.
 * - Any administrator may list the virtual levels (PC ids and user names
 *   are what the PC list shows already). Below the user, the `data` role is
 *   needed; administrators never write (PUT, DELETE, MKCOL, PROPPATCH,
 *   LOCK, UNLOCK, MOVE, COPY: 403, also across PCs); with the two-person
 *   rule on, contents (GET) need an approved access request
 *   (`contentsAllowed`), names and sizes do not. The console decides first
 *   and the agent again: each forwarded request carries a grant for it
 *   alone (method, user, path prefix, 60 s).
 * - One line in the console's trail per request that reaches a user's data
 *   or is refused: who, `<pcId>/<user><path>`, the method, status and
 *   request id (the agent's own log names the same id).
 * - No path or file name is logged (pino): the app's request log sees only
 *   the internal route.
 */
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { optionsResponse } from '../../../shares/webdav/handler.js';
import type { Clock } from '../../../shares/clock.js';
import type { ConsoleStore, PcRow } from '../store/store.js';
import type { AdminBasicAuth } from './admin-basic.js';
import { DAV_REALM } from './admin-basic.js';
import { ADMIN_READS, ADMIN_WRITE_MESSAGE, ADMIN_WRITES, auditData, dataTarget, decideAdminData, refusalReason, type AdminDataDeps } from './admin-data.js';
import { forwardToAgent, sendPlain, type ForwardDeps } from './forward.js';
import { DAV_ROUTES, dropBody, openDavRequest, rawUrlOf, registerDavRoute, sendVirtual } from './dav-request.js';
import type { VirtualChild } from './virtual.js';


export interface PcsDavDeps {
  store: Pick<ConsoleStore, 'getPc' | 'listPcs' | 'listKnownUsers'>;
  forward: ForwardDeps;
  auth: Pick<AdminBasicAuth, 'verify'>;
  data: AdminDataDeps;
  clock: Clock;
  logger: FastifyBaseLogger;
}



async function allPcs(store: PcsDavDeps['store'], now: number): Promise<PcRow[]> {
  const rows: PcRow[] = [];
  for (let offset = 0; ; offset += 1000) {
    const page = await store.listPcs({ filter: 'all', sort: 'pcId', descending: false, offset, limit: 1000, onlineSince: now, now });
    rows.push(...page.rows);
    if (page.rows.length < 1000 || rows.length >= page.total) return rows;
  }
}

export function registerPcsDav(app: FastifyInstance, deps: PcsDavDeps): void {
  // Windows' WebDAV client asks the server's root what it speaks before it maps /pcs/.
  app.options('/', async (_req, reply) => {
    const o = optionsResponse();
    return reply.code(o.status).headers(o.headers).send();
  });
  registerDavRoute(app, DAV_ROUTES.pcs, (req, reply) => handle(req, reply, deps));
}

async function handle(req: FastifyRequest, reply: FastifyReply, deps: PcsDavDeps): Promise<FastifyReply> {
  const method = req.method;
  const opened = await openDavRequest(req, reply, 'pcs', DAV_REALM, () => deps.auth.verify(req.headers.authorization, req.ip));
  if (!opened) return reply;
  const { names, login } = opened;
  const admin = login.admin;
  const [, pcId, user, ...rest] = names;
  const target = dataTarget([pcId, user, ...rest]);
  const refuse = async (status: number, message: string, why: string) => {
    dropBody(req, reply);
    await auditData(deps.data, admin, target, 'deny', refusalReason(method, status, why));
    return sendPlain(reply, status, message);
  };
  if (ADMIN_WRITES.has(method)) return refuse(403, ADMIN_WRITE_MESSAGE, 'write refused');
  if (!ADMIN_READS.has(method)) return refuse(405, `${method} is not allowed here`, 'method not allowed');

  // The virtual levels: any administrator.
  if (pcId === undefined) {
    const now = deps.clock();
    const children: VirtualChild[] = (await allPcs(deps.store, now)).map((pc) => ({ name: pc.pcId, modified: pc.lastSeenAt ?? pc.addedAt }));
    return sendVirtual(req, reply, ['pcs'], now, children, now);
  }
  const pc = await deps.store.getPc(pcId);
  if (!pc || pc.removedAt !== null) return refuse(404, `there is no PC ${pcId} on this console`, 'no such PC');
  if (user === undefined) {
    const modified = pc.lastSeenAt ?? pc.addedAt;
    const children = (await deps.store.listKnownUsers(pcId)).map((name) => ({ name, modified }));
    return sendVirtual(req, reply, ['pcs', pcId], modified, children, deps.clock());
  }

  // A user's data: decided here, then by the agent on the grant.
  const decision = await decideAdminData(deps.data, admin, pcId, user, rest, method);
  if (!decision.ok) return refuse(decision.status, decision.message, decision.why);
  await forwardToAgent(deps.forward, { pcId, method, rawUrl: rawUrlOf(req), headers: req.headers, body: req.body as Readable | undefined, grant: decision.grant }, reply, {
    onOutcome: (o) => auditData(deps.data, admin, target, o.code === undefined ? 'allow' : 'deny', `${method} ${o.status} request ${o.requestId} role data${o.code ? ` ${o.code}` : ''}`),
  });
  return reply;
}


