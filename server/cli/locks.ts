/** `mydoc locks list|clear`: the WebDAV locks held in the running service, through its admin socket. */
import { adminCall, type LockInfo } from '../agent/admin-socket.js';
import { command } from './command.js';
import { CliError } from './errors.js';
import { configFrom, configOption } from './inputs.js';

const user = { type: 'string', value: 'NAME', description: "only this user's locks" } as const;

export const lockCommands = [
  command({
    name: 'locks list',
    options: { user, config: configOption },
    summary: 'List the WebDAV locks held in the running service, through its local admin socket: token, user, scope, depth, time left, path, owner.',
    async run({ values }, io) {
      const config = await configFrom(values.config, io);
      const query = new URLSearchParams(values.user === undefined ? {} : { user: values.user });
      const { locks } = await adminCall<{ locks: LockInfo[] }>(config.dataDir, 'GET', `/locks?${query}`);
      if (locks.length === 0) io.stdout('no locks\n');
      for (const l of locks) io.stdout(`${l.token}  ${l.user}  ${l.scope}  depth ${l.depth}  expires in ${l.expiresInSeconds} s  ${l.root}${l.owner ? `  owner ${l.owner}` : ''}\n`);
      return 0;
    },
  }),
  command({
    name: 'locks clear',
    options: {
      token: { type: 'string', value: 'TOKEN', description: 'the lock to clear (as locks list shows it)' },
      all: { type: 'boolean', description: 'clear every lock (of --user, if given)' },
      user,
      config: configOption,
    },
    summary: 'Clear a WebDAV lock held in the running service (e.g. a stale lock left by a crashed Office), given by --token, or all of them (--all), through its local admin socket.',
    async run({ values }, io) {
      const config = await configFrom(values.config, io);
      const query = new URLSearchParams(values.user === undefined ? {} : { user: values.user });
      if (values.token !== undefined) query.set('token', values.token);
      else if (!values.all) throw new CliError('mydoc locks clear needs --token TOKEN or --all', 2);
      const { cleared } = await adminCall<{ cleared: number }>(config.dataDir, 'DELETE', `/locks?${query}`);
      io.stdout(`cleared ${cleared} lock(s)\n`);
      return 0;
    },
  }),
];
