/**
 * One process of the simulated fleet (fleet.bench.ts): many agents' links,
 * each the real agent end (ConsoleLink) with its own device key, dialing
 * the console with the real protocol, backoff and heartbeat. Settings in
 * MYDOC_FLEET (JSON: url, caFile, keysFile, dataDir); every 500 ms it
 * prints `{"connected":N,"links":M}` on stdout.
 */
import { createPrivateKey } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConsoleLink } from '../../server/agent/console-link.js';
import type { PcStatus } from '../../server/link/status.js';

interface FleetSettings {
  url: string;
  caFile: string;
  keysFile: string;
  dataDir: string;
}

const settings = JSON.parse(process.env.MYDOC_FLEET ?? '{}') as FleetSettings;
const keys = JSON.parse(await readFile(settings.keysFile, 'utf8')) as { pcId: string; privatePem: string; publicPem: string }[];
const quiet = { info: () => undefined, warn: () => undefined, debug: () => undefined, error: (a: unknown, b?: unknown) => process.stderr.write(`[fleet] ${typeof a === 'string' ? a : String(b)}\n`) };
await mkdir(settings.dataDir, { recursive: true });
const links: ConsoleLink[] = [];
for (const key of keys) {
  const status: PcStatus = { gate: 'online', takeoutUntil: null, users: [`user-${key.pcId}`], lastBackupAt: Date.now() - 3_600_000, agentVersion: 'fleet' };
  links.push(
    ConsoleLink.start({
      url: settings.url,
      caFile: settings.caFile,
      pcId: key.pcId,
      dataDir: join(settings.dataDir, key.pcId),
      deviceKey: createPrivateKey(key.privatePem),
      devicePublicPem: key.publicPem,
      enrolmentToken: undefined,
      agentVersion: 'fleet',
      status: async () => status,
      routes: {},
      logger: quiet,
    }),
  );
}
setInterval(() => process.stdout.write(JSON.stringify({ connected: links.filter((l) => l.connected).length, links: links.length }) + '\n'), 500);
process.once('SIGTERM', () => void Promise.all(links.map((l) => l.stop())).then(() => process.exit(0)));
