/**
 * `mydoc console serve`: starts the console composed by compose.ts, the
 * administrators' HTTPS port (listen.port), the agents' link port
 * (listen.linkPort, H2b's link server) and the admin socket, and runs it
 * until SIGTERM or SIGINT; then it drops every link, writes the last
 * presence and closes its store and audit trail.
 */
import type { Server } from 'node:http';
import { startConsoleAdminSocket } from './admin-socket.js';
import { composeConsole, type Console } from './compose.js';
import type { ConsoleConfig } from './config.js';
import { ConsoleError } from './errors.js';
import { startLinkServer } from './link/server.js';
import { addPc, removePc } from './pcs.js';
import { pickLogOptions, type LogOptions } from '../http/log-options.js';

export interface RunningConsole {
  console: Console;
  /** `https://host:port/`: the administrators' page. */
  url: string;
  /** `https://host:linkPort`: what agents name in console.url. */
  linkUrl: string;
  /** Drops every link, stops listening and closes the console. */
  stop(): Promise<void>;
}

function hostUrl(host: string, port: number): string {
  return `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** Composes the console for a configuration and listens on both ports and the admin socket. */
export async function startConsole(config: ConsoleConfig, version: string, opts: LogOptions = {}): Promise<RunningConsole> {
  const c = await composeConsole({ config, version, ...pickLogOptions(opts) });
  const { app } = c;
  let admin: Server | undefined;
  const stop = async () => {
    await c.links.close();
    if (admin) await new Promise((resolve) => admin!.close(resolve));
    await c.audit.append({ actor: 'system', action: 'console.stop', decision: 'info' }).catch(() => undefined);
    await c.close();
  };
  try {
    admin = await startConsoleAdminSocket(config.dataDir, { addPc: (pcId, actor) => addPc(c.pcAdmin, pcId, actor), removePc: (pcId, actor) => removePc(c.pcAdmin, pcId, actor) }, app.log);
    await app.listen({ host: config.listen.host, port: config.listen.port }).catch((err: Error) => {
      throw new ConsoleError('ERR_CONSOLE_LISTEN', `cannot listen on ${config.listen.host}:${config.listen.port} (listen.port): ${err.message}`);
    });
    const hub = await startLinkServer({ host: config.listen.host, port: config.listen.linkPort, tls: c.tls, heartbeatSeconds: config.link.heartbeatSeconds, consoleKey: c.issuerPublicPem, registry: c.registry, logger: app.log.child({ part: 'link' }) }).catch((err: Error) => {
      throw new ConsoleError('ERR_CONSOLE_LISTEN', `cannot listen on ${config.listen.host}:${config.listen.linkPort} (listen.linkPort): ${err.message}`);
    });
    c.links.attach(hub);
    // Unanswered requests expire (takeout.requestExpiryDays) and each PC is told; started here only (composeConsole does not).
    c.takeout.start();
  } catch (err) {
    await stop();
    throw err;
  }
  await c.audit.append({ actor: 'system', action: 'console.start', decision: 'info', reason: `store ${config.store.kind}, directory ${config.directory.kind}` });
  if (config.directory.kind === 'ldap' && config.directory.ldap?.insecureSkipVerify) app.log.warn("directory.ldap.insecureSkipVerify is set: the directory's TLS certificate is NOT verified (INSECURE)");
  return { console: c, url: `${hostUrl(config.listen.host, config.listen.port)}/`, linkUrl: hostUrl(config.listen.host, config.listen.linkPort), stop };
}

/** `mydoc console serve`: the console until SIGTERM or SIGINT. */
export async function serveConsole(config: ConsoleConfig, version: string, out: (t: string) => void, opts: LogOptions = {}): Promise<void> {
  const running = await startConsole(config, version, opts);
  const stopped = new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = () => {
      if (stopping) return;
      stopping = true;
      running.console.app.log.info('stopping: dropping the links and closing the store');
      void running.stop().then(resolve, resolve);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  out(`mydoc console: administrators' page ${running.url}\n`);
  out(`mydoc console: agents' links ${running.linkUrl} (console.url of each agent)\n`);
  await stopped;
}
