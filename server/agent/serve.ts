/**
 * `mydoc serve`: starts the agent composed by compose.ts (the reachability
 * rounds, the online checks, the admin socket, the HTTPS port and the backup
 * schedule) and runs it until `mydoc stop` or SIGTERM/SIGINT, then drops
 * every key from memory and stops.
 */
import type { FastifyInstance } from 'fastify';
import type { BackupService } from './backup-service.js';
import { startAdminSocket } from './admin-socket.js';
import { composeAgent } from './compose.js';
import { ConsoleLink, requireLinkSupport } from './console-link.js';
import { takeoutLinkRoutes } from './link-takeout.js';
import { shareRuleRoutes } from './link-shares.js';
import type { Config } from '../config/config.js';
import { AgentError } from './errors.js';
import { pickLogOptions, type LogOptions } from '../http/log-options.js';

export interface Service {
  app: FastifyInstance;
  /** `https://host:port/` */
  url: string;
  backups: BackupService;
}

export interface ServiceOptions extends LogOptions {
  /** Called after the app is assembled and before it listens (benchmarks add baseline routes here). */
  beforeListen?: (app: FastifyInstance) => void;
  /** `mydoc stop` asked the service to stop (after its shutdown backup). */
  onStopRequest?: () => void;
}

/** Composes the agent for a configuration and listens; `app.close()` stops it and drops every key. */
export async function startService(config: Config, version: string, opts: ServiceOptions = {}): Promise<Service> {
  // Before anything starts: a Node.js without what the link needs is an error the administrator sees at once.
  if (config.console) requireLinkSupport();
  const { app, directory, audit, sessions, locks, takeout, gate, monitor, backups, onlineCheck, clock, device, status, link: data } = await composeAgent({ config, version, ...pickLogOptions(opts) });
  await audit.append({ actor: 'system', action: 'service.start', decision: 'info', reason: `directory ${directory.kind}` });
  if (directory.servers.length > 0) await monitor.start();
  // A directory without servers (the local one) is always reachable: every probe interval is an online check.
  const onlineCheckTimer = directory.servers.length === 0 ? setInterval(onlineCheck, config.directory.probe.intervalSeconds * 1000) : undefined;
  onlineCheckTimer?.unref();
  const admin = await startAdminSocket(config.dataDir, locks, backups, audit, () => opts.onStopRequest?.(), clock);
  let link: ConsoleLink | undefined;
  app.addHook('onClose', async () => {
    await link?.stop();
    await backups.stopSchedule();
    monitor.stop();
    clearInterval(onlineCheckTimer);
    takeout.close();
    await new Promise((resolve) => admin.close(resolve));
    await sessions.lockAll();
    await audit.append({ actor: 'system', action: 'service.stop', decision: 'info' });
    await audit.close();
  });
  if (directory.kind === 'local') app.log.warn('directory "local": network secrets are in a local file (INSECURE, demo and tests only)');
  if (config.directory.ldap?.insecureSkipVerify) app.log.warn('directory.ldap.insecureSkipVerify is set: the directory\'s TLS certificate is NOT verified (INSECURE)');
  opts.beforeListen?.(app);
  try {
    await app.listen({ host: config.listen.host, port: config.listen.port });
  } catch (err) {
    await app.close();
    throw new AgentError('ERR_LISTEN', `cannot listen on ${config.listen.host}:${config.listen.port}: ${(err as Error).message}`);
  }
  await backups.startSchedule();
  if (config.console) {
    // The link runs beside the share: a console that is down or hung costs retries, never a request.
    link = ConsoleLink.start({
      url: config.console.url,
      caFile: config.console.caFile,
      pcId: config.pcId,
      dataDir: config.dataDir,
      deviceKey: device.key,
      devicePublicPem: device.publicPem,
      enrolmentToken: config.console.enrolmentToken,
      agentVersion: version,
      status,
      routes: { ...takeoutLinkRoutes(takeout), ...shareRuleRoutes(data.rules) },
      consoleKey: data.consoleKey,
      dav: (stream, headers) => data.dav.serve(stream, headers),
      logger: app.log,
    });
    // A user's new take-out request goes up the link (or waits for it; the console also asks for the pending ones after each reconnect).
    takeout.onRequest((request) => link?.push({ type: 'takeout.request', request }));
    const changed = () => link?.statusChanged();
    gate.onLock(changed);
    gate.onOnline(changed);
    takeout.onLock(changed);
  }
  const url = `https://${config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host}:${config.listen.port}/`;
  return { app, url, backups };
}

/**
 * `mydoc serve`: the service until `mydoc stop` (after its shutdown backup),
 * or SIGTERM/SIGINT (a shutdown backup first; a second signal stops at once).
 */
export async function serve(config: Config, version: string, out: (t: string) => void, opts: LogOptions = {}): Promise<void> {
  let close: () => void = () => undefined;
  const { app, url, backups } = await startService(config, version, { onStopRequest: () => close(), ...pickLogOptions(opts) });
  const stopped = new Promise<void>((resolve) => {
    let closing = false;
    close = () => {
      if (closing) return;
      closing = true;
      app.log.info('stopping: closing connections and dropping keys');
      void app.close().then(resolve, resolve);
    };
    let backingUp = false;
    const onSignal = () => {
      if (closing) return; // closing already (e.g. after "mydoc stop", systemd's SIGTERM follows)
      if (backingUp) {
        // A second signal during the shutdown backup: stop at once. A partial
        // backup loses nothing, and leaving the process drops every key.
        app.log.warn('second stop signal: exiting now, without finishing the backup');
        process.exit(1);
      }
      backingUp = true;
      app.log.info(`stopping: backing up first (at most ${config.backup.shutdownDeadlineSeconds} s)`);
      void backups.runAtShutdown().catch(() => undefined).finally(close); // the outcome is logged by the backup service
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  out(`mydoc: serving ${url}\n`);
  out(`Map the drive in the Windows guest (after trusting ${config.tls.caFile}):\n  net use Z: ${url} /persistent:yes /user:USERNAME *\n`);
  await stopped;
}
