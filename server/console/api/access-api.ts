/**
 * The JSON API of the two-person rule (access.approvals 1), in the console
 * API's context (takeout-api.ts: its Basic login, same-origin guard, JSON
 * parser and error answers apply), shaped like the take-out routes:
 *
 *   GET  /api/access/requests?status=S&pcId=P&live=1&limit=N  data or approver: requests, newest first
 *   POST /api/access/requests {"pcId","user","reason","hours"} data: ask for access to a user's contents
 *   POST /api/access/requests/:id/approval {}                  approver (not the requester)
 *   POST /api/access/requests/:id/denial   {"note":"..."}      approver
 *
 * Security considerations: the role is checked before anything is read;
 * AccessRequests checks it again and refuses approving one's own request
 * (ERR_ACCESS_OWN_REQUEST, 403). Bodies are fields of a JSON object only.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AccessRequests } from '../access/access-requests.js';
import type { Admin } from '../admins.js';
import type { Role } from '../config.js';
import type { AccessRequestStatus } from '../store/store.js';
import { ApiError, field } from './api-answers.js';

const STATUSES: readonly AccessRequestStatus[] = ['pending', 'approved', 'denied'];
const MAX_LIMIT = 1000;

export interface AccessApiDeps {
  caller(req: FastifyRequest, reply: FastifyReply, roles: readonly Role[]): Promise<Admin | undefined>;
  access: AccessRequests;
  json(reply: FastifyReply, status: number, body: unknown): FastifyReply;
}

export function registerAccessApi(api: FastifyInstance, deps: AccessApiDeps): void {
  const { caller, access, json } = deps;

  api.get('/api/access/requests', async (req, reply) => {
    if ((await caller(req, reply, ['data', 'approver'])) === undefined) return reply;
    const q = req.query as Record<string, unknown>;
    const status = q.status;
    if (status !== undefined && !(STATUSES as readonly unknown[]).includes(status)) throw new ApiError('ERR_API_BODY', `status must be one of ${STATUSES.join(', ')}`);
    const limit = q.limit === undefined ? 100 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new ApiError('ERR_API_BODY', `limit must be an integer from 1 to ${MAX_LIMIT}`);
    if (q.pcId !== undefined && typeof q.pcId !== 'string') throw new ApiError('ERR_API_BODY', 'pcId must be given once');
    const rows = await access.list({ ...(status !== undefined && { status: status as AccessRequestStatus }), ...(typeof q.pcId === 'string' && { pcId: q.pcId }), live: q.live === '1', limit });
    return json(reply, 200, { requests: rows });
  });

  api.post('/api/access/requests', async (req, reply) => {
    const admin = await caller(req, reply, ['data']);
    if (admin === undefined) return reply;
    const [pcId, user, reason, hours] = ['pcId', 'user', 'reason', 'hours'].map((n) => field(req.body, n));
    if (typeof pcId !== 'string' || typeof user !== 'string' || typeof reason !== 'string') throw new ApiError('ERR_API_BODY', 'pcId, user and reason must be strings');
    if (typeof hours !== 'number') throw new ApiError('ERR_API_BODY', 'hours must be a number');
    return json(reply, 201, await access.request(admin, pcId, user, reason, hours));
  });

  api.post('/api/access/requests/:id/approval', async (req, reply) => {
    const admin = await caller(req, reply, ['approver']);
    if (admin === undefined) return reply;
    return json(reply, 200, await access.approve((req.params as { id: string }).id, admin));
  });

  api.post('/api/access/requests/:id/denial', async (req, reply) => {
    const admin = await caller(req, reply, ['approver']);
    if (admin === undefined) return reply;
    const note = field(req.body, 'note');
    if (typeof note !== 'string') throw new ApiError('ERR_API_BODY', 'note must be a string');
    return json(reply, 200, await access.deny((req.params as { id: string }).id, admin, note));
  });
}
