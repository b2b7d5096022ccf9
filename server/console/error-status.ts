/**
 * The console's HTTP statuses by error code: the one table of this process,
 * in sections by where the errors are answered (server/http/error-status.ts
 * applies them in a fastify context; the admin socket uses `statusOf`).
 */
import type { StatusTable } from '../http/error-status.js';
import type { ApiGuardCode } from '../http/api-guard.js';
import type { LinkErrorCode } from '../link/errors.js';
import type { ConsoleErrorCode } from './errors.js';
import type { StoreErrorCode } from './store/errors.js';
import type { ConsoleTakeoutErrorCode } from './takeout/errors.js';
import type { AccessErrorCode } from './access/errors.js';
import type { ShareErrorCode } from './sharing/errors.js';

/** The admin socket (`mydoc console pc add|remove`): a wrong PC id, an unknown or enrolled PC. */
export const ADMIN_SOCKET_STATUS = {
  ERR_CONSOLE_PC_ID: 400,
  ERR_CONSOLE_PC_UNKNOWN: 404,
  ERR_CONSOLE_PC_ENROLLED: 409,
} as const satisfies Partial<Record<ConsoleErrorCode, number>>;

/**
 * The store (server/console/store/errors.ts): a database that does not answer
 * (or a SQLite file that cannot be used, or a store closing with the process)
 * is the console's 503; a query out of range is the caller's 400; a schema or
 * statement the database refused is the console's own 500, with its message
 * (which names the database, never a secret).
 */
export const STORE_STATUS = {
  ERR_STORE_UNAVAILABLE: 503,
  ERR_STORE_FILE: 503,
  ERR_STORE_CLOSED: 503,
  ERR_STORE_MIGRATION: 500,
  ERR_STORE_FAILED: 500,
  ERR_STORE_PC_EXISTS: 409,
  ERR_STORE_PC_UNKNOWN: 404,
  ERR_STORE_QUERY: 400,
} as const satisfies Record<StoreErrorCode, number>;

/** A request for a PC over its link (link/hub.ts): offline at once, a hung agent after its deadline. */
export const LINK_STATUS = {
  ERR_LINK_OFFLINE: 503,
  ERR_LINK_TIMEOUT: 504,
  ERR_LINK_BROKEN: 502,
  ERR_LINK_ANSWER: 502,
} as const satisfies Record<LinkErrorCode, number>;

/** Take-out decisions (takeout/console-takeout.ts): the caller's mistake, a decided request, a PC offline or refusing. */
export const TAKEOUT_STATUS = {
  ERR_CTAKEOUT_NO_REQUEST: 404,
  ERR_CTAKEOUT_DECIDED: 409,
  ERR_CTAKEOUT_DAYS: 400,
  ERR_CTAKEOUT_NOTE: 400,
  ERR_CTAKEOUT_PC: 409,
  ERR_CTAKEOUT_SIGN: 409,
  ERR_CTAKEOUT_PC_OFFLINE: 503,
  ERR_CTAKEOUT_PC_TIMEOUT: 504,
  ERR_CTAKEOUT_UNCONFIRMED: 502,
  ERR_CTAKEOUT_AGENT: 502,
  ERR_CTAKEOUT_GONE: 409,
} as const satisfies Record<ConsoleTakeoutErrorCode, number>;

/** The two-person rule (access/access-requests.ts): bad input, a missing role, one's own request, a decided one. */
export const ACCESS_STATUS = {
  ERR_ACCESS_INPUT: 400,
  ERR_ACCESS_ROLE: 403,
  ERR_ACCESS_OWN_REQUEST: 403,
  ERR_ACCESS_NO_REQUEST: 404,
  ERR_ACCESS_DECIDED: 409,
  ERR_ACCESS_UNKNOWN: 404,
  ERR_ACCESS_OFF: 409,
} as const satisfies Record<AccessErrorCode, number>;

/** Sharing (sharing/share-rules.ts): bad input, a missing role, an unknown PC, user or rule, a revoked rule. */
export const SHARING_STATUS = {
  ERR_SHARE_INPUT: 400,
  ERR_SHARE_ROLE: 403,
  ERR_SHARE_UNKNOWN: 404,
  ERR_SHARE_NO_RULE: 404,
  ERR_SHARE_REVOKED: 409,
} as const satisfies Record<ShareErrorCode, number>;

/** The JSON API's own checks (api/takeout-api.ts). */
export type ConsoleApiErrorCode = 'ERR_API_BODY' | 'ERR_API_ROLE';

/** The JSON API (`/api/`): its checks, the same-origin guard's refusals, and take-out, the store and the link below it. */
export const API_STATUS: StatusTable = {
  ERR_API_BODY: 400,
  ERR_API_ROLE: 403,
  ERR_API_CROSS_SITE: 403,
  ERR_API_CONTENT_TYPE: 415,
  ...TAKEOUT_STATUS,
  ...ACCESS_STATUS,
  ...STORE_STATUS,
  ...LINK_STATUS,
} satisfies Record<ConsoleApiErrorCode | ApiGuardCode | ConsoleTakeoutErrorCode | AccessErrorCode | StoreErrorCode | LinkErrorCode, number>;

/** What every route of the console's HTTPS port may meet below it. */
export const CONSOLE_STATUS: StatusTable = { ...STORE_STATUS, ...LINK_STATUS, ...SHARING_STATUS };
