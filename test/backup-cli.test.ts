/**
 * The backup commands end to end, with the real `mydoc serve` and CLI:
 * backup through the running service, list, verify (tampering named),
 * backup at SIGTERM, the standalone run, exit 3 at a deadline, restore onto
 * a new PC whose user logs in as before, and recover on a clean machine
 * with only the recovery key and the target.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalUsersFile } from '../policy/directory/local/users-file.js';
import { runCommand, startServer, davRequest, randomPassword, freePort, MYDOC_BIN, type RunningServer } from './helpers/server.js';
import { tempDir, patternBytes } from './helpers/keys.js';
import { listFiles, scanForMarker } from './helpers/data-dir.js';
import { main } from '../server/cli/main.js';
import { openUserVault } from '../shares/vault/user-vaults.js';
import { InsecureLocalFileSecretSource } from '../crypto/network-secret.js';

/** An administrator's machine: its own trust file (device keys trusted, newest snapshots seen). */
const adminState = mkdtempSync(join(tmpdir(), 'mydoc-admin-state-'));
process.on('exit', () => rmSync(adminState, { recursive: true, force: true }));
const cli = (args: string[], opts: { cwd?: string; input?: string } = {}) =>
  runCommand(process.execPath, [MYDOC_BIN, ...args], { env: { ...process.env, MYDOC_CONFIG: '', XDG_STATE_HOME: adminState }, timeoutMs: 120_000, ...opts });

/** Adds one file to the stopped server's vault directly (the service is not running). */
async function writeWhileStopped(server: RunningServer): Promise<void> {
  const source = new InsecureLocalFileSecretSource(join(server.dataDir, 'local-directory', 'INSECURE-network-secrets.json'));
  const { keyring, vault } = await openUserVault(server.dataDir, 'pc-test', 'alice', source);
  try {
    await vault.write('/Documents/while-stopped.txt', [Buffer.from('written while the service was stopped')]);
  } finally {
    vault.close();
    keyring.lock();
  }
}

async function put(server: RunningServer, path: string, body: Buffer | string): Promise<void> {
  const r = await davRequest(server, 'PUT', path, { body });
  assert.ok(r.status === 201 || r.status === 204, `PUT ${path}: ${r.status}`);
}

test('backup CLI against a running service: backup, list, verify, tamper, SIGTERM backup, recover, restore', async (t) => {
  const marker = 'PLAINTEXT-MARKER-c0ffee';
  const alicePassword = randomPassword();
  // alice is an administrator so that she may read /metrics.
  const server = await startServer({ users: [{ name: 'alice', password: alicePassword, admin: true }] });
  t.after(() => server.stop());
  const nas = join(server.dir, 'nas');
  await put(server, `/Documents/${marker}.txt`, `${marker} body`);
  await put(server, '/Documents/big.bin', patternBytes(3_000_000, 5));

  // Through the service's admin socket (the vault is open in the service).
  const first = await cli(['backup', '--config', server.configFile]);
  assert.equal(first.status, 0, first.stderr);
  const summary = JSON.parse(first.stdout) as { status: string; via: string; objectsCopied: number; snapshot: string };
  assert.equal(summary.status, 'complete');
  assert.equal(summary.via, 'service');
  assert.ok(summary.objectsCopied >= 2);

  const metrics = (await davRequest(server, 'GET', '/metrics')).body.toString('utf8');
  const last = Number(/^mydoc_backup_last_complete_timestamp_seconds (\d+)$/m.exec(metrics)?.[1]);
  assert.ok(Math.abs(last - Date.now() / 1000) < 60, `the metric shows the backup just made: ${last}`);

  const list = await cli(['backup', 'list', '--config', server.configFile]);
  assert.equal(list.status, 0, list.stderr);
  assert.match(list.stdout, new RegExp(`^${summary.snapshot}  finished .* 1 user\\(s\\)`, 'm'));

  const verify = await cli(['backup', 'verify', '--read-data', '100', '--config', server.configFile]);
  assert.equal(verify.status, 0, verify.stderr);
  assert.match(verify.stdout, /OK/);
  assert.deepEqual(await scanForMarker(nas, marker), [], 'no plaintext on the target');

  // Backup at SIGTERM: a file written just before the stop is in the backup.
  await put(server, '/Desktop/last-minute.txt', 'written before shutdown');
  process.kill(server.pid, 'SIGTERM');
  const exit = await server.exited;
  assert.equal(exit.code, 0, server.output());
  assert.match(server.output(), /backup complete/);
  const snapshots = await readdir(join(nas, 'pc-test', 'manifests'));
  assert.equal(snapshots.length, 2, 'the stop made a second snapshot');

  // Standalone (no service running): the CLI runs it itself.
  const standalone = await cli(['backup', '--config', server.configFile]);
  assert.equal(standalone.status, 0, standalone.stderr);
  assert.equal(JSON.parse(standalone.stdout).via, 'cli');
  assert.equal(JSON.parse(standalone.stdout).objectsCopied, 0);

  // On a terminal: a progress bar on stderr and a sentence on stdout (in process, stderr "is a TTY").
  let barOut = '';
  let barErr = '';
  await writeWhileStopped(server);
  const status = await main(['backup', '--config', server.configFile], { stdout: (x) => (barOut += x), stderr: (x) => (barErr += x), stdin: async () => Buffer.alloc(0), stdinIsTty: false, stderrIsTty: true, env: {} });
  assert.equal(status, 0, barErr);
  assert.match(barErr, /\rbackup \[#+\] 100%  1\/1 objects/);
  assert.match(barOut, /^backup complete: snapshot \S+, 1 user\(s\), \d+ objects, 1 copied/);

  // Recover on a "clean machine": no config, no directory, no agent; only the key and the target.
  const { dir: clean, cleanup } = await tempDir('mydoc-clean-');
  t.after(cleanup);
  const key = join(server.dir, 'offline', 'recovery-private.pem');
  const listed = await cli(['recover', '--recovery-key', key, '--from', nas, '--pc', 'pc-test', '--list'], { cwd: clean });
  assert.equal(listed.status, 0, listed.stderr);
  assert.match(listed.stderr, /^mydoc: note: first use: trusting the device key \S+ of PC pc-test found on the target/m);
  assert.match(listed.stdout, new RegExp(`/alice/Documents/${marker}\\.txt`));
  // The audit log of the PC comes back with the recovery key, and its chain verifies.
  const auditOut = join(clean, 'pc-test-audit.log');
  const audit = await cli(['recover', '--recovery-key', key, '--from', nas, '--pc', 'pc-test', '--audit-log', auditOut], { cwd: clean });
  assert.equal(audit.status, 0, audit.stderr);
  assert.doesNotMatch(audit.stderr, /first use/, 'the key trusted at first use is known now');
  assert.match(await readFile(auditOut, 'utf8'), /"action":"login"/);
  const auditOk = await cli(['audit', 'verify', '--file', auditOut]);
  assert.equal(auditOk.status, 0, auditOk.stderr);
  // Pinned by the thumbprint mydoc init printed (here: of the PC's device-public.pem); a wrong pin is refused.
  const pinnedFile = await cli(['recover', '--recovery-key', key, '--from', nas, '--pc', 'pc-test', '--list', '--device-key', join(server.dataDir, 'keys', 'device-public.pem')], { cwd: clean });
  assert.equal(pinnedFile.status, 0, pinnedFile.stderr);
  const wrongPin = await cli(['recover', '--recovery-key', key, '--from', nas, '--pc', 'pc-test', '--list', '--device-key', 'A'.repeat(43)], { cwd: clean });
  assert.equal(wrongPin.status, 1);
  assert.match(wrongPin.stderr, /^mydoc: the device key of PC pc-test in .* is not the pinned thumbprint \(A{43}\)/m);
  assert.match(listed.stdout, /\/alice\/Desktop\/last-minute\.txt/);
  const extracted = await cli(['recover', '--recovery-key', key, '--from', nas, '--pc', 'pc-test', '--extract', '/alice/Documents', '--to', join(clean, 'out')], { cwd: clean });
  assert.equal(extracted.status, 0, extracted.stderr);
  assert.equal(await readFile(join(clean, 'out', 'Documents', `${marker}.txt`), 'utf8'), `${marker} body`);
  assert.deepEqual(await readFile(join(clean, 'out', 'Documents', 'big.bin')), patternBytes(3_000_000, 5));
  const again = await cli(['recover', '--recovery-key', key, '--from', nas, '--pc', 'pc-test', '--extract', '/alice/Documents', '--to', join(clean, 'out')], { cwd: clean });
  assert.equal(again.status, 1);
  assert.match(again.stderr, /out is not empty; extract into a new or empty folder/);
  // A whole user's vault; and a destination holding a symlink is refused, never followed.
  const whole = await cli(['recover', '--recovery-key', key, '--from', nas, '--pc', 'pc-test', '--extract', '/alice', '--to', join(clean, 'all')], { cwd: clean });
  assert.equal(whole.status, 0, whole.stderr);
  assert.equal(await readFile(join(clean, 'all', 'alice', 'Desktop', 'last-minute.txt'), 'utf8'), 'written before shutdown');
  await mkdir(join(clean, 'trap'));
  await symlink(join(clean, 'elsewhere'), join(clean, 'trap', 'Documents'));
  const trapped = await cli(['recover', '--recovery-key', key, '--from', nas, '--pc', 'pc-test', '--extract', '/alice/Documents', '--to', join(clean, 'trap')], { cwd: clean });
  assert.equal(trapped.status, 1);
  assert.match(trapped.stderr, /not empty/);
  // list and verify from the clean machine too, with no configuration.
  const listed2 = await cli(['backup', 'list', '--from', nas], { cwd: clean });
  assert.equal(listed2.status, 0, listed2.stderr);
  assert.equal(listed2.stdout.trim().split('\n').length, 4, listed2.stdout);
  const verified2 = await cli(['backup', 'verify', '--from', nas, '--pc', 'pc-test', '--read-data', '100'], { cwd: clean });
  assert.equal(verified2.status, 0, verified2.stderr);
  assert.match(verified2.stdout, /^PC pc-test: verified 4 snapshot\(s\), .*: OK$/m);
  const wrongKey = await cli(['recover', '--recovery-key', server.caFile, '--from', nas, '--pc', 'pc-test', '--list'], { cwd: clean });
  assert.equal(wrongKey.status, 1);
  assert.match(wrongKey.stderr, /^mydoc: .*recovery private key/m);

  // Restore onto a new PC: alice logs in with her password as before.
  const newDir = join(clean, 'newpc');
  await mkdir(newDir);
  const port = await freePort();
  const newConfig = join(newDir, 'mydoc.yaml');
  await writeFile(newConfig, `pcId: pc-new\ndataDir: data\nlisten:\n  host: "127.0.0.1"\n  port: ${port}\ndirectory:\n  kind: local\nbackup:\n  schedule: "off"\n  target:\n    kind: path\n    path: nas\n`);
  assert.equal((await cli(['init', '--config', newConfig, '--recovery-key-out', join(clean, 'new-recovery.pem')])).status, 0);
  const restored = await cli(['restore', '--config', newConfig, '--from', nas, '--recovery-key', key, '--pc', 'pc-test']);
  assert.equal(restored.status, 0, restored.stderr);
  assert.match(restored.stdout, /restored user "alice"/);
  // The local (demo) directory's users come back with the restore: alice's password works on the new PC.
  assert.match(restored.stdout, /restored 1 user\(s\) of the local directory: alice/);
  assert.deepEqual(await new LocalUsersFile(join(newDir, 'data', 'local-directory', 'users.json')).verify('alice', alicePassword), { admin: true });
  const again2 = await cli(['restore', '--config', newConfig, '--from', nas, '--recovery-key', key, '--pc', 'pc-test']);
  assert.equal(again2.status, 1);
  assert.match(again2.stderr, /already has a vault/);

  // Tamper with the big object on the target: verify names it and exits 1.
  const objects = (await listFiles(join(nas, 'pc-test', 'users'))).map((f) => ({ f }));
  let biggest = objects[0]!.f;
  for (const { f } of objects) if ((await readFile(f)).length > (await readFile(biggest)).length) biggest = f;
  const bytes = await readFile(biggest);
  bytes[1000] ^= 0xff;
  await writeFile(biggest, bytes);
  const bad = await cli(['backup', 'verify', '--read-data', '100', '--config', server.configFile]);
  assert.equal(bad.status, 1);
  assert.ok(bad.stdout.includes(`DAMAGED ${biggest.slice(nas.length + 1)}`), bad.stdout);
  assert.match(bad.stderr, /found 1 damaged file/);
  // --repair removes the damaged object; the next backup (standalone: the service was stopped) copies it again.
  const repair = await cli(['backup', 'verify', '--read-data', '100', '--repair', '--config', server.configFile]);
  assert.equal(repair.status, 1);
  assert.match(repair.stdout, /removed .*: the next backup of PC pc-test copies it again/);
  const rerun = await cli(['backup', '--config', server.configFile]);
  assert.equal(JSON.parse(rerun.stdout).objectsCopied, 1);
  const clean2 = await cli(['backup', 'verify', '--read-data', '100', '--config', server.configFile]);
  assert.equal(clean2.status, 0, clean2.stdout);
});

test('backup CLI: exit 3 when the deadline comes first, then the next run completes; usage errors exit 2', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  for (let i = 0; i < 6; i++) await put(server, `/Documents/large-${i}.bin`, patternBytes(64 * 1024 * 1024, i));
  process.kill(server.pid, 'SIGKILL'); // no backup at stop: the CLI runs it alone
  await server.exited;
  // 384 MiB to hash, copy and fsync take far longer than 0.3 s (about 0.8 s on a quiet machine).
  const partial = await cli(['backup', '--deadline', '0.3', '--config', server.configFile]);
  assert.equal(partial.status, 3, partial.stderr + partial.stdout);
  const p = JSON.parse(partial.stdout) as { status: string; objectsCopied: number; bytesLeft: number };
  assert.equal(p.status, 'partial');
  assert.ok(p.objectsCopied < 6 && p.bytesLeft > 0, partial.stdout);
  const done = await cli(['backup', '--shutdown', '--config', server.configFile]);
  assert.equal(done.status, 0, done.stderr);
  assert.equal(JSON.parse(done.stdout).objectsCopied + p.objectsCopied, JSON.parse(done.stdout).objects);

  for (const [args, pattern] of [
    [['backup', '--deadline', 'soon'], /--deadline must be a number/],
    [['backup', 'prune'], /needs --keep N/],
    [['backup', 'prune', '--keep', '0'], /--keep must be a number from 1/],
    [['backup', 'frobnicate'], /unknown command "backup frobnicate"/],
    [['backup', 'prune', '--keep', '1', '--from', 'x'], /--from is for "backup list" and "backup verify"/],
    [['backup', 'list', '--pc', 'x'], /--pc, --auth-file, --device-key and --trust-file go with --from TARGET/],
    [['recover', '--recovery-key', 'k', '--from', 'x', '--pc', 'p'], /either --list, --extract PATH --to DIR, or --audit-log FILE/],
    [['restore', '--from', 'x'], /needs --from TARGET and --recovery-key/],
  ] as const) {
    const r = await cli(args[0] === 'recover' ? [...args] : [...args, '--config', server.configFile]);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
  }
  // An unmounted NAS (the folder is missing) is an error, never a backup onto the local disk.
  await rename(join(server.dir, 'nas'), join(server.dir, 'nas-away'));
  const unmounted = await cli(['backup', '--config', server.configFile]);
  assert.equal(unmounted.status, 1);
  assert.match(unmounted.stderr, /^mydoc: the backup folder .*nas does not exist: create it, or mount the NAS share there$/m);
  assert.equal(await readdir(join(server.dir, 'nas')).catch(() => 'missing'), 'missing');
  await rename(join(server.dir, 'nas-away'), join(server.dir, 'nas'));

  const smbWithoutAuth = await cli(['recover', '--recovery-key', 'k', '--from', '//127.0.0.1/nas', '--pc', 'p', '--list']);
  assert.equal(smbWithoutAuth.status, 1);
  assert.match(smbWithoutAuth.stderr, /--auth-file/);
});

test('mydoc stop (systemd ExecStop): the service backs up once, reports, and exits', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  await put(server, '/Documents/at-stop.txt', 'saved at stop');
  const stop = await cli(['stop', '--config', server.configFile]);
  assert.equal(stop.status, 0, stop.stderr);
  const summary = JSON.parse(stop.stdout) as { status: string; objectsCopied: number; via: string };
  assert.equal(summary.status, 'complete');
  assert.equal(summary.via, 'service');
  assert.ok(summary.objectsCopied >= 1);
  assert.equal((await server.exited).code, 0);
  assert.equal(server.output().match(/backup complete/g)?.length, 1, 'one backup, not a second one at exit');
  const again = await cli(['stop', '--config', server.configFile]);
  assert.equal(again.status, 0);
  assert.match(again.stdout, /not running/);
});

test('scheduled backups: a catch-up run at start when there is no complete backup yet', async (t) => {
  const server = await startServer({ extraConfig: ['  schedule: "0 3 * * *"', '  timezone: Europe/Berlin', '  randomDelaySeconds: 1'] });
  t.after(() => server.stop());
  const manifests = join(server.dir, 'nas', 'pc-test', 'manifests');
  const deadline = Date.now() + 15_000;
  while ((await readdir(manifests).catch(() => [])).length === 0) {
    assert.ok(Date.now() < deadline, `no catch-up backup within 15 s:\n${server.output()}`);
    await sleep(200);
  }
  assert.match(server.output(), /catching up/);
});

test('scheduled backups: a schedule of every 2 seconds makes a snapshot each time', async (t) => {
  const server = await startServer({ extraConfig: ['  schedule: "*/2 * * * * *"', '  randomDelaySeconds: 0'] });
  t.after(() => server.stop());
  const manifests = join(server.dir, 'nas', 'pc-test', 'manifests');
  const deadline = Date.now() + 20_000;
  while ((await readdir(manifests).catch(() => [])).length < 3) {
    assert.ok(Date.now() < deadline, `fewer than 3 snapshots within 20 s:\n${server.output()}`);
    await sleep(200);
  }
});
