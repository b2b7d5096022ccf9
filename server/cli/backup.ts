/**
 * The backup commands: `mydoc backup [list|verify|prune]`, `mydoc restore`
 * and `mydoc recover`. A backup goes through the running service (admin
 * socket) when there is one, so that open vaults are copied consistently;
 * otherwise this process runs it.
 */
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { loadPrivateKey, loadPublicKey } from '../../crypto/key-files.js';
import { openBackup, readAuditLog, walk, extract } from '../../backup/recover.js';
import { TrustStore, trustDevice, trustOf, type DevicePin } from '../../backup/device-trust.js';
import { listPcs, listSnapshots, readManifest, rollbackNotice, type DeviceTrust } from '../../backup/manifest.js';
import type { BackupTarget } from '../../backup/target.js';
import { openTarget, targetSpecFromArgs } from '../../backup/open-target.js';
import { pruneBackups } from '../../backup/prune.js';
import { restoreSnapshot } from '../../backup/restore.js';
import type { BackupProgress, BackupSummary } from '../../backup/run.js';
import { repairObjects, verifyBackup } from '../../backup/verify.js';
import { adminCall, adminStream } from '../agent/admin-socket.js';
import { backupOnce, backupSource, readBackupState } from '../agent/backup-service.js';
import type { Config } from '../config/config.js';
import { recoveryPublicKeyFile, requireInitialised } from '../config/data-dir.js';
import { dataFolder } from '../../shares/data-folder.js';
import { buildDirectory } from '../config/directory.js';
import { command, type Io, type Out, type Values } from './command.js';
import { CliError } from './errors.js';
import { configFrom, configOption } from './inputs.js';

/** Exit status of `mydoc backup`: 0 complete, 3 partial (deadline), 1 failed. */
const EXIT_PARTIAL = 3;

const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;

function progressBar(p: BackupProgress): string {
  const share = p.bytesToCopy === 0 ? 1 : p.bytesCopied / p.bytesToCopy;
  const width = 30;
  const filled = Math.round(share * width);
  return `\rbackup [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.floor(share * 100)}%  ${p.objectsCopied}/${p.objectsToCopy} objects  ${mb(p.bytesCopied)}/${mb(p.bytesToCopy)} `;
}

async function backupCommand(config: Config, opts: { deadlineSeconds: number | undefined; stdout: Out; stderr: Out; terminal: boolean }): Promise<number> {
  await requireInitialised(config);
  const query = opts.deadlineSeconds === undefined ? '' : `?deadline=${opts.deadlineSeconds}`;
  const fromService = await throughService(config, `/backup${query}`, opts);
  if (fromService.reached) return report(fromService.summary, 'service', opts);
  const summary = await backupOnce(backupSource(config), (timeout) => openTarget(config.backup.target, timeout), {
    ...(opts.deadlineSeconds === undefined ? {} : { deadlineSeconds: opts.deadlineSeconds }),
    ...(opts.terminal ? { onProgress: (p: BackupProgress) => opts.stderr(progressBar(p)) } : {}),
  });
  return report(summary, 'cli', opts);
}

/** `mydoc stop`: the service backs up (shutdown deadline), reports, and exits. */
async function stopCommand(config: Config, opts: { stdout: Out; stderr: Out; terminal: boolean }): Promise<number> {
  const fromService = await throughService(config, '/stop', opts);
  if (!fromService.reached) {
    opts.stdout('the service is not running\n');
    return 0;
  }
  return report(fromService.summary, 'service', opts);
}

/** Runs a backup in the running service; `reached` is false when no service runs. */
async function throughService(config: Config, path: string, opts: { stderr: Out; terminal: boolean }): Promise<{ reached: false } | { reached: true; summary: BackupSummary }> {
  let summary: BackupSummary | undefined;
  let failure: { code: string; message: string } | undefined;
  const reached = await adminStream(config.dataDir, 'POST', path, (line) => {
    const l = line as { progress?: BackupProgress; summary?: BackupSummary; error?: { code: string; message: string } };
    if (l.progress && opts.terminal) opts.stderr(progressBar(l.progress));
    if (l.summary) summary = l.summary;
    if (l.error) failure = l.error;
  });
  if (!reached) return { reached: false };
  if (failure) throw new CliError(`backup failed: ${failure.message}`);
  if (!summary) throw new CliError('backup failed: the service ended the backup without a result (see its log)');
  return { reached: true, summary };
}

function report(summary: BackupSummary, via: 'service' | 'cli', opts: { stdout: Out; stderr: Out; terminal: boolean }): number {
  if (summary.skipped > 0) opts.stderr(`mydoc: warning: ${summary.skipped} file(s) in the vaults' object folders are not regular files (links?) and were not copied\n`);
  for (const w of summary.warnings ?? []) opts.stderr(`mydoc: warning: ${w}\n`);
  if (opts.terminal) {
    opts.stderr('\n');
    opts.stdout(
      summary.status === 'complete'
        ? `backup complete: snapshot ${summary.snapshot}, ${summary.users} user(s), ${summary.objects} objects, ${summary.objectsCopied} copied (${mb(summary.bytesCopied)}), indexes and keyrings ${mb(summary.indexBytes)}, in ${summary.seconds.toFixed(1)} s\n`
        : `backup partial: the deadline came first; ${summary.objectsCopied} objects (${mb(summary.bytesCopied)}) copied, ${mb(summary.bytesLeft)} left for the next run\n`,
    );
  } else {
    opts.stdout(JSON.stringify({ ...summary, via }) + '\n');
  }
  return summary.status === 'complete' ? 0 : EXIT_PARTIAL;
}

/** Which target and PCs a list or verify reads: this PC's configured target, or --from (any machine). */
export type TargetChoice = { config: Config } | { from: string; authFile: string | undefined; pc: string | undefined; deviceKey: string | undefined; trustFile: string | undefined };

/** How a reader decides which device key signed a PC's manifests (see backup/device-trust.ts). */
interface TrustSource {
  /** The key of `pcId`'s manifests, with notices for the user, and the newest snapshot seen of it. */
  of(pcId: string): Promise<{ trust: DeviceTrust; notices: string[]; newestSeen: string | undefined; seen(snapshot: string): Promise<void> }>;
}

/** This PC's own key; the newest snapshot it wrote is in its backup state. */
async function ownTrust(config: Config): Promise<TrustSource> {
  const trust = await trustOf(await loadPublicKey(dataFolder(config.dataDir).devicePublic, 'device public key'));
  const state = await readBackupState(config.dataDir);
  return { of: async () => ({ trust, notices: [], newestSeen: state?.snapshot, seen: async () => undefined }) };
}

/** `--device-key FILE|THUMBPRINT`: a PEM public key file, or a key's RFC 7638 thumbprint (43 characters). */
async function parsePin(arg: string | undefined): Promise<DevicePin | undefined> {
  if (arg === undefined) return undefined;
  if (/^[A-Za-z0-9_-]{43}$/.test(arg) && !existsSync(arg)) return { thumbprint: arg };
  return { key: await loadPublicKey(arg, 'device public key (--device-key)') };
}

/** The trust file of this machine: `--trust-file`, else $XDG_STATE_HOME/mydoc (default ~/.local/state/mydoc). */
function defaultTrustFile(): string {
  return join(process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'mydoc', 'backup-trust.json');
}

/** A pinned key, or the one trusted on first use, recorded in `trustFile` with the newest snapshot seen. */
async function pinnedTrust(target: BackupTarget, deviceKey: string | undefined, trustFile: string): Promise<TrustSource> {
  const pin = await parsePin(deviceKey);
  const store = await TrustStore.load(trustFile);
  return {
    of: async (pcId) => {
      const { trust, notices } = await trustDevice(target, pcId, { pin, store });
      return { trust, notices, newestSeen: store.get(pcId).newestSnapshot, seen: (snapshot) => store.record(pcId, { newestSnapshot: snapshot }) };
    },
  };
}

async function chosenTarget(choice: TargetChoice): Promise<{ target: BackupTarget; pcs: string[]; trust: TrustSource }> {
  if ('config' in choice) return { target: await openTarget(choice.config.backup.target), pcs: [choice.config.pcId], trust: await ownTrust(choice.config) };
  const target = await openTarget(targetSpecFromArgs(choice.from, choice.authFile));
  const pcs = choice.pc !== undefined ? [choice.pc] : await listPcs(target);
  if (pcs.length === 0) throw new CliError(`no PC has a backup on the ${target.description}`);
  return { target, pcs, trust: await pinnedTrust(target, choice.deviceKey, choice.trustFile ?? defaultTrustFile()) };
}

async function backupList(choice: TargetChoice, stdout: Out, stderr: Out): Promise<number> {
  const { target, pcs, trust } = await chosenTarget(choice);
  for (const pc of pcs) {
    const snapshots = await listSnapshots(target, pc);
    if (pcs.length > 1) stdout(`PC ${pc}:\n`);
    if (snapshots.length === 0) {
      stdout(`no complete backup of PC ${pc} on the ${target.description}\n`);
      continue;
    }
    const device = await trust.of(pc);
    for (const n of device.notices) stderr(`mydoc: note: ${n}\n`);
    for (const id of snapshots) {
      const m = await readManifest(target, pc, id, device.trust).catch((err: Error & { code?: string }) => {
        if (!err.code?.startsWith('ERR_BACKUP_')) throw err;
        stdout(`${id}  REFUSED: ${err.message}\n`);
        return undefined;
      });
      if (!m) continue;
      const objects = m.users.reduce((n, u) => n + u.objects.length, 0);
      const bytes = m.users.reduce((n, u) => n + u.objects.reduce((sum, o) => sum + o.size, 0), 0);
      stdout(`${id}  finished ${m.finishedAt}  ${m.users.length} user(s)  ${objects} objects  ${mb(bytes)}  from ${m.host}\n`);
    }
  }
  return 0;
}

async function backupVerify(choice: TargetChoice, readDataPercent: number, repair: boolean, stdout: Out, stderr: Out): Promise<number> {
  const { target, pcs, trust } = await chosenTarget(choice);
  let damaged = 0;
  let rollbacks = 0;
  for (const pc of pcs) {
    const device = await trust.of(pc);
    for (const n of device.notices) stderr(`mydoc: note: ${n}\n`);
    const report = await verifyBackup(target, pc, device.trust, { readDataPercent, newestSeen: device.newestSeen });
    for (const d of report.damaged) stdout(`DAMAGED ${d.path}: ${d.problem}\n`);
    if (report.rollback) {
      stdout(`${report.rollback}\n`);
      rollbacks++;
    }
    if (report.newest) await device.seen(report.newest);
    if (repair) {
      await repairObjects(target, pc, report);
      for (const path of report.repaired) stdout(`removed ${path}: the next backup of PC ${pc} copies it again\n`);
    }
    stdout(`PC ${pc}: verified ${report.snapshots} snapshot(s), ${report.files} files listed, ${report.filesRead} re-hashed (${mb(report.bytesRead)}): ${report.damaged.length === 0 ? 'OK' : `${report.damaged.length} damaged`}\n`);
    damaged += report.damaged.length;
  }
  if (damaged > 0) throw new CliError(`backup verify found ${damaged} damaged file(s) on the ${target.description} (listed above)`);
  if (rollbacks > 0) throw new CliError(`backup verify found a rollback on the ${target.description} (above): the newest snapshot is older than one seen before`);
  return 0;
}

async function backupPrune(config: Config, keep: number, stdout: Out): Promise<number> {
  const { trust } = await (await ownTrust(config)).of(config.pcId);
  const result = await pruneBackups(await openTarget(config.backup.target), config.pcId, keep, trust);
  stdout(
    `kept ${result.kept.length} snapshot(s), removed ${result.removed.length}${result.removed.length ? ` (${result.removed.join(', ')})` : ''} and ${result.objectsRemoved} object(s) only they used` +
      `${result.unfinishedRemoved ? `, and ${result.unfinishedRemoved} unfinished snapshot folder(s)` : ''}` +
      `${result.refused.length ? `; left ${result.refused.length} manifest(s) this PC did not sign (${result.refused.join(', ')})` : ''}\n`,
  );
  return 0;
}

/** Reports a rollback when `latest` was asked for, and records the newest snapshot seen. */
async function checkLatest(device: Awaited<ReturnType<TrustSource['of']>>, pcId: string, which: string, snapshot: string, stderr: Out): Promise<void> {
  if (which === 'latest') {
    const rollback = rollbackNotice(pcId, snapshot, device.newestSeen);
    if (rollback) stderr(`mydoc: warning: ${rollback}\n`);
  }
  await device.seen(snapshot);
}

async function restoreCommand(
  config: Config,
  opts: { from: string; authFile: string | undefined; recoveryKey: string; pc: string | undefined; snapshot: string; deviceKey: string | undefined; stdout: Out; stderr: Out },
): Promise<number> {
  await requireInitialised(config);
  if (await adminCall(config.dataDir, 'GET', '/locks').then(() => true, () => false)) {
    throw new CliError('the service is running on this data folder: stop it first (systemctl stop mydoc), then restore');
  }
  const target = await openTarget(targetSpecFromArgs(opts.from, opts.authFile));
  const fromPcId = opts.pc ?? config.pcId;
  const device = await (await pinnedTrust(target, opts.deviceKey, dataFolder(config.dataDir).backupTrust)).of(fromPcId);
  for (const n of device.notices) opts.stderr(`mydoc: note: ${n}\n`);
  const directory = await buildDirectory(config);
  const local = config.directory.kind === 'local' ? { usersFile: config.directory.local.usersFile, secretFile: config.directory.local.insecureSecretFile } : undefined;
  const summary = await restoreSnapshot({
    target,
    fromPcId,
    snapshot: opts.snapshot,
    recoveryPrivateKey: await loadPrivateKey(opts.recoveryKey, 'recovery private key'),
    dataDir: config.dataDir,
    pcId: config.pcId,
    source: directory.secrets,
    recoveryPublicKey: await loadPublicKey(recoveryPublicKeyFile(config), 'recovery public key'),
    trust: device.trust,
    localDirectory: local,
    onUser: (user, objects) => opts.stdout(`restored user "${user}" (${objects} objects)\n`),
  });
  await checkLatest(device, fromPcId, opts.snapshot, summary.snapshot, opts.stderr);
  if (summary.directoryUsers.length > 0) opts.stdout(`restored ${summary.directoryUsers.length} user(s) of the local directory: ${summary.directoryUsers.join(', ')}\n`);
  opts.stdout(`restored snapshot ${summary.snapshot} of PC ${fromPcId} into ${config.dataDir}: ${summary.users.length} user(s), ${summary.objects} objects, ${mb(summary.bytes)}; users log in as before\n`);
  return 0;
}

async function recoverCommand(opts: {
  from: string;
  authFile: string | undefined;
  recoveryKey: string;
  pc: string;
  snapshot: string;
  list: boolean;
  extract: string | undefined;
  to: string | undefined;
  auditLog: string | undefined;
  deviceKey: string | undefined;
  trustFile: string | undefined;
  stdout: Out;
  stderr: Out;
}): Promise<number> {
  const modes = [opts.list, opts.extract !== undefined, opts.auditLog !== undefined].filter(Boolean).length;
  if (modes !== 1) throw new CliError('mydoc recover needs either --list, --extract PATH --to DIR, or --audit-log FILE', 2);
  if (opts.extract !== undefined && opts.to === undefined) throw new CliError('--extract PATH needs --to DIR', 2);
  const target = await openTarget(targetSpecFromArgs(opts.from, opts.authFile));
  const device = await (await pinnedTrust(target, opts.deviceKey, opts.trustFile ?? defaultTrustFile())).of(opts.pc);
  for (const n of device.notices) opts.stderr(`mydoc: note: ${n}\n`);
  const recoveryPrivateKey = await loadPrivateKey(opts.recoveryKey, 'recovery private key');
  const backup = await openBackup({ target, pcId: opts.pc, snapshot: opts.snapshot, recoveryPrivateKey, trust: device.trust });
  try {
    await checkLatest(device, opts.pc, opts.snapshot, backup.snapshot, opts.stderr);
    if (opts.list) {
      opts.stdout(`snapshot ${backup.snapshot} of PC ${opts.pc}\n`);
      for (const u of backup.users) {
        for (const e of walk(u.vault)) {
          opts.stdout(`${e.isDir ? 'd' : '-'} ${String(e.size).padStart(12)}  ${new Date(e.modified).toISOString()}  /${u.user}${e.path}${e.isDir ? '/' : ''}\n`);
        }
      }
      return 0;
    }
    if (opts.auditLog !== undefined) {
      const log = await readAuditLog(backup, target, opts.pc, recoveryPrivateKey);
      if (!log) throw new CliError(`snapshot ${backup.snapshot} of PC ${opts.pc} holds no audit log`);
      const fh = await open(opts.auditLog, 'wx', 0o600).catch((err: NodeJS.ErrnoException) => {
        throw new CliError(err.code === 'EEXIST' ? `${opts.auditLog} exists already; refusing to overwrite it` : `cannot write ${opts.auditLog}: ${err.message}`);
      });
      try {
        await fh.writeFile(log);
      } finally {
        await fh.close();
      }
      const lines = log.toString('utf8').split('\n').filter(Boolean).length;
      opts.stdout(`wrote the audit log of PC ${opts.pc} as of snapshot ${backup.snapshot} (${lines} lines) to ${opts.auditLog}; check it with: mydoc audit verify --file ${opts.auditLog}\n`);
      return 0;
    }
    const s = await extract(backup, target, opts.pc, opts.extract!, opts.to!);
    opts.stdout(`extracted ${s.files} file(s) and ${s.folders} folder(s), ${mb(s.bytes)}, from snapshot ${backup.snapshot} into ${opts.to}\n`);
    return 0;
  } finally {
    await backup.close();
  }
}

const from = { type: 'string', value: 'TARGET', description: 'a backup target: a folder, or //host[:port]/share[/folder]' } as const;
const authFile = { type: 'path', description: 'the 0600 Samba auth file of an SMB target' } as const;
const deviceKey = {
  type: 'string',
  value: 'FILE|THUMBPRINT',
  description: "the old PC's device key (its device-public.pem, or the thumbprint mydoc init printed); without it, the key on the target is trusted at first use",
} as const;
const trustFile = { type: 'path', description: 'where the device keys trusted and the newest snapshot seen of each PC are recorded (default ~/.local/state/mydoc/backup-trust.json)' } as const;
const snapshot = { type: 'string', value: 'ID|latest', default: 'latest', description: 'the snapshot to read' } as const;
/** The options of list and verify: this PC's target, or any target from any machine (--from, no configuration). */
const targetChoice = {
  config: configOption,
  from: { ...from, description: `${from.description}; without it, backup.target of the configuration` },
  pc: { type: 'string', value: 'PCID', with: 'from', description: 'only this PC (default every PC on TARGET)' },
  'auth-file': { ...authFile, with: 'from' },
  'device-key': { ...deviceKey, with: 'from' },
  'trust-file': { ...trustFile, with: 'from' },
} as const;

async function choiceOf(values: Values<typeof targetChoice>, io: Io): Promise<TargetChoice> {
  if (values.from === undefined) return { config: await configFrom(values.config, io) };
  return { from: values.from, authFile: values['auth-file'], pc: values.pc, deviceKey: values['device-key'], trustFile: values['trust-file'] };
}

export const backupCommands = [
  command({
    name: 'backup',
    options: {
      shutdown: { type: 'boolean', description: 'stop copying after backup.shutdownDeadlineSeconds' },
      deadline: { type: 'number', value: 'SECONDS', min: 0.01, max: 86400, description: 'stop copying after SECONDS (instead of the shutdown deadline)' },
      config: configOption,
    },
    summary:
      "Copy this PC's encrypted data to the backup target (backup.target): only objects the target lacks, then the encrypted indexes, keyrings (slots N and R) and, last, the snapshot's manifest. Runs through the service when it is running. A progress bar on a terminal, a JSON summary otherwise. Exit 0 complete, 3 partial (the deadline came first; the next run resumes), 1 failed.",
    async run({ values }, io) {
      const config = await configFrom(values.config, io);
      const deadlineSeconds = values.deadline ?? (values.shutdown ? config.backup.shutdownDeadlineSeconds : undefined);
      return backupCommand(config, { deadlineSeconds, stdout: io.stdout, stderr: io.stderr, terminal: io.stderrIsTty === true });
    },
  }),
  command({
    name: 'stop',
    options: { config: configOption },
    summary:
      'Stop the running service the way a shutdown should (systemd ExecStop): it backs up with backup.shutdownDeadlineSeconds, reports here, then exits. Exit status as for mydoc backup; 0 when no service runs.',
    async run({ values }, io) {
      return stopCommand(await configFrom(values.config, io), { stdout: io.stdout, stderr: io.stderr, terminal: io.stderrIsTty === true });
    },
  }),
  command({
    name: 'backup list',
    options: targetChoice,
    summary: 'The complete snapshots of this PC on its target; with --from, of any PC (default: every PC) on TARGET, from any machine.',
    async run({ values }, io) {
      return backupList(await choiceOf(values, io), io.stdout, io.stderr);
    },
  }),
  command({
    name: 'backup verify',
    options: {
      'read-data': { type: 'number', value: 'PERCENT', min: 0, max: 100, default: 0, description: 'the share of the files to re-hash, chosen at random' },
      repair: { type: 'boolean', description: 'remove damaged objects, so the next backup copies them again' },
      ...targetChoice,
    },
    summary:
      "Check every snapshot's manifest is signed by the PC's device key and its files exist with their sizes; re-hash PERCENT of them. Each damaged file is reported by path, and a rollback (the newest snapshot older than one seen before); exit 1 then.",
    async run({ values }, io) {
      return backupVerify(await choiceOf(values, io), values['read-data'], values.repair, io.stdout, io.stderr);
    },
  }),
  command({
    name: 'backup prune',
    options: {
      keep: { type: 'number', required: true, min: 1, max: 100000, integer: true, description: 'how many of the newest snapshots to keep' },
      config: configOption,
    },
    summary: 'Remove all but the newest N snapshots and the objects only they used.',
    async run({ values }, io) {
      return backupPrune(await configFrom(values.config, io), values.keep, io.stdout);
    },
  }),
  command({
    name: 'restore',
    options: {
      from: { ...from, required: true },
      'auth-file': authFile,
      'recovery-key': { type: 'path', required: true, description: 'the recovery private key' },
      pc: { type: 'string', value: 'PCID', description: 'the PC whose snapshot to restore (default: this pcId)' },
      snapshot,
      'device-key': deviceKey,
      config: configOption,
    },
    summary:
      "On a new PC (after mydoc init): restore a snapshot of a PC from TARGET. The recovery private key opens the keyrings; the keys are wrapped into this PC's slots, so users log in as before. The local directory's users come back too. Only manifests signed by the old PC's device key are accepted.",
    async run({ values }, io) {
      return restoreCommand(await configFrom(values.config, io), {
        from: values.from,
        authFile: values['auth-file'],
        recoveryKey: values['recovery-key'],
        pc: values.pc,
        snapshot: values.snapshot,
        deviceKey: values['device-key'],
        stdout: io.stdout,
        stderr: io.stderr,
      });
    },
  }),
  command({
    name: 'recover',
    options: {
      'recovery-key': { type: 'path', required: true, description: 'the recovery private key' },
      from: { ...from, required: true },
      'auth-file': authFile,
      pc: { type: 'string', value: 'PCID', required: true, description: 'the PC whose backup to read' },
      snapshot,
      'device-key': deviceKey,
      'trust-file': trustFile,
      list: { type: 'boolean', description: "list the files of the PC's backup" },
      extract: { type: 'string', value: 'PATH', description: 'extract PATH (/USER/Documents/...) as plain files (with --to)' },
      to: { type: 'path', value: 'DIR', description: 'the folder to extract into' },
      'audit-log': { type: 'path', description: "write the PC's audit log to FILE" },
    },
    summary:
      "For administrators, on any machine: list what a PC's backup holds (--list), extract PATH as plain files into DIR (--extract PATH --to DIR), or write the PC's audit log to FILE (--audit-log FILE). Needs no directory and no agent.",
    async run({ values }, io) {
      return recoverCommand({
        from: values.from,
        authFile: values['auth-file'],
        recoveryKey: values['recovery-key'],
        pc: values.pc,
        snapshot: values.snapshot,
        list: values.list,
        extract: values.extract,
        to: values.to,
        auditLog: values['audit-log'],
        deviceKey: values['device-key'],
        trustFile: values['trust-file'],
        stdout: io.stdout,
        stderr: io.stderr,
      });
    },
  }),
];
