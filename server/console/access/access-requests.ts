/**
 * The two-person rule (`access.approvals: 1`): before an administrator may
 * read the contents of a user's files on a PC, they ask for it with a
 * reason and a period (at most `access.maxHours`), and a different
 * administrator with the `approver` role approves it (or denies it with a
 * note). The approval lasts `hours` from the moment it is given, on the
 * console's clock. Listing names and sizes needs no approval (the `data`
 * role is enough); that is decided by whoever asks `contentsAllowed`.
 *
 * - `request(admin, pcId, user, reason, hours)`: needs the `data` role; the PC
 *   must be registered and `user` one of its known users (every user it has
 *   ever reported, signed in now or not: a closed vault is the main case).
 * - `approve(id, approver)`: needs `approver`; the approver must not be the
 *   requester (ERR_ACCESS_OWN_REQUEST, 403, audited as refused).
 * - `deny(id, approver, note)`: needs `approver` (an administrator may deny,
 *   i.e. withdraw, their own request).
 * - `contentsAllowed(admin, pcId, user)`: approvals 0: true; 1: whether an
 *   approved request of this administrator for this PC and user is live now.
 *
 * Security considerations: names are compared in their normalized form
 * (normalizeUserName: `DOMAIN\x`, `x@domain` and `X` are one person), so the
 * requester cannot approve their own request under another spelling. The
 * decision is a compare-and-set in the store, so two approvers (or two
 * consoles) cannot decide one request twice. Every request, decision and
 * refused decision is written to the console's audit trail naming the
 * administrator; reasons and notes are the administrators' own words, no
 * file path is recorded here. Expiry uses the injected clock only.
 */
import { randomUUID } from 'node:crypto';
import type { AuditLog } from '../../../policy/audit/log.js';
import { normalizeUserName } from '../../../policy/directory/user-name.js';
import type { Clock } from '../../../shares/clock.js';
import type { Admin } from '../admins.js';
import type { AccessRequestFilter, AccessRequestRow, ConsoleStore } from '../store/store.js';
import { AccessError } from './errors.js';

const HOUR_MS = 3_600_000;
export const MAX_REASON_CHARS = 500;
export const MAX_NOTE_CHARS = 500;
const MAX_NAME_CHARS = 256;
const ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface AccessRequestsOptions {
  store: Pick<ConsoleStore, 'getPc' | 'listKnownUsers' | 'putAccessRequest' | 'getAccessRequest' | 'listAccessRequests' | 'decideAccessRequest' | 'hasLiveAccess'>;
  audit: Pick<AuditLog, 'append'>;
  /** The console's `access` configuration. */
  access: { approvals: 0 | 1; maxHours: number };
  clock: Clock;
}

export class AccessRequests {
  constructor(private readonly opts: AccessRequestsOptions) {}

  /** Whether the two-person rule is on (access.approvals 1). */
  get required(): boolean {
    return this.opts.access.approvals === 1;
  }

  get maxHours(): number {
    return this.opts.access.maxHours;
  }

  /**
   * Whether administrator `admin` (their name) may read file contents of
   * `user` on `pcId` now: always with approvals 0; with approvals 1 only
   * under an approved request whose period has not ended on the console's clock.
   */
  async contentsAllowed(admin: string, pcId: string, user: string): Promise<boolean> {
    if (!this.required) return true;
    return this.opts.store.hasLiveAccess(normalizeUserName(admin), pcId, normalizeUserName(user), this.opts.clock());
  }

  /** Asks for access to `user`'s contents on `pcId` for `hours` (at most access.maxHours), with a reason. */
  async request(admin: Admin, pcId: string, user: string, reason: string, hours: number): Promise<AccessRequestRow> {
    const { store, audit, clock } = this.opts;
    if (!this.required) throw new AccessError('ERR_ACCESS_OFF', 'the two-person rule is off (access.approvals 0): reading contents needs no access request');
    if (!admin.roles.has('data')) throw new AccessError('ERR_ACCESS_ROLE', `asking for access to contents needs the data role, which ${admin.name} does not have`);
    const text = typeof reason === 'string' ? reason.trim() : '';
    if (text === '' || text.length > MAX_REASON_CHARS) throw new AccessError('ERR_ACCESS_INPUT', `the reason must be a text of 1 to ${MAX_REASON_CHARS} characters (the approver reads it)`);
    if (typeof hours !== 'number' || !Number.isFinite(hours) || hours <= 0 || hours > this.maxHours) {
      throw new AccessError('ERR_ACCESS_INPUT', `hours must be a number more than 0 and at most ${this.maxHours} (access.maxHours)`);
    }
    const owner = typeof user === 'string' && user.length <= MAX_NAME_CHARS ? normalizeUserName(user) : '';
    if (owner === '') throw new AccessError('ERR_ACCESS_INPUT', 'the user is missing or too long');
    const pc = typeof pcId === 'string' ? await store.getPc(pcId) : undefined;
    if (!pc || pc.removedAt !== null) throw new AccessError('ERR_ACCESS_UNKNOWN', `there is no PC ${String(pcId)}`);
    if (!(await store.listKnownUsers(pcId)).some((u) => normalizeUserName(u) === owner)) throw new AccessError('ERR_ACCESS_UNKNOWN', `PC ${pcId} has never reported a user ${owner}`);
    const row = { id: randomUUID(), admin: normalizeUserName(admin.name), pcId, user: owner, reason: text, hours, createdAt: clock() };
    await store.putAccessRequest(row);
    await audit.append({ actor: admin.name, action: 'access.request', target: `${pcId}/${owner}`, decision: 'info', reason: `request ${row.id} for ${hours} h: ${text}` });
    return (await store.getAccessRequest(row.id))!;
  }

  /** Approves request `id`: reading is allowed for its hours from now. The approver must differ from the requester. */
  async approve(id: string, approver: Admin): Promise<AccessRequestRow> {
    const { store, audit, clock } = this.opts;
    const row = await this.pending(id, approver, 'access.approve');
    if (normalizeUserName(approver.name) === row.admin) {
      await audit.append({ actor: approver.name, action: 'access.approve', target: `${row.pcId}/${row.user}`, decision: 'deny', reason: `request ${row.id}: ERR_ACCESS_OWN_REQUEST` });
      throw new AccessError('ERR_ACCESS_OWN_REQUEST', 'you cannot approve your own access request: a different administrator with the approver role must');
    }
    const at = clock();
    const until = at + Math.round(row.hours * HOUR_MS);
    if (!(await store.decideAccessRequest(row.id, { status: 'approved', by: normalizeUserName(approver.name), at, note: null, until }))) {
      throw new AccessError('ERR_ACCESS_DECIDED', 'the access request was decided elsewhere meanwhile');
    }
    await audit.append({ actor: approver.name, action: 'access.approve', target: `${row.pcId}/${row.user}`, decision: 'allow', reason: `request ${row.id} of ${row.admin} until ${new Date(until).toISOString()}` });
    return (await store.getAccessRequest(row.id))!;
  }

  /** Denies request `id` with a note for the requester. */
  async deny(id: string, approver: Admin, note: string): Promise<AccessRequestRow> {
    const { store, audit, clock } = this.opts;
    const row = await this.pending(id, approver, 'access.deny');
    const text = typeof note === 'string' ? note.trim() : '';
    if (text === '' || text.length > MAX_NOTE_CHARS) throw new AccessError('ERR_ACCESS_INPUT', `the note must be a text of 1 to ${MAX_NOTE_CHARS} characters (the requester reads it)`);
    if (!(await store.decideAccessRequest(row.id, { status: 'denied', by: normalizeUserName(approver.name), at: clock(), note: text, until: null }))) {
      throw new AccessError('ERR_ACCESS_DECIDED', 'the access request was decided elsewhere meanwhile');
    }
    await audit.append({ actor: approver.name, action: 'access.deny', target: `${row.pcId}/${row.user}`, decision: 'deny', reason: `request ${row.id} of ${row.admin}: ${text}` });
    return (await store.getAccessRequest(row.id))!;
  }

  /** Requests, newest first (`live`: approved ones whose period has not ended). */
  list(filter: { status?: AccessRequestRow['status']; pcId?: string; live?: boolean; limit?: number } = {}): Promise<AccessRequestRow[]> {
    const query: AccessRequestFilter = { limit: filter.limit ?? 200, ...(filter.status && { status: filter.status }), ...(filter.pcId !== undefined && { pcId: filter.pcId }), ...(filter.live && { liveAt: this.opts.clock() }) };
    return this.opts.store.listAccessRequests(query);
  }

  /** The pending request `id`, for an administrator with the approver role (a refusal of the role is audited). */
  private async pending(id: string, approver: Admin, action: string): Promise<AccessRequestRow> {
    if (!approver.roles.has('approver')) {
      await this.opts.audit.append({ actor: approver.name, action, target: String(id).slice(0, 64), decision: 'deny', reason: 'ERR_ACCESS_ROLE: the approver role is needed' });
      throw new AccessError('ERR_ACCESS_ROLE', `deciding access requests needs the approver role, which ${approver.name} does not have`);
    }
    const row = typeof id === 'string' && ID_PATTERN.test(id) ? await this.opts.store.getAccessRequest(id) : undefined;
    if (!row) throw new AccessError('ERR_ACCESS_NO_REQUEST', 'there is no access request with this id');
    if (row.status !== 'pending') throw new AccessError('ERR_ACCESS_DECIDED', `the access request was ${row.status} already${row.decidedBy ? ` (by ${row.decidedBy})` : ''}`);
    return row;
  }
}
