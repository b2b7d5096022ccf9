/**
 * Whether a user's installed take-out key is valid now: the key verified as
 * on installation (signature, `aud`, `sub`, period length, revocation; the
 * claims cached by the token's text), the sealed clock not set back, and the
 * period checked to the second.
 */
import type { Clock } from '../../../shares/clock.js';
import { TakeoutError, type TakeoutErrorCode } from '../errors.js';
import type { IssuerPublicKey } from '../issuer-keys.js';
import { verifyTakeoutKey, type TakeoutClaims } from '../token.js';
import type { SealedClock } from './clock.js';
import type { TakeoutStore } from './store.js';

/** A valid key's claims, or why there is none (`NONE`: no key installed, nothing to refuse). */
export type Validation = { claims: TakeoutClaims } | { code: TakeoutErrorCode | 'NONE'; message: string };

export interface ValidityOptions {
  pcId: string;
  maxDays: number;
  issuers: ReadonlyMap<string, IssuerPublicKey>;
}

export class KeyValidity {
  /** Verified claims of installed keys, by user (token compared on use). */
  private readonly verified = new Map<string, { token: string; claims: TakeoutClaims }>();

  constructor(
    private readonly opts: ValidityOptions,
    private readonly store: TakeoutStore,
    private readonly clock: SealedClock,
    private readonly now: Clock,
  ) {}

  /** Verifies `token` as `user`'s key, as on every use; a period that starts later is accepted. */
  verifyToken(user: string, token: string): Promise<TakeoutClaims> {
    return verifyTakeoutKey(token, {
      issuers: this.opts.issuers,
      pcId: this.opts.pcId,
      user,
      now: new Date(this.now()),
      maxDays: this.opts.maxDays,
      isRevoked: (jti: string) => this.store.state.revoked[jti] !== undefined,
      acceptFutureStart: true,
    });
  }

  /** Caches the verified claims of `user`'s newly installed key. */
  remember(user: string, token: string, claims: TakeoutClaims): void {
    this.verified.set(user, { token, claims });
  }

  forget(user: string): void {
    this.verified.delete(user);
  }

  /** Full verification of the user's installed key (cached by token). */
  async verify(user: string): Promise<TakeoutClaims> {
    const key = this.store.state.keys[user];
    if (!key) throw new TakeoutError('ERR_TAKEOUT_NO_REQUEST', 'no take-out key');
    const cached = this.verified.get(user);
    if (cached?.token === key.token) return cached.claims;
    const claims = await this.verifyToken(user, key.token);
    this.verified.set(user, { token: key.token, claims });
    return claims;
  }

  async validate(user: string): Promise<Validation> {
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

  /** Epoch ms when the latest key valid now ends, or null (what the agent reports to its console). */
  latestValidEnd(): number | null {
    if (this.clock.wasSetBack) return null;
    const nowS = Math.floor(this.now() / 1000);
    let end: number | null = null;
    for (const [user, v] of this.verified.entries()) {
      if (this.store.state.keys[user]?.token === v.token && v.claims.nbf <= nowS && nowS < v.claims.exp && this.store.state.revoked[v.claims.jti] === undefined) end = Math.max(end ?? 0, v.claims.exp * 1000);
    }
    return end;
  }

  /** True when some installed key is valid now (the gate's `takeout` state). */
  anyValid(): boolean {
    if (this.clock.wasSetBack) return false;
    const nowS = Math.floor(this.now() / 1000);
    return [...this.verified.entries()].some(([user, v]) => this.store.state.keys[user]?.token === v.token && v.claims.nbf <= nowS && nowS < v.claims.exp && this.store.state.revoked[v.claims.jti] === undefined);
  }
}
