/**
 * Take-out keys on this PC (the agent side): the life cycle of a take-out
 * period. This class is the one entry point; each step lives in its own
 * module beside it.
 *
 * 1. Request (online, by the user; requests.ts): a fresh K_to; slot T added
 *    to the user's keyring (K_to + the user's current password); K_to kept
 *    only encrypted to each configured issuer; the request stays pending.
 * 2. Approval (by an administrator elsewhere, or the console: ../issuer/approve.ts;
 *    installed by approvals.ts): the signed take-out key is verified exactly
 *    as on use, must be for the pending request, its user, this PC and the
 *    approving administrator (`iss`), and its K_to must open with this PC's
 *    device key; then it is installed.
 * 3. Use (offline; offline.ts, validity.ts): `admit` checks the user's key
 *    (signature, `aud`, `sub`, period to the second, revocation, sealed
 *    clock) on every request; `authenticate` opens slot T with K_to and the
 *    password, which is the password check; the vault opens for that user
 *    only.
 *    Or denial (approvals.ts): an approver denies with a note, or the
 *    request expires unanswered; slot T is destroyed and the user sees why.
 * 4. End (expiry.ts, online-check.ts): at `exp` the user's session is locked
 *    and slot T destroyed; back online (`onlineCheck`) slot T is destroyed
 *    for keys that were used offline, revoked or expired; a new request
 *    replaces the former one.
 *
 * Security considerations: every refusal is audited with its own code
 * (deduplicated per user and code until the next online check, so a client
 * retrying cannot flood the log); no token, K_to or password is ever logged
 * or put in an error. K_to buffers are zeroed after use. A key is only ever
 * looked up under the user who logs in, and slot T is bound to its user and
 * request, so one user's key cannot open another's vault. A clock set back
 * behind the sealed last-seen time refuses every key until the directory
 * answers again. Changes are serialized and written atomically.
 */
import { systemClock } from '../../../shares/clock.js';
import { join } from 'node:path';
import type { AuthResult } from '../../directory/directory.js';
import type { RequestDetail, RequestSummary } from '../request.js';
import { deny, install, revoke, type Denial } from './approvals.js';
import { SealedClock } from './clock.js';
import type { AgentContext, TakeoutOptions } from './context.js';
import { Expiry } from './expiry.js';
import { admit, authenticate } from './offline.js';
import { onlineCheck } from './online-check.js';
import { Refusals } from './refusals.js';
import { get, list, pendingDetails, request } from './requests.js';
import { Serial } from './serial.js';
import { status, type TakeoutStatus } from './status.js';
import { TakeoutStore, takeoutDir } from './store.js';
import { KeyValidity } from './validity.js';

export class Takeout {
  private constructor(private readonly ctx: AgentContext) {}

  static async open(opts: TakeoutOptions): Promise<Takeout> {
    const now = opts.now ?? systemClock;
    const store = await TakeoutStore.open(opts.dataDir);
    const clock = await SealedClock.open(join(takeoutDir(opts.dataDir), 'clock.json'), opts.deviceKey, now(), Object.keys(store.state.keys).length > 0);
    const keys = new KeyValidity(opts, store, clock, now);
    const refusals = new Refusals(opts.audit, store);
    const serial = new Serial();
    const expiry = new Expiry(opts, store, keys, refusals, serial, now);
    for (const user of Object.keys(store.state.keys)) await keys.verify(user).catch(() => undefined);
    expiry.schedule();
    return new Takeout({ opts, now, store, clock, keys, refusals, expiry, serial, requestListeners: [] });
  }

  /** Called whenever take-out sessions are locked (expiry, revocation, clock), e.g. to forget cached logins. */
  onLock(listener: () => void): void {
    this.ctx.expiry.onLock(listener);
  }

  /** Called with each new request (and its envelopes) once it is on disk, e.g. to send it to the console; must not throw. */
  onRequest(listener: (request: RequestDetail) => void): void {
    this.ctx.requestListeners.push(listener);
  }

  /** Stops the expiry timer. */
  close(): void {
    this.ctx.expiry.close();
  }

  // ---- online: requests, approvals, revocations ------------------------------------------

  /** A user asks for a take-out period (online; their vault is opened through slot N). */
  request(user: string, password: string, days: unknown, reason: unknown): Promise<RequestSummary> {
    return request(this.ctx, user, password, days, reason);
  }

  /** Pending requests (for administrators). */
  list(): RequestSummary[] {
    return list(this.ctx);
  }

  /** One pending request with its K_to envelopes to the issuers. */
  get(rid: string): RequestDetail {
    return get(this.ctx, rid);
  }

  /** Every pending request with its envelopes. */
  pendingDetails(): RequestDetail[] {
    return pendingDetails(this.ctx);
  }

  /** Ids of the keys and requests revoked here (until their key's end). */
  revokedIds(): string[] {
    return Object.keys(this.ctx.store.state.revoked);
  }

  /** Ends pending request `rid` unapproved (denied with a note, or expired unanswered); its slot T is destroyed. */
  deny(rid: string, denial: Denial): Promise<{ user: string; repeated: boolean }> {
    return deny(this.ctx, rid, denial);
  }

  /** Installs the signed take-out key for pending request `rid`, after verifying it as on use. */
  install(rid: string, token: string, admin: string): Promise<{ user: string; expires: string }> {
    return install(this.ctx, rid, token, admin);
  }

  /** Revokes `jti`: refused from now on; its slot T is destroyed at the next online check. */
  revoke(jti: string, admin: string): Promise<{ user: string | undefined }> {
    return revoke(this.ctx, jti, admin);
  }

  /** The directory answered: trust the clock again, destroy slot T of keys used offline, revoked or expired. */
  onlineCheck(): Promise<void> {
    return onlineCheck(this.ctx);
  }

  // ---- offline: admission, authentication, expiry ----------------------------------------

  /** True when some installed key is valid now (the gate's `takeout` state). */
  anyValid(): boolean {
    return this.ctx.keys.anyValid();
  }

  /** Epoch ms when the latest key valid now ends, or null. */
  validUntil(): number | null {
    return this.ctx.keys.latestValidEnd();
  }

  /** The users with a pending request or an installed key. */
  users(): string[] {
    const { state } = this.ctx.store;
    return [...new Set([...Object.values(state.requests).map((r) => r.user), ...Object.keys(state.keys)])];
  }

  /** Whether `login` may use the share offline now (a refusal is audited and locks the user's take-out session). */
  admit(login: string): Promise<boolean> {
    return admit(this.ctx, login);
  }

  /** Offline password check through slot T; on success the user's own vault is open. */
  authenticate(login: string, password: string): Promise<AuthResult> {
    return authenticate(this.ctx, login, password);
  }

  /** Locks the sessions of keys that expired and destroys their slot T (run by the timer at each `exp`). */
  sweep(): Promise<void> {
    return this.ctx.expiry.sweep();
  }

  /** What the user sees of their take-out: pending request, installed key and time left. */
  status(login: string): Promise<TakeoutStatus> {
    return status(this.ctx, login);
  }
}
