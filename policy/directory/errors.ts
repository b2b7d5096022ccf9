/**
 * Errors of the directories. `code` is stable: callers switch on it, and
 * the server maps it to an answer (nothing here knows HTTP).
 */

export type DirectoryErrorCode =
  /** A user of that name (in any case) exists in the local directory. */
  | 'ERR_USER_EXISTS'
  /** A user name the local directory does not accept. */
  | 'ERR_USER_NAME'
  /** A password shorter than the local directory's minimum. */
  | 'ERR_PASSWORD_POLICY'
  /** The local users file cannot be read or is malformed. */
  | 'ERR_DIRECTORY_FILE';

export class DirectoryError extends Error {
  constructor(
    readonly code: DirectoryErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DirectoryError';
  }
}

/** The company directory does not answer (no server reached, TLS refused, an operation timed out). */
export class DirectoryUnreachableError extends Error {
  readonly code = 'ERR_DIRECTORY_UNREACHABLE';
  constructor(message: string) {
    super(message);
    this.name = 'DirectoryUnreachableError';
  }
}
