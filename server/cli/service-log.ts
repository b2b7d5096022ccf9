/**
 * The log of a long-running service (`mydoc serve`, `mydoc console serve`):
 * its level (`--log-level`, else $MYDOC_LOG_LEVEL, else info) and its form.
 * On a terminal a person reads it: pino-pretty's lines (time, level,
 * message, fields), loaded only then. Otherwise (journald, a pipe, a file)
 * pino's JSON lines, one per event, as collectors expect.
 *
 * The form changes nothing of what is logged: the same redactions and
 * serializers apply (no passwords, tokens or users' file names at info).
 */
import type { DestinationStream } from 'pino';
import { CliError } from './errors.js';
import type { Io } from './command.js';

/** pino's levels. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const logLevelOption = {
  type: 'string',
  choices: LOG_LEVELS,
  description: `what the service logs: ${LOG_LEVELS.join(', ')}`,
  fallback: '$MYDOC_LOG_LEVEL, else info',
} as const;

export interface ServiceLog {
  logLevel: string;
  /** Where the log goes when not pino's JSON on standard output. */
  logStream?: DestinationStream;
}

/** The level from the option or the environment, and a pretty printer when standard output is a terminal. */
export async function serviceLog(option: string | undefined, io: Pick<Io, 'env' | 'stdoutIsTty'>): Promise<ServiceLog> {
  const fromEnv = io.env.MYDOC_LOG_LEVEL || undefined;
  const level = option ?? fromEnv ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new CliError(`MYDOC_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, not "${level}"`, 2);
  if (!io.stdoutIsTty) return { logLevel: level };
  const { default: pretty } = await import('pino-pretty');
  // Synchronous writes: a line is on the terminal before the process can exit.
  return { logLevel: level, logStream: pretty({ colorize: true, sync: true, translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l', ignore: 'pid,hostname' }) };
}
