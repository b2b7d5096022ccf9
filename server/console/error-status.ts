/**
 * The console's HTTP statuses by error code: the one table of this process,
 * in sections by where the errors are answered (server/http/error-status.ts
 * applies them in a fastify context; the admin socket uses `statusOf`).
 */
import type { StatusTable } from '../http/error-status.js';
import type { LinkErrorCode } from '../link/errors.js';
import type { ConsoleErrorCode } from './errors.js';
import type { StoreErrorCode } from './store/errors.js';

/** The admin socket (`mydoc console pc add|remove`): a wrong PC id, an unknown or enrolled PC. */
export const ADMIN_SOCKET_STATUS = {
  ERR_CONSOLE_PC_ID: 400,
  ERR_CONSOLE_PC_UNKNOWN: 404,
  ERR_CONSOLE_PC_ENROLLED: 409,
} as const satisfies Partial<Record<ConsoleErrorCode, number>>;

/** The store (server/console/store/errors.ts): a database that does not answer is the console's 503. */
export const STORE_STATUS = {
  ERR_STORE_UNAVAILABLE: 503,
  ERR_STORE_PC_EXISTS: 409,
  ERR_STORE_PC_UNKNOWN: 404,
} as const satisfies Partial<Record<StoreErrorCode, number>>;

/** A request for a PC over its link (link/hub.ts): offline at once, a hung agent after its deadline. */
export const LINK_STATUS = {
  ERR_LINK_OFFLINE: 503,
  ERR_LINK_TIMEOUT: 504,
  ERR_LINK_BROKEN: 502,
  ERR_LINK_ANSWER: 502,
} as const satisfies Record<LinkErrorCode, number>;

/** What every route of the console's HTTPS port may meet below it. */
export const CONSOLE_STATUS: StatusTable = { ...STORE_STATUS, ...LINK_STATUS };
