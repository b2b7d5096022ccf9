/**
 * The WebDAV layer's error vocabulary and the one table that gives each
 * code its HTTP status. The statuses are fixed by RFC 4918 and RFC 9110,
 * which is why the table lives with the protocol: the WebDAV share of any
 * process answers through it, beside the process's own table for what it
 * answers outside the share (the agent's: server/agent/error-status.ts).
 *
 * Codes come from the handler itself (ERR_DAV_...), from the store
 * (store.ts: the vault's VaultError codes), from the lock manager
 * (locks.ts), the XML parser (xml.ts) and the If header parser
 * (if-header.ts). `toDavError` turns any of them into a DavError; anything
 * else is a 500 whose body says only "internal error".
 */
import { IfHeaderError } from './if-header.js';
import { LockConflictError, LockedError, LockLimitError, LockNotFoundError } from './locks.js';
import { STORE_ERROR_CODES, type StoreErrorCode } from './store.js';
import { XmlError, type XmlErrorCode } from './xml.js';

/** The handler's own refusals. */
export type DavErrorCode =
  | 'ERR_DAV_METHOD_NOT_ALLOWED'
  | 'ERR_DAV_PATH_INVALID'
  | 'ERR_DAV_DESTINATION_INVALID'
  | 'ERR_DAV_DESTINATION_OTHER_SERVER'
  | 'ERR_DAV_DESTINATION_ROOT'
  | 'ERR_DAV_DESTINATION_EXISTS'
  | 'ERR_DAV_SAME_RESOURCE'
  | 'ERR_DAV_DEPTH_INVALID'
  | 'ERR_DAV_PROPFIND_INFINITE'
  | 'ERR_DAV_OVERWRITE_INVALID'
  | 'ERR_DAV_TIMEOUT_INVALID'
  | 'ERR_DAV_BODY_TOO_LARGE'
  | 'ERR_DAV_BODY_INVALID'
  | 'ERR_DAV_MKCOL_BODY'
  | 'ERR_DAV_PARTIAL_PUT'
  | 'ERR_DAV_FILE_TOO_LARGE'
  | 'ERR_DAV_INSUFFICIENT_SPACE'
  | 'ERR_DAV_IF_FAILED'
  | 'ERR_DAV_PRECONDITION_FAILED'
  | 'ERR_DAV_LOCK_ROOT'
  | 'ERR_DAV_LOCK_REFRESH_NO_TOKEN'
  | 'ERR_DAV_LOCK_REFRESH_MISMATCH'
  | 'ERR_DAV_LOCK_TOKEN_MISSING'
  | 'ERR_DAV_INTERNAL';

/** Every code the WebDAV layer answers. */
export type WebdavErrorCode = DavErrorCode | StoreErrorCode | LockedError['code'] | LockNotFoundError['code'] | LockLimitError['code'] | XmlErrorCode | IfHeaderError['code'];

export const WEBDAV_STATUS: Readonly<Record<WebdavErrorCode, number>> = {
  ERR_DAV_METHOD_NOT_ALLOWED: 405,
  ERR_DAV_PATH_INVALID: 400,
  ERR_DAV_DESTINATION_INVALID: 400,
  ERR_DAV_DESTINATION_OTHER_SERVER: 502, // RFC 4918 9.8.5
  ERR_DAV_DESTINATION_ROOT: 403,
  ERR_DAV_DESTINATION_EXISTS: 412, // RFC 4918 10.6, Overwrite: F
  ERR_DAV_SAME_RESOURCE: 403, // RFC 4918 9.8.5
  ERR_DAV_DEPTH_INVALID: 400,
  ERR_DAV_PROPFIND_INFINITE: 403, // RFC 4918 9.1, propfind-finite-depth
  ERR_DAV_OVERWRITE_INVALID: 400,
  ERR_DAV_TIMEOUT_INVALID: 400,
  ERR_DAV_BODY_TOO_LARGE: 413,
  ERR_DAV_BODY_INVALID: 400,
  ERR_DAV_MKCOL_BODY: 415, // RFC 4918 9.3.1
  ERR_DAV_PARTIAL_PUT: 400, // RFC 9110 14.5
  ERR_DAV_FILE_TOO_LARGE: 413,
  ERR_DAV_INSUFFICIENT_SPACE: 507,
  ERR_DAV_IF_FAILED: 412, // RFC 4918 10.4
  ERR_DAV_PRECONDITION_FAILED: 412, // RFC 9110 13.1
  ERR_DAV_LOCK_ROOT: 403,
  ERR_DAV_LOCK_REFRESH_NO_TOKEN: 400,
  ERR_DAV_LOCK_REFRESH_MISMATCH: 412, // RFC 4918 9.10.2, lock-token-matches-request-uri
  ERR_DAV_LOCK_TOKEN_MISSING: 400,
  ERR_DAV_INTERNAL: 500,
  // the store's
  ERR_NOT_FOUND: 404,
  ERR_EXISTS: 405,
  ERR_NOT_A_DIRECTORY: 409,
  ERR_IS_A_DIRECTORY: 405,
  ERR_PARENT_MISSING: 409,
  ERR_NAME_INVALID: 400,
  ERR_PROTECTED: 403,
  ERR_MOVE_INTO_SELF: 403,
  ERR_OBJECT_CORRUPT: 500,
  ERR_INDEX_KEY: 500,
  ERR_TOO_LARGE: 413,
  ERR_VAULT_CLOSED: 503,
  ERR_READ_ONLY: 403,
  ERR_INDEX_VERSION: 500,
  ERR_VAULT_BUSY: 503,
  ERR_NO_SPACE: 507,
  // the lock manager's
  ERR_LOCKED: 423,
  ERR_LOCK_NOT_FOUND: 409,
  ERR_LOCK_LIMIT: 503,
  // the XML parser's and the If header parser's
  ERR_XML: 400,
  ERR_XML_TOO_LARGE: 413,
  ERR_IF_HEADER: 400,
};

/** An error answered with its code's status, a plain-text `message` and, for 4918 preconditions, a DAV:error body. */
export class DavError extends Error {
  constructor(
    readonly code: WebdavErrorCode,
    message: string,
    /** A DAV: precondition/postcondition element name, e.g. `lock-token-submitted`. */
    readonly condition?: string,
    /** Hrefs to list inside the condition element (e.g. the root of a conflicting lock). */
    readonly hrefs: string[] = [],
  ) {
    super(message);
    this.name = 'DavError';
  }

  get status(): number {
    return WEBDAV_STATUS[this.code];
  }
}

/**
 * A store's error: one whose code is a store error code (store.ts). Only these
 * are answered with their own message; any other error, whatever its code, is
 * a 500 that says only "internal error".
 */
function isStoreError(err: unknown): err is Error & { code: StoreErrorCode } {
  const code = (err as { code?: unknown } | undefined)?.code;
  return err instanceof Error && (STORE_ERROR_CODES as readonly unknown[]).includes(code);
}

/** Converts any error met while handling a request into a DavError. */
export function toDavError(err: unknown): DavError {
  if (err instanceof DavError) return err;
  if (err instanceof LockedError) return new DavError(err.code, 'the resource is locked and no matching lock token was submitted', err.condition, err.rootHref ? [err.rootHref] : []);
  if (err instanceof LockConflictError) return new DavError(err.code, 'the resource is already locked', err.condition, err.rootHref ? [err.rootHref] : []);
  if (err instanceof LockNotFoundError) return new DavError(err.code, err.message, 'lock-token-matches-request-uri');
  if (err instanceof LockLimitError) return new DavError(err.code, `${err.message}; unlock or let some expire`);
  if (err instanceof XmlError) return new DavError(err.code, `invalid XML body: ${err.message}`);
  if (err instanceof IfHeaderError) return new DavError(err.code, `invalid If header: ${err.message}`);
  if (isStoreError(err)) return new DavError(err.code, err.message);
  return new DavError('ERR_DAV_INTERNAL', 'internal error');
}
