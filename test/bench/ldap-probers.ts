/**
 * One process of the simulated probers (ldap-probe.bench.ts): many PCs'
 * reachability monitors, each the real ReachabilityMonitor with its own
 * probe of the given kind (ldap-probe-kinds.ts) of one slapd, started at a
 * random moment of the first interval (PCs are not in step). Settings in
 * MYDOC_PROBERS (JSON: url, caPem, count, kind, intervalMs, timeoutMs,
 * failuresToLock); every 500 ms it prints `{"ok":N,"failed":M}` (probes
 * answered and not, so far) on stdout.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ReachabilityMonitor } from '../../policy/reachability.js';
import { probeOf, type ProbeKind } from './ldap-probe-kinds.js';

interface ProbersSettings {
  url: string;
  caPem: string;
  count: number;
  kind: ProbeKind;
  intervalMs: number;
  timeoutMs: number;
  failuresToLock: number;
}

const settings = JSON.parse(process.env.MYDOC_PROBERS ?? '{}') as ProbersSettings;
const server = { urls: [settings.url], caPem: settings.caPem, tlsServerName: undefined, insecureSkipVerify: false, timeoutMs: settings.timeoutMs };
const counts = { ok: 0, failed: 0 };
setInterval(() => process.stdout.write(JSON.stringify(counts) + '\n'), 500);

const starts = Array.from({ length: settings.count }, () => Math.random() * settings.intervalMs).sort((a, b) => a - b);
const begin = Date.now();
for (const at of starts) {
  await sleep(Math.max(0, at - (Date.now() - begin)));
  const probe = probeOf(settings.kind, server, settings.url);
  const monitor = new ReachabilityMonitor({
    servers: [settings.url],
    probe: async (_server, signal) => {
      const ok = await probe(signal);
      counts[ok ? 'ok' : 'failed']++;
      return ok;
    },
    intervalMs: settings.intervalMs,
    timeoutMs: settings.timeoutMs,
    failuresToLock: settings.failuresToLock,
    onChange: () => undefined,
  });
  void monitor.start();
}
