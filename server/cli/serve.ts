/** `mydoc serve`: the agent, until SIGTERM or SIGINT. */
import { serve } from '../agent/serve.js';
import { command } from './command.js';
import { CliError } from './errors.js';
import { configFrom, configOption } from './inputs.js';
import { version } from './version.js';

/** The levels of the service log (pino's); `MYDOC_LOG_LEVEL` picks one (default info). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export const serveCommand = command({
  name: 'serve',
  options: { config: configOption },
  summary: `Serve the users' documents to the Windows guest: WebDAV over HTTPS at the root of https://listen.host:listen.port/, Basic authentication. Runs until SIGTERM or SIGINT. $MYDOC_LOG_LEVEL sets the log level (${LOG_LEVELS.join(', ').replace('info', 'info (default)')}).`,
  async run({ values }, io) {
    const logLevel = io.env.MYDOC_LOG_LEVEL || undefined;
    if (logLevel !== undefined && !LOG_LEVELS.includes(logLevel)) throw new CliError(`MYDOC_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, not "${logLevel}"`, 2);
    await serve(await configFrom(values.config, io), version(), io.stdout, logLevel === undefined ? {} : { logLevel });
    return 0;
  },
});
