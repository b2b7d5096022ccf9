/**
 * Take-out through the console: the requests agents report on their link,
 * and the approvers' decisions on them.
 *
 * - A request (an agent's `takeout.request` event, or its take-out state
 *   after a reconnect) is stored once; a newer request of the same user on
 *   the same PC expires the older ones (the agent replaced them).
 * - Approve: the console signs the take-out key (policy/takeout/issuer/
 *   approve.ts) with its issuer private key, K_to re-encrypted to the PC's
 *   device key pinned at enrolment, and sends it down the link; the request
 *   is recorded approved (with the key's jti and end) only once the agent has
 *   installed it. The PC must be connected.
 * - Deny (with a note), expiry of unanswered requests (`expireDue`) and
 *   revocation are recorded at once and told to the agent when it is
 *   connected; after every (re)connect `reconcile` asks the agent for its
 *   take-out state and sends what it missed (denials and expiries of
 *   requests it still holds, revocations it does not have), so nothing is
 *   lost while a PC is offline, across console restarts too (the store is
 *   the outbox).
 *
 * Security considerations: the device key comes from the console's store
 * (pinned at enrolment), never from the agent's word; what an agent reports
 * is checked field by field and only for its own pcId. The issuer private
 * key and K_to stay in this process (K_to only in memory, zeroed by
 * buildTakeoutKey); no token is logged or audited. Every decision (and
 * every refused one) is written to the console's audit trail, naming the
 * administrator. Each PC's decisions are serialized in this process (PCs do
 * not wait for each other), and the store's
 * compare-and-set (`decideRequest`) keeps two consoles from deciding one
 * request twice; a key the agent installed but the store cannot record is
 * revoked at once.
 */
import { createPublicKey } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { AuditLog } from '../../../policy/audit/log.js';
import { TakeoutError } from '../../../policy/takeout/errors.js';
import type { IssuerPrivateKey } from '../../../policy/takeout/issuer-keys.js';
import { buildTakeoutKey } from '../../../policy/takeout/issuer/approve.js';
import type { RequestDetail } from '../../../policy/takeout/request.js';
import { isRequestId } from '../../../policy/takeout/token.js';
import { codeOf } from '../../http/error-status.js';
import { LINK_PATHS, type AgentEvent, type TakeoutDenial, type TakeoutKeyDelivery, type TakeoutRevocation, type TakeoutStateAnswer } from '../../link/protocol.js';
import type { ConsoleStore, TakeoutRequestRow } from '../store/store.js';
import { ConsoleTakeoutError } from './errors.js';

const DAY_MS = 86_400_000;
const MAX_REASON_CHARS = 500;
const MAX_NOTE_CHARS = 500;
const MAX_NAME_CHARS = 256;
/** How many rows of one state a PC's reconciliation looks at. */
const RECONCILE_ROWS = 1000;
/** Who the trail and the agent name for what the console decides by itself. */
const CONSOLE_ACTOR = 'console';
const EXPIRY_SWEEP_MS = 60 * 60_000;
/** How long the expiry sweep waits for a PC to take an expiry (else it is sent at the PC's next connect). */
const EXPIRY_TELL_MS = 5_000;

/** What ConsoleTakeout needs of the link hub (server/console/link). */
export interface TakeoutLink {
  isConnected(pcId: string): boolean;
  request(pcId: string, path: string, body: unknown, opts?: { timeoutMs?: number }): Promise<{ status: number; body: unknown }>;
}

export interface ConsoleTakeoutOptions {
  store: ConsoleStore;
  hub: TakeoutLink;
  issuerKey: IssuerPrivateKey;
  audit: AuditLog;
  /** `takeout.requestExpiryDays`: an unanswered request expires after this many days. */
  requestExpiryDays: number;
  clock: () => number;
  logger: FastifyBaseLogger;
}

/** A request as an agent reported it, checked; undefined (and logged) when it is not acceptable. */
function parseDetail(pcId: string, value: unknown): RequestDetail | undefined {
  const d = value as Partial<RequestDetail> | null;
  if (typeof d !== 'object' || d === null) return undefined;
  const text = (v: unknown, max: number) => typeof v === 'string' && v.length > 0 && v.length <= max;
  const envelopes = d.envelopes;
  if (
    !isRequestId(d.id) ||
    d.pcId !== pcId ||
    !text(d.user, MAX_NAME_CHARS) ||
    !text(d.reason, MAX_REASON_CHARS) ||
    !Number.isInteger(d.maxDays) ||
    d.maxDays! < 1 ||
    !Number.isInteger(d.days) ||
    d.days! < 1 ||
    d.days! > d.maxDays! ||
    typeof d.requested !== 'string' ||
    !Number.isFinite(Date.parse(d.requested)) ||
    typeof envelopes !== 'object' ||
    envelopes === null ||
    Array.isArray(envelopes) ||
    !Object.values(envelopes).every((e) => typeof e === 'string')
  ) {
    return undefined;
  }
  return { id: d.id, pcId, user: d.user!, days: d.days!, reason: d.reason!, requested: d.requested, maxDays: d.maxDays!, envelopes: { ...envelopes } };
}

/** The request as the issuer side signs it. */
function detailOf(row: TakeoutRequestRow): RequestDetail {
  return { id: row.id, pcId: row.pcId, user: row.user, days: row.days, reason: row.reason, requested: new Date(row.requestedAt).toISOString(), maxDays: row.maxDays, envelopes: row.envelopes };
}

/** The agent's `{"error":{"code","message"}}`, as a sentence. */
function agentError(body: unknown, status: number): { code: string | undefined; text: string } {
  const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  const code = typeof error?.code === 'string' ? error.code : undefined;
  const message = typeof error?.message === 'string' ? error.message : `status ${status}`;
  return { code, text: `${message}${code ? ` (${code})` : ''}` };
}

export class ConsoleTakeout {
  /** Each PC's decisions, one after another; PCs do not wait for each other (a hung link holds only its own PC). */
  private readonly queues = new Map<string, Promise<unknown>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: ConsoleTakeoutOptions) {}

  /** Runs `job` after PC `pcId`'s earlier decisions in this process. */
  private serial<T>(pcId: string, job: () => Promise<T>): Promise<T> {
    const run = (this.queues.get(pcId) ?? Promise.resolve()).then(job);
    const tail = run.catch(() => undefined);
    this.queues.set(pcId, tail);
    void tail.then(() => {
      if (this.queues.get(pcId) === tail) this.queues.delete(pcId);
    });
    return run;
  }

  /** Runs `job` in the queue of the PC that request `id` is of (a request's PC never changes). */
  private async serialFor<T>(id: string, job: () => Promise<T>): Promise<T> {
    const row = isRequestId(id) ? await this.opts.store.getRequest(id) : undefined;
    if (!row) throw new ConsoleTakeoutError('ERR_CTAKEOUT_NO_REQUEST', 'no take-out request with this id');
    return this.serial(row.pcId, job);
  }

  /** An agent's event: a take-out request is stored (other events are not take-out's). */
  async onAgentEvent(pcId: string, event: AgentEvent): Promise<void> {
    if (event.type !== 'takeout.request') return;
    await this.receive(pcId, event.request);
  }

  /** Stores a reported request once (audited when new); a newer request of the user expires their older pending ones. */
  private async receive(pcId: string, value: unknown): Promise<void> {
    const detail = parseDetail(pcId, value);
    if (!detail) {
      this.opts.logger.warn({ pcId }, 'take-out: a request reported by the PC is malformed; ignored');
      return;
    }
    await this.serial(pcId, async () => {
      const { store, audit } = this.opts;
      if (await store.getRequest(detail.id)) return;
      // The agent chooses `requested`: clamped to the console's receive time, so a request dated in the future still expires.
      const requestedAt = Math.min(Date.parse(detail.requested), this.opts.clock());
      await store.putRequest({ id: detail.id, pcId, user: detail.user, days: detail.days, reason: detail.reason, requestedAt, maxDays: detail.maxDays, envelopes: detail.envelopes });
      await audit.append({ actor: detail.user, action: 'takeout.request', target: detail.id, decision: 'info', reason: `PC ${pcId}: ${detail.days} day(s): ${detail.reason}` });
      const older = (await store.listRequests({ state: 'pending', pcId, limit: RECONCILE_ROWS })).filter((r) => r.user === detail.user && r.id !== detail.id && r.requestedAt <= requestedAt);
      for (const row of older) {
        if (await store.decideRequest(row.id, { state: 'expired', by: CONSOLE_ACTOR, at: this.opts.clock(), note: 'replaced by a newer request on the PC' })) {
          await audit.append({ actor: CONSOLE_ACTOR, action: 'takeout.expire', target: row.id, decision: 'info', reason: `request of ${row.user} on PC ${pcId} replaced by a newer one` });
        }
      }
    });
  }

  private async pendingRow(id: string): Promise<TakeoutRequestRow> {
    const row = isRequestId(id) ? await this.opts.store.getRequest(id) : undefined;
    if (!row) throw new ConsoleTakeoutError('ERR_CTAKEOUT_NO_REQUEST', 'no take-out request with this id');
    if (row.state !== 'pending') throw new ConsoleTakeoutError('ERR_CTAKEOUT_DECIDED', `the take-out request was ${row.state} already${row.decidedBy ? ` (by ${row.decidedBy})` : ''}`);
    return row;
  }

  /** Sends one message down the PC's link; a link that is down or does not answer is a coded error. */
  private async send(pcId: string, path: string, body: TakeoutKeyDelivery | TakeoutDenial | TakeoutRevocation | Record<string, never>, timeoutMs?: number): Promise<{ status: number; body: unknown }> {
    try {
      return await this.opts.hub.request(pcId, path, body, timeoutMs === undefined ? undefined : { timeoutMs });
    } catch (err) {
      if (codeOf(err) === 'ERR_LINK_OFFLINE') throw new ConsoleTakeoutError('ERR_CTAKEOUT_PC_OFFLINE', `PC ${pcId} is not connected`);
      if (codeOf(err) === 'ERR_LINK_TIMEOUT') throw new ConsoleTakeoutError('ERR_CTAKEOUT_PC_TIMEOUT', `PC ${pcId} did not answer in time`);
      throw err;
    }
  }

  /** Tells a connected PC a decision it must know; when it is not connected (or fails), `reconcile` sends it at the next connect. */
  private async tell(pcId: string, path: string, body: TakeoutDenial | TakeoutRevocation, timeoutMs?: number): Promise<boolean> {
    if (!this.opts.hub.isConnected(pcId)) return false;
    try {
      const answer = await this.send(pcId, path, body, timeoutMs);
      if (answer.status >= 200 && answer.status < 300) return true;
      this.opts.logger.warn({ pcId, path, status: answer.status, error: agentError(answer.body, answer.status).text }, 'take-out: the PC refused a decision');
    } catch (err) {
      this.opts.logger.warn({ pcId, path, code: codeOf(err) }, 'take-out: a decision did not reach the PC; it is sent again at its next connect');
    }
    return false;
  }

  /** Approves request `id` for `days` (at most the PC's maxDays): signs the key, has the PC install it, records it approved. */
  approve(id: string, admin: string, days: number): Promise<TakeoutRequestRow> {
    return this.serialFor(id, async () => {
      const { store, audit, hub, clock } = this.opts;
      const row = await this.pendingRow(id);
      const refused = async (err: ConsoleTakeoutError): Promise<never> => {
        await audit.append({ actor: admin, action: 'takeout.approve', target: id, decision: 'deny', reason: `${err.code}: ${err.message}` });
        throw err;
      };
      if (!Number.isInteger(days) || days < 1 || days > row.maxDays) return refused(new ConsoleTakeoutError('ERR_CTAKEOUT_DAYS', `days must be an integer from 1 to ${row.maxDays} (PC ${row.pcId}'s takeout.maxDays)`));
      const pc = await store.getPc(row.pcId);
      if (!pc || pc.removedAt !== null || !pc.devicePublicPem) return refused(new ConsoleTakeoutError('ERR_CTAKEOUT_PC', `PC ${row.pcId} is ${pc?.removedAt != null ? 'removed' : 'not enrolled'}: there is no device key to approve for`));
      if (!hub.isConnected(row.pcId)) return refused(new ConsoleTakeoutError('ERR_CTAKEOUT_PC_OFFLINE', `PC ${row.pcId} is not connected: it must be online to install the take-out key`));
      let key: { token: string; jti: string; exp: number };
      try {
        key = await buildTakeoutKey({ issuer: this.opts.issuerKey, admin, request: detailOf(row), devicePublicKey: createPublicKey(pc.devicePublicPem), days, now: clock() });
      } catch (err) {
        if (err instanceof TakeoutError) return refused(new ConsoleTakeoutError('ERR_CTAKEOUT_SIGN', `cannot sign this request: ${err.message}`));
        throw err;
      }
      const until = key.exp * 1000;
      let answer: { status: number; body: unknown };
      try {
        answer = await this.send(row.pcId, LINK_PATHS.takeoutKey, { requestId: id, token: key.token, admin });
      } catch (err) {
        if (err instanceof ConsoleTakeoutError && err.code === 'ERR_CTAKEOUT_PC_OFFLINE') return refused(err);
        // Anything else happened after the key was sent (no answer in time, the link broke, a garbled answer):
        // the PC may have installed it, so it is revoked (sent again at the next connect) and no key exists unrecorded.
        const timedOut = err instanceof ConsoleTakeoutError && err.code === 'ERR_CTAKEOUT_PC_TIMEOUT';
        const why = timedOut ? 'the PC did not confirm the key in time' : `the PC's answer to the key was lost (${codeOf(err) ?? 'error'})`;
        await this.revokeUnrecorded(row, admin, key.jti, until, why);
        return refused(new ConsoleTakeoutError(timedOut ? 'ERR_CTAKEOUT_PC_TIMEOUT' : 'ERR_CTAKEOUT_UNCONFIRMED', `${why}: the key sent is revoked; the user can ask again`));
      }
      if (answer.status !== 200) {
        const why = agentError(answer.body, answer.status);
        if (why.code === 'ERR_TAKEOUT_NO_REQUEST') {
          await store.decideRequest(id, { state: 'expired', by: CONSOLE_ACTOR, at: clock(), note: 'no longer pending on the PC' });
          return refused(new ConsoleTakeoutError('ERR_CTAKEOUT_GONE', `the request is no longer pending on PC ${row.pcId} (the user asked again): it expired`));
        }
        return refused(new ConsoleTakeoutError('ERR_CTAKEOUT_AGENT', `PC ${row.pcId} refused the take-out key: ${why.text}`));
      }
      let recorded: boolean;
      try {
        recorded = await store.decideRequest(id, { state: 'approved', by: admin, at: clock(), note: String(days), jti: key.jti, until });
      } catch (err) {
        // The PC holds the key but the store could not record it (e.g. the database is down): revoked at once.
        const why = `the console's store could not record the key (${codeOf(err) ?? 'error'})`;
        await this.revokeUnrecorded(row, admin, key.jti, until, why);
        return refused(new ConsoleTakeoutError('ERR_CTAKEOUT_UNCONFIRMED', `${why}: the key sent is revoked; the user can ask again`));
      }
      if (!recorded) {
        await this.revokeUnrecorded(row, admin, key.jti, until, 'the request was decided elsewhere meanwhile');
        return refused(new ConsoleTakeoutError('ERR_CTAKEOUT_DECIDED', 'the take-out request was decided elsewhere meanwhile; the key sent is revoked'));
      }
      await audit.append({ actor: admin, action: 'takeout.approve', target: id, decision: 'allow', reason: `take-out of ${row.user} on PC ${row.pcId} for ${days} day(s), until ${new Date(until).toISOString()}` });
      return (await store.getRequest(id))!;
    });
  }

  /**
   * A key the PC may hold but the store does not record as approved: the
   * revocation is told to a connected PC first, then recorded
   * approved-then-revoked (so `reconcile` sends it at the next connect) and
   * audited. Each step is tried even when an earlier one fails (a store that
   * is down); failures are logged, the caller's coded error is what the
   * administrator sees.
   */
  private async revokeUnrecorded(row: TakeoutRequestRow, admin: string, jti: string, until: number, why: string): Promise<void> {
    const { store, audit, clock, logger } = this.opts;
    await this.tell(row.pcId, LINK_PATHS.takeoutRevocation, { jti, admin: CONSOLE_ACTOR });
    const attempt = async (what: string, step: () => Promise<unknown>) => {
      try {
        await step();
      } catch (err) {
        logger.error({ pcId: row.pcId, requestId: row.id, code: codeOf(err) }, `take-out: revoking an unrecorded key: ${what} failed`);
      }
    };
    await attempt('recording it', async () => {
      await store.decideRequest(row.id, { state: 'approved', by: admin, at: clock(), note: null, jti, until });
      await store.revokeRequest(jti, CONSOLE_ACTOR, clock());
    });
    await attempt('auditing it', () => audit.append({ actor: CONSOLE_ACTOR, action: 'takeout.revoke', target: jti, decision: 'info', reason: `take-out of ${row.user} on PC ${row.pcId}: ${why}` }));
  }

  /** Denies request `id` with a note; the PC is told now or at its next connect. */
  deny(id: string, admin: string, note: string): Promise<TakeoutRequestRow> {
    return this.serialFor(id, async () => {
      const { store, audit, clock } = this.opts;
      const row = await this.pendingRow(id);
      const text = typeof note === 'string' ? note.trim() : '';
      if (text === '' || text.length > MAX_NOTE_CHARS) throw new ConsoleTakeoutError('ERR_CTAKEOUT_NOTE', `the note must be a text of 1 to ${MAX_NOTE_CHARS} characters (the user reads it)`);
      if (!(await store.decideRequest(id, { state: 'denied', by: admin, at: clock(), note: text }))) throw new ConsoleTakeoutError('ERR_CTAKEOUT_DECIDED', 'the take-out request was decided elsewhere meanwhile');
      await audit.append({ actor: admin, action: 'takeout.deny', target: id, decision: 'deny', reason: `request of ${row.user} on PC ${row.pcId}: ${text}` });
      await this.tell(row.pcId, LINK_PATHS.takeoutDenial, { requestId: id, admin, outcome: 'denied', note: text });
      return (await store.getRequest(id))!;
    });
  }

  /** Revokes the approved key `jti`; the PC is told now or at its next connect. */
  revoke(jti: string, admin: string): Promise<TakeoutRequestRow> {
    return this.serialFor(jti, async () => {
      const { store, audit, clock } = this.opts;
      // A key's jti is its request's id (policy/takeout/issuer/approve.ts).
      const row = isRequestId(jti) ? await store.getRequest(jti) : undefined;
      if (!row || (row.jti !== null && row.jti !== jti)) throw new ConsoleTakeoutError('ERR_CTAKEOUT_NO_REQUEST', 'no approved take-out key with this id');
      if (row.state !== 'approved') throw new ConsoleTakeoutError('ERR_CTAKEOUT_DECIDED', row.state === 'revoked' ? 'the take-out key was revoked already' : `the take-out request is ${row.state}, not approved: there is no key to revoke`);
      const revoked = await store.revokeRequest(row.jti!, admin, clock());
      if (!revoked) throw new ConsoleTakeoutError('ERR_CTAKEOUT_DECIDED', 'the take-out key was revoked elsewhere meanwhile');
      await audit.append({ actor: admin, action: 'takeout.revoke', target: row.jti!, decision: 'allow', reason: `take-out of ${row.user} on PC ${row.pcId}` });
      await this.tell(row.pcId, LINK_PATHS.takeoutRevocation, { jti: row.jti!, admin });
      return revoked;
    });
  }

  /**
   * Expires requests unanswered for `requestExpiryDays` (one compare-and-set
   * write in the store, so it needs no PC's queue); then each connected PC is
   * told, all at once and each with a short timeout, so a hung link delays
   * nothing else (what is not told is sent at the PC's next connect). Returns
   * how many.
   */
  async expireDue(): Promise<number> {
    const { store, audit, clock } = this.opts;
    const now = clock();
    const expired = await store.expireRequests(now - this.opts.requestExpiryDays * DAY_MS, now);
    for (const row of expired) {
      await audit.append({ actor: CONSOLE_ACTOR, action: 'takeout.expire', target: row.id, decision: 'info', reason: `request of ${row.user} on PC ${row.pcId} unanswered for ${this.opts.requestExpiryDays} day(s)` });
    }
    await Promise.all(expired.map((row) => this.tell(row.pcId, LINK_PATHS.takeoutDenial, { requestId: row.id, admin: CONSOLE_ACTOR, outcome: 'expired', note: this.expiryNote() }, EXPIRY_TELL_MS)));
    return expired.length;
  }

  private expiryNote(): string {
    return `unanswered for ${this.opts.requestExpiryDays} day(s)`;
  }

  /**
   * After PC `pcId` (re)connects: stores the requests it holds that the console
   * missed, and sends the denials, expiries and revocations it missed.
   */
  async reconcile(pcId: string): Promise<void> {
    const { store, clock } = this.opts;
    const answer = await this.send(pcId, LINK_PATHS.takeoutState, {});
    const state = answer.body as Partial<TakeoutStateAnswer> | null;
    if (answer.status !== 200 || !Array.isArray(state?.pending) || !Array.isArray(state?.revoked)) {
      this.opts.logger.warn({ pcId, status: answer.status }, 'take-out: the PC did not give its take-out state');
      return;
    }
    for (const detail of state.pending) await this.receive(pcId, detail);
    const pending = new Set(state.pending.map((d) => (d as { id?: unknown } | null)?.id));
    const revoked = new Set(state.revoked);
    for (const outcome of ['denied', 'expired'] as const) {
      for (const row of await store.listRequests({ state: outcome, pcId, limit: RECONCILE_ROWS })) {
        if (!pending.has(row.id)) continue;
        const note = row.note ?? (outcome === 'expired' ? this.expiryNote() : '');
        await this.tell(pcId, LINK_PATHS.takeoutDenial, { requestId: row.id, admin: row.decidedBy ?? CONSOLE_ACTOR, outcome, note });
      }
    }
    for (const row of await store.listRequests({ state: 'revoked', pcId, limit: RECONCILE_ROWS })) {
      if (row.jti && !revoked.has(row.jti) && (row.until ?? 0) > clock()) await this.tell(pcId, LINK_PATHS.takeoutRevocation, { jti: row.jti, admin: row.decidedBy ?? CONSOLE_ACTOR });
    }
  }

  /** Runs `expireDue` every hour, or every twentieth of the expiry period when that is shorter (unref'd), until `close`; a second call does nothing. */
  start(): void {
    if (this.timer) return;
    const every = Math.max(1000, Math.min(EXPIRY_SWEEP_MS, (this.opts.requestExpiryDays * DAY_MS) / 20));
    this.timer = setInterval(() => void this.expireDue().catch((err: unknown) => this.opts.logger.error({ code: codeOf(err) }, 'take-out: expiring unanswered requests failed')), every);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
