/**
 * Backups to a real smbd on loopback with the real CLI: backup, verify,
 * restore onto a new PC and recover, all over SMB; then a wrong password, a
 * missing share and an unreachable server, each a clear error (no password
 * in it) with the vault untouched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand, MYDOC_BIN, freePort, randomPassword } from './helpers/server.js';
import { snapshot } from './helpers/data-dir.js';
import { tempDir, patternBytes } from './helpers/keys.js';
import { startSmbd } from './helpers/smbd.js';
import { openUserVault } from '../shares/vault/user-vaults.js';
import { InsecureLocalFileSecretSource } from '../crypto/network-secret.js';

/** An administrator's machine of its own: its trust file (device keys trusted at first use) is not the real home's. */
const adminState = mkdtempSync(join(tmpdir(), 'mydoc-admin-state-'));
process.on('exit', () => rmSync(adminState, { recursive: true, force: true }));
const cli = (args: string[], cwd?: string) => runCommand(process.execPath, [MYDOC_BIN, ...args], { env: { ...process.env, MYDOC_CONFIG: '', XDG_STATE_HOME: adminState }, timeoutMs: 120_000, ...(cwd ? { cwd } : {}) });

async function pcConfig(dir: string, pcId: string, target: string[]): Promise<string> {
  const file = join(dir, 'mydoc.yaml');
  await writeFile(file, [`pcId: ${pcId}`, 'dataDir: data', 'listen:', '  host: "127.0.0.1"', `  port: ${await freePort()}`, 'directory:', '  kind: local', 'backup:', '  schedule: "off"', '  target:', ...target.map((l) => `    ${l}`), ''].join('\n'));
  const init = await cli(['init', '--config', file, '--recovery-key-out', join(dir, 'recovery-private.pem')]);
  assert.equal(init.status, 0, init.stderr);
  return file;
}

test('backup over SMB: backup, verify, restore and recover against a real smbd; clear errors, vault untouched', async (t) => {
  const smbd = await startSmbd();
  t.after(() => smbd.stop());
  const { dir, cleanup } = await tempDir('mydoc-smb-e2e-');
  t.after(cleanup);
  const url = `//127.0.0.1:${smbd.port}/nas/mydoc`;
  const pcDir = join(dir, 'pc');
  await mkdir(pcDir);
  const config = await pcConfig(pcDir, 'pc-smb', ['kind: smb', `url: "${url}"`, `authFile: ${smbd.authFile}`]);
  const password = randomPassword();
  assert.equal((await runCommand(process.execPath, [MYDOC_BIN, 'user', 'add', 'alice', '--password-stdin', '--config', config], { input: password, env: { ...process.env, MYDOC_CONFIG: '' } })).status, 0);
  const dataDir = join(pcDir, 'data');
  const source = new InsecureLocalFileSecretSource(join(dataDir, 'local-directory', 'INSECURE-network-secrets.json'));
  const { keyring, vault } = await openUserVault(dataDir, 'pc-smb', 'alice', source);
  for (let i = 0; i < 30; i++) await vault.write(`/Documents/doc-${i}.bin`, [patternBytes(1000 + i * 3000, i)]);
  await vault.write('/Desktop/big.bin', [patternBytes(5_000_000, 9)]);
  vault.close();
  keyring.lock();

  const backup = await cli(['backup', '--config', config]);
  assert.equal(backup.status, 0, backup.stderr);
  const summary = JSON.parse(backup.stdout) as { status: string; objects: number; objectsCopied: number };
  assert.equal(summary.status, 'complete');
  assert.equal(summary.objectsCopied, summary.objects);
  const again = await cli(['backup', '--config', config]);
  assert.equal(JSON.parse(again.stdout).objectsCopied, 0, 'incremental over SMB: nothing new, nothing copied');
  const verify = await cli(['backup', 'verify', '--read-data', '100', '--config', config]);
  assert.equal(verify.status, 0, verify.stdout + verify.stderr);
  assert.match((await cli(['backup', 'list', '--config', config])).stdout, /1 user\(s\)/);

  // Recover straight from the share with only the recovery key.
  const key = join(pcDir, 'recovery-private.pem');
  const out = join(dir, 'recovered');
  const rec = await cli(['recover', '--recovery-key', key, '--from', url, '--auth-file', smbd.authFile, '--pc', 'pc-smb', '--extract', '/alice/Desktop/big.bin', '--to', out], dir);
  assert.equal(rec.status, 0, rec.stderr);
  assert.deepEqual(await readFile(join(out, 'big.bin')), patternBytes(5_000_000, 9));

  // Restore onto a new PC from the share.
  const newDir = join(dir, 'newpc');
  await mkdir(newDir);
  const newConfig = await pcConfig(newDir, 'pc-new', ['kind: path', 'path: nas']);
  const restored = await cli(['restore', '--config', newConfig, '--from', url, '--auth-file', smbd.authFile, '--recovery-key', key, '--pc', 'pc-smb']);
  assert.equal(restored.status, 0, restored.stderr);
  const newSource = new InsecureLocalFileSecretSource(join(newDir, 'data', 'local-directory', 'INSECURE-network-secrets.json'));
  const opened = await openUserVault(join(newDir, 'data'), 'pc-new', 'alice', newSource);
  try {
    assert.equal(opened.vault.list('/Documents').length, 30);
    const { stream } = await opened.vault.read('/Documents/doc-29.bin');
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    assert.deepEqual(Buffer.concat(chunks), patternBytes(1000 + 29 * 3000, 29));
  } finally {
    opened.vault.close();
    opened.keyring.lock();
  }

  // Failures: each a clear one-line error, exit 1, no password, the data folder unchanged.
  const before = await snapshot(dataDir);
  const wrongAuth = join(dir, 'wrong-auth');
  await writeFile(wrongAuth, `username = ${smbd.user}\npassword = not-the-password-${password}\ndomain = WORKGROUP\n`);
  await chmod(wrongAuth, 0o600);
  const cases: [string, string[], RegExp][] = [
    ['wrong password', ['kind: smb', `url: "${url}"`, `authFile: ${wrongAuth}`], /refused the user name or password/],
    ['missing share', ['kind: smb', `url: "//127.0.0.1:${smbd.port}/no-such-share"`, `authFile: ${smbd.authFile}`], /share|NO_SHARE|BAD_NETWORK_NAME/i],
    ['unreachable server', ['kind: smb', `url: "//127.0.0.1:${await freePort()}/nas"`, `authFile: ${smbd.authFile}`], /unreachable|cannot reach|refused the connection|connect/i],
  ];
  for (const [name, target, pattern] of cases) {
    const text = (await readFile(config, 'utf8')).replace(/  target:\n[\s\S]*$/, `  target:\n${target.map((l) => `    ${l}`).join('\n')}\n`);
    await writeFile(config, text);
    const r = await cli(['backup', '--config', config]);
    assert.equal(r.status, 1, `${name}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, `${name}: one line: ${r.stderr}`);
    assert.match(r.stderr, /^mydoc: /);
    assert.match(r.stderr, pattern, name);
    assert.doesNotMatch(r.stderr + r.stdout, new RegExp(password), `${name}: no password in the output`);
    assert.doesNotMatch(r.stderr + r.stdout, new RegExp(smbd.password), `${name}: no share password in the output`);
    assert.doesNotMatch(r.stderr, /internal error/);
  }
  assert.deepEqual(await snapshot(dataDir), before, 'the data folder is untouched by failed backups');
});
