/**
 * The agent side's configuration and the parts its operations share: the
 * state file, the sealed clock, the key checks, the refusal audit, the
 * expiry, the serial queue and the request listeners (built once by
 * `Takeout.open`).
 */
import type { Clock } from '../../../shares/clock.js';
import type { KeyObject } from 'node:crypto';
import type { AuditLog } from '../../audit/log.js';
import type { Sessions } from '../../sessions.js';
import type { IssuerPublicKey } from '../issuer-keys.js';
import type { RequestDetail } from '../request.js';
import type { SealedClock } from './clock.js';
import type { Expiry } from './expiry.js';
import type { Refusals } from './refusals.js';
import type { Serial } from './serial.js';
import type { TakeoutStore } from './store.js';
import type { KeyValidity } from './validity.js';

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

export interface AgentContext {
  readonly opts: TakeoutOptions;
  readonly now: Clock;
  readonly store: TakeoutStore;
  readonly clock: SealedClock;
  readonly keys: KeyValidity;
  readonly refusals: Refusals;
  readonly expiry: Expiry;
  readonly serial: Serial;
  /** Told of each new request (with its envelopes), after it is on disk. */
  readonly requestListeners: ((request: RequestDetail) => void)[];
}

/** A NumericDate (seconds) as ISO text, for audit reasons and answers. */
export const iso = (seconds: number) => new Date(seconds * 1000).toISOString();
