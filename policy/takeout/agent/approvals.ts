/**
 * What administrators do with a take-out request: install the signed
 * take-out key for it, deny it with a note (or tell that it expired
 * unanswered), or revoke a key (or a request, in advance).
 *
 * Security considerations: a key is installed only after it is verified
 * exactly as on use, is for the pending request, its user and this PC, was
 * issued (`iss`) by the administrator who installs it, and its K_to opens
 * with this PC's device key (the opened K_to is zeroed at once). A denied
 * or expired request loses its slot T at once, so it can never be
 * approved later. Every approval, denial and refusal is audited.
 */
import { openKto } from '../envelope.js';
import { TakeoutError } from '../errors.js';
import { iso, type AgentContext } from './context.js';
import type { EndedRequest, InstalledKey } from './store.js';

export const MAX_NOTE_CHARS = 500;

export interface Denial {
  outcome: EndedRequest['outcome'];
  /** The approver who denied, or `console` for an expiry. */
  by: string;
  note: string;
}

/** Installs the signed take-out key for pending request `rid`, after verifying it as on use. */
export function install(ctx: AgentContext, rid: string, token: string, admin: string): Promise<{ user: string; expires: string }> {
  const { opts, store } = ctx;
  return ctx.serial.run(async () => {
    const request = store.state.requests[rid];
    try {
      if (!request) throw new TakeoutError('ERR_TAKEOUT_NO_REQUEST', 'no pending take-out request with this id');
      const claims = await ctx.keys.verifyToken(request.user, token);
      if (claims.jti !== rid) throw new TakeoutError('ERR_TAKEOUT_REQUEST', 'the take-out key is for another request (jti)');
      if (claims.iss !== admin) throw new TakeoutError('ERR_TAKEOUT_MALFORMED', 'the take-out key must be issued (iss) by the administrator who installs it');
      (await openKto(claims.kto, opts.deviceKey, 'mydoc-kto+json', { rid, user: request.user, pcId: opts.pcId })).fill(0);
      const key: InstalledKey = { token, jti: rid, nbf: claims.nbf, exp: claims.exp, approvedBy: admin, installed: new Date(ctx.now()).toISOString() };
      await store.update((d) => {
        delete d.requests[rid];
        d.keys[request.user] = key;
      });
      ctx.keys.remember(request.user, token, claims);
      await opts.audit.append({ actor: admin, action: 'takeout.approve', target: rid, decision: 'allow', reason: `take-out key for ${request.user} from ${iso(claims.nbf)} until ${iso(claims.exp)}` });
      ctx.expiry.schedule();
      return { user: request.user, expires: iso(claims.exp) };
    } catch (err) {
      if (err instanceof TakeoutError) await opts.audit.append({ actor: admin, action: 'takeout.approve', target: rid, decision: 'deny', reason: `${err.code}: ${err.message}` });
      throw err;
    }
  });
}

/** Revokes `jti`: refused from now on; its slot T is destroyed at the next online check. */
export function revoke(ctx: AgentContext, jti: string, admin: string): Promise<{ user: string | undefined }> {
  const { opts, store } = ctx;
  return ctx.serial.run(async () => {
    const owner = Object.entries(store.state.keys).find(([, k]) => k.jti === jti)?.[0] ?? store.state.requests[jti]?.user;
    const exp = Object.values(store.state.keys).find((k) => k.jti === jti)?.exp ?? Math.floor(ctx.now() / 1000) + opts.maxDays * 86_400;
    await store.update((d) => {
      d.revoked[jti] = exp;
    });
    await opts.audit.append({ actor: admin, action: 'takeout.revoke', target: jti, decision: 'allow', reason: owner ? `take-out of ${owner}` : 'no such key on this PC (revoked in advance)' });
    return { user: owner };
  });
}

/**
 * Ends pending request `rid` without a key: denied by an approver (with their
 * note) or expired unanswered. Its slot T is destroyed; the user sees the
 * outcome until they ask again. Telling the same outcome again is answered
 * as before (`repeated`), without a second audit record.
 */
export function deny(ctx: AgentContext, rid: string, denial: Denial): Promise<{ user: string; repeated: boolean }> {
  const { opts, store } = ctx;
  return ctx.serial.run(async () => {
    if (typeof denial.note !== 'string' || denial.note.length > MAX_NOTE_CHARS) throw new TakeoutError('ERR_TAKEOUT_REQUEST', `the note must be a text of at most ${MAX_NOTE_CHARS} characters`);
    const request = store.state.requests[rid];
    if (!request) {
      const ended = Object.values(store.state.ended).find((e) => e.rid === rid && e.outcome === denial.outcome);
      if (ended) return { user: ended.user, repeated: true };
      throw new TakeoutError('ERR_TAKEOUT_NO_REQUEST', 'no pending take-out request with this id');
    }
    const ended: EndedRequest = { rid, user: request.user, days: request.days, reason: request.reason, requested: request.requested, outcome: denial.outcome, note: denial.note.trim(), by: denial.by, at: new Date(ctx.now()).toISOString() };
    await ctx.expiry.dropRequest(request, denial.outcome === 'denied' ? `denied by ${denial.by}` : 'expired unanswered', (d) => {
      d.ended[request.user] = ended;
    });
    await opts.audit.append({ actor: denial.by, action: denial.outcome === 'denied' ? 'takeout.deny' : 'takeout.request-expire', target: rid, decision: 'deny', reason: `request of ${request.user}${ended.note ? `: ${ended.note}` : ''}` });
    return { user: request.user, repeated: false };
  });
}
