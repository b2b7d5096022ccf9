/** Errors of the command line. Callers switch on `code`, never on message text. */

/** The command line is wrong or a command failed; `exitCode` is what the process should exit with. */
export class CliError extends Error {
  readonly code = 'ERR_CLI';
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = new.target.name;
  }
}
