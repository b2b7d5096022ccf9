/**
 * What a user sees of their take-out: the pending request, the installed key
 * and the time left, or how their last request ended without a key (denied
 * with the approver's note, or expired unanswered).
 */
import { normalizeUserName } from '../../directory/user-name.js';
import type { TakeoutErrorCode } from '../errors.js';
import { iso, type AgentContext } from './context.js';

export interface TakeoutStatus {
  request?: { id: string; days: number; reason: string; requested: string };
  key?: { jti: string; notBefore: string; expires: string; remainingSeconds: number; valid: boolean; refusal?: TakeoutErrorCode };
  /** The last request, when it ended unapproved; kept until the user asks again. */
  ended?: { id: string; days: number; reason: string; requested: string; outcome: 'denied' | 'expired'; note: string; by: string; at: string };
}

export async function status(ctx: AgentContext, login: string): Promise<TakeoutStatus> {
  const { store } = ctx;
  const user = normalizeUserName(login);
  const status: TakeoutStatus = {};
  const request = Object.values(store.state.requests).find((r) => r.user === user);
  if (request) status.request = { id: request.rid, days: request.days, reason: request.reason, requested: request.requested };
  const key = store.state.keys[user];
  if (key) {
    const result = await ctx.keys.validate(user);
    const remaining = Math.max(0, key.exp - Math.floor(ctx.now() / 1000));
    status.key = { jti: key.jti, notBefore: iso(key.nbf), expires: iso(key.exp), remainingSeconds: 'claims' in result ? remaining : 0, valid: 'claims' in result };
    if (!('claims' in result) && result.code !== 'NONE') status.key.refusal = result.code;
  }
  const ended = store.state.ended[user];
  if (ended) status.ended = { id: ended.rid, days: ended.days, reason: ended.reason, requested: ended.requested, outcome: ended.outcome, note: ended.note, by: ended.by, at: ended.at };
  return status;
}
