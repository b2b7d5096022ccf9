/**
 * Backup to a folder target against `cp -r` of the same data folder to the
 * same file system (and against `cp -r` followed by `sync -f`, which is as
 * durable as the backup), the same to a real smbd against smbclient's own
 * recursive mput, and an incremental backup after 1% of the files changed
 * against the full backup's time.
 *
 * Data: one user, 2,000 files of 4 KiB to 512 KiB and 4 files of 32 MiB
 * (about 640 MiB at scale 1), written through the vault. Both sides run
 * cache-warm; the backup fsyncs every file it writes, `cp -r` does not.
 */
import { spawnSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PathTarget } from '../../backup/path-target.js';
import { runBackup } from '../../backup/run.js';
import { SmbTarget } from '../../backup/smb-target.js';
import { makeDataDir } from '../helpers/backup-data.js';
import { runCommand } from '../helpers/server.js';
import { startSmbd } from '../helpers/smbd.js';
import { patternBytes, tempDir } from '../helpers/keys.js';
import { alternating, benchScale, emit, median, progress, throughputFigure, timed } from './measure.js';

const RUNS = 3;
const SMB_RUNS = 2;
const SMALL_FILES = Math.max(20, Math.round(2000 * benchScale()));
const LARGE_FILES = 4;
const LARGE = Math.max(1, Math.round(32 * benchScale())) * 1024 * 1024;

const { dir, cleanup } = await tempDir('mydoc-bench-backup-');
try {
  const fx = await makeDataDir(join(dir, 'data'), { users: ['alice'] });
  let bytes = 0;
  const smallSize = (i: number) => 4096 + ((i * 7919) % (512 * 1024 - 4096));
  await fx.withVault('alice', async (vault) => {
    for (let i = 0; i < SMALL_FILES; i++) {
      await vault.write(`/Documents/f${i}.bin`, [patternBytes(smallSize(i), i)]);
      bytes += smallSize(i);
    }
    for (let i = 0; i < LARGE_FILES; i++) {
      await vault.write(`/Documents/large${i}.bin`, [patternBytes(LARGE, 1000 + i)]);
      bytes += LARGE;
    }
  });
  const dataBytes = Number(spawnSync('du', ['-sb', fx.dataDir], { encoding: 'utf8' }).stdout.split('\t')[0]);
  progress(`backup: ${SMALL_FILES + LARGE_FILES} files, ${bytes} bytes of content, ${dataBytes} bytes in the data folder`);

  const full = { candidate: [] as number[], baseline: [] as number[] };
  const durable = { candidate: full.candidate, baseline: [] as number[] };
  const incremental: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const nas = join(dir, `nas-${run}`);
    const copy = join(dir, `cp-${run}`);
    await alternating(
      run,
      async () => {
        full.baseline.push(
          await timed(() => {
            const r = spawnSync('cp', ['-r', fx.dataDir, copy]);
            if (r.status !== 0) throw new Error(`cp -r failed: ${r.stderr}`);
          }),
        );
        durable.baseline.push(
          await timed(() => {
            const r = spawnSync('sh', ['-c', 'cp -r "$1" "$2" && sync -f "$2"', 'sh', fx.dataDir, `${copy}-synced`]);
            if (r.status !== 0) throw new Error(`cp -r && sync -f failed: ${r.stderr}`);
          }),
        );
      },
      async () => {
        full.candidate.push(await timed(() => runBackup({ ...fx.backupOptions, target: new PathTarget(nas) })));
      },
    );
    // 1% of the files change, then an incremental backup to the same target.
    await fx.withVault('alice', async (vault) => {
      for (let i = run; i < SMALL_FILES; i += 100) await vault.write(`/Documents/f${i}.bin`, [patternBytes(smallSize(i), 7 + run + i)]);
    });
    const summary = { copied: 0 };
    incremental.push(
      await timed(async () => {
        summary.copied = (await runBackup({ ...fx.backupOptions, target: new PathTarget(nas) })).objectsCopied;
      }),
    );
    progress(`backup: run ${run + 1}/${RUNS}: full ${full.candidate[run]!.toFixed(2)} s, cp -r ${full.baseline[run]!.toFixed(2)} s, incremental ${incremental[run]!.toFixed(2)} s (${summary.copied} objects)`);
    await rm(nas, { recursive: true, force: true });
    await rm(copy, { recursive: true, force: true });
    await rm(`${copy}-synced`, { recursive: true, force: true });
  }
  // The same full backup to a real smbd on loopback, against smbclient's own
  // recursive mput of the data folder to the same share.
  const smbd = await startSmbd();
  try {
    const smb = { candidate: [] as number[], baseline: [] as number[] };
    for (let run = 0; run < SMB_RUNS; run++) {
      await alternating(
        run,
        async () => {
          smb.baseline.push(
            await timed(async () => {
              const r = await runCommand('smbclient', ['//127.0.0.1/nas', '-p', String(smbd.port), '-A', smbd.authFile, '-m', 'SMB3', '-c', `prompt OFF; recurse ON; mkdir mput-${run}; cd mput-${run}; lcd ${fx.dataDir}; mput *`], { timeoutMs: 600_000 });
              if (r.status !== 0) throw new Error(`smbclient mput failed: ${r.stderr}`);
            }),
          );
        },
        async () => {
          const target = await SmbTarget.open({ url: `//127.0.0.1/nas/backup-${run}`, authFile: smbd.authFile, port: smbd.port });
          smb.candidate.push(await timed(() => runBackup({ ...fx.backupOptions, target })));
        },
      );
      progress(`backup: SMB run ${run + 1}/${SMB_RUNS}: backup ${smb.candidate[run]!.toFixed(2)} s, smbclient mput ${smb.baseline[run]!.toFixed(2)} s`);
    }
    emit(throughputFigure('backup.full-smb', dataBytes, smb, { baselineOp: 'smbclient recursive mput of the data folder to the same share', candidateOp: 'mydoc backup to the SMB target', files: SMALL_FILES + LARGE_FILES }));
  } finally {
    await smbd.stop();
  }
  emit(throughputFigure('backup.full', dataBytes, full, { baselineOp: 'cp -r of the data folder (no fsync)', candidateOp: 'mydoc backup to a folder target (fsync per file, hashes, manifest)', files: SMALL_FILES + LARGE_FILES }));
  emit(throughputFigure('backup.full-vs-durable-copy', dataBytes, durable, { baselineOp: 'cp -r of the data folder, then sync -f (durable like the backup)', files: SMALL_FILES + LARGE_FILES }));
  const fullSeconds = median(full.candidate);
  const incSeconds = median(incremental);
  emit({
    bench: 'backup.incremental-1pct',
    unit: 's',
    candidate: Math.round(incSeconds * 1000) / 1000,
    baseline: Math.round(fullSeconds * 1000) / 1000,
    ratio: Math.round((incSeconds / fullSeconds) * 1000) / 1000,
    bytes: dataBytes,
    runs: RUNS,
    candidateOp: 'backup after 1% of the files changed',
    baselineOp: 'full backup of the same data',
  });
} finally {
  await cleanup();
}
