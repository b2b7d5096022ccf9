/**
 * What several commands read: the configuration file (`--config`, else
 * $MYDOC_CONFIG, else /etc/mydoc/config.yaml) and a password on standard input.
 */
import { loadConfig, type Config } from '../config/config.js';
import type { Io } from './command.js';
import { CliError } from './errors.js';

const DEFAULT_CONFIG = '/etc/mydoc/config.yaml';

/** The `--config FILE` option of every command that reads the configuration. */
export const configOption = { type: 'path', description: 'configuration file', fallback: `$MYDOC_CONFIG, else ${DEFAULT_CONFIG}` } as const;

export async function configFrom(file: string | undefined, io: Io): Promise<Config> {
  return loadConfig(file ?? io.env.MYDOC_CONFIG ?? DEFAULT_CONFIG);
}

/** The `--password-stdin` option: passwords are never taken as arguments. */
export const passwordStdinOption = { type: 'boolean', required: true, description: 'read the password from standard input (passwords are never taken as arguments)' } as const;

export async function readPassword(io: Io): Promise<string> {
  if (io.stdinIsTty) throw new CliError('--password-stdin reads the password from standard input: pipe it in, e.g. printf %s "$PW" | mydoc user add NAME --password-stdin', 2);
  return (await io.stdin()).toString('utf8').replace(/\r?\n$/, '');
}
