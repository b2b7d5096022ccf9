/**
 * The take-out HTTP API of the agent (JSON over the same HTTPS origin):
 *
 *   GET  /api/takeout/status              the user: pending request, key, seconds left
 *   POST /api/takeout/requests            the user, online: {"days":N,"reason":"..."} -> 201
 *   GET  /api/takeout/requests            administrators: pending requests
 *   GET  /api/takeout/requests/:id        administrators: one request with K_to encrypted to the issuers
 *   POST /api/takeout/requests/:id/key    administrators: {"token":<signed take-out key>} -> installed
 *   POST /api/takeout/revocations         administrators: {"jti":...}
 *   GET  /api/device-key                  administrators: this PC's device public key (PEM) and id
 *
 * Errors are `{"error":{"code","message"}}` with a stable code; the status is
 * the agent's for that code (error-status.ts).
 *
 * Security considerations: every route is authenticated (Basic, by the
 * caller's `authenticate`); administrator routes require the directory's
 * admin role, which only an online login carries; requesting and approving
 * need the directory reachable. The user's password reaches slot T only (it
 * is never stored or logged). Bodies are capped at 64 KiB and parsed as
 * JSON by hand (the app keeps bodies as streams). A request that changes
 * state reaches a route only if it is same-origin JSON (api-guard.ts, run by
 * the app for all of `/api/` before authentication).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import type { Gate } from '../../policy/gate.js';
import type { Takeout } from '../../policy/takeout/agent/takeout.js';
import { TakeoutError } from '../../policy/takeout/errors.js';
import { isRequestId } from '../../policy/takeout/token.js';
import { parseBasic } from '../http/basic-auth.js';
import { plainAnswer, RequestRefused, useErrorStatus } from '../http/error-status.js';
import { API_STATUS, type ApiErrorCode } from './error-status.js';

const MAX_BODY_BYTES = 64 * 1024;

export interface ApiCaller {
  user: string;
  admin: boolean;
}

export interface TakeoutApiOptions {
  takeout: Takeout;
  gate: Gate;
  pcId: string;
  devicePublicPem: string;
  deviceKeyId: string;
  /** Authenticates the request; undefined when it answered 401 already. */
  authenticate: (req: FastifyRequest, reply: FastifyReply) => Promise<ApiCaller | undefined>;
}

/** A request the API's own checks refuse. */
class ApiError extends Error {
  constructor(
    readonly code: ApiErrorCode,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

async function readJson(req: FastifyRequest): Promise<Record<string, unknown>> {
  const body = req.body as Readable | undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  if (body) {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) throw new RequestRefused(413, 'ERR_API_BODY', `the body is larger than ${MAX_BODY_BYTES} bytes`);
      chunks.push(chunk);
    }
  }
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch {
    throw new ApiError('ERR_API_BODY', 'the body must be a JSON object');
  }
}

/** Registers the routes in their own context, whose errors are answered by the API's statuses. */
export function registerTakeoutRoutes(app: FastifyInstance, opts: TakeoutApiOptions): void {
  void app.register(async (api) => {
    // A coded error is the API's JSON error; any other is answered as the rest of the origin answers (a plain sentence).
    useErrorStatus(api, API_STATUS, (reply, a) =>
      a.code ? reply.code(a.status).type('application/json').send(JSON.stringify({ error: { code: a.code, message: a.message } })) : plainAnswer(reply, a.status, a.message),
    );
    takeoutRoutes(api, opts);
  });
}

function takeoutRoutes(app: FastifyInstance, opts: TakeoutApiOptions): void {
  const { takeout, gate } = opts;

  /** Runs `handler` for an authenticated caller; its errors are answered by the context's error handler. */
  const route =
    (need: { admin?: boolean; online?: boolean }, handler: (req: FastifyRequest, caller: ApiCaller) => Promise<[number, unknown]>) =>
    async (req: FastifyRequest, reply: FastifyReply) => {
      const caller = await opts.authenticate(req, reply);
      if (!caller) return reply;
      if (need.online && !gate.isReachable) throw new ApiError('ERR_API_OFFLINE', 'this needs the company directory, which is unreachable');
      if (need.admin && !caller.admin) throw new ApiError('ERR_API_ADMIN', 'administrators only');
      const [status, body] = await handler(req, caller);
      return reply.code(status).type('application/json').send(JSON.stringify(body));
    };

  const idParam = (req: FastifyRequest): string => {
    const id = (req.params as { id?: string }).id;
    if (!isRequestId(id)) throw new TakeoutError('ERR_TAKEOUT_NO_REQUEST', 'no pending take-out request with this id');
    return id;
  };

  app.get(
    '/api/takeout/status',
    route({}, async (_req, caller) => [200, { user: caller.user, state: gate.isReachable ? 'online' : 'takeout', ...(await takeout.status(caller.user)) }]),
  );

  app.post(
    '/api/takeout/requests',
    route({ online: true }, async (req, caller) => {
      const body = await readJson(req);
      const password = parseBasic(req.headers.authorization)!.password;
      return [201, await takeout.request(caller.user, password, body.days, body.reason)];
    }),
  );

  app.get('/api/takeout/requests', route({ admin: true, online: true }, async () => [200, { requests: takeout.list() }]));

  app.get('/api/takeout/requests/:id', route({ admin: true, online: true }, async (req) => [200, takeout.get(idParam(req))]));

  app.post(
    '/api/takeout/requests/:id/key',
    route({ admin: true, online: true }, async (req, caller) => {
      const id = idParam(req);
      const { token } = await readJson(req);
      if (typeof token !== 'string') throw new ApiError('ERR_API_BODY', 'token must be a string');
      return [200, await takeout.install(id, token, caller.user)];
    }),
  );

  app.post(
    '/api/takeout/revocations',
    route({ admin: true, online: true }, async (req, caller) => {
      const { jti } = await readJson(req);
      if (!isRequestId(jti)) throw new ApiError('ERR_API_BODY', 'jti must be a take-out key id');
      return [200, { jti, ...(await takeout.revoke(jti, caller.user)) }];
    }),
  );

  app.get('/api/device-key', route({ admin: true, online: true }, async () => [200, { pcId: opts.pcId, kid: opts.deviceKeyId, publicKeyPem: opts.devicePublicPem }]));
}
