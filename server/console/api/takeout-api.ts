/**
 * The console's JSON API for the command line (`mydoc takeout ... --console`):
 *
 *   GET  /api/takeout/requests?state=S&pcId=P&limit=N   viewer or approver: requests (no envelopes)
 *   POST /api/takeout/requests/:id/approval {"days":N}   approver: sign and install the key
 *   POST /api/takeout/requests/:id/denial   {"note":"..."} approver
 *   POST /api/takeout/revocations           {"jti":"..."}  approver
 *
 * Errors are `{"error":{"code","message"}}`; statuses by code (../error-status.ts, API_STATUS).
 *
 * Security considerations: every route is authenticated with Basic
 * credentials by the administrators' login (directory bind, role mapping,
 * per-account and per-address hold-back; a held-back login is 429 with
 * Retry-After); the role is checked before anything is read. A request that
 * changes state must be same-origin JSON (server/http/api-guard.ts, the
 * agent's guard), so a page elsewhere cannot use an administrator's cached
 * credentials. Bodies are at most 64 KiB and parsed in this context only.
 * Passwords are never logged.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { apiRequestRefusal } from '../../http/api-guard.js';
import { parseBasic } from '../../http/basic-auth.js';
import { useErrorStatus } from '../../http/error-status.js';
import { API_STATUS } from '../error-status.js';
import type { Role } from '../config.js';
import type { RequestState, TakeoutRequestRow } from '../store/store.js';
import type { Admin } from '../admins.js';
import type { AccessRequests } from '../access/access-requests.js';
import { registerAccessApi } from './access-api.js';
import { ApiError, field, json } from './api-answers.js';

const MAX_BODY_BYTES = 64 * 1024;
const MAX_LIMIT = 1000;
const REALM = 'Basic realm="mydoc console", charset="UTF-8"';
const STATES: readonly RequestState[] = ['pending', 'approved', 'denied', 'expired', 'revoked'];

/** What the API needs of the administrators' login (server/console/admins.ts, AdminAuthenticator). */
export interface AdminLogin {
  login(
    name: string,
    password: string,
    address: string,
  ): Promise<{ ok: true; admin: { name: string; roles: ReadonlySet<Role> } } | { ok: false; status: 401 | 429 | 503; message: string; retryAfter?: number }>;
}

/** What the API needs of take-out (ConsoleTakeout). */
export interface TakeoutDecisions {
  approve(id: string, admin: string, days: number): Promise<TakeoutRequestRow>;
  deny(id: string, admin: string, note: string): Promise<TakeoutRequestRow>;
  revoke(jti: string, admin: string): Promise<TakeoutRequestRow>;
}

export interface ConsoleApiDeps {
  store: { listRequests(filter: { state?: RequestState; pcId?: string; limit: number }): Promise<TakeoutRequestRow[]> };
  admins: AdminLogin;
  takeout: TakeoutDecisions;
  /** The two-person rule (/api/access/...). */
  access: AccessRequests;
}

/** A request row as the API answers it: without the K_to envelopes (opaque, of no use to a client). */
export type RequestView = Omit<TakeoutRequestRow, 'envelopes'>;

function view(row: TakeoutRequestRow): RequestView {
  const { envelopes: _envelopes, ...rest } = row;
  return rest;
}

/** Registers the API in its own context (its JSON parser, guard and error answers stay there). */
export function registerConsoleApi(app: FastifyInstance, deps: ConsoleApiDeps): void {
  void app.register(async (api) => {
    api.removeAllContentTypeParsers();
    api.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: MAX_BODY_BYTES }, (_req, text, done) => {
      try {
        done(null, JSON.parse(text as string));
      } catch {
        done(new ApiError('ERR_API_BODY', 'the body must be a JSON object'));
      }
    });
    useErrorStatus(api, API_STATUS, (reply, a) => json(reply, a.status, { error: { code: a.code ?? (a.status >= 500 ? 'ERR_INTERNAL' : 'ERR_API_BODY'), message: a.message } }));
    api.addHook('onRequest', async (req, reply) => {
      const refusal = apiRequestRefusal(req.method, req.url, req.headers);
      if (refusal) return json(reply, API_STATUS[refusal.code]!, { error: refusal });
    });

    /** The administrator's name, when logged in with a role in `roles`; undefined when the answer is sent. */
    async function caller(req: FastifyRequest, reply: FastifyReply, roles: readonly Role[]): Promise<string | undefined> {
      return (await callerAdmin(req, reply, roles))?.name;
    }

    /** The administrator (name and roles), when logged in with a role in `roles`; undefined when the answer is sent. */
    async function callerAdmin(req: FastifyRequest, reply: FastifyReply, roles: readonly Role[]): Promise<Admin | undefined> {
      const creds = parseBasic(req.headers.authorization);
      if (!creds) {
        json(reply, 401, { error: { code: 'ERR_AUTH_REQUIRED', message: 'authentication required' } }, { 'www-authenticate': REALM });
        return undefined;
      }
      const result = await deps.admins.login(creds.user, creds.password, req.ip);
      if (!result.ok) {
        const code = result.status === 429 ? 'ERR_LOGIN_THROTTLED' : result.status === 503 ? 'ERR_DIRECTORY_UNREACHABLE' : 'ERR_AUTH_REQUIRED';
        const headers: Record<string, string> = result.status === 401 ? { 'www-authenticate': REALM } : result.retryAfter !== undefined ? { 'retry-after': String(result.retryAfter) } : {};
        json(reply, result.status, { error: { code, message: result.message } }, headers);
        return undefined;
      }
      if (!roles.some((r) => result.admin.roles.has(r))) throw new ApiError('ERR_API_ROLE', `this needs the ${roles.join(' or ')} role`);
      return result.admin;
    }

    registerAccessApi(api, { caller: callerAdmin, access: deps.access, json });

    api.get('/api/takeout/requests', async (req, reply) => {
      if ((await caller(req, reply, ['viewer', 'approver'])) === undefined) return reply;
      const q = req.query as Record<string, string | undefined>;
      const state = q.state;
      if (state !== undefined && !(STATES as readonly string[]).includes(state)) throw new ApiError('ERR_API_BODY', `state must be one of ${STATES.join(', ')}`);
      const limit = q.limit === undefined ? 100 : Number(q.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new ApiError('ERR_API_BODY', `limit must be an integer from 1 to ${MAX_LIMIT}`);
      const rows = await deps.store.listRequests({ ...(state && { state: state as RequestState }), ...(q.pcId && { pcId: q.pcId }), limit });
      return json(reply, 200, { requests: rows.map(view) });
    });

    api.post('/api/takeout/requests/:id/approval', async (req, reply) => {
      const admin = await caller(req, reply, ['approver']);
      if (admin === undefined) return reply;
      const days = field(req.body, 'days');
      if (typeof days !== 'number') throw new ApiError('ERR_API_BODY', 'days must be a number');
      return json(reply, 200, view(await deps.takeout.approve((req.params as { id: string }).id, admin, days)));
    });

    api.post('/api/takeout/requests/:id/denial', async (req, reply) => {
      const admin = await caller(req, reply, ['approver']);
      if (admin === undefined) return reply;
      const note = field(req.body, 'note');
      if (typeof note !== 'string') throw new ApiError('ERR_API_BODY', 'note must be a string');
      return json(reply, 200, view(await deps.takeout.deny((req.params as { id: string }).id, admin, note)));
    });

    api.post('/api/takeout/revocations', async (req, reply) => {
      const admin = await caller(req, reply, ['approver']);
      if (admin === undefined) return reply;
      const jti = field(req.body, 'jti');
      if (typeof jti !== 'string') throw new ApiError('ERR_API_BODY', 'jti must be a string');
      return json(reply, 200, view(await deps.takeout.revoke(jti, admin)));
    });
  });
}
