/**
 * File modes whatever the caller's umask (issue 9, Low 14): everything mydoc
 * creates in the data folder and on a folder backup target is 0600 (files,
 * the admin socket) and 0700 (folders). The first test runs the real CLI
 * (init, user add, serve, backup through the service and alone, restore) as
 * children of this process under umask 000; the second runs the library code
 * in this process under umask 000, so that the explicit modes are tested on
 * their own, not only the CLI's umask.
 *
 * Symbolic links are not checked: a link's own mode is always 0777 on Linux
 * and means nothing (the vault lock is one, see shares/vault/lock-file.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { generateP256KeyPair } from '../crypto/key-files.js';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { PathTarget } from '../backup/path-target.js';
import { runBackup } from '../backup/run.js';
import { writeFileAtomic } from '../crypto/atomic-file.js';
import { enrolTestUser } from './helpers/data-dir.js';
import { tempDir } from './helpers/keys.js';
import { davRequest, freePort, mydoc, MYDOC_BIN, runCommand, startServer } from './helpers/server.js';

const T = { timeout: 180_000 };

// Every test file runs in its own process: the children started here inherit this umask.
const before = process.umask(0o000);
process.on('exit', () => process.umask(before));

/** Every name under `root` (and `root` itself) whose mode is not 0700 (folders) or 0600 (anything else). */
async function wrongModes(root: string, opts: { checkRoot?: boolean } = {}): Promise<{ wrong: string[]; seen: string[] }> {
  const wrong: string[] = [];
  const seen: string[] = [];
  const check = async (path: string): Promise<void> => {
    const s = await lstat(path);
    if (s.isSymbolicLink()) return;
    const rel = relative(root, path) || '.';
    seen.push(rel);
    const mode = s.mode & 0o7777;
    const want = s.isDirectory() ? 0o700 : 0o600;
    if (mode !== want) wrong.push(`${rel} is ${mode.toString(8).padStart(4, '0')}, not ${want.toString(8).padStart(4, '0')}`);
    if (s.isDirectory()) for (const name of await readdir(path)) await check(join(path, name));
  };
  if (opts.checkRoot ?? true) await check(root);
  else for (const name of await readdir(root)) await check(join(root, name));
  return { wrong, seen };
}

/** Asserts that `seen` holds a name matching each pattern (the scan saw what it is meant to check). */
function assertSaw(seen: string[], patterns: RegExp[], where: string): void {
  for (const p of patterns) assert.ok(seen.some((s) => p.test(s)), `${where}: nothing matching ${p} was checked (saw ${seen.join(', ')})`);
}

test('the real CLI under umask 000: the data folder, the NAS folder and a restored data folder are 0600/0700', T, async (t) => {
  const issuer = await tempDir('mydoc-issuer-');
  t.after(issuer.cleanup);
  await mydoc(['keys', 'issuer', '--out', join(issuer.dir, 'issuer.pem'), '--public-out', join(issuer.dir, 'issuer.pub.pem')]);
  const server = await startServer({
    users: [{ name: 'alice', password: 'alice-password-1' }, { name: 'bob', password: 'bob-password-2' }],
    files: { 'issuer.pub.pem': await readFile(join(issuer.dir, 'issuer.pub.pem'), 'utf8') },
    extraConfig: ['takeout:', '  maxDays: 14', '  issuerPublicKeys: [issuer.pub.pem]'],
  });
  t.after(() => server.stop());
  const cli = (args: string[]) => runCommand(process.execPath, [MYDOC_BIN, ...args], { env: { ...process.env, MYDOC_CONFIG: '', XDG_STATE_HOME: join(server.dir, 'state') }, timeoutMs: 120_000 });
  for (const user of ['alice', 'bob']) {
    const password = server.users.find((u) => u.name === user)!.password;
    assert.equal((await davRequest(server, 'MKCOL', '/Documents/folder', { user, password })).status, 201);
    assert.equal((await davRequest(server, 'PUT', '/Documents/folder/a.txt', { user, password, body: 'some text' })).status, 201);
    assert.equal((await davRequest(server, 'PUT', '/Desktop/b.bin', { user, password, body: Buffer.alloc(200_000, 7) })).status, 201);
  }
  const request = await davRequest(server, 'POST', '/api/takeout/requests', { headers: { 'content-type': 'application/json', origin: server.url.slice(0, -1) }, body: JSON.stringify({ days: 2, reason: 'trip' }) });
  assert.equal(request.status, 201, request.body.toString());
  const viaService = await cli(['backup', '--config', server.configFile]);
  assert.equal(viaService.status, 0, viaService.stderr);

  // While the service runs: the vaults are open (index.db-wal and -shm exist), the admin socket is there.
  const running = await wrongModes(server.dataDir);
  assertSaw(running.seen, [/index\.db$/, /index\.db-wal$/, /index\.db-shm$/, /keyring\.json$/, /objects\/[0-9a-f]{2}$/, /objects\/[0-9a-f]{2}\/[0-9a-f]{32}$/, /\/tmp$/, /^run\/admin\.sock$/, /^audit\/audit\.log$/, /^keys\/device-key\.pem$/, /^keys\/device-public\.pem$/, /^keys\/recovery-public\.pem$/, /^tls\/ca-cert\.pem$/, /^tls\/server-key\.pem$/, /^takeout\/state\.json$/, /^takeout\/clock\.json$/, /^backup-state\.json$/, /^local-directory\/users\.json$/, /^mydoc-data\.json$/], 'data folder');
  assert.deepEqual(running.wrong, [], 'the data folder of the running service');

  // After a shutdown backup, a backup without the service.
  process.kill(server.pid, 'SIGTERM');
  assert.equal((await server.exited).code, 0, server.output());
  const alone = await cli(['backup', '--config', server.configFile]);
  assert.equal(alone.status, 0, alone.stderr);
  assert.equal(JSON.parse(alone.stdout).via, 'cli');
  assert.deepEqual((await wrongModes(server.dataDir)).wrong, [], 'the data folder after the service stopped');

  // The NAS folder's root is the administrator's; everything mydoc made under it is checked.
  const nas = await wrongModes(join(server.dir, 'nas'), { checkRoot: false });
  assertSaw(nas.seen, [/^pc-test$/, /^pc-test\/users\/[0-9a-f]{32}\/objects\/[0-9a-f]{2}\/[0-9a-f]{32}$/, /^pc-test\/snapshots\/[^/]+\/[^/]+\/index\.db$/, /^pc-test\/manifests\/[^/]+$/], 'NAS folder');
  assert.deepEqual(nas.wrong, [], 'the NAS folder');

  // Restore onto a new PC.
  const newDir = join(server.dir, 'newpc');
  await mkdir(newDir, { mode: 0o700 });
  const newConfig = join(newDir, 'mydoc.yaml');
  await writeFile(newConfig, `pcId: pc-new\ndataDir: data\nlisten:\n  host: "127.0.0.1"\n  port: ${await freePort()}\ndirectory:\n  kind: local\nbackup:\n  schedule: "off"\n  target:\n    kind: path\n    path: nas\n`);
  const init = await cli(['init', '--config', newConfig, '--recovery-key-out', join(newDir, 'offline', 'recovery.pem')]);
  assert.equal(init.status, 0, init.stderr);
  const restored = await cli(['restore', '--config', newConfig, '--from', join(server.dir, 'nas'), '--recovery-key', join(server.dir, 'offline', 'recovery-private.pem'), '--pc', 'pc-test']);
  assert.equal(restored.status, 0, restored.stderr);
  const after = await wrongModes(join(newDir, 'data'));
  assertSaw(after.seen, [/^users\/[0-9a-f]{32}\/index\.db$/, /^users\/[0-9a-f]{32}\/objects\/[0-9a-f]{2}$/, /^backup-trust\.json$/, /^local-directory\/users\.json$/], 'restored data folder');
  assert.deepEqual(after.wrong, [], 'the restored data folder');
  // The recovery private key written by init (it must leave the PC, but is private meanwhile).
  assert.deepEqual((await wrongModes(join(newDir, 'offline'))).wrong, [], 'the recovery key folder');
});

test('the library under umask 000: a vault, small files and a folder target get explicit modes', T, async (t) => {
  const { dir, cleanup } = await tempDir('mydoc-modes-');
  t.after(cleanup);
  const dataDir = join(dir, 'data');
  await mkdir(dataDir, { mode: 0o700 });
  const user = await enrolTestUser(dataDir);
  const { keyring, vault } = await user.open();
  try {
    await vault.mkdir('/Documents/folder');
    await vault.write('/Documents/folder/a.txt', ['text']);
    await vault.write('/Desktop/b.txt', ['more text']);
    await writeFileAtomic(join(dataDir, 'sub', 'small.json'), '{}\n');
    const open = await wrongModes(dataDir);
    assertSaw(open.seen, [/index\.db-wal$/, /index\.db-shm$/, /objects\/[0-9a-f]{2}\/[0-9a-f]{32}$/, /^sub$/], 'data folder');
    assert.deepEqual(open.wrong, [], 'a vault open in this process');

    const nas = join(dir, 'nas');
    await mkdir(nas);
    const device = generateP256KeyPair();
    const recovery = generateP256KeyPair();
    const summary = await runBackup({
      dataDir,
      pcId: 'pc-test',
      target: new PathTarget(nas),
      deviceKey: { privateKey: createPrivateKey(device.privatePem), publicKey: createPublicKey(device.publicPem) },
      recoveryPublicKey: createPublicKey(recovery.publicPem),
    });
    assert.equal(summary.status, 'complete');
    const target = await wrongModes(nas, { checkRoot: false });
    assertSaw(target.seen, [/^pc-test\/users\/[0-9a-f]{32}\/objects\/[0-9a-f]{2}$/, /^pc-test\/manifests\/[^/]+$/], 'NAS folder');
    assert.deepEqual(target.wrong, [], 'a folder target written in this process');
  } finally {
    vault.close();
    keyring.lock();
  }
  assert.deepEqual((await wrongModes(dataDir)).wrong, [], 'after the vault closed');
  // An index an older version made 0644 is set to 0600 when the vault opens.
  const index = (await readdir(join(dataDir, 'users'))).map((id) => join(dataDir, 'users', id, 'index.db'))[0]!;
  await chmod(index, 0o644);
  const again = await user.open();
  again.vault.close();
  again.keyring.lock();
  assert.equal((await lstat(index)).mode & 0o777, 0o600, 'an old 0644 index is 0600 after an open');
});
