/**
 * A console link port in its own process, for the link tests: the real
 * link server (server/console/link/server.ts) over real sockets, admitting
 * with the in-process registry of link-fakes.ts. Started by link-console.ts
 * with its settings in MYDOC_TEST_LINK (JSON); it writes one JSON line per
 * registry call to stdout.
 */
import { readFile } from 'node:fs/promises';
import { startLinkServer } from '../../server/console/link/server.js';
import { captureLogger, FakeRegistry, TEST_CONSOLE_KEY } from './link-fakes.js';

interface Settings {
  port: number;
  certFile: string;
  keyFile: string;
  heartbeatSeconds: number;
  tokens: Record<string, string>;
  devices: Record<string, string>;
}

const settings = JSON.parse(process.env.MYDOC_TEST_LINK ?? '{}') as Settings;
const out = (line: object) => process.stdout.write(JSON.stringify({ at: Date.now(), ...line }) + '\n');

class ReportingRegistry extends FakeRegistry {
  override connected(pcId: string): void {
    super.connected(pcId);
    out({ type: 'connected', pcId });
  }
  override disconnected(pcId: string): void {
    super.disconnected(pcId);
    out({ type: 'disconnected', pcId });
  }
  override status(pcId: string, status: Parameters<FakeRegistry['status']>[1]): void {
    out({ type: 'status', pcId, status });
  }
}

const registry = new ReportingRegistry();
for (const [pcId, token] of Object.entries(settings.tokens)) registry.tokens.set(pcId, token);
for (const [pcId, deviceId] of Object.entries(settings.devices)) registry.devices.set(pcId, deviceId);
const hub = await startLinkServer({
  host: '127.0.0.1',
  port: settings.port,
  tls: { cert: await readFile(settings.certFile, 'utf8'), key: await readFile(settings.keyFile, 'utf8') },
  heartbeatSeconds: settings.heartbeatSeconds,
  consoleKey: TEST_CONSOLE_KEY,
  registry,
  logger: captureLogger().logger,
});
out({ type: 'listening' });
process.once('SIGTERM', () => void hub.close().then(() => process.exit(0)));
