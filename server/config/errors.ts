/**
 * Errors of the configuration and of the data folder it names. Callers
 * switch on `code`, never on message text.
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

/**
 * The data folder does not fit the configuration: `ERR_DATA_DIR_NOT_INITIALISED`,
 * `mydoc init` did not run for it; `ERR_DATA_DIR_OTHER_PC`, it was made for another PC id.
 */
export class DataFolderError extends Error {
  constructor(
    readonly code: 'ERR_DATA_DIR_NOT_INITIALISED' | 'ERR_DATA_DIR_OTHER_PC',
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A file the configuration names (a secret, a CA, the TLS key or certificate) cannot be read. */
export class ConfiguredFileError extends Error {
  readonly code = 'ERR_CONFIGURED_FILE';
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}
