/**
 * Errors of take-out keys. `code` is stable and is what the audit log
 * records as the reason of a refusal; the server maps it to an answer
 * (nothing here knows HTTP). Messages never hold secrets (no token, no
 * K_to, no password).
 */

export type TakeoutErrorCode =
  /** The header's `alg` is not ES256 or EdDSA (e.g. `none`, HS256). */
  | 'ERR_TAKEOUT_ALG'
  /** The header's `kid` names no configured issuer public key. */
  | 'ERR_TAKEOUT_UNKNOWN_KID'
  /** The signature does not verify (payload or header edited, wrong key). */
  | 'ERR_TAKEOUT_SIGNATURE'
  /** Not a take-out key: malformed, wrong `typ`, missing or ill-typed claims. */
  | 'ERR_TAKEOUT_MALFORMED'
  /** `aud` is another PC. */
  | 'ERR_TAKEOUT_OTHER_PC'
  /** `sub` is another user. */
  | 'ERR_TAKEOUT_OTHER_USER'
  | 'ERR_TAKEOUT_EXPIRED'
  | 'ERR_TAKEOUT_NOT_YET_VALID'
  /** The period `nbf`..`exp` is longer than `takeout.maxDays`. */
  | 'ERR_TAKEOUT_TOO_LONG'
  | 'ERR_TAKEOUT_REVOKED'
  /** The clock was set back behind the sealed last-seen time. */
  | 'ERR_TAKEOUT_CLOCK'
  /** The K_to inside the key does not open for this PC, user and request. */
  | 'ERR_TAKEOUT_SECRET'
  /** A take-out request or its approval is not acceptable (bad days or reason, key for another request). */
  | 'ERR_TAKEOUT_REQUEST'
  /** No pending take-out request with this id. */
  | 'ERR_TAKEOUT_NO_REQUEST'
  /** The take-out state file or an issuer key file is unusable. */
  | 'ERR_TAKEOUT_STATE'
  | 'ERR_TAKEOUT_ISSUER_KEY';

export class TakeoutError extends Error {
  constructor(
    readonly code: TakeoutErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'TakeoutError';
  }
}
