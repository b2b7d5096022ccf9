/**
 * When backups run: on demand (`mydoc backup`, through the admin socket when
 * the service runs), on the node-cron schedule (`backup.schedule` in
 * `backup.timezone`, no overlap, a random delay of up to
 * `backup.randomDelaySeconds` so a fleet does not hit the NAS at once, and a
 * catch-up at start when the last complete backup is older than one period),
 * and at service stop with `backup.shutdownDeadlineSeconds`.
 *
 * One backup at a time per process. A stop during a running backup joins it
 * and brings its deadline forward instead of starting a second one. The time
 * and id of the last complete backup are kept in `<dataDir>/backup-state.json`:
 * the id is the newest snapshot this PC wrote, so a target whose newest
 * snapshot is older is reported as a rollback.
 */
import { open, readFile } from 'node:fs/promises';
import { loadPrivateKey, loadPublicKey } from '../../crypto/key-files.js';
import cron, { type ScheduledTask } from 'node-cron';
import type { FastifyBaseLogger } from 'fastify';
import { writeFileAtomic } from '../../crypto/atomic-file.js';
import { BackupError } from '../../backup/errors.js';
import { runBackup, type BackupProgress, type BackupSummary } from '../../backup/run.js';
import type { BackupTarget } from '../../backup/target.js';
import type { Config } from '../config/config.js';
import { systemClock, type Clock } from '../../shares/clock.js';
import { recoveryPublicKeyFile } from '../config/data-dir.js';
import { dataFolder } from '../../shares/data-folder.js';

interface BackupState {
  lastComplete: number;
  snapshot: string;
}

const statePath = (dataDir: string): string => dataFolder(dataDir).backupState;

export async function readBackupState(dataDir: string): Promise<BackupState | undefined> {
  try {
    const data = JSON.parse(await readFile(statePath(dataDir), 'utf8')) as BackupState;
    return Number.isFinite(data.lastComplete) ? data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * How long to wait for an SMB server per step: with a deadline, a quarter of
 * it (5 to 60 s), so a server that does not answer cannot hold a shutdown.
 */
function targetTimeout(deadlineSeconds: number | undefined): number | undefined {
  return deadlineSeconds === undefined ? undefined : Math.max(5, Math.min(60, Math.round(deadlineSeconds / 4)));
}

/** Opens a backup target; `timeoutSeconds` bounds each wait for an SMB server. */
export type TargetOpener = (timeoutSeconds?: number) => Promise<BackupTarget>;

export interface BackupRequest {
  /** Seconds from now after which no new copy starts; undefined: none. */
  deadlineSeconds?: number;
  onProgress?: (p: BackupProgress) => void;
  /** The service's last backup, at stop (allowed while stopping). */
  atShutdown?: boolean;
}

/** What a backup reads: the data folder of this PC, the recovery key, and the local directory's files when it is the local one. */
export interface BackupSource {
  dataDir: string;
  pcId: string;
  recoveryPublicKeyFile: string;
  localDirectory?: { usersFile: string; secretFile: string };
}

/** The part of the configuration a backup reads. */
export function backupSource(config: Config): BackupSource {
  return {
    dataDir: config.dataDir,
    pcId: config.pcId,
    recoveryPublicKeyFile: recoveryPublicKeyFile(config),
    ...(config.directory.kind === 'local' ? { localDirectory: { usersFile: config.directory.local.usersFile, secretFile: config.directory.local.insecureSecretFile } } : {}),
  };
}

/** When the service backs up: `backup.schedule`, `timezone`, `randomDelaySeconds` and `shutdownDeadlineSeconds` of the configuration. */
export type BackupSchedule = Pick<Config['backup'], 'schedule' | 'timezone' | 'randomDelaySeconds' | 'shutdownDeadlineSeconds'>;

/**
 * Runs one backup of the data folder and records a complete one.
 * `deadline` defaults to `req.deadlineSeconds` from now; a caller that passes
 * its own may bring it forward while the run goes on.
 */
export async function backupOnce(
  source: BackupSource,
  openTarget: TargetOpener,
  req: BackupRequest,
  now: Clock = systemClock,
  deadline = deadlineIn(req.deadlineSeconds, now),
): Promise<BackupSummary> {
  const paths = dataFolder(source.dataDir);
  const deviceKey = { privateKey: await loadPrivateKey(paths.deviceKey, 'device private key'), publicKey: await loadPublicKey(paths.devicePublic, 'device public key') };
  const recoveryPublicKey = await loadPublicKey(source.recoveryPublicKeyFile, 'recovery public key');
  const previous = await readBackupState(source.dataDir);
  const target = await openTarget(targetTimeout(req.deadlineSeconds));
  const summary = await runBackup({
    dataDir: source.dataDir,
    pcId: source.pcId,
    target,
    deadline,
    deviceKey,
    recoveryPublicKey,
    auditLog: paths.auditLog,
    ...(source.localDirectory ? { localDirectory: source.localDirectory } : {}),
    newestWritten: previous?.snapshot,
    now,
    ...(req.onProgress ? { onProgress: req.onProgress } : {}),
  });
  if (summary.status === 'complete') await writeState(source.dataDir, { lastComplete: now(), snapshot: summary.snapshot! });
  return summary;
}

/**
 * Records the last complete backup. On a full data disk the atomic write
 * (a new file) cannot be made: the record is then overwritten in place,
 * which needs no new room (it is one small block, padded to its old length).
 */
async function writeState(dataDir: string, state: BackupState): Promise<void> {
  const text = JSON.stringify(state) + '\n';
  try {
    await writeFileAtomic(statePath(dataDir), text, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOSPC' && code !== 'EDQUOT') throw err;
    const fh = await open(statePath(dataDir), 'r+').catch(() => undefined);
    if (!fh) throw err;
    try {
      const old = (await fh.stat()).size;
      if (old < text.length) throw err;
      await fh.write(text.slice(0, -1).padEnd(old - 1, ' ') + '\n', 0);
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
}

function deadlineIn(seconds: number | undefined, now: Clock): { at: number | undefined } {
  return { at: seconds === undefined ? undefined : now() + seconds * 1000 };
}

export class BackupService {
  private running: { promise: Promise<BackupSummary>; deadline: { at: number | undefined }; startedAt: number } | undefined;
  private task: ScheduledTask | undefined;
  private catchUp: NodeJS.Timeout | undefined;
  private stopping = false;

  constructor(
    private readonly source: BackupSource,
    private readonly schedule: BackupSchedule,
    private readonly log: FastifyBaseLogger,
    private readonly openTarget: TargetOpener,
    private readonly now: Clock = systemClock,
  ) {}

  /** Starts a backup now; ERR_BACKUP_RUNNING when one runs already or the service is stopping. */
  run(req: BackupRequest = {}): Promise<BackupSummary> {
    if (this.stopping && !req.atShutdown) {
      return Promise.reject(new BackupError('ERR_BACKUP_RUNNING', 'the service is stopping; its shutdown backup is the last one'));
    }
    if (this.running) {
      return Promise.reject(new BackupError('ERR_BACKUP_RUNNING', `a backup is running already (since ${new Date(this.running.startedAt).toISOString()}); try again when it has finished`));
    }
    const deadline = deadlineIn(req.deadlineSeconds, this.now);
    const promise = backupOnce(this.source, this.openTarget, req, this.now, deadline);
    const running = { promise, deadline, startedAt: this.now() };
    this.running = running;
    promise.then(
      (s) => {
        this.log.info({ backup: s }, `backup ${s.status}: ${s.objectsCopied} objects (${s.bytesCopied} bytes) copied, indexes and keyrings ${s.indexBytes} bytes, in ${s.seconds.toFixed(1)} s`);
        if (s.skipped > 0) this.log.warn(`backup: ${s.skipped} file(s) in the vaults' object folders are not regular files (links?) and were not copied`);
        for (const w of s.warnings) this.log.warn(`backup: ${w}`);
      },
      (err: Error) => this.log.error({ code: (err as { code?: string }).code }, `backup failed: ${err.message}`),
    ).finally(() => {
      if (this.running === running) this.running = undefined;
    });
    return promise;
  }

  /** The backup at service stop: joins a running one (deadline brought forward) or starts one. */
  async runAtShutdown(onProgress?: (p: BackupProgress) => void): Promise<BackupSummary> {
    // No scheduled, catch-up or on-demand run may start after this one.
    this.stopping = true;
    await this.stopSchedule();
    const at = this.now() + this.schedule.shutdownDeadlineSeconds * 1000;
    if (this.running) {
      this.running.deadline.at = Math.min(this.running.deadline.at ?? at, at);
      return this.running.promise;
    }
    return this.run({ deadlineSeconds: this.schedule.shutdownDeadlineSeconds, atShutdown: true, ...(onProgress ? { onProgress } : {}) });
  }

  /** Starts the schedule (if configured) and a catch-up run when the last complete backup is older than one period. */
  async startSchedule(): Promise<void> {
    const { schedule, timezone, randomDelaySeconds } = this.schedule;
    if (!schedule) return;
    const scheduled = (): void => {
      this.run().catch(() => undefined); // outcome logged by run()
    };
    // node-cron's own messages (e.g. a missed run) go to the service log, not to the console.
    const log = this.log;
    const logger = {
      info: (m: string) => log.info(`schedule: ${m}`),
      warn: (m: string) => log.warn(`schedule: ${m}`),
      error: (m: string | Error) => log.error(`schedule: ${String(m)}`),
      debug: (m: string | Error) => log.debug(`schedule: ${String(m)}`),
    };
    this.task = cron.schedule(schedule, scheduled, { timezone, noOverlap: true, maxRandomDelay: randomDelaySeconds * 1000, name: 'mydoc-backup', logger });
    const [next, after] = this.task.getNextRuns(2);
    if (!next || !after) return;
    const period = after.getTime() - next.getTime();
    const last = await readBackupState(this.source.dataDir);
    if (!last || this.now() - last.lastComplete > period) {
      const delay = Math.floor(Math.random() * randomDelaySeconds * 1000);
      this.log.info(`the last complete backup is older than one period of "${schedule}"; catching up in ${Math.round(delay / 1000)} s`);
      this.catchUp = setTimeout(scheduled, delay);
      this.catchUp.unref();
    }
  }

  /** Stops the schedule (a running backup is left to finish or to runAtShutdown). */
  async stopSchedule(): Promise<void> {
    clearTimeout(this.catchUp);
    await this.task?.destroy();
    this.task = undefined;
  }
}
