/**
 * Errors of the console's own wiring and of its PC registry. Callers switch
 * on `code`, never on message text; statuses are in error-status.ts.
 * - `ERR_CONSOLE_NOT_INITIALISED` / `ERR_CONSOLE_INITIALISED`: `mydoc console init` did not run / ran already for the data folder;
 * - `ERR_CONSOLE_LISTEN`: a port could not be bound;
 * - `ERR_CONSOLE_PC_ID`: not a PC id; `ERR_CONSOLE_PC_UNKNOWN`: no such PC (or removed);
 *   `ERR_CONSOLE_PC_ENROLLED`: `pc add` of a PC that is enrolled already;
 * - the admin socket of a running console: `ERR_CONSOLE_UNREACHABLE` (it could not be reached),
 *   `ERR_CONSOLE_REFUSED` (it answered with an error).
 */
export type ConsoleErrorCode =
  | 'ERR_CONSOLE_NOT_INITIALISED'
  | 'ERR_CONSOLE_INITIALISED'
  | 'ERR_CONSOLE_LISTEN'
  | 'ERR_CONSOLE_PC_ID'
  | 'ERR_CONSOLE_PC_UNKNOWN'
  | 'ERR_CONSOLE_PC_ENROLLED'
  | 'ERR_CONSOLE_UNREACHABLE'
  | 'ERR_CONSOLE_REFUSED';

export class ConsoleError extends Error {
  constructor(
    readonly code: ConsoleErrorCode,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}
