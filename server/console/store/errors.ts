/**
 * Errors of the console's state store. Callers switch on `code`, never on
 * message text; the console's status table maps them.
 * - `ERR_STORE_UNAVAILABLE`: the database does not answer (PostgreSQL down,
 *   unreachable, restarting, or slower than the store's timeouts); the same
 *   store object works again once it answers;
 * - `ERR_STORE_FILE`: the SQLite file cannot be opened or written;
 * - `ERR_STORE_MIGRATION`: the schema could not be brought up to date, or it
 *   was written by a newer mydoc;
 * - `ERR_STORE_PC_EXISTS`: `addPc` of a registered (not removed) PC;
 * - `ERR_STORE_PC_UNKNOWN`: the PC is not registered (or is removed);
 * - `ERR_STORE_QUERY`: a query outside what the store accepts (a page of more
 *   than 1000 rows, a negative offset);
 * - `ERR_STORE_CLOSED`: a call after close();
 * - `ERR_STORE_FAILED`: the database refused a statement for another reason.
 *
 * Security considerations: messages name the database (host:port or file)
 * and the driver's reason, never a password or a token (hash).
 */
export type StoreErrorCode =
  | 'ERR_STORE_UNAVAILABLE'
  | 'ERR_STORE_FILE'
  | 'ERR_STORE_MIGRATION'
  | 'ERR_STORE_PC_EXISTS'
  | 'ERR_STORE_PC_UNKNOWN'
  | 'ERR_STORE_QUERY'
  | 'ERR_STORE_CLOSED'
  | 'ERR_STORE_FAILED';

export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}
