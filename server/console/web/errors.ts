/**
 * Errors of the administrators' web page and their statuses: the page's
 * own refusals beside take-out's decisions (ConsoleTakeoutError), the
 * store's (PostgreSQL lost is 503) and the link's failures, in one table
 * the page's error handler applies (server/http/error-status.ts), so each
 * is a readable error page with its message, not a bare 500.
 */
import type { StatusTable } from '../../http/error-status.js';
import { LINK_STATUS, STORE_STATUS, TAKEOUT_STATUS } from '../error-status.js';
import { RECOVERY_STATUS } from '../recovery/errors.js';

export type WebErrorCode =
  /** A form or query value is missing or out of range. */
  | 'ERR_WEB_INPUT'
  /** A POST without this session's CSRF token. */
  | 'ERR_WEB_CSRF'
  /** Logged in, but without the role this needs. */
  | 'ERR_WEB_ROLE'
  /** Not logged in (a POST; a page redirects to the login instead). */
  | 'ERR_WEB_LOGIN'
  /** No such PC. */
  | 'ERR_WEB_NOT_FOUND';

export class WebError extends Error {
  constructor(
    readonly code: WebErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'WebError';
  }
}

export const WEB_STATUS: StatusTable = {
  ERR_WEB_INPUT: 400,
  ERR_WEB_CSRF: 403,
  ERR_WEB_ROLE: 403,
  ERR_WEB_LOGIN: 401,
  ERR_WEB_NOT_FOUND: 404,
  ...TAKEOUT_STATUS,
  ...STORE_STATUS,
  ...LINK_STATUS,
  ...RECOVERY_STATUS,
};
