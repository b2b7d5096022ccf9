/**
 * Take-out requests (online): a user asks for a period (the request
 * listeners, e.g. the console link, are told at once); administrators list
 * the pending requests and fetch one for approval.
 *
 * Security considerations: a request's K_to is fresh, kept only sealed to
 * each trusted issuer (the agent cannot open it again) and in slot T under
 * the user's current password; the K_to buffer is zeroed after use. A new
 * request replaces the user's former request and key.
 */
import { randomBytes } from 'node:crypto';
import { canonicalUser } from '../../../shares/vault/user-vaults.js';
import { sealKto } from '../envelope.js';
import { TakeoutError } from '../errors.js';
import type { RequestDetail, RequestSummary } from '../request.js';
import type { AgentContext } from './context.js';
import type { PendingRequest } from './store.js';

const MAX_REASON_CHARS = 500;

/** A user asks for a take-out period (online; their vault is opened through slot N). */
export function request(ctx: AgentContext, user: string, password: string, days: unknown, reason: unknown): Promise<RequestSummary> {
  const { opts, store } = ctx;
  return ctx.serial.run(async () => {
    const who = canonicalUser(user);
    try {
      if (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > opts.maxDays) {
        throw new TakeoutError('ERR_TAKEOUT_REQUEST', `days must be an integer from 1 to ${opts.maxDays} (takeout.maxDays)`);
      }
      if (typeof reason !== 'string' || reason.trim() === '' || reason.length > MAX_REASON_CHARS) {
        throw new TakeoutError('ERR_TAKEOUT_REQUEST', `reason must be a text of 1 to ${MAX_REASON_CHARS} characters`);
      }
      if (opts.issuers.size === 0) throw new TakeoutError('ERR_TAKEOUT_REQUEST', 'take-out is not set up on this PC (takeout.issuerPublicKeys is empty)');
    } catch (err) {
      await opts.audit.append({ actor: who, action: 'takeout.request', decision: 'deny', reason: (err as Error).message });
      throw err;
    }
    const keyring = await opts.sessions.keyring(who);
    const rid = randomBytes(16).toString('base64url');
    const kTo = randomBytes(32);
    const envelopes: Record<string, string> = {};
    try {
      for (const [kid, issuer] of opts.issuers) envelopes[kid] = await sealKto(kTo, { rid, user: who, pcId: opts.pcId }, issuer.encryptKey, 'mydoc-kto-request+json');
      await keyring.setTakeoutSlot({ kTo, password, user: who, rid });
    } finally {
      kTo.fill(0);
    }
    const replaced = store.state.keys[who];
    const pending: PendingRequest = { rid, user: who, days, reason: reason.trim(), requested: new Date(ctx.now()).toISOString(), envelopes };
    await store.update((d) => {
      for (const r of Object.values(d.requests)) if (r.user === who) delete d.requests[r.rid];
      delete d.keys[who];
      delete d.ended[who];
      d.requests[rid] = pending;
    });
    ctx.keys.forget(who);
    await opts.audit.append({ actor: who, action: 'takeout.request', target: rid, decision: 'allow', reason: `${days} day(s): ${pending.reason}` });
    if (replaced) await opts.audit.append({ actor: 'system', action: 'takeout.destroy', target: replaced.jti, decision: 'info', reason: `key of ${who} replaced by a new request` });
    const detail = get(ctx, rid);
    for (const listener of ctx.requestListeners) listener(detail);
    return summary(pending);
  });
}

/** Pending requests (for administrators). */
export function list(ctx: AgentContext): RequestSummary[] {
  return Object.values(ctx.store.state.requests).map(summary);
}

/** Every pending request with its envelopes (what the console is told again after a reconnect). */
export function pendingDetails(ctx: AgentContext): RequestDetail[] {
  return Object.keys(ctx.store.state.requests).map((rid) => get(ctx, rid));
}

/** One pending request with its K_to envelopes to the issuers. */
export function get(ctx: AgentContext, rid: string): RequestDetail {
  const r = ctx.store.state.requests[rid];
  if (!r) throw new TakeoutError('ERR_TAKEOUT_NO_REQUEST', 'no pending take-out request with this id');
  return { ...summary(r), pcId: ctx.opts.pcId, maxDays: ctx.opts.maxDays, envelopes: { ...r.envelopes } };
}

function summary(r: PendingRequest): RequestSummary {
  return { id: r.rid, user: r.user, days: r.days, reason: r.reason, requested: r.requested };
}
