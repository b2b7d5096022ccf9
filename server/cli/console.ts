/**
 * `mydoc console ...`: the console's commands: init, serve, pc add|remove|list
 * and audit verify. The configuration is the console's own file
 * (`--config`, else $MYDOC_CONSOLE_CONFIG, else /etc/mydoc/console.yaml).
 *
 * Security considerations: `pc add` prints the one-time enrolment token
 * once, on standard output, and nowhere else (the store keeps its hash).
 * `pc add|remove` go through the running console's admin socket (0600), so a
 * removal drops the PC's link at once; when no console runs they work on the
 * store and the audit trail directly.
 *
 * The console's server and store (fastify's console routes, PostgreSQL and
 * SQLite clients) are imported only by the commands that use them, so the
 * agent's own `mydoc serve` does not carry them in memory.
 */
import { isIP } from 'node:net';
import pino from 'pino';
import type { FastifyBaseLogger } from 'fastify';
import { verifyAuditLog } from '../../policy/audit/log.js';
import { consoleAdminCall } from '../console/admin-socket.js';
import { localActor, openConsoleAudit } from '../console/audit.js';
import { loadConsoleConfig, onlineWindowMs, type ConsoleConfig } from '../console/config.js';
import { consoleFolder } from '../console/data-folder.js';
import { initConsole, requireConsoleInitialised } from '../console/init.js';
import { addPc, removePc, type AddedPc, type PcAdmin } from '../console/pcs.js';
import type { ConsoleStore, PcRow } from '../console/store/store.js';
import { command, type Io } from './command.js';
import { CliError } from './errors.js';
import { logLevelOption, serviceLog } from './service-log.js';
import { version } from './version.js';

const DEFAULT_CONFIG = '/etc/mydoc/console.yaml';
const configOption = { type: 'path', description: "the console's configuration file", fallback: `$MYDOC_CONSOLE_CONFIG, else ${DEFAULT_CONFIG}` } as const;

function consoleConfig(file: string | undefined, io: Io): Promise<ConsoleConfig> {
  return loadConsoleConfig(file ?? (io.env.MYDOC_CONSOLE_CONFIG || DEFAULT_CONFIG));
}

/** The log of a command (not of the serving console): warnings and errors, on standard error. */
export function commandLogger(): FastifyBaseLogger {
  return pino({ level: 'warn' }, pino.destination(2)) as unknown as FastifyBaseLogger;
}

/** The console's store and audit trail, opened for one command while no console runs, and closed after it. */
export async function withStore<T>(config: ConsoleConfig, work: (admin: PcAdmin, store: ConsoleStore) => Promise<T>): Promise<T> {
  await requireConsoleInitialised(config);
  const { openConfiguredStore } = await import('../console/open-store.js');
  const store = await openConfiguredStore(config, commandLogger());
  try {
    const audit = await openConsoleAudit(config.dataDir, Date.now);
    try {
      return await work({ store, audit, clock: Date.now, tokenHours: config.enrolment.tokenHours, dropLink: () => undefined }, store);
    } finally {
      await audit.close();
    }
  } finally {
    await store.close();
  }
}

/** The host agents dial: listen.host, or the first listen.hostNames entry when the console listens on every address. */
function agentFacingHost(config: ConsoleConfig): string {
  const { host, hostNames } = config.listen;
  const wildcard = host === '0.0.0.0' || host === '::';
  const name = wildcard ? (hostNames[0] ?? '127.0.0.1') : host;
  return isIP(name) === 6 ? `[${name}]` : name;
}

function pcState(row: PcRow, onlineSince: number): string {
  if (row.removedAt !== null) return 'removed';
  if (row.enrolledAt === null) return 'not enrolled';
  return row.lastSeenAt !== null && row.lastSeenAt >= onlineSince ? 'online' : 'offline';
}

const time = (ms: number | null): string => (ms === null ? '-' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z'));

export const consoleCommands = [
  command({
    name: 'console init',
    options: { config: configOption },
    summary: "Create the console's data folder: its store, a CA and the TLS certificate of both ports, the take-out issuer key pair (the private half never leaves this machine) and the audit trail.",
    async run({ values }, io) {
      const config = await consoleConfig(values.config, io);
      const report = await initConsole(config, commandLogger());
      io.stdout(`initialised the console's data folder ${report.dataDir}\n`);
      io.stdout(`  store: ${report.store}\n`);
      io.stdout(`  CA certificate (agents pin it: console.caFile): ${report.caFile}\n`);
      io.stdout(`  take-out issuer public key ${report.issuerKid} (list it in each agent's takeout.issuerPublicKeys): ${report.issuerPublicKey}\n`);
      return 0;
    },
  }),
  command({
    name: 'console serve',
    options: { config: configOption, 'log-level': logLevelOption },
    summary: "Serve the console: the administrators' page and API on https://listen.host:listen.port/, the agents' links on listen.linkPort, until SIGTERM or SIGINT. Logs readable lines on a terminal, JSON lines otherwise (journald).",
    async run({ values }, io) {
      const log = await serviceLog(values['log-level'], io);
      const { serveConsole } = await import('../console/serve.js');
      await serveConsole(await consoleConfig(values.config, io), version(), io.stdout, log);
      return 0;
    },
  }),
  command({
    name: 'console pc add',
    positionals: ['PCID'],
    options: { config: configOption },
    summary: "Register a PC and print its one-time enrolment token (valid for enrolment.tokenHours, once) with the lines for the agent's configuration. For a registered PC that has not enrolled yet, a new token replaces the old one.",
    async run({ values, positionals }, io) {
      const config = await consoleConfig(values.config, io);
      const pcId = positionals[0]!;
      const call = await consoleAdminCall<AddedPc>(config.dataDir, 'POST', `/pcs/${encodeURIComponent(pcId)}`, { actor: localActor() });
      const added = call.running ? call.answer! : await withStore(config, (admin) => addPc(admin, pcId, localActor()));
      io.stdout(`${added.renewed ? 'new enrolment token for' : 'registered'} PC ${added.pcId}; the token enrols it once, until ${time(added.expiresAt)}\n`);
      io.stdout(`Put these lines in the agent's configuration (and copy ${consoleFolder(config.dataDir).tls.caFile} to the PC):\n`);
      io.stdout(`console:\n  url: https://${agentFacingHost(config)}:${config.listen.linkPort}\n  caFile: ${consoleFolder(config.dataDir).tls.caFile}\n  enrolmentToken: ${added.token}\n`);
      return 0;
    },
  }),
  command({
    name: 'console pc remove',
    positionals: ['PCID'],
    options: { config: configOption },
    summary: 'Remove a PC: its link is dropped at once and it is refused at every later handshake (add it again to enrol it anew).',
    async run({ values, positionals }, io) {
      const config = await consoleConfig(values.config, io);
      const pcId = positionals[0]!;
      const call = await consoleAdminCall(config.dataDir, 'DELETE', `/pcs/${encodeURIComponent(pcId)}`, { actor: localActor() });
      if (!call.running) await withStore(config, (admin) => removePc(admin, pcId, localActor()));
      io.stdout(`removed PC ${pcId}${call.running ? '; its link, if it had one, is dropped' : ''}\n`);
      return 0;
    },
  }),
  command({
    name: 'console pc list',
    options: { config: configOption },
    summary: 'List the registered PCs: id, state (online, offline, not enrolled), last seen, gate, last complete backup, agent version, device id.',
    async run({ values }, io) {
      const config = await consoleConfig(values.config, io);
      const rows = await withStore(config, async (_admin, store) => {
        const now = Date.now();
        const onlineSince = now - onlineWindowMs(config);
        const all: PcRow[] = [];
        for (let offset = 0; ; offset += 1000) {
          const page = await store.listPcs({ filter: 'all', sort: 'pcId', descending: false, offset, limit: 1000, onlineSince, now });
          all.push(...page.rows);
          if (page.rows.length < 1000) break;
        }
        return all.map((row) => [row.pcId, pcState(row, onlineSince), time(row.lastSeenAt), row.status?.gate ?? '-', time(row.status?.lastBackupAt ?? null), row.status?.agentVersion ?? '-', row.deviceId?.slice(0, 16) ?? '-']);
      });
      if (rows.length === 0) return io.stdout('no PCs registered\n'), 0;
      const table = [['PC', 'STATE', 'LAST SEEN', 'GATE', 'LAST BACKUP', 'VERSION', 'DEVICE'], ...rows];
      const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
      for (const r of table) io.stdout(r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd() + '\n');
      return 0;
    },
  }),
  command({
    name: 'console audit verify',
    options: { config: configOption },
    summary: "Check the console's audit trail: an edited, removed, duplicated or reordered line is reported by number.",
    async run({ values }, io) {
      const file = consoleFolder((await consoleConfig(values.config, io)).dataDir).auditLog;
      const result = await verifyAuditLog(file);
      if (!result.ok) throw new CliError(result.line === 0 ? `console audit trail ${file}: ${result.problem}` : `console audit trail damaged at line ${result.line}: ${result.problem}`);
      io.stdout(`console audit trail OK: ${result.lines} lines, head ${result.head.seq}:${result.head.hash.slice(0, 16)}\n`);
      return 0;
    },
  }),
];
