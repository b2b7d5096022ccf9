/**
 * Errors of the server layer. Callers switch on `code`, never on message text.
 */

/**
 * The configuration file is missing, unreadable, not valid YAML, or a value in it is wrong.
 * `key` is the full dotted key at fault (e.g. `listen.port`), or `(file)` for problems of
 * the file as a whole. The message always reads `config: <key>: <problem>`.
 */
export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG';
  constructor(readonly key: string, problem: string) {
    super(`config: ${key}: ${problem}`);
    this.name = new.target.name;
  }
}

/** The command line's error lives with the command line; re-exported here for the service code that still throws it. */
export { CliError } from './cli/errors.js';

/** Input to TLS certificate creation is unusable (e.g. a host name that is not a DNS name). */
export class TlsInputError extends Error {
  readonly code = 'ERR_TLS_INPUT';
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}
