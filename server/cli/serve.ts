/** `mydoc serve`: the agent, until SIGTERM or SIGINT. */
import { serve } from '../agent/serve.js';
import { command } from './command.js';
import { configFrom, configOption } from './inputs.js';
import { logLevelOption, serviceLog } from './service-log.js';
import { version } from './version.js';

export const serveCommand = command({
  name: 'serve',
  options: { config: configOption, 'log-level': logLevelOption },
  summary: "Serve the users' documents to the Windows guest: WebDAV over HTTPS at the root of https://listen.host:listen.port/, Basic authentication. Runs until SIGTERM or SIGINT. Logs readable lines on a terminal, JSON lines otherwise (journald).",
  async run({ values }, io) {
    const log = await serviceLog(values['log-level'], io);
    await serve(await configFrom(values.config, io), version(), io.stdout, log);
    return 0;
  },
});
