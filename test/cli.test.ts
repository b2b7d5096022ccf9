import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile, stat, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { fileURLToPath } from 'node:url';
import { listUserDirs, openVaultForRecovery } from '../shares/vault/user-vaults.js';
import { snapshot } from './helpers/data-dir.js';
import { tempDir } from './helpers/keys.js';
import { freePort } from './helpers/server.js';

const bin = fileURLToPath(new URL('../../bin/mydoc.js', import.meta.url));

function mydoc(args: string[], opts: { input?: string; cwd?: string } = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], { input: opts.input ?? '', cwd: opts.cwd, encoding: 'utf8', env: { ...process.env, MYDOC_CONFIG: '' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A failure is exactly one line on stderr, starting with "mydoc: ". */
function assertOneLineError(r: { status: number | null; stderr: string }, status: number, pattern: RegExp): void {
  assert.equal(r.status, status, r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line expected, got: ${r.stderr}`);
  assert.match(lines[0]!, /^mydoc: /);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(lines[0]!, /internal error|    at /);
}

async function writeConfig(dir: string, extra = ''): Promise<string> {
  const file = join(dir, 'mydoc.yaml');
  await writeFile(file, `pcId: pc-cli\ndataDir: data\nlisten:\n  hostNames: [svc.corp.example, 10.1.2.3]\ndirectory:\n  kind: local\nbackup:\n  target:\n    kind: path\n    path: nas\n${extra}`);
  return file;
}

test('--help, --version, unknown commands and options', () => {
  const help = mydoc(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /mydoc init --config FILE/);
  assert.match(help.stdout, /mydoc user add NAME --password-stdin/);
  const version = mydoc(['--version']);
  assert.equal(version.status, 0);
  assert.match(version.stdout, /^mydoc \d+\.\d+\.\d+\n$/);
  assertOneLineError(mydoc(['frobnicate']), 2, /unknown command "frobnicate"/);
  assertOneLineError(mydoc(['init', '--config']), 2, /--config/);
  assertOneLineError(mydoc(['init', '--bogus']), 2, /bogus/);
  assertOneLineError(mydoc(['user', 'add', 'x', '--config', '/nonexistent.yaml', '--password-stdin']), 1, /nonexistent\.yaml does not exist/);
  assertOneLineError(mydoc(['user', 'add', 'x', '--config', '/nonexistent.yaml']), 2, /--password-stdin/);
});

test('init creates keys, TLS material and the recovery key pair; refuses to run twice', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const config = await writeConfig(dir);
    assertOneLineError(mydoc(['init', '--config', config]), 1, /recovery\.publicKey is not configured.*--recovery-key-out/);
    assertOneLineError(mydoc(['init', '--config', config, '--recovery-key-out', join(dir, 'data', 'rk.pem')]), 1, /inside the data folder/);
    const taken = join(dir, 'taken.pem');
    await writeFile(taken, 'keep me');
    assertOneLineError(mydoc(['init', '--config', config, '--recovery-key-out', taken]), 1, /taken\.pem already exists; refusing to overwrite it/);
    assert.equal(await readFile(taken, 'utf8'), 'keep me');
    await assert.rejects(stat(join(dir, 'data')), 'nothing was written before the refusal');

    const out = join(dir, 'offline', 'recovery-private.pem');
    const r = mydoc(['init', '--config', config, '--recovery-key-out', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /RECOVERY PRIVATE KEY WRITTEN TO .*recovery-private\.pem/);
    assert.match(r.stderr, /Move it OFF this PC/);
    for (const [file, mode] of [
      [out, 0o600],
      [join(dir, 'data/keys/device-key.pem'), 0o600],
      [join(dir, 'data/tls/server-key.pem'), 0o600],
    ] as const) {
      assert.equal((await stat(file)).mode & 0o777, mode, file);
    }
    createPrivateKey(await readFile(out, 'utf8'));
    const ca = new X509Certificate(await readFile(join(dir, 'data/tls/ca-cert.pem')));
    const cert = new X509Certificate(await readFile(join(dir, 'data/tls/server-cert.pem')));
    assert.ok(cert.verify(ca.publicKey));
    assert.ok(cert.checkIP('127.0.0.1'));
    assert.ok(cert.checkIP('10.1.2.3'));
    assert.ok(cert.checkHost('svc.corp.example'));

    const before = await snapshot(join(dir, 'data'));
    assertOneLineError(mydoc(['init', '--config', config, '--recovery-key-out', join(dir, 'other.pem')]), 1, /already initialised/);
    assert.deepEqual(await snapshot(join(dir, 'data')), before, 'a second init changed nothing');
  } finally {
    await cleanup();
  }
});

test('user add: password from stdin, clear refusals, and the recovery key opens the new vault', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const config = await writeConfig(dir);
    assertOneLineError(mydoc(['user', 'add', 'alice', '--password-stdin', '--config', config], { input: 'correct horse' }), 1, /not initialised.*mydoc init/);
    const rk = join(dir, 'rk.pem');
    assert.equal(mydoc(['init', '--config', config, '--recovery-key-out', rk]).status, 0);

    assertOneLineError(mydoc(['user', 'add', 'alice', '--password-stdin', '--config', config], { input: 'short\n' }), 1, /at least 8 characters/);
    assertOneLineError(mydoc(['user', 'add', 'al/ice', '--password-stdin', '--config', config], { input: 'correct horse' }), 1, /invalid user name/);
    const ok = mydoc(['user', 'add', 'alice', '--password-stdin', '--config', config], { input: 'correct horse\n' });
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /added user "alice"/);
    assert.match(ok.stderr, /INSECURE/);
    assertOneLineError(mydoc(['user', 'add', 'ALICE', '--password-stdin', '--config', config], { input: 'correct horse' }), 1, /already exists/);

    // Each enrolment, and each refused one, is audited; the chain holds.
    const log = (await readFile(join(dir, 'data/audit/audit.log'), 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, string>);
    const enrolments = log.filter((r) => r.action === 'user.enrol').map((r) => [r.actor, r.target, r.decision, r.reason]);
    const actor = `local:${userInfo().username}`;
    assert.deepEqual(enrolments, [
      [actor, 'alice', 'deny', 'mydoc user add: the password must have at least 8 characters'],
      [actor, 'al/ice', 'deny', enrolments[1]![3]],
      [actor, 'alice', 'allow', 'mydoc user add (local directory)'],
      [actor, 'ALICE', 'deny', 'mydoc user add: user "ALICE" already exists in the local directory'],
    ]);
    assert.doesNotMatch(JSON.stringify(log), /correct horse|short/, 'no password in the audit log');
    assert.equal(mydoc(['audit', 'verify', '--config', config]).status, 0);

    const users = await readFile(join(dir, 'data/local-directory/users.json'), 'utf8');
    assert.doesNotMatch(users, /correct horse/);
    assert.match(users, /scrypt\$/);

    const dirs = await listUserDirs(join(dir, 'data'));
    assert.equal(dirs.length, 1);
    const recovered = await openVaultForRecovery(dirs[0]!, createPrivateKey(await readFile(rk, 'utf8')));
    assert.equal(recovered.user, 'alice');
    assert.deepEqual(recovered.vault.list('/').map((e) => e.name).sort(), ['Desktop', 'Documents', 'Profile']);
    recovered.vault.close();
  } finally {
    await cleanup();
  }
});

test('configuration errors name the offending key', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const cases: [string, RegExp][] = [
      ['pcId: "bad id!"\n', /config: pcId: /],
      ['pcId: pc\ndataDir: d\nlisten:\n  port: 70000\ndirectory:\n  kind: local\nbackup:\n  target:\n    kind: path\n    path: n\n', /config: listen\.port: /],
      ['pcId: pc\ndataDir: d\ndirectory:\n  kind: ldapx\nbackup:\n  target:\n    kind: path\n    path: n\n', /config: directory\.kind: /],
      ['pcId: pc\ndataDir: d\ndirectory:\n  kind: local\nbackup:\n  target:\n    kind: ftp\n', /config: backup\.target\.kind: /],
      ['pcId: pc\ndataDir: d\ndirectory:\n  kind: local\nbackup:\n  target:\n    kind: path\n    path: n\nrecovery:\n  publicKey: 5\n', /config: recovery\.publicKey: /],
      ['pcId: pc\ndataDir: d\nlisten:\n  prot: 1\ndirectory:\n  kind: local\nbackup:\n  target:\n    kind: path\n    path: n\n', /config: listen\.prot: unknown key/],
    ];
    await mkdir(dir, { recursive: true });
    for (const [text, pattern] of cases) {
      const file = join(dir, 'c.yaml');
      await writeFile(file, text);
      assertOneLineError(mydoc(['init', '--config', file, '--recovery-key-out', join(dir, 'k.pem')]), 1, pattern);
    }
  } finally {
    await cleanup();
  }
});

/** Runs `mydoc demo` until it serves, then stops it with SIGTERM; returns its output and exit status. */
async function runDemo(cwd: string, port: number): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [bin, 'demo', '--port', String(port)], { cwd, env: { ...process.env, MYDOC_CONFIG: '' } });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo did not start: ${stdout} ${stderr}`)), 30_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes('mydoc: serving')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  child.kill('SIGTERM');
  return { status: await exited, stdout, stderr };
}

test('demo (npm start): first run sets everything up, prints the password and serves; the second run reuses it', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const port = await freePort();
    const first = await runDemo(dir, port);
    assert.equal(first.status, 0, first.stderr);
    const password = /password: (\S+)/.exec(first.stdout)?.[1];
    assert.ok(password && password.length >= 16);
    assert.match(first.stdout, new RegExp(`mydoc: serving https://127\\.0\\.0\\.1:${port}/`));
    assert.match(first.stdout, new RegExp(`net use Z: https://127\\.0\\.0\\.1:${port}/`));
    assert.match(first.stderr, /INSECURE/);
    const config = join(dir, 'demo', 'mydoc.yaml');
    const before = await snapshot(join(dir, 'demo', 'data', 'keys'));
    const second = await runDemo(dir, port);
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stdout, /already set up/);
    assert.doesNotMatch(second.stdout, new RegExp(password));
    assert.deepEqual(await snapshot(join(dir, 'demo', 'data', 'keys')), before, 'keys untouched on the second run');
    assert.match(await readFile(config, 'utf8'), new RegExp(`port: ${port}`));
  } finally {
    await cleanup();
  }
});
