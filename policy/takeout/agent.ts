/**
 * Take-out keys on this PC: the life cycle of a take-out period.
 *
 * 1. Request (online, by the user): a fresh K_to; slot T added to the
 *    user's keyring (K_to + the user's current password); K_to kept only
 *    encrypted to each configured issuer; the request stays pending.
 * 2. Approval (online, by an administrator elsewhere): the signed take-out
 *    key is verified exactly as on use, must be for the pending request, its
 *    user, this PC and the approving administrator (`iss`), and its K_to
 *    must open with this PC's device key; then it is installed.
 * 3. Use (offline): `admit` checks the user's key (signature, `aud`, `sub`,
 *    period to the second, revocation, sealed clock) on every request;
 *    `authenticate` opens slot T with K_to and the password, which is the
 *    password check; the vault opens for that user only.
 * 4. End: at `exp` the user's session is locked and slot T destroyed; back
 *    online (`onlineCheck`) slot T is destroyed for keys that were used
 *    offline, revoked or expired; a new request replaces the former one.
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
import { randomBytes, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { Keyring } from '../../crypto/keyring.js';
import { KeyringError, SlotOpenError } from '../../crypto/errors.js';
import { KEYRING_FILE, canonicalUser, userDir } from '../../shares/vault/user-vaults.js';
import type { AuditLog } from '../audit/log.js';
import { normalizeUserName, type AuthResult } from '../directory/directory.js';
import type { Sessions } from '../sessions.js';
import { SealedClock } from './clock.js';
import { openKto, sealKto } from './envelope.js';
import { TakeoutError, type TakeoutErrorCode } from './errors.js';
import type { IssuerPublicKey } from './issuer-keys.js';
import { TakeoutStore, takeoutDir, type InstalledKey, type PendingRequest } from './store.js';
import { verifyTakeoutKey, type TakeoutClaims } from './token.js';
import { systemClock, type Clock } from '../../shares/clock.js';

const MAX_REASON_CHARS = 500;
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface TakeoutOptions {
  dataDir: string;
  pcId: string;
  /** `takeout.maxDays`: the longest period an issuer may sign and this PC accepts. */
  maxDays: number;
  /** Trusted issuer public keys by kid. */
  issuers: ReadonlyMap<string, IssuerPublicKey>;
  /** This PC's device private key (K_to inside take-out keys is encrypted to it). */
  deviceKey: KeyObject;
  sessions: Sessions;
  audit: AuditLog;
  /** The clock, injectable for tests (ms since the epoch). */
  now?: Clock;
}

export interface RequestSummary {
  id: string;
  user: string;
  days: number;
  reason: string;
  requested: string;
}

export interface RequestDetail extends RequestSummary {
  pcId: string;
  maxDays: number;
  /** K_to of the request encrypted to each trusted issuer, by issuer kid. */
  envelopes: Record<string, string>;
}

export interface TakeoutStatus {
  request?: { id: string; days: number; requested: string };
  key?: { jti: string; notBefore: string; expires: string; remainingSeconds: number; valid: boolean; refusal?: TakeoutErrorCode };
}

type Validation = { claims: TakeoutClaims } | { code: TakeoutErrorCode | 'NONE'; message: string };

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();

export class Takeout {
  private queue: Promise<unknown> = Promise.resolve();
  /** Verified claims of installed keys, by user (token compared on use). */
  private readonly verified = new Map<string, { token: string; claims: TakeoutClaims }>();
  /** `user \0 code` of refusals already audited since the last online check. */
  private readonly refused = new Set<string>();
  private readonly lockListeners: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly now: Clock;

  private constructor(
    private readonly opts: TakeoutOptions,
    private readonly store: TakeoutStore,
    private readonly clock: SealedClock,
  ) {
    this.now = opts.now ?? systemClock;
  }

  static async open(opts: TakeoutOptions): Promise<Takeout> {
    const now = opts.now ?? systemClock;
    const store = await TakeoutStore.open(opts.dataDir);
    const clock = await SealedClock.open(join(takeoutDir(opts.dataDir), 'clock.json'), opts.deviceKey, now(), Object.keys(store.state.keys).length > 0);
    const takeout = new Takeout(opts, store, clock);
    for (const user of Object.keys(store.state.keys)) await takeout.verify(user).catch(() => undefined);
    takeout.schedule();
    return takeout;
  }

  /** Called whenever take-out sessions are locked (expiry, revocation, clock), e.g. to forget cached logins. */
  onLock(listener: () => void): void {
    this.lockListeners.push(listener);
  }

  /** Stops the expiry timer. */
  close(): void {
    clearTimeout(this.timer);
  }

  // ---- online: requests, approvals, revocations ------------------------------------------

  /** A user asks for a take-out period (online; their vault is opened through slot N). */
  request(user: string, password: string, days: unknown, reason: unknown): Promise<RequestSummary> {
    return this.serial(async () => {
      const who = canonicalUser(user);
      try {
        if (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > this.opts.maxDays) {
          throw new TakeoutError('ERR_TAKEOUT_REQUEST', `days must be an integer from 1 to ${this.opts.maxDays} (takeout.maxDays)`);
        }
        if (typeof reason !== 'string' || reason.trim() === '' || reason.length > MAX_REASON_CHARS) {
          throw new TakeoutError('ERR_TAKEOUT_REQUEST', `reason must be a text of 1 to ${MAX_REASON_CHARS} characters`);
        }
        if (this.opts.issuers.size === 0) throw new TakeoutError('ERR_TAKEOUT_REQUEST', 'take-out is not set up on this PC (takeout.issuerPublicKeys is empty)');
      } catch (err) {
        await this.opts.audit.append({ actor: who, action: 'takeout.request', decision: 'deny', reason: (err as Error).message });
        throw err;
      }
      const keyring = await this.opts.sessions.keyring(who);
      const rid = randomBytes(16).toString('base64url');
      const kTo = randomBytes(32);
      const envelopes: Record<string, string> = {};
      try {
        for (const [kid, issuer] of this.opts.issuers) envelopes[kid] = await sealKto(kTo, { rid, user: who, pcId: this.opts.pcId }, issuer.encryptKey, 'mydoc-kto-request+json');
        await keyring.setTakeoutSlot({ kTo, password, user: who, rid });
      } finally {
        kTo.fill(0);
      }
      const replaced = this.store.state.keys[who];
      const request: PendingRequest = { rid, user: who, days, reason: reason.trim(), requested: new Date(this.now()).toISOString(), envelopes };
      await this.store.update((d) => {
        for (const r of Object.values(d.requests)) if (r.user === who) delete d.requests[r.rid];
        delete d.keys[who];
        d.requests[rid] = request;
      });
      this.verified.delete(who);
      await this.opts.audit.append({ actor: who, action: 'takeout.request', target: rid, decision: 'allow', reason: `${days} day(s): ${request.reason}` });
      if (replaced) await this.opts.audit.append({ actor: 'system', action: 'takeout.destroy', target: replaced.jti, decision: 'info', reason: `key of ${who} replaced by a new request` });
      return summary(request);
    });
  }

  /** Pending requests (for administrators). */
  list(): RequestSummary[] {
    return Object.values(this.store.state.requests).map(summary);
  }

  /** One pending request with its K_to envelopes to the issuers. */
  get(rid: string): RequestDetail {
    const r = this.store.state.requests[rid];
    if (!r) throw new TakeoutError('ERR_TAKEOUT_NO_REQUEST', 'no pending take-out request with this id');
    return { ...summary(r), pcId: this.opts.pcId, maxDays: this.opts.maxDays, envelopes: { ...r.envelopes } };
  }

  /** Installs the signed take-out key for pending request `rid`, after verifying it as on use. */
  install(rid: string, token: string, admin: string): Promise<{ user: string; expires: string }> {
    return this.serial(async () => {
      const request = this.store.state.requests[rid];
      try {
        if (!request) throw new TakeoutError('ERR_TAKEOUT_NO_REQUEST', 'no pending take-out request with this id');
        const claims = await verifyTakeoutKey(token, this.verifyOptions(request.user, true));
        if (claims.jti !== rid) throw new TakeoutError('ERR_TAKEOUT_REQUEST', 'the take-out key is for another request (jti)');
        if (claims.iss !== admin) throw new TakeoutError('ERR_TAKEOUT_MALFORMED', 'the take-out key must be issued (iss) by the administrator who installs it');
        (await openKto(claims.kto, this.opts.deviceKey, 'mydoc-kto+json', { rid, user: request.user, pcId: this.opts.pcId })).fill(0);
        const key: InstalledKey = { token, jti: rid, nbf: claims.nbf, exp: claims.exp, approvedBy: admin, installed: new Date(this.now()).toISOString() };
        await this.store.update((d) => {
          delete d.requests[rid];
          d.keys[request.user] = key;
        });
        this.verified.set(request.user, { token, claims });
        await this.opts.audit.append({ actor: admin, action: 'takeout.approve', target: rid, decision: 'allow', reason: `take-out key for ${request.user} from ${iso(claims.nbf)} until ${iso(claims.exp)}` });
        this.schedule();
        return { user: request.user, expires: iso(claims.exp) };
      } catch (err) {
        if (err instanceof TakeoutError) await this.opts.audit.append({ actor: admin, action: 'takeout.approve', target: rid, decision: 'deny', reason: `${err.code}: ${err.message}` });
        throw err;
      }
    });
  }

  /** Revokes `jti`: refused from now on; its slot T is destroyed at the next online check. */
  revoke(jti: string, admin: string): Promise<{ user: string | undefined }> {
    return this.serial(async () => {
      const owner = Object.entries(this.store.state.keys).find(([, k]) => k.jti === jti)?.[0] ?? this.store.state.requests[jti]?.user;
      const exp = Object.values(this.store.state.keys).find((k) => k.jti === jti)?.exp ?? Math.floor(this.now() / 1000) + this.opts.maxDays * 86_400;
      await this.store.update((d) => {
        d.revoked[jti] = exp;
      });
      await this.opts.audit.append({ actor: admin, action: 'takeout.revoke', target: jti, decision: 'allow', reason: owner ? `take-out of ${owner}` : 'no such key on this PC (revoked in advance)' });
      return { user: owner };
    });
  }

  /** The directory answered: trust the clock again, destroy slot T of keys used offline, revoked or expired. */
  onlineCheck(): Promise<void> {
    return this.serial(async () => {
      const nowS = Math.floor(this.now() / 1000);
      await this.clock.reset(this.now());
      this.refused.clear();
      for (const [user, key] of Object.entries(this.store.state.keys)) {
        const why = this.store.state.revoked[key.jti] !== undefined ? 'revoked' : key.used ? 'back online after an offline use' : nowS >= key.exp ? 'expired' : undefined;
        if (why) await this.destroy(user, why);
      }
      for (const [rid, request] of Object.entries(this.store.state.requests)) {
        if (this.store.state.revoked[rid] !== undefined) await this.dropRequest(request, 'revoked');
      }
      const stale = Object.entries(this.store.state.revoked).filter(([, exp]) => exp < nowS);
      if (stale.length > 0) await this.store.update((d) => stale.forEach(([jti]) => delete d.revoked[jti]));
    });
  }

  // ---- offline: admission, authentication, expiry ----------------------------------------

  /** True when some installed key is valid now (the gate's `takeout` state). */
  anyValid(): boolean {
    if (this.clock.wasSetBack) return false;
    const nowS = Math.floor(this.now() / 1000);
    return [...this.verified.entries()].some(([user, v]) => this.store.state.keys[user]?.token === v.token && v.claims.nbf <= nowS && nowS < v.claims.exp && this.store.state.revoked[v.claims.jti] === undefined);
  }

  /**
   * Whether `user` may use the share offline now. A refusal is audited (once
   * per user and reason) and locks the user's take-out session; at expiry
   * slot T is destroyed.
   */
  async admit(login: string): Promise<boolean> {
    const user = normalizeUserName(login);
    const result = await this.validate(user);
    if ('claims' in result) return true;
    if (result.code === 'NONE') return false;
    await this.refuse(user, result.code, result.message);
    if (result.code === 'ERR_TAKEOUT_EXPIRED') await this.serial(() => this.destroy(user, 'expired'));
    else await this.lockUser(user);
    return false;
  }

  /**
   * Offline password check: opens slot T with the key's K_to and `password`,
   * and on success opens the user's vault (their own only).
   */
  async authenticate(login: string, password: string): Promise<AuthResult> {
    const user = normalizeUserName(login);
    const result = await this.validate(user);
    if (!('claims' in result)) return { ok: false, reason: 'no valid take-out key' };
    const { claims } = result;
    let keyring: Keyring;
    try {
      keyring = await Keyring.load(join(userDir(this.opts.dataDir, this.opts.pcId, user), KEYRING_FILE));
      if (keyring.takeoutRequestId !== claims.jti) throw new TakeoutError('ERR_TAKEOUT_SECRET', 'this user has no take-out slot for this key');
    } catch (err) {
      if (!(err instanceof TakeoutError || err instanceof KeyringError)) throw err;
      await this.refuse(user, 'ERR_TAKEOUT_SECRET', err.message);
      return { ok: false, reason: 'take-out key refused' };
    }
    let kTo: Buffer;
    try {
      kTo = await openKto(claims.kto, this.opts.deviceKey, 'mydoc-kto+json', { rid: claims.jti, user, pcId: this.opts.pcId });
    } catch (err) {
      await this.refuse(user, 'ERR_TAKEOUT_SECRET', (err as Error).message);
      return { ok: false, reason: 'take-out key refused' };
    }
    try {
      await keyring.unlockTakeout({ kTo, password, user, rid: claims.jti });
    } catch (err) {
      if (err instanceof SlotOpenError) return { ok: false, reason: 'wrong user name or password' };
      throw err;
    } finally {
      kTo.fill(0);
    }
    await this.opts.sessions.adoptTakeout(user, keyring);
    const key = this.store.state.keys[user];
    if (key && !key.used) await this.serial(() => this.store.update((d) => d.keys[user] && (d.keys[user].used = new Date(this.now()).toISOString())));
    await this.opts.audit.append({ actor: user, action: 'takeout.use', target: claims.jti, decision: 'allow', reason: `offline until ${iso(claims.exp)}` });
    return { ok: true, user, admin: false };
  }

  /** Locks the sessions of keys that expired and destroys their slot T (run by the timer at each `exp`). */
  sweep(): Promise<void> {
    return this.serial(async () => {
      const nowS = Math.floor(this.now() / 1000);
      for (const [user, key] of Object.entries(this.store.state.keys)) {
        if (nowS < key.exp) continue;
        await this.refuse(user, 'ERR_TAKEOUT_EXPIRED', 'the take-out key has expired');
        await this.destroy(user, 'expired');
      }
      this.schedule();
    });
  }

  /** What the user sees of their take-out: pending request, installed key and time left. */
  async status(login: string): Promise<TakeoutStatus> {
    const user = normalizeUserName(login);
    const status: TakeoutStatus = {};
    const request = Object.values(this.store.state.requests).find((r) => r.user === user);
    if (request) status.request = { id: request.rid, days: request.days, requested: request.requested };
    const key = this.store.state.keys[user];
    if (key) {
      const result = await this.validate(user);
      const remaining = Math.max(0, key.exp - Math.floor(this.now() / 1000));
      status.key = { jti: key.jti, notBefore: iso(key.nbf), expires: iso(key.exp), remainingSeconds: 'claims' in result ? remaining : 0, valid: 'claims' in result };
      if (!('claims' in result) && result.code !== 'NONE') status.key.refusal = result.code;
    }
    return status;
  }

  // ---- internals -------------------------------------------------------------------------

  private verifyOptions(user: string, acceptFutureStart: boolean) {
    return {
      issuers: this.opts.issuers,
      pcId: this.opts.pcId,
      user,
      now: new Date(this.now()),
      maxDays: this.opts.maxDays,
      isRevoked: (jti: string) => this.store.state.revoked[jti] !== undefined,
      acceptFutureStart,
    };
  }

  /** Full verification of the user's installed key (cached by token). */
  private async verify(user: string): Promise<TakeoutClaims> {
    const key = this.store.state.keys[user];
    if (!key) throw new TakeoutError('ERR_TAKEOUT_NO_REQUEST', 'no take-out key');
    const cached = this.verified.get(user);
    if (cached?.token === key.token) return cached.claims;
    const claims = await verifyTakeoutKey(key.token, this.verifyOptions(user, true));
    this.verified.set(user, { token: key.token, claims });
    return claims;
  }

  private async validate(user: string): Promise<Validation> {
    if (!this.store.state.keys[user]) return { code: 'NONE', message: 'no take-out key' };
    if (!(await this.clock.observe(this.now()))) return { code: 'ERR_TAKEOUT_CLOCK', message: 'the clock was set back: take-out keys are refused until the company directory is reachable again' };
    let claims: TakeoutClaims;
    try {
      claims = await this.verify(user);
    } catch (err) {
      if (err instanceof TakeoutError) return { code: err.code, message: err.message };
      throw err;
    }
    const nowS = Math.floor(this.now() / 1000);
    if (nowS >= claims.exp) return { code: 'ERR_TAKEOUT_EXPIRED', message: 'the take-out key has expired' };
    if (nowS < claims.nbf) return { code: 'ERR_TAKEOUT_NOT_YET_VALID', message: 'the take-out period has not begun' };
    if (this.store.state.revoked[claims.jti] !== undefined) return { code: 'ERR_TAKEOUT_REVOKED', message: 'the take-out key was revoked' };
    return { claims };
  }

  private async refuse(user: string, code: TakeoutErrorCode, message: string): Promise<void> {
    const key = `${user}\0${code}`;
    if (this.refused.has(key)) return;
    this.refused.add(key);
    const action = code === 'ERR_TAKEOUT_EXPIRED' ? 'takeout.expire' : code === 'ERR_TAKEOUT_CLOCK' ? 'takeout.clock' : 'takeout.refuse';
    await this.opts.audit.append({ actor: user, action, target: this.store.state.keys[user]?.jti, decision: 'deny', reason: `${code}: ${message}` });
  }

  private async lockUser(user: string): Promise<void> {
    if (!(await this.opts.sessions.takeoutSession(user))) return;
    await this.opts.sessions.lock(user);
    for (const listener of this.lockListeners) listener();
  }

  /** Destroys the user's slot T and installed key (inside `serial`). */
  private async destroy(user: string, why: string): Promise<void> {
    const key = this.store.state.keys[user];
    if (!key) return;
    await this.lockUser(user);
    await this.removeSlot(user, key.jti);
    await this.store.update((d) => {
      delete d.keys[user];
    });
    this.verified.delete(user);
    await this.opts.audit.append({ actor: 'system', action: 'takeout.destroy', target: key.jti, decision: 'info', reason: `slot T of ${user} destroyed: ${why}` });
    this.schedule();
  }

  private async dropRequest(request: PendingRequest, why: string): Promise<void> {
    await this.removeSlot(request.user, request.rid);
    await this.store.update((d) => {
      delete d.requests[request.rid];
    });
    await this.opts.audit.append({ actor: 'system', action: 'takeout.destroy', target: request.rid, decision: 'info', reason: `pending request of ${request.user} dropped: ${why}` });
  }

  /** Removes the user's slot T when it belongs to `rid`. */
  private async removeSlot(user: string, rid: string): Promise<void> {
    let keyring: Keyring;
    try {
      keyring = await Keyring.load(join(userDir(this.opts.dataDir, this.opts.pcId, user), KEYRING_FILE));
    } catch (err) {
      if (err instanceof KeyringError && err.code === 'ERR_KEYRING_MISSING') return;
      throw err;
    }
    if (keyring.takeoutRequestId === rid) await keyring.removeTakeoutSlot();
  }

  /** Arms the timer for the next `exp` among installed keys. */
  private schedule(): void {
    clearTimeout(this.timer);
    const next = Math.min(...Object.values(this.store.state.keys).map((k) => k.exp * 1000));
    if (!Number.isFinite(next)) return;
    this.timer = setTimeout(() => void this.sweep().catch(() => undefined), Math.min(MAX_TIMER_MS, Math.max(0, next - this.now())));
    this.timer.unref();
  }

  private serial<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function summary(r: PendingRequest): RequestSummary {
  return { id: r.rid, user: r.user, days: r.days, reason: r.reason, requested: r.requested };
}
