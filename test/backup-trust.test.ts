/**
 * A NAS that is trusted less than the PC: manifests signed with the device
 * key (unsigned, wrongly signed, altered, high-s and swapped-key manifests
 * refused, each saying which), rollbacks reported, the audit log and the
 * local directory sealed to the recovery key, links never followed, and a
 * backup of a full data disk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { base64url } from 'jose';
import { PathTarget } from '../backup/path-target.js';
import { runBackup } from '../backup/run.js';
import { restoreSnapshot } from '../backup/restore.js';
import { openBackup, readAuditLog } from '../backup/recover.js';
import { verifyBackup } from '../backup/verify.js';
import { pruneBackups } from '../backup/prune.js';
import { listSnapshots, manifestPath, readManifest } from '../backup/manifest.js';
import { TrustStore, trustDevice, trustOf } from '../backup/device-trust.js';
import { signPayload } from '../crypto/device-signature.js';
import { generateP256KeyPair } from '../crypto/key-files.js';
import { InsecureLocalFileSecretSource } from '../crypto/network-secret.js';
import { userDir } from '../shares/vault/user-vaults.js';
import { backupOnce, backupSource, readBackupState } from '../server/agent/backup-service.js';
import type { Config } from '../server/config/config.js';
import { makeDataDir, populate, type BackupFixture } from './helpers/backup-data.js';
import { listFiles, scanForMarker } from './helpers/data-dir.js';
import { tempDir } from './helpers/keys.js';

const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

async function fixture(count = 4, dataDir?: string): Promise<{ fx: BackupFixture; nas: string; target: PathTarget; dir: string; cleanup: () => Promise<void> }> {
  const { dir, cleanup } = await tempDir('mydoc-trust-');
  const fx = await makeDataDir(dataDir ?? join(dir, 'data'));
  for (const [i, user] of fx.users.entries()) await fx.withVault(user, (v) => populate(v, count, { seed: i * 100 }));
  const nas = join(dir, 'nas');
  await mkdir(nas);
  return { fx, nas, target: new PathTarget(nas), dir, cleanup };
}

const restore = (fx: BackupFixture, target: PathTarget, dir: string, trust = fx.trust) =>
  restoreSnapshot({ target, fromPcId: fx.pcId, snapshot: 'latest', recoveryPrivateKey: fx.recoveryPrivateKey, dataDir: dir, pcId: 'pc-new', source: new InsecureLocalFileSecretSource(join(dir, 's.json')), recoveryPublicKey: fx.recoveryPublicKey, trust });

/** The three readers of a backup, each with `trust`: each must refuse a bad manifest. */
async function readers(fx: BackupFixture, target: PathTarget, dir: string, trust = fx.trust): Promise<{ restore: unknown; recover: unknown; verify: string }> {
  const failure = (p: Promise<unknown>) => p.then(() => undefined, (err: Error & { code?: string }) => err);
  const report = await verifyBackup(target, fx.pcId, trust);
  return {
    restore: await failure(restore(fx, target, join(dir, `r-${Math.random()}`), trust)),
    recover: await failure(openBackup({ target, pcId: fx.pcId, snapshot: 'latest', recoveryPrivateKey: fx.recoveryPrivateKey, trust }).then((b) => b.close())),
    verify: report.damaged.map((d) => d.problem).join('\n'),
  };
}

test('manifests are signed: unsigned, wrongly signed, altered and high-s manifests are refused by restore, recover and verify, saying which', { timeout: 60_000 }, async () => {
  const { fx, nas, target, dir, cleanup } = await fixture();
  try {
    const { snapshot } = await runBackup({ ...fx.backupOptions, target });
    const file = join(nas, manifestPath(fx.pcId, snapshot!));
    const signed = JSON.parse(await readFile(file, 'utf8')) as { protected: string; payload: string; signature: string };
    const payload = Buffer.from(base64url.decode(signed.payload));
    assert.equal(JSON.parse(payload.toString()).deviceKey, fx.trust.thumbprint);
    assert.deepEqual((await verifyBackup(target, fx.pcId, fx.trust, { readDataPercent: 100 })).damaged, [], 'the untouched backup verifies');

    const refusedBy = async (content: string, code: string, text: RegExp): Promise<void> => {
      await writeFile(file, content);
      const r = await readers(fx, target, dir);
      for (const [who, err] of [['restore', r.restore], ['recover', r.recover]] as const) {
        assert.equal((err as { code?: string })?.code, code, `${who}: ${String(err)}`);
        assert.match((err as Error).message, text, who);
      }
      assert.match(r.verify, text, 'verify');
    };
    // The payload without its signature (what mydoc wrote before manifests were signed).
    await refusedBy(payload.toString(), 'ERR_BACKUP_UNSIGNED', /is not signed/);
    // Signed by another key.
    const other = generateP256KeyPair();
    const forged = await signPayload(payload, createPrivateKey(other.privatePem), createPublicKey(other.publicPem), 'mydoc-backup-manifest+json');
    await refusedBy(JSON.stringify(forged), 'ERR_BACKUP_SIGNATURE', /wrongly signed: the signature does not verify/);
    // The signed manifest with one user removed (an attempt to hide a user's data).
    const m = JSON.parse(payload.toString());
    m.users = m.users.slice(1);
    await refusedBy(JSON.stringify({ ...signed, payload: base64url.encode(JSON.stringify(m)) }), 'ERR_BACKUP_SIGNATURE', /wrongly signed/);
    // The same signature with s replaced by n - s (malleability): refused.
    const sig = Buffer.from(base64url.decode(signed.signature));
    const s = BigInt(`0x${sig.subarray(32).toString('hex')}`);
    assert.ok(s <= N >> 1n, 'mydoc signs in the low-s form');
    const high = Buffer.concat([sig.subarray(0, 32), Buffer.from((N - s).toString(16).padStart(64, '0'), 'hex')]);
    await refusedBy(JSON.stringify({ ...signed, signature: base64url.encode(high) }), 'ERR_BACKUP_SIGNATURE', /low-s/);
    // Put back, it verifies again.
    await writeFile(file, JSON.stringify(signed));
    assert.deepEqual((await verifyBackup(target, fx.pcId, fx.trust)).damaged, []);
  } finally {
    await cleanup();
  }
});

test('a NAS writer who swaps the device key and signs with their own is refused when the key is pinned or was trusted before', { timeout: 60_000 }, async () => {
  const { fx, nas, target, dir, cleanup } = await fixture(2);
  try {
    const { snapshot } = await runBackup({ ...fx.backupOptions, target });
    assert.equal(await readFile(join(nas, fx.pcId, 'device-public.pem'), 'utf8'), fx.deviceKey.publicKey.export({ type: 'spki', format: 'pem' }).toString(), 'the first backup leaves the device public key');
    const store = await TrustStore.load(join(dir, 'admin', 'trust.json'));
    // First use: trusted, with a notice to compare the thumbprint; recorded.
    const first = await trustDevice(target, fx.pcId, { store });
    assert.equal(first.trust.thumbprint, fx.trust.thumbprint);
    assert.match(first.notices.join(), /first use: trusting the device key .* compare it with the thumbprint "mydoc init" printed/);
    assert.equal((await trustDevice(target, fx.pcId, { store })).notices.length, 0, 'the second time it is known');

    // The attacker replaces the key and re-signs the manifest with theirs.
    const evil = generateP256KeyPair();
    const evilKeys = { privateKey: createPrivateKey(evil.privatePem), publicKey: createPublicKey(evil.publicPem) };
    const file = join(nas, manifestPath(fx.pcId, snapshot!));
    const payload = JSON.parse(Buffer.from(base64url.decode(JSON.parse(await readFile(file, 'utf8')).payload)).toString());
    payload.deviceKey = (await trustOf(evilKeys.publicKey)).thumbprint;
    await writeFile(file, JSON.stringify(await signPayload(Buffer.from(JSON.stringify(payload)), evilKeys.privateKey, evilKeys.publicKey, 'mydoc-backup-manifest+json')));
    await writeFile(join(nas, fx.pcId, 'device-public.pem'), evil.publicPem);

    await assert.rejects(trustDevice(target, fx.pcId, { store }), /device key of PC pc-backup in .* is not the one this machine trusted before .*someone replaced it/);
    await assert.rejects(trustDevice(target, fx.pcId, { store: await TrustStore.load(join(dir, 'fresh.json')), pin: { thumbprint: fx.trust.thumbprint } }), /is not the pinned thumbprint/);
    const pinned = await trustDevice(target, fx.pcId, { store: await TrustStore.load(join(dir, 'fresh2.json')), pin: { key: fx.deviceKey.publicKey } });
    assert.match(pinned.notices.join(), /is not the pinned one/);
    const r = await readers(fx, target, dir, pinned.trust);
    assert.equal((r.restore as { code?: string }).code, 'ERR_BACKUP_SIGNATURE');
    assert.equal((r.recover as { code?: string }).code, 'ERR_BACKUP_SIGNATURE');
    // The PC's next backup notices the swapped key and does not go on.
    await assert.rejects(runBackup({ ...fx.backupOptions, target }), (err: Error & { code?: string }) => err.code === 'ERR_BACKUP_DEVICE_KEY' && /is not this PC's device key/.test(err.message));
  } finally {
    await cleanup();
  }
});

test('a rollback (newest snapshots removed, an older manifest left) is reported by backup, verify, and the trust file; prune keeps only what the PC signed', { timeout: 60_000 }, async () => {
  const { fx, nas, target, dir, cleanup } = await fixture(2);
  try {
    const first = await runBackup({ ...fx.backupOptions, target });
    await fx.withVault('alice', (v) => v.write('/Desktop/new.txt', [Buffer.from('second')]));
    const second = await runBackup({ ...fx.backupOptions, target, newestWritten: first.snapshot });
    assert.deepEqual(second.warnings, []);
    assert.deepEqual((await verifyBackup(target, fx.pcId, fx.trust, { newestSeen: second.snapshot })).rollback, undefined);
    // The NAS writer removes the newest snapshot: what is left is older than what the PC wrote.
    await rm(join(nas, manifestPath(fx.pcId, second.snapshot!)));
    const report = await verifyBackup(target, fx.pcId, fx.trust, { newestSeen: second.snapshot });
    assert.deepEqual(report.damaged, [], 'each remaining snapshot is fine by itself');
    assert.match(report.rollback ?? '', new RegExp(`ROLLBACK: the newest snapshot of PC pc-backup on the target is ${first.snapshot}, older than ${second.snapshot}`));
    const third = await runBackup({ ...fx.backupOptions, target, newestWritten: second.snapshot });
    assert.equal(third.status, 'complete');
    assert.match(third.warnings.join('\n'), /ROLLBACK/);
    assert.ok(third.snapshot! > second.snapshot!, 'the next id is later than the newest the PC wrote');
    // An administrator's trust file never moves its newest snapshot back.
    const store = await TrustStore.load(join(dir, 'trust.json'));
    await store.record(fx.pcId, { newestSnapshot: third.snapshot! });
    await store.record(fx.pcId, { newestSnapshot: first.snapshot! });
    assert.equal((await TrustStore.load(join(dir, 'trust.json'))).get(fx.pcId).newestSnapshot, third.snapshot);

    // A forged manifest with a late id: ignored by the backup (reported), left alone by prune, never pushes a real one out.
    const forged = `29991231T235959999Z-ffff`;
    await writeFile(join(nas, manifestPath(fx.pcId, forged)), JSON.stringify({ format: 'mydoc-backup-manifest', version: 2 }));
    const fourth = await runBackup({ ...fx.backupOptions, target, newestWritten: third.snapshot });
    assert.match(fourth.warnings.join('\n'), /29991231T235959999Z-ffff\.json is not signed; refusing it.*ignored/);
    const pruned = await pruneBackups(target, fx.pcId, 1, fx.trust);
    assert.deepEqual(pruned.kept, [fourth.snapshot]);
    assert.deepEqual(pruned.refused, [forged]);
    assert.deepEqual(await listSnapshots(target, fx.pcId), [fourth.snapshot, forged]);
    assert.equal((await readManifest(target, fx.pcId, fourth.snapshot!, fx.trust)).snapshot, fourth.snapshot);
  } finally {
    await cleanup();
  }
});

test('the audit log and the local directory are sealed to the recovery key: never in the clear on the target, and recovered with the key', { timeout: 60_000 }, async () => {
  const { fx, nas, target, dir, cleanup } = await fixture(1);
  try {
    const marker = 'AUDIT-MARKER-5e1f';
    const auditLog = join(fx.dataDir, 'audit', 'audit.log');
    await mkdir(join(fx.dataDir, 'audit'));
    const lines = `{"seq":1,"actor":"${marker}"}\n{"seq":2,"actor":"carol"}\n`;
    await writeFile(auditLog, `${lines}{"seq":3,"partial`); // a line being appended is left for the next snapshot
    const usersFile = join(fx.dataDir, 'local-directory', 'users.json');
    const users = { format: 'mydoc-local-users', version: 1, users: { alice: { hash: `scrypt$${marker}`, created: 'x' } } };
    await writeFile(usersFile, JSON.stringify(users));
    const secretFile = join(fx.dataDir, 'local-directory', 'INSECURE-network-secrets.json');
    const secrets = JSON.parse(await readFile(secretFile, 'utf8')) as Record<string, string>;
    await runBackup({ ...fx.backupOptions, target, auditLog, localDirectory: { usersFile, secretFile } });
    assert.deepEqual(await scanForMarker(nas, marker), [], 'no plaintext of the audit log or the users on the target');
    for (const secret of Object.values(secrets)) assert.deepEqual(await scanForMarker(nas, secret), [], 'no network secret on the target');
    assert.ok((await listFiles(nas)).some((f) => f.endsWith('/audit.log.jwe')));

    const backup = await openBackup({ target, pcId: fx.pcId, snapshot: 'latest', recoveryPrivateKey: fx.recoveryPrivateKey, trust: fx.trust });
    try {
      assert.equal((await readAuditLog(backup, target, fx.pcId, fx.recoveryPrivateKey))?.toString(), lines);
      await assert.rejects(readAuditLog(backup, target, fx.pcId, createPrivateKey(generateP256KeyPair().privatePem)), /not the recovery key/);
    } finally {
      await backup.close();
    }
    // Restore onto a new PC: the local directory's users and secrets come back (none replaced).
    const newDir = join(dir, 'new');
    const local = { usersFile: join(newDir, 'local-directory', 'users.json'), secretFile: join(newDir, 'local-directory', 'INSECURE-network-secrets.json') };
    const summary = await restoreSnapshot({ target, fromPcId: fx.pcId, snapshot: 'latest', recoveryPrivateKey: fx.recoveryPrivateKey, dataDir: newDir, pcId: 'pc-new', source: new InsecureLocalFileSecretSource(local.secretFile), recoveryPublicKey: fx.recoveryPublicKey, trust: fx.trust, localDirectory: local });
    assert.deepEqual(summary.directoryUsers, ['alice']);
    assert.deepEqual(JSON.parse(await readFile(local.usersFile, 'utf8')).users, users.users);
    assert.deepEqual(Object.keys(JSON.parse(await readFile(local.secretFile, 'utf8'))).sort(), ['alice', 'bob']);
  } finally {
    await cleanup();
  }
});

test('links are never followed: a link in objects/ is skipped and counted, a linked object folder too; links on the target are refused', { timeout: 60_000 }, async () => {
  const { fx, nas, target, dir, cleanup } = await fixture(2);
  try {
    const secret = 'LINKED-SECRET-9b2c';
    await writeFile(join(dir, 'secret.txt'), secret);
    const objects = join(userDir(fx.dataDir, fx.pcId, 'alice'), 'objects');
    await mkdir(join(objects, 'ee'), { recursive: true });
    await symlink(join(dir, 'secret.txt'), join(objects, 'ee', 'e'.repeat(32)));
    await mkdir(join(dir, 'elsewhere'));
    await writeFile(join(dir, 'elsewhere', 'f'.repeat(32)), secret);
    await symlink(join(dir, 'elsewhere'), join(objects, 'ff'));
    const summary = await runBackup({ ...fx.backupOptions, target });
    assert.equal(summary.status, 'complete');
    assert.equal(summary.skipped, 2, 'the linked file and the file in the linked folder');
    assert.deepEqual(await scanForMarker(nas, secret), [], 'nothing a link points to reaches the target');
    assert.ok(!(await listFiles(nas)).some((f) => f.endsWith('e'.repeat(32)) || f.endsWith('f'.repeat(32))));

    // On the target: an object replaced by a link to a file of the restoring machine.
    const manifest = await readManifest(target, fx.pcId, (await listSnapshots(target, fx.pcId))[0]!, fx.trust);
    const victim = join(nas, fx.pcId, manifest.users[0]!.objects[0]!.path);
    await rm(victim);
    await symlink(join(dir, 'secret.txt'), victim);
    const r = await readers(fx, target, dir);
    assert.match(String(r.restore), /is a symbolic link; refusing to follow it/);
    // A linked folder on the target.
    await rm(victim);
    const usersDir = join(nas, fx.pcId, 'users');
    await symlink(join(dir, 'elsewhere'), join(dir, 'users-link'));
    await rm(usersDir, { recursive: true });
    await symlink(join(dir, 'elsewhere'), usersDir);
    await assert.rejects(target.list(`${fx.pcId}/users`), /users in the backup .* is a symbolic link/);
    await assert.rejects(runBackup({ ...fx.backupOptions, target }), /is a symbolic link; refusing to follow it/);
    assert.deepEqual(await readdir(join(dir, 'elsewhere')), ['f'.repeat(32)], 'nothing was written through the link');
  } finally {
    await cleanup();
  }
});

test('a full data disk (tmpfs filled up) is backed up: nothing is staged on it, the state is recorded in place', { timeout: 60_000 }, async (t) => {
  const { dir, cleanup } = await tempDir('mydoc-full-');
  const disk = join(dir, 'disk');
  await mkdir(disk);
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', disk], { encoding: 'utf8' });
  assert.equal(mount.status, 0, `mounting a tmpfs needs root: ${mount.stderr}`);
  t.after(async () => {
    spawnSync('umount', [disk]);
    await cleanup();
  });
  const fx = await makeDataDir(join(disk, 'data'));
  for (const [i, user] of fx.users.entries()) await fx.withVault(user, (v) => populate(v, 8, { seed: i }));
  const nas = join(dir, 'nas');
  await mkdir(nas);
  const config = { dataDir: fx.dataDir, pcId: fx.pcId, recovery: { publicKey: undefined }, directory: { kind: 'ldap' } } as unknown as Config;
  const first = await backupOnce(backupSource(config), async () => new PathTarget(nas), {});
  await fx.withVault('alice', (v) => v.write('/Desktop/late.txt', [Buffer.from('written before the disk filled')]));
  // Fill the disk to the last byte.
  const filler = join(disk, 'filler');
  const fill = spawnSync('sh', ['-c', `dd if=/dev/zero of=${filler} bs=64k 2>/dev/null; dd if=/dev/zero of=${filler}-2 bs=1 2>/dev/null; true`]);
  assert.equal(fill.status, 0);
  await assert.rejects(writeFile(join(disk, 'probe'), 'x'), (err: NodeJS.ErrnoException) => err.code === 'ENOSPC', 'the disk is full');
  const summary = await backupOnce(backupSource(config), async () => new PathTarget(nas), {});
  assert.equal(summary.status, 'complete');
  assert.ok(summary.objectsCopied >= 1, 'the late file was copied');
  assert.equal((await readBackupState(fx.dataDir))?.snapshot, summary.snapshot, 'the state records the new snapshot although the disk is full');
  assert.deepEqual(await listSnapshots(new PathTarget(nas), fx.pcId), [first.snapshot, summary.snapshot]);
  assert.deepEqual((await verifyBackup(new PathTarget(nas), fx.pcId, fx.trust, { readDataPercent: 100 })).damaged, []);
});
