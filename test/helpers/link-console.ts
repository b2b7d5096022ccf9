/**
 * Test helper: link-console-main.ts as a child process (stopped by its pid),
 * its JSON lines collected, and a TCP proxy in front of it whose connections
 * a test can cut.
 */
import { once } from 'node:events';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { launchDaemon, stopDaemon, type Daemon } from './daemon.js';

const MAIN = fileURLToPath(new URL('./link-console-main.js', import.meta.url));

export interface LinkConsoleLine {
  at: number;
  type: 'listening' | 'connected' | 'disconnected' | 'status';
  pcId?: string;
  status?: { gate: string; users: string[]; agentVersion: string };
}

export interface LinkConsole {
  daemon: Daemon;
  lines(): LinkConsoleLine[];
  stop(): Promise<void>;
}

export async function startLinkConsole(settings: { port: number; certFile: string; keyFile: string; heartbeatSeconds: number; tokens?: Record<string, string>; devices?: Record<string, string> }): Promise<LinkConsole> {
  const env = { ...process.env, MYDOC_TEST_LINK: JSON.stringify({ tokens: {}, devices: {}, ...settings }) };
  const parse = (output: string) =>
    output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LinkConsoleLine);
  const daemon = await launchDaemon({
    name: 'link console',
    command: process.execPath,
    args: [MAIN],
    env,
    ready: () => listening(settings.port),
    readyTimeoutMs: 10_000,
    where: `127.0.0.1:${settings.port}`,
    graceMs: 2000,
  });
  return { daemon, lines: () => parse(daemon.output()), stop: () => stopDaemon(daemon, 3000) };
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A TCP proxy to `targetPort`; `cut()` closes every connection and refuses (accepts and closes) new ones until `mend()`. */
export interface CuttableProxy {
  port: number;
  /** When each connection arrived (ms). */
  accepted: number[];
  cut(): void;
  mend(): void;
  close(): Promise<void>;
}

export async function startProxy(targetPort: number): Promise<CuttableProxy> {
  const open = new Set<Socket>();
  const accepted: number[] = [];
  let cutting = false;
  const server: Server = createServer((client) => {
    accepted.push(Date.now());
    if (cutting) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    for (const s of [client, upstream]) {
      open.add(s);
      s.on('error', () => undefined);
      s.once('close', () => {
        open.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    accepted,
    cut() {
      cutting = true;
      for (const s of open) s.destroy();
    },
    mend() {
      cutting = false;
    },
    async close() {
      for (const s of open) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
