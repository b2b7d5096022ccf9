/**
 * The agent's take-out routes on the console link (server/link/protocol.ts):
 * the console delivers a signed take-out key, a denial or expiry of a
 * request, a revocation, and asks for the take-out state after a reconnect.
 * Answers are `{status, body}`; errors `{"error":{"code","message"}}` with
 * the agent's status for the code (error-status.ts).
 *
 * Security considerations: the link is mutual TLS with the console's CA
 * pinned, but nothing here trusts the console's word for a key: a key is
 * installed by `Takeout.install`, which verifies it exactly as the
 * administrators' API does (issuer key, signature, PC, user, period,
 * revocation, the pending request, `iss` = the approving administrator, K_to
 * opening with this PC's device key). Bodies are checked field by field
 * before anything is touched. An error without a code is thrown on to the
 * link, which answers 500 without its message.
 */
import type { Takeout } from '../../policy/takeout/agent/takeout.js';
import { isRequestId } from '../../policy/takeout/token.js';
import { LINK_PATHS, type TakeoutStateAnswer } from '../link/protocol.js';
import { codeOf, statusOf } from '../http/error-status.js';
import type { LinkRoutes } from './console-link.js';
import { API_STATUS } from './error-status.js';


const MAX_NAME_CHARS = 256;

class LinkBodyError extends Error {
  readonly code = 'ERR_API_BODY';
}

function object(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new LinkBodyError('the body must be a JSON object');
  return body as Record<string, unknown>;
}

function requestId(value: unknown, field: string): string {
  if (!isRequestId(value)) throw new LinkBodyError(`${field} must be a take-out request id`);
  return value;
}

function admin(value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '' || value.length > MAX_NAME_CHARS) throw new LinkBodyError(`admin must be a name of 1 to ${MAX_NAME_CHARS} characters`);
  return value;
}

/** A coded error as the link's answer; anything else is thrown on. */
function answer(handler: (body: unknown) => Promise<{ status: number; body?: unknown }>) {
  return async (body: unknown) => {
    try {
      return await handler(body);
    } catch (err) {
      const status = statusOf(API_STATUS, err);
      if (status === undefined) throw err;
      return { status, body: { error: { code: codeOf(err), message: (err as Error).message } } };
    }
  };
}

export function takeoutLinkRoutes(takeout: Takeout): LinkRoutes {
  return {
    [LINK_PATHS.takeoutKey]: answer(async (body) => {
      const b = object(body);
      const rid = requestId(b.requestId, 'requestId');
      if (typeof b.token !== 'string') throw new LinkBodyError('token must be a string');
      return { status: 200, body: await takeout.install(rid, b.token, admin(b.admin)) };
    }),
    [LINK_PATHS.takeoutDenial]: answer(async (body) => {
      const b = object(body);
      const rid = requestId(b.requestId, 'requestId');
      if (b.outcome !== 'denied' && b.outcome !== 'expired') throw new LinkBodyError('outcome must be "denied" or "expired"');
      if (typeof b.note !== 'string') throw new LinkBodyError('note must be a string');
      await takeout.deny(rid, { outcome: b.outcome, by: admin(b.admin), note: b.note });
      return { status: 204 };
    }),
    [LINK_PATHS.takeoutRevocation]: answer(async (body) => {
      const b = object(body);
      const jti = requestId(b.jti, 'jti');
      await takeout.revoke(jti, admin(b.admin));
      return { status: 204 };
    }),
    [LINK_PATHS.takeoutState]: answer(async (body) => {
      object(body);
      const state: TakeoutStateAnswer = { pending: takeout.pendingDetails(), revoked: takeout.revokedIds() };
      return { status: 200, body: state };
    }),
  };
}
