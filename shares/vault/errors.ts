/**
 * Errors of the vault. `code` is stable; the WebDAV layer maps codes to HTTP
 * statuses in one place.
 */
export type VaultErrorCode =
  | 'ERR_NOT_FOUND'
  | 'ERR_EXISTS'
  | 'ERR_NOT_A_DIRECTORY'
  | 'ERR_IS_A_DIRECTORY'
  | 'ERR_PARENT_MISSING'
  | 'ERR_NAME_INVALID'
  | 'ERR_PROTECTED'
  | 'ERR_MOVE_INTO_SELF'
  | 'ERR_OBJECT_CORRUPT'
  | 'ERR_INDEX_KEY'
  | 'ERR_TOO_LARGE'
  | 'ERR_VAULT_CLOSED'
  | 'ERR_READ_ONLY'
  | 'ERR_INDEX_VERSION'
  | 'ERR_VAULT_BUSY'
  | 'ERR_NO_SPACE';

export class VaultError extends Error {
  constructor(
    readonly code: VaultErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'VaultError';
  }
}
