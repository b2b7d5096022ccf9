/**
 * WebDAV errors and the one place where vault errors become HTTP statuses.
 */
import { VaultError, type VaultErrorCode } from '../vault/errors.js';

/** An error answered with `status`, a plain-text `message` and, for 4918 preconditions, a DAV:error body. */
export class DavError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** A DAV: precondition/postcondition element name, e.g. `lock-token-submitted`. */
    readonly condition?: string,
    /** Hrefs to list inside the condition element (e.g. the root of a conflicting lock). */
    readonly hrefs: string[] = [],
  ) {
    super(message);
    this.name = 'DavError';
  }
}

const VAULT_STATUS: Record<VaultErrorCode, number> = {
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
};

/** Converts any error met while handling a request into a DavError. */
export function toDavError(err: unknown): DavError {
  if (err instanceof DavError) return err;
  if (err instanceof VaultError) return new DavError(VAULT_STATUS[err.code] ?? 500, err.message);
  return new DavError(500, 'internal error');
}
