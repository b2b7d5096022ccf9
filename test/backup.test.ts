/**
 * Backups to a folder target, in process: round trip through restore,
 * incremental copies, deadline and resume, the target lock, tampering,
 * prune, a full target and the no-plaintext property.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PathTarget } from '../backup/path-target.js';
import { openTarget } from '../backup/open-target.js';
import { runBackup } from '../backup/run.js';
import { restoreSnapshot } from '../backup/restore.js';
import { openBackup, extract, walk } from '../backup/recover.js';
import { verifyBackup } from '../backup/verify.js';
import { pruneBackups } from '../backup/prune.js';
import { listSnapshots, readManifest } from '../backup/manifest.js';
import { TargetLock } from '../backup/target-lock.js';
import { InsecureLocalFileSecretSource } from '../crypto/network-secret.js';
import { openUserVault, userDir } from '../shares/vault/user-vaults.js';
import { Vault } from '../shares/vault/vault.js';
import { makeDataDir, populate, dumpTree, type BackupFixture } from './helpers/backup-data.js';
import { listFiles, scanForMarker } from './helpers/data-dir.js';
import { tempDir, patternBytes } from './helpers/keys.js';
import type { BackupTarget, Transfer } from '../backup/target.js';
import { BackupService, backupSource } from '../server/agent/backup-service.js';
import type { Config } from '../server/config/config.js';
import type { FastifyBaseLogger } from 'fastify';

async function fixture(count = 12, opts: { marker?: string } = {}): Promise<{ fx: BackupFixture; nas: string; target: PathTarget; cleanup: () => Promise<void> }> {
  const { dir, cleanup } = await tempDir('mydoc-backup-');
  const fx = await makeDataDir(join(dir, 'data'));
  for (const [i, user] of fx.users.entries()) await fx.withVault(user, (v) => populate(v, count, { ...opts, seed: i * 100 }));
  const nas = join(dir, 'nas');
  return { fx, nas, target: new PathTarget(nas), cleanup };
}

const backup = (fx: BackupFixture, target: BackupTarget, extra: Partial<Parameters<typeof runBackup>[0]> = {}) => runBackup({ ...fx.backupOptions, target, ...extra });

async function dumps(fx: BackupFixture): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const user of fx.users) out.set(user, await fx.withVault(user, dumpTree));
  return out;
}

test('round trip: backup, restore into a fresh data folder of a new PC, the trees are equal', async () => {
  const { fx, target, cleanup } = await fixture(15);
  const { dir: newDir, cleanup: cleanup2 } = await tempDir('mydoc-restore-');
  try {
    const summary = await backup(fx, target);
    assert.equal(summary.status, 'complete');
    assert.equal(summary.users, 2);
    assert.ok(summary.objects >= 30 && summary.objectsCopied === summary.objects, JSON.stringify(summary));
    const before = await dumps(fx);

    const source = new InsecureLocalFileSecretSource(join(newDir, 'secrets.json'));
    const restored = await restoreSnapshot({ target, fromPcId: fx.pcId, snapshot: 'latest', recoveryPrivateKey: fx.recoveryPrivateKey, dataDir: newDir, pcId: 'pc-new', source, recoveryPublicKey: fx.recoveryPublicKey, trust: fx.trust });
    assert.deepEqual(restored.users.sort(), ['alice', 'bob']);
    for (const user of fx.users) {
      // The user logs in as before: slot N of the new PC opens the same DEK.
      const { keyring, vault } = await openUserVault(newDir, 'pc-new', user, source);
      try {
        assert.deepEqual(await dumpTree(vault), before.get(user));
        assert.deepEqual(keyring.slots, ['N', 'R']);
      } finally {
        vault.close();
        keyring.lock();
      }
    }
    // A second restore refuses to overwrite, and leaves the data untouched.
    await assert.rejects(
      restoreSnapshot({ target, fromPcId: fx.pcId, snapshot: 'latest', recoveryPrivateKey: fx.recoveryPrivateKey, dataDir: newDir, pcId: 'pc-new', source, recoveryPublicKey: fx.recoveryPublicKey, trust: fx.trust }),
      (err: Error & { code?: string }) => err.code === 'ERR_BACKUP_RESTORE' && /already has a vault/.test(err.message),
    );
    // A wrong recovery key opens nothing.
    const other = await makeDataDir(join(newDir, 'other'), { users: ['carol'] });
    await assert.rejects(
      restoreSnapshot({ target, fromPcId: fx.pcId, snapshot: 'latest', recoveryPrivateKey: other.recoveryPrivateKey, dataDir: join(newDir, 'third'), pcId: 'pc-3', source, recoveryPublicKey: fx.recoveryPublicKey, trust: fx.trust }),
      /not the recovery key/,
    );
  } finally {
    await cleanup();
    await cleanup2();
  }
});

test('incremental: after one file of many changes, only its new object is copied', async () => {
  const { fx, target, cleanup } = await fixture(40);
  try {
    const first = await backup(fx, target);
    assert.equal(first.objectsCopied, first.objects);
    const again = await backup(fx, target);
    assert.equal(again.status, 'complete');
    assert.equal(again.objectsCopied, 0, 'an unchanged vault copies no object');
    await fx.withVault('alice', (v) => v.write('/Desktop/file-1.txt', [Buffer.from('changed')]));
    const third = await backup(fx, target);
    assert.equal(third.objectsCopied, 1);
    assert.equal(third.bytesCopied > 0 && third.bytesCopied < 200, true, `only the small new object: ${third.bytesCopied} bytes`);
    const snapshots = await listSnapshots(target, fx.pcId);
    assert.equal(snapshots.length, 3);
    assert.deepEqual(snapshots, [first.snapshot, again.snapshot, third.snapshot], 'ids sort in the order the runs were made');
    // An older snapshot restores the older content; an unknown id is a clear error.
    const { dir, cleanup: c2 } = await tempDir();
    try {
      const source = new InsecureLocalFileSecretSource(join(dir, 's.json'));
      const restore = (snapshot: string) => restoreSnapshot({ target, fromPcId: fx.pcId, snapshot, recoveryPrivateKey: fx.recoveryPrivateKey, dataDir: dir, pcId: 'pc-old', source, recoveryPublicKey: fx.recoveryPublicKey, trust: fx.trust });
      await assert.rejects(restore('20200101T000000000Z-0000'), (err: Error & { code?: string }) => err.code === 'ERR_BACKUP_NO_SNAPSHOT' && err.message.includes(first.snapshot!));
      await restore(first.snapshot!);
      const { keyring, vault } = await openUserVault(dir, 'pc-old', 'alice', source);
      try {
        assert.equal(vault.stat('/Desktop/file-1.txt')!.size, 7919, 'the version before the change');
      } finally {
        vault.close();
        keyring.lock();
      }
    } finally {
      await c2();
    }
  } finally {
    await cleanup();
  }
});

/** A folder target that takes `delayMs` per uploaded file (a slow NAS). */
class SlowTarget extends PathTarget {
  uploads = 0;
  constructor(root: string, private readonly delayMs: number) {
    super(root);
  }
  override async upload(files: readonly Transfer[]): Promise<void> {
    for (const f of files) {
      await new Promise((r) => setTimeout(r, this.delayMs));
      await super.upload([f]);
      this.uploads++;
    }
  }
}

test('deadline: a partial run keeps what it copied, the next run resumes without copying anything twice', async () => {
  const { fx, nas, cleanup } = await fixture(30);
  try {
    const slow = new SlowTarget(nas, 15);
    const partial = await backup(fx, slow, { deadline: { at: Date.now() + 700 } }); // the lock takes 0.3 s
    assert.equal(partial.status, 'partial');
    assert.equal(partial.snapshot, undefined);
    assert.ok(partial.objectsCopied > 0 && partial.objectsCopied < partial.objects, JSON.stringify(partial));
    assert.deepEqual(await listSnapshots(slow, fx.pcId), [], 'a partial run claims no snapshot');
    assert.equal(await slow.stat(`${fx.pcId}/lock`), undefined, 'the lock is released');

    const done = await backup(fx, slow);
    assert.equal(done.status, 'complete');
    assert.equal(partial.objectsCopied + done.objectsCopied, done.objects, 'every object copied exactly once');
    const report = await verifyBackup(slow, fx.pcId, fx.trust, { readDataPercent: 100 });
    assert.deepEqual(report.damaged, []);
  } finally {
    await cleanup();
  }
});

/** Runs a backup in a child that copies slowly, and SIGKILLs it after `killAfter(toCopy)` objects copied; resolves with what it reported. */
function runAndKill(fx: BackupFixture, nas: string, killAfter: (toCopy: number) => number): Promise<{ toCopy: number; copied: number; killAt: number; manifestWritten: boolean }> {
  // Each object is copied alone, 8 ms apart; the child reports each one on stdout.
  const script = `
    import { createPrivateKey, createPublicKey } from 'node:crypto';
    import { readFileSync } from 'node:fs';
    import { join } from 'node:path';
    import { runBackup } from ${JSON.stringify(new URL('../backup/run.js', import.meta.url).href)};
    import { PathTarget } from ${JSON.stringify(new URL('../backup/path-target.js', import.meta.url).href)};
    class Slow extends PathTarget {
      async upload(files) { for (const f of files) { await new Promise((r) => setTimeout(r, 8)); await super.upload([f]); if (f.remote.includes('/objects/')) process.stdout.write('COPIED\\n'); } }
      async writeFile(path, data) { if (path.includes('/manifests/')) process.stdout.write('MANIFEST\\n'); return super.writeFile(path, data); }
    }
    const [dataDir, pcId, nas] = process.argv.slice(1);
    const key = (name) => readFileSync(join(dataDir, 'keys', name));
    await runBackup({
      dataDir, pcId, target: new Slow(nas),
      deviceKey: { privateKey: createPrivateKey(key('device-key.pem')), publicKey: createPublicKey(key('device-public.pem')) },
      recoveryPublicKey: createPublicKey(key('recovery-public.pem')),
      onProgress: (p) => { if (p.objectsCopied === 0) process.stdout.write('TOCOPY ' + p.objectsToCopy + '\\n'); },
    });
  `;
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--input-type=module', '-e', script, fx.dataDir, fx.pcId, nas], { stdio: ['ignore', 'pipe', 'inherit'] });
    const seen = { toCopy: -1, copied: 0, killAt: -1, manifestWritten: false };
    let buffered = '';
    proc.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith('TOCOPY ')) {
          seen.toCopy = Number(line.slice(7));
          seen.killAt = killAfter(seen.toCopy);
        }
        if (line === 'MANIFEST') seen.manifestWritten = true;
        if (line === 'COPIED' && ++seen.copied === seen.killAt) setTimeout(() => proc.kill('SIGKILL'), Math.floor(Math.random() * 3)); // inside the next copy or between two
      }
    });
    const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
    proc.on('error', reject);
    proc.on('exit', (_code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') reject(new Error(`the backup child ended without being killed (${JSON.stringify(seen)})`));
      else resolve(seen);
    });
  });
}

test('killed mid-copy (SIGKILL), four times, the next run completes; nothing lost or duplicated', { timeout: 120_000 }, async () => {
  const { fx, nas, cleanup } = await fixture(120);
  try {
    const kills = [];
    for (let i = 0; i < 4; i++) {
      // Killed after 1 to a third of the objects this run has to copy: always mid-copy, with
      // room left for the copies in flight (8 at a time) that finish before the signal lands.
      const run = await runAndKill(fx, nas, (toCopy) => 1 + Math.floor(Math.random() * Math.max(1, Math.floor(toCopy / 3))));
      kills.push(run);
      assert.ok(run.toCopy >= 2, `run ${i} had objects left to copy: ${JSON.stringify(run)}`);
      assert.ok(run.copied >= 1 && run.copied < run.toCopy, `run ${i} was killed after some objects and before the last: ${JSON.stringify(run)}`);
      assert.equal(run.manifestWritten, false, `run ${i} was killed before its manifest`);
      assert.deepEqual(await listSnapshots(new PathTarget(nas), fx.pcId), [], 'a killed run claims no snapshot');
    }
    // Whatever a killed run left (a lock of a dead process on this host, temporary files), the next run goes on.
    const done = await backup(fx, new PathTarget(nas));
    const copiedByKilled = kills.reduce((n, k) => n + k.copied, 0);
    assert.equal(done.status, 'complete', JSON.stringify(kills));
    assert.ok(done.objectsCopied <= done.objects - copiedByKilled, `what the killed runs copied is not copied again: ${done.objectsCopied} of ${done.objects}, ${copiedByKilled} before`);
    const files = await listFiles(nas);
    assert.equal(files.filter((f) => /\/objects\//.test(f)).length, done.objects, `each object once on the target, no leftovers (${JSON.stringify(kills)})`);
    assert.deepEqual((await verifyBackup(new PathTarget(nas), fx.pcId, fx.trust, { readDataPercent: 100 })).damaged, []);
    for (const user of fx.users) assert.deepEqual((await readdir(userDir(fx.dataDir, fx.pcId, user))).filter((n) => n.startsWith('backup.hold')), [], 'no hold left');
    assert.equal(await readFile(join(nas, fx.pcId, 'lock')).catch(() => 'gone'), 'gone', 'the lock is released');
    assert.deepEqual(await readdir(join(fx.dataDir, 'run')).catch(() => []), [], 'a backup leaves nothing in the data folder');
  } finally {
    await cleanup();
  }
});

test('a stop during a running backup joins it and brings its deadline forward; no second run starts', async () => {
  const { fx, nas, cleanup } = await fixture(40);
  try {
    const slow = new SlowTarget(nas, 40);
    const config = { dataDir: fx.dataDir, pcId: fx.pcId, backup: { shutdownDeadlineSeconds: 1, schedule: null }, recovery: { publicKey: undefined }, directory: { kind: 'ldap' } } as unknown as Config;
    const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined } as unknown as FastifyBaseLogger;
    const service = new BackupService(backupSource(config), config.backup, quiet, async () => slow);
    const started = Date.now();
    const running = service.run();
    await assert.rejects(service.run(), (err: Error & { code?: string }) => err.code === 'ERR_BACKUP_RUNNING');
    const atStop = await service.runAtShutdown();
    assert.equal(atStop, await running, 'the stop joined the running backup');
    assert.equal(atStop.status, 'partial');
    assert.ok(Date.now() - started < 2500, `stopped near the 1 s deadline, not after all 80 objects (${Date.now() - started} ms)`);
    await assert.rejects(service.run(), /the service is stopping/, 'no run starts after the shutdown backup');
  } finally {
    await cleanup();
  }
});

test('target lock: a live lock is respected, a stale one (30 min by the target clock) is taken over', async () => {
  const { fx, nas, target, cleanup } = await fixture(3);
  try {
    const lockFile = join(nas, fx.pcId, 'lock');
    await mkdir(join(nas, fx.pcId), { recursive: true });
    await writeFile(lockFile, JSON.stringify({ host: 'other-host', pid: 4242, startedAt: '2026-11-26T08:00:00Z', token: 'x' }));
    await assert.rejects(backup(fx, target), (err: Error & { code?: string }) => err.code === 'ERR_BACKUP_LOCKED' && /other-host \(pid 4242\)/.test(err.message));
    assert.equal(JSON.parse(await readFile(lockFile, 'utf8')).host, 'other-host', 'a refused run leaves the lock alone');
    const old = (Date.now() - 31 * 60 * 1000) / 1000;
    await utimes(lockFile, old, old);
    assert.equal((await backup(fx, target)).status, 'complete');
    // This host, a dead pid: stale at once.
    await writeFile(lockFile, JSON.stringify({ host: (await import('node:os')).hostname(), pid: 2 ** 22 + 17, startedAt: 'x', token: 'y' }));
    assert.equal((await backup(fx, target)).status, 'complete');
  } finally {
    await cleanup();
  }
});

test('target lock: two runs taking it at the same moment, exactly one wins; a lost lock stops the manifest', async () => {
  const { fx, target, cleanup } = await fixture(2);
  try {
    const results = await Promise.allSettled([TargetLock.acquire(target, fx.pcId, { host: 'host-a' }), TargetLock.acquire(target, fx.pcId, { host: 'host-b' })]);
    const won = results.filter((r) => r.status === 'fulfilled');
    assert.equal(won.length, 1, JSON.stringify(results.map((r) => r.status)));
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.equal((lost.reason as { code?: string }).code, 'ERR_BACKUP_LOCKED');
    const lock = (won[0] as PromiseFulfilledResult<TargetLock>).value;
    await target.writeFile(`${fx.pcId}/lock`, JSON.stringify({ host: 'thief', pid: 1, startedAt: 'x', token: 'stolen' }));
    await assert.rejects(lock.assertHeld(), /now held by host thief/);
    await lock.release();
    assert.equal(JSON.parse((await target.readFile(`${fx.pcId}/lock`)).toString()).host, 'thief', 'release leaves a lock that is not ours');
  } finally {
    await cleanup();
  }
});

test('tampering on the target: verify names each damaged file; restore refuses it', async () => {
  const { fx, nas, target, cleanup } = await fixture(10);
  try {
    await backup(fx, target);
    const manifest = await readManifest(target, fx.pcId, (await listSnapshots(target, fx.pcId))[0]!, fx.trust);
    const objects = manifest.users.flatMap((u) => u.objects).filter((o) => o.size > 200);
    const flipped = objects[0]!.path;
    const removed = objects[1]!.path;
    const bytes = await readFile(join(nas, fx.pcId, flipped));
    bytes[150] ^= 0x01;
    await writeFile(join(nas, fx.pcId, flipped), bytes);
    await rm(join(nas, fx.pcId, removed));
    assert.deepEqual((await verifyBackup(target, fx.pcId, fx.trust, { readDataPercent: 0 })).damaged, [{ path: `${fx.pcId}/${removed}`, problem: 'missing', object: true }], 'without reading data, the missing file is found');
    const full = await verifyBackup(target, fx.pcId, fx.trust, { readDataPercent: 100 });
    assert.deepEqual(full.damaged.map((d) => d.path).sort(), [`${fx.pcId}/${flipped}`, `${fx.pcId}/${removed}`].sort());
    assert.match(full.damaged.find((d) => d.path.endsWith(flipped))!.problem, /SHA-256/);
    const { dir, cleanup: c2 } = await tempDir();
    try {
      await assert.rejects(
        restoreSnapshot({ target, fromPcId: fx.pcId, snapshot: 'latest', recoveryPrivateKey: fx.recoveryPrivateKey, dataDir: dir, pcId: 'pc-x', source: new InsecureLocalFileSecretSource(join(dir, 's.json')), recoveryPublicKey: fx.recoveryPublicKey, trust: fx.trust }),
        (err: Error & { code?: string }) => err.code === 'ERR_BACKUP_DAMAGED',
      );
      assert.deepEqual(await readdir(join(dir, 'users')).catch(() => []), [], 'nothing half-restored');
    } finally {
      await c2();
    }
  } finally {
    await cleanup();
  }
});

test('prune keeps the newest N snapshots and removes objects only the others used', async () => {
  const { fx, target, cleanup } = await fixture(5);
  try {
    await backup(fx, target);
    await fx.withVault('alice', (v) => v.write('/Desktop/file-2.txt', [Buffer.from('second version')]));
    await backup(fx, target);
    await fx.withVault('alice', (v) => v.write('/Desktop/file-2.txt', [Buffer.from('third version')]));
    const last = await backup(fx, target);
    const result = await pruneBackups(target, fx.pcId, 1, fx.trust);
    assert.equal(result.removed.length, 2);
    assert.equal(result.objectsRemoved, 2, 'the two replaced versions of file-2');
    assert.deepEqual(await listSnapshots(target, fx.pcId), [last.snapshot]);
    assert.deepEqual((await verifyBackup(target, fx.pcId, fx.trust, { readDataPercent: 100 })).damaged, []);
    // A snapshot folder whose run never wrote its manifest goes at the next prune.
    await target.writeFile(`${fx.pcId}/snapshots/20261126T000000000Z-dead/${'0'.repeat(32)}/index.db`, 'left by a stopped run');
    assert.equal((await pruneBackups(target, fx.pcId, 1, fx.trust)).unfinishedRemoved, 1);
    assert.deepEqual((await target.list(`${fx.pcId}/snapshots`)).map((f) => f.path.split('/')[0]).filter((id) => id !== last.snapshot), []);
    await assert.rejects(pruneBackups(target, fx.pcId, 0, fx.trust), /at least 1/);
  } finally {
    await cleanup();
  }
});

test('no plaintext on the target: a marker in names and contents appears nowhere', async () => {
  const marker = 'SECRET-MARKER-7f3a';
  const { fx, nas, target, cleanup } = await fixture(6, { marker });
  try {
    await backup(fx, target);
    assert.ok((await listFiles(nas)).length > 10);
    assert.deepEqual(await scanForMarker(nas, marker), []);
    assert.ok((await listFiles(nas)).every((f) => !f.includes(marker) && !f.includes('alice') && !f.includes('bob')));
    const manifest = await readFile(join(nas, fx.pcId, 'manifests', (await readdir(join(nas, fx.pcId, 'manifests')))[0]!), 'utf8');
    assert.doesNotMatch(manifest, /alice|bob|Documents|Desktop/);
    assert.equal((await listFiles(nas)).filter((f) => f.endsWith('keyring.json')).length, 2);
    for (const f of (await listFiles(nas)).filter((x) => x.endsWith('keyring.json'))) assert.deepEqual(Object.keys(JSON.parse(await readFile(f, 'utf8')).slots).sort(), ['N', 'R']);
  } finally {
    await cleanup();
  }
});

test('backup.target.mountPoint: nothing mounted is an error, never a backup onto the local disk', async (t) => {
  const { dir, cleanup } = await tempDir();
  const mountPoint = join(dir, 'mnt');
  await mkdir(join(mountPoint, 'mydoc'), { recursive: true }); // the mount point's own folder exists, as it does when unmounted
  t.after(async () => {
    spawnSync('umount', [mountPoint]);
    await cleanup();
  });
  const spec = { kind: 'path' as const, path: join(mountPoint, 'mydoc'), mountPoint };
  await assert.rejects(openTarget(spec), /nothing is mounted at .*mnt \(backup\.target\.mountPoint\): mount the NAS share first/);
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mountPoint], { encoding: 'utf8' });
  assert.equal(mount.status, 0, `mounting a tmpfs needs root: ${mount.stderr}`);
  await assert.rejects(openTarget(spec), /the backup folder .* does not exist/);
  await mkdir(spec.path);
  assert.ok(await openTarget(spec));
});

test('a full target (1 MiB tmpfs): a clear error, no snapshot claimed, the vault untouched', async (t) => {
  const { fx, nas, target, cleanup } = await fixture(30);
  await mkdir(nas, { recursive: true });
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', nas], { encoding: 'utf8' });
  assert.equal(mount.status, 0, `mounting a tmpfs needs root: ${mount.stderr}`);
  t.after(async () => {
    spawnSync('umount', [nas]);
    await cleanup();
  });
  const before = await dumps(fx);
  await assert.rejects(backup(fx, target), (err: Error & { code?: string }) => err.code === 'ERR_TARGET_FULL' && /full/.test(err.message));
  assert.deepEqual(await listSnapshots(target, fx.pcId), []);
  assert.deepEqual((await listFiles(nas)).filter((f) => /\.tmp-/.test(f)), [], 'no temporary file left behind');
  assert.deepEqual(await dumps(fx), before);
});

test('backup while the vault is open and written: the snapshot is consistent; held objects are not deleted', async () => {
  const { fx, target, cleanup } = await fixture(4);
  const { dir, cleanup: c2 } = await tempDir();
  try {
    const { keyring, vault } = await openUserVault(fx.dataDir, fx.pcId, 'alice', fx.source);
    try {
      // Overwrites race the backup; each replaced object must survive until the backup is done.
      const writer = (async () => {
        for (let i = 0; i < 20; i++) await vault.write('/Desktop/file-1.txt', [patternBytes(70_000, i)]);
      })();
      const summary = await backup(fx, target);
      await writer;
      assert.equal(summary.status, 'complete');
    } finally {
      vault.close();
      keyring.lock();
    }
    assert.deepEqual((await verifyBackup(target, fx.pcId, fx.trust, { readDataPercent: 100 })).damaged, []);
    const backupView = await openBackup({ target, pcId: fx.pcId, snapshot: 'latest', recoveryPrivateKey: fx.recoveryPrivateKey, trust: fx.trust });
    try {
      const alice = backupView.users.find((u) => u.user === 'alice')!;
      const files = [...walk(alice.vault)].filter((e) => !e.isDir);
      assert.ok(files.length >= 4);
      const s = await extract(backupView, target, fx.pcId, '/alice/Desktop', join(dir, 'out'));
      assert.ok(s.files >= 2, 'every file of the snapshot extracts (its objects were copied)');
    } finally {
      await backupView.close();
    }
  } finally {
    await cleanup();
    await c2();
  }
});

test('a take-out slot T never reaches the target; the local keyring keeps it', async () => {
  const { fx, nas, target, cleanup } = await fixture(1);
  try {
    const { keyring, vault } = await openUserVault(fx.dataDir, fx.pcId, 'alice', fx.source);
    await keyring.setTakeoutSlot({ kTo: randomBytes(32), password: 'take-out password', user: 'alice', rid: 'req-1' });
    vault.close();
    keyring.lock();
    await backup(fx, target);
    const local = JSON.parse(await readFile(join(userDir(fx.dataDir, fx.pcId, 'alice'), 'keyring.json'), 'utf8'));
    assert.ok(local.slots.T, 'slot T is still on the PC');
    const copies = (await listFiles(nas)).filter((f) => f.endsWith('keyring.json'));
    assert.equal(copies.length, 2);
    for (const f of copies) {
      const text = await readFile(f, 'utf8');
      assert.deepEqual(Object.keys(JSON.parse(text).slots).sort(), ['N', 'R']);
      assert.ok(!text.includes(local.slots.T.wrapped) && !text.includes(local.slots.T.salt), 'no trace of slot T');
    }
  } finally {
    await cleanup();
  }
});

test('holding deletions keeps replaced objects until released', async () => {
  const { fx, cleanup } = await fixture(1);
  try {
    const dir = userDir(fx.dataDir, fx.pcId, 'alice');
    const count = async () => (await listFiles(join(dir, 'objects'))).length;
    await fx.withVault('alice', async (v) => {
      const n = await count();
      const release = await Vault.holdDeletions(dir);
      await v.write('/Desktop/held.txt', [Buffer.from('1')]);
      await v.write('/Desktop/held.txt', [Buffer.from('2')]);
      assert.equal(await count(), n + 2, 'the replaced object stays while held');
      await release();
      await v.write('/Desktop/other.txt', [Buffer.from('3')]);
      assert.equal(await count(), n + 2, 'collected at the next write after release');
    });
  } finally {
    await cleanup();
  }
});
