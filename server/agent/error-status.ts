/**
 * The agent's HTTP statuses by error code: the one table of this process,
 * in sections by where the errors are answered (server/http/error-status.ts
 * applies them). The WebDAV share answers its own errors with the statuses
 * its RFCs fix (shares/webdav).
 */
import type { CryptoErrorCode } from '../../crypto/errors.js';
import type { GrantErrorCode } from '../../policy/grants/errors.js';
import type { TakeoutErrorCode } from '../../policy/takeout/errors.js';
import type { VaultErrorCode } from '../../shares/vault/errors.js';
import type { ApiGuardCode } from '../http/api-guard.js';
import type { StatusTable } from '../http/error-status.js';

/** Errors of the take-out API's own checks. */
export type ApiErrorCode = 'ERR_API_BODY' | 'ERR_API_OFFLINE' | 'ERR_API_ADMIN';

/** A take-out request or key that is not acceptable is the caller's error (400); an unknown request is 404. */
const TAKEOUT_STATUS = {
  ERR_TAKEOUT_ALG: 400,
  ERR_TAKEOUT_UNKNOWN_KID: 400,
  ERR_TAKEOUT_SIGNATURE: 400,
  ERR_TAKEOUT_MALFORMED: 400,
  ERR_TAKEOUT_OTHER_PC: 400,
  ERR_TAKEOUT_OTHER_USER: 400,
  ERR_TAKEOUT_EXPIRED: 400,
  ERR_TAKEOUT_NOT_YET_VALID: 400,
  ERR_TAKEOUT_TOO_LONG: 400,
  ERR_TAKEOUT_REVOKED: 400,
  ERR_TAKEOUT_CLOCK: 400,
  ERR_TAKEOUT_SECRET: 400,
  ERR_TAKEOUT_REQUEST: 400,
  ERR_TAKEOUT_NO_REQUEST: 404,
  ERR_TAKEOUT_STATE: 400,
  ERR_TAKEOUT_ISSUER_KEY: 400,
} as const satisfies Record<TakeoutErrorCode, number>;

/** The take-out API (`/api/`): its own checks, and the take-out errors of what it was asked. */
export const API_STATUS: StatusTable = {
  ERR_API_BODY: 400,
  ERR_API_OFFLINE: 403,
  ERR_API_ADMIN: 403,
  ...TAKEOUT_STATUS,
} satisfies Record<ApiErrorCode | TakeoutErrorCode, number>;

/** A login that cannot be checked now: too many at once from one address, or the directory does not answer. */
export const LOGIN_STATUS = {
  ERR_LOGIN_THROTTLED: 429,
  ERR_DIRECTORY_UNREACHABLE: 503,
} as const;

/**
 * A user's vault that does not open at login: the network secret cannot be had
 * now (503), the slot does not open on this PC (403), the user is not enrolled
 * (403), another process holds the vault (503).
 */
export const UNLOCK_STATUS = {
  ERR_NETWORK_SECRET_UNAVAILABLE: 503,
  ERR_NETWORK_SECRET_ABSENT: 503,
  ERR_SLOT_OPEN: 403,
  ERR_KEYRING_MISSING: 403,
  ERR_VAULT_BUSY: 503,
} as const satisfies Partial<Record<CryptoErrorCode | VaultErrorCode, number>>;

export type UnlockErrorCode = keyof typeof UNLOCK_STATUS;

/**
 * What the agent refuses from the request as sent, before a route or the
 * WebDAV share runs (or, for a login, after the check): its framing, method
 * or size, a missing or wrong login, the locked PC, a non-administrator at
 * /metrics, an unknown API request, and the API guard's cross-site refusals.
 */
export type RequestRefusalCode =
  | ApiGuardCode
  | 'ERR_HTTP_TRANSFER_CODING'
  | 'ERR_HTTP_METHOD'
  | 'ERR_HTTP_GET_ONLY'
  | 'ERR_HTTP_BODY_TOO_LARGE'
  | 'ERR_AUTH_REQUIRED'
  | 'ERR_PC_LOCKED'
  | 'ERR_ADMIN_ONLY'
  | 'ERR_API_NOT_FOUND';

export const REQUEST_STATUS = {
  ERR_HTTP_TRANSFER_CODING: 501,
  ERR_HTTP_METHOD: 501,
  ERR_HTTP_GET_ONLY: 405,
  ERR_HTTP_BODY_TOO_LARGE: 413,
  ERR_AUTH_REQUIRED: 401,
  ERR_PC_LOCKED: 403,
  ERR_ADMIN_ONLY: 403,
  ERR_API_NOT_FOUND: 404,
  ERR_API_CROSS_SITE: 403,
  ERR_API_CONTENT_TYPE: 415,
} as const satisfies Record<RequestRefusalCode, number>;

/** What the agent refuses of a /link/dav request besides the grant's own codes. */
export type LinkDavErrorCode = 'ERR_LINK_DAV_OFFLINE' | 'ERR_LINK_DAV_NO_USER';

/**
 * A /link/dav request refused (link-dav.ts): an ill-formed grant 400, any
 * other grant refusal 403, the PC offline from its directory 503 (slot N
 * cannot open), a user without a vault here 404.
 */
export const LINK_DAV_STATUS = {
  ERR_GRANT_MALFORMED: 400,
  ERR_GRANT_SIGNATURE: 403,
  ERR_GRANT_EXPIRED: 403,
  ERR_GRANT_OTHER_PC: 403,
  ERR_GRANT_OTHER_USER: 403,
  ERR_GRANT_SCOPE: 403,
  ERR_GRANT_REPLAYED: 403,
  ERR_GRANT_ACCESS: 403,
  ERR_GRANT_NO_RULE: 403,
  ERR_GRANT_NO_CONSOLE_KEY: 403,
  ERR_LINK_DAV_OFFLINE: 503,
  ERR_LINK_DAV_NO_USER: 404,
} as const satisfies Record<GrantErrorCode | LinkDavErrorCode, number>;
