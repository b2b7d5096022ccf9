/**
 * The Debian package (scripts/build-deb.mjs), built from this checkout:
 * its control fields, file list, modes and conffiles; lintian's verdict
 * (no error; only the warnings the README accepts); the bundled runtime
 * running from an extracted copy; and a real `dpkg -i` on this machine: the
 * `mydoc` command, the mydoc user, /var/lib/mydoc 0700, the shipped
 * configuration refused until edited and accepted by `mydoc init` once
 * edited, an edited conffile kept over a reinstall, the units accepted by
 * systemd, the service answering WebDAV as the mydoc user, and a purge that
 * keeps the data. The machine is left as it was found.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chown, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchDaemon, stopDaemon } from './helpers/daemon.js';
import { tempDir } from './helpers/keys.js';
import { freePort, randomPassword, runCommand } from './helpers/server.js';

const BUILD = fileURLToPath(new URL('../../scripts/build-deb.mjs', import.meta.url));
/** lintian warnings accepted, each for the reason the README gives ("The Debian package"). */
const ACCEPTED_WARNINGS = new Set(['script-not-executable', 'hardening-no-pie', 'embedded-javascript-library']);
/** Left by an interrupted run of this test, so the next one may purge what it installed. */
const MARKER = '/var/lib/mydoc/.installed-by-mydoc-package-test';

let deb = '';
let work = '';
const cleanups: (() => Promise<void>)[] = [];

before(async () => {
  const { dir, cleanup } = await tempDir('mydoc-deb-test-');
  cleanups.push(cleanup);
  work = dir;
  const built = await runCommand(process.execPath, [BUILD, '--out', join(dir, 'out')], { timeoutMs: 300_000 });
  assert.equal(built.status, 0, `build-deb failed:\n${built.stderr}`);
  deb = built.stdout.trim();
  assert.ok(existsSync(deb), `build-deb printed ${deb}`);
});

after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function ok(command: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  const r = await runCommand(command, args, { timeoutMs: 120_000, ...opts });
  assert.equal(r.status, 0, `${command} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

interface Entry {
  mode: string;
  owner: string;
  path: string;
}

/** `dpkg-deb -c`: "drwxr-xr-x root/root 0 2026-12-03 14:38 ./etc/" per entry. */
async function contents(): Promise<Entry[]> {
  return (await ok('dpkg-deb', ['-c', deb]))
    .trim()
    .split('\n')
    .map((line) => {
      const [mode, owner, , , , ...rest] = line.split(/\s+/);
      return { mode: mode!, owner: owner!, path: rest.join(' ').replace(/^\.\//, '/') };
    });
}

test('control: package mydoc, the version of package.json, dependencies from the binaries, no Node.js dependency', async () => {
  const field = async (name: string) => (await ok('dpkg-deb', ['-f', deb, name])).trim();
  const pkg = JSON.parse(await readFile(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version: string };
  assert.equal(await field('Package'), 'mydoc');
  assert.equal(await field('Version'), pkg.version);
  assert.equal(await field('Architecture'), (await ok('dpkg', ['--print-architecture'])).trim());
  const depends = await field('Depends');
  assert.match(depends, /^adduser, /);
  assert.match(depends, /libc6 \(>= [\d.]+\)/);
  assert.match(depends, /libstdc\+\+6 \(>= [\d.]+\)/);
  assert.doesNotMatch(depends, /nodejs/, 'the runtime is in the package');
  assert.ok(Number(await field('Installed-Size')) > 50_000, 'Installed-Size counts the runtime');
});

test('files: only under /usr/lib/mydoc, /usr/bin/mydoc, /etc/mydoc, the units and the docs; owned by root; 0755 dirs, 0644 files, two programs', async () => {
  const entries = await contents();
  const paths = new Set(entries.map((e) => e.path));
  const allowed = [/^\/$/, /^\/etc\/(mydoc\/)?/, /^\/lib\/(systemd\/(system\/)?)?/, /^\/usr\/(bin\/(mydoc)?|lib\/(mydoc\/.*)?|share\/(doc\/(mydoc\/.*)?|man\/(man1\/(mydoc\.1\.gz)?)?|lintian\/(overrides\/(mydoc)?)?)?)?$/];
  for (const e of entries) {
    assert.ok(allowed.some((re) => re.test(e.path)), `unexpected path ${e.path}`);
    assert.equal(e.owner, 'root/root', `${e.path} is owned by ${e.owner}`);
  }
  for (const p of [
    '/usr/bin/mydoc',
    '/usr/lib/mydoc/bin/node',
    '/usr/lib/mydoc/bin/mydoc.js',
    '/usr/lib/mydoc/package.json',
    '/usr/lib/mydoc/dist/server/cli/main.js',
    '/usr/lib/mydoc/node_modules/better-sqlite3-multiple-ciphers/build/Release/better_sqlite3.node',
    '/etc/mydoc/config.yaml',
    '/etc/mydoc/console.yaml',
    '/lib/systemd/system/mydoc.service',
    '/lib/systemd/system/mydoc-console.service',
    '/usr/share/doc/mydoc/copyright',
    '/usr/share/doc/mydoc/changelog.gz',
    '/usr/share/doc/mydoc/nodejs-LICENSE',
    '/usr/share/doc/mydoc/active-directory/mydoc-schema.ldif',
    '/usr/share/doc/mydoc/openldap/mydoc.schema',
    '/usr/share/man/man1/mydoc.1.gz',
  ]) {
    assert.ok(paths.has(p), `${p} is in the package`);
  }
  const executables = entries.filter((e) => e.mode.startsWith('-') && e.mode.includes('x')).map((e) => e.path);
  assert.deepEqual(executables.sort(), ['/usr/bin/mydoc', '/usr/lib/mydoc/bin/node']);
  for (const e of entries) assert.ok(e.mode === (e.mode.startsWith('d') ? 'drwxr-xr-x' : executables.includes(e.path) ? '-rwxr-xr-x' : '-rw-r--r--'), `${e.path} has mode ${e.mode}`);
  // Not shipped: tests, source maps, TypeScript, dev dependencies, the addon's C sources and objects, data.
  for (const p of paths) {
    assert.doesNotMatch(p, /^\/usr\/lib\/mydoc\/dist\/test\/|\.map$|\.ts$|\/node_modules\/(typescript|playwright-core|@types|\.bin)\/|better-sqlite3-multiple-ciphers\/(deps|src|build\/Release\/obj)|^\/var\//, `${p} should not be shipped`);
  }
});

test('conffiles: /etc/mydoc/config.yaml and console.yaml, left out of md5sums', async () => {
  const conffiles = (await ok('dpkg-deb', ['-I', deb, 'conffiles'])).trim().split('\n');
  assert.deepEqual(conffiles, ['/etc/mydoc/config.yaml', '/etc/mydoc/console.yaml']);
  const md5sums = await ok('dpkg-deb', ['-I', deb, 'md5sums']);
  assert.match(md5sums, / {2}usr\/lib\/mydoc\/bin\/node$/m);
  assert.doesNotMatch(md5sums, /etc\/mydoc/);
});

test('lintian: no error, and no warning but the accepted ones', { timeout: 300_000 }, async () => {
  const r = await runCommand('lintian', ['--no-tag-display-limit', deb], { timeoutMs: 280_000 });
  const tags = [...r.stdout.matchAll(/^([EW]): mydoc: (\S+) (.*)$/gm)].map(([, level, tag, where]) => ({ level, tag: tag!, where: where! }));
  assert.deepEqual(tags.filter((t) => t.level === 'E'), [], `lintian errors:\n${r.stdout}`);
  const unexpected = tags.filter((t) => t.level === 'W' && !ACCEPTED_WARNINGS.has(t.tag));
  assert.deepEqual(unexpected, [], `lintian warnings not accepted in the README:\n${r.stdout}`);
  for (const t of tags.filter((t) => t.tag === 'script-not-executable')) assert.match(t.where, /usr\/lib\/mydoc\/node_modules\//, 'only npm packages\' own command-line entry points');
  assert.ok(r.status === 0 || r.status === 2, `lintian ran (exit ${r.status}): ${r.stderr}`);
});

test('extracted with dpkg-deb -x, the bundled runtime runs "mydoc --help" and the SQLite cipher addon', async () => {
  const root = join(work, 'extracted');
  await ok('dpkg-deb', ['-x', deb, root]);
  const node = join(root, 'usr/lib/mydoc/bin/node');
  const env = { PATH: '/usr/sbin:/sbin:/bin' };
  const help = await runCommand(node, [join(root, 'usr/lib/mydoc/bin/mydoc.js'), '--help'], { env });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /mydoc init --config FILE/);
  assert.match(help.stdout, /mydoc console serve/);
  const version = await runCommand(node, ['-p', 'process.versions.node'], { env });
  assert.match(version.stdout, /^(2\d|[3-9]\d)\./, 'Node.js 20 or newer');
  // An encrypted database written and read again; the file holds no plaintext.
  const dbFile = join(work, 'cipher.db');
  const script = `const D = (await import('better-sqlite3-multiple-ciphers')).default;
    let db = new D(${JSON.stringify(dbFile)}); db.pragma("key='k'"); db.exec("create table t (v text); insert into t values ('plain-marker')"); db.close();
    db = new D(${JSON.stringify(dbFile)}); db.pragma("key='k'"); console.log(db.prepare('select v from t').get().v);`;
  const sqlite = await runCommand(node, ['--input-type=module', '-e', script], { cwd: join(root, 'usr/lib/mydoc'), env });
  assert.equal(sqlite.stdout.trim(), 'plain-marker', sqlite.stderr);
  assert.equal((await readFile(dbFile)).includes('plain-marker'), false, 'the database file is encrypted');
  const wrapper = await readFile(join(root, 'usr/bin/mydoc'), 'utf8');
  assert.match(wrapper, /^exec \/usr\/lib\/mydoc\/bin\/node \/usr\/lib\/mydoc\/bin\/mydoc\.js "\$@"$/m);
});

/** Runs mydoc as the mydoc user (setpriv execs it: no process in between). */
function asMydoc(args: string[], input = '') {
  return runCommand('setpriv', ['--reuid=mydoc', '--regid=mydoc', '--init-groups', '--', '/usr/bin/mydoc', ...args], { input, timeoutMs: 120_000 });
}

async function mode(path: string): Promise<{ mode: string; uid: number }> {
  const s = await stat(path);
  return { mode: (s.mode & 0o7777).toString(8), uid: s.uid };
}

/** Leaves the machine as it was: the package purged, /etc/mydoc and /var/lib/mydoc gone, the mydoc user removed. */
async function uninstallAll(): Promise<void> {
  await runCommand('dpkg', ['--purge', 'mydoc'], { timeoutMs: 120_000 });
  await rm('/etc/mydoc', { recursive: true, force: true });
  await rm('/var/lib/mydoc', { recursive: true, force: true });
  await runCommand('deluser', ['--system', '--quiet', 'mydoc'], { timeoutMs: 60_000 });
  await runCommand('delgroup', ['--system', '--quiet', 'mydoc'], { timeoutMs: 60_000 });
}

test('installed with dpkg -i: mydoc on the PATH, the mydoc user, /var/lib/mydoc 0700, the example configuration, the units, the service; purge keeps the data', { timeout: 300_000 }, async () => {
  assert.equal(process.getuid?.(), 0, 'installing the package needs root (the test command runs as root on Debian 12)');
  const installed = await runCommand('dpkg-query', ['-W', '-f', '${Status}', 'mydoc']);
  if (installed.stdout.includes('installed')) {
    assert.ok(existsSync(MARKER), 'a mydoc package this test did not install is on this machine: the test installs and purges its own, so remove it first');
  }
  await uninstallAll();
  cleanups.push(uninstallAll);

  await ok('dpkg', ['-i', deb]);
  await writeFile(MARKER, '');
  const help = await runCommand('mydoc', ['--help'], { env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' } });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^mydoc — My Doc Manager/);

  const passwd = (await ok('getent', ['passwd', 'mydoc'])).trim().split(':');
  assert.ok(Number(passwd[2]) < 1000, `a system user (uid ${passwd[2]})`);
  assert.equal(passwd[5], '/var/lib/mydoc');
  assert.match(passwd[6]!, /nologin|false/);
  const uid = Number(passwd[2]);
  assert.deepEqual(await mode('/var/lib/mydoc'), { mode: '700', uid });

  // The shipped example is refused as it is, naming the first value to fill in.
  const unedited = await asMydoc(['init']);
  assert.equal(unedited.status, 1);
  assert.equal(unedited.stderr, 'mydoc: config: pcId: must be a non-empty string (got "")\n');
  const uneditedConsole = await asMydoc(['console', 'init']);
  assert.equal(uneditedConsole.status, 1);
  assert.match(uneditedConsole.stderr, /^mydoc: config: directory\.ldap\.urls: is required/);

  // Edited as the comments say, "mydoc init" accepts it.
  const fill = (text: string, pairs: [string, string][]) => pairs.reduce((t, [from, to]) => (assert.ok(t.includes(from), `the example has ${from}`), t.replace(from, to)), text);
  const config = fill(await readFile('/etc/mydoc/config.yaml', 'utf8'), [
    ['pcId: ""', 'pcId: PC-0042'],
    ['urls: []', 'urls: [ldaps://dc1.corp.example]'],
    ['baseDn: ""', 'baseDn: "DC=corp,DC=example"'],
    ['serviceDn: ""', 'serviceDn: "CN=svc-PC-0042,OU=mydoc-services,DC=corp,DC=example"'],
    ['keyDnTemplate: ""', 'keyDnTemplate: "CN={user},OU={pcId},OU=mydoc-keys,DC=corp,DC=example"'],
    ['url: ""', 'url: "//nas.corp.example/mydoc"'],
  ]);
  await writeFile('/etc/mydoc/config.yaml', config);
  const recovery = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' });
  await writeFile('/etc/mydoc/recovery-public.pem', recovery);
  const init = await asMydoc(['init']);
  assert.equal(init.status, 0, init.stderr);
  assert.deepEqual(await mode('/var/lib/mydoc/agent'), { mode: '700', uid });

  const consoleConfig = fill(await readFile('/etc/mydoc/console.yaml', 'utf8'), [
    ['urls: []', 'urls: [ldaps://dc1.corp.example]'],
    ['baseDn: ""', 'baseDn: "DC=corp,DC=example"'],
    ['serviceDn: ""', 'serviceDn: "CN=svc-mydoc-console,OU=mydoc-services,DC=corp,DC=example"'],
    ['approver: []', 'approver: ["CN=mydoc-approvers,OU=Groups,DC=corp,DC=example"]'],
  ]);
  await writeFile('/etc/mydoc/console.yaml', consoleConfig);
  const consoleInit = await asMydoc(['console', 'init']);
  assert.equal(consoleInit.status, 0, consoleInit.stderr);
  assert.deepEqual(await mode('/var/lib/mydoc/console'), { mode: '700', uid });

  // A reinstall keeps the administrator's edits of the conffiles.
  await ok('dpkg', ['-i', deb]);
  assert.equal(await readFile('/etc/mydoc/config.yaml', 'utf8'), config);
  assert.equal(await readFile('/etc/mydoc/console.yaml', 'utf8'), consoleConfig);

  // systemd accepts the installed units (User=mydoc exists, ExecStart is the installed command).
  const verify = await runCommand('systemd-analyze', ['verify', '--man=no', '/lib/systemd/system/mydoc.service', '/lib/systemd/system/mydoc-console.service'], { timeoutMs: 60_000 });
  assert.equal(verify.status, 0, verify.stderr);
  assert.equal(verify.stderr.trim(), '', `systemd-analyze complained: ${verify.stderr}`);

  // The installed service answers WebDAV as the mydoc user (here with the embedded local directory).
  // A folder of the mydoc user's own (the test's work folder is root's, 0700).
  const site = await mkdtemp(join(tmpdir(), 'mydoc-pkg-serve-'));
  cleanups.push(() => rm(site, { recursive: true, force: true }));
  await chown(site, uid, uid);
  const port = await freePort();
  await writeFile(join(site, 'config.yaml'), `pcId: pkg-test\ndataDir: /var/lib/mydoc/pkg-test\nlisten: { port: ${port} }\ndirectory: { kind: local }\nbackup: { target: { kind: path, path: ${join(site, 'nas')} } }\n`);
  await chown(join(site, 'config.yaml'), uid, uid);
  const cfg = ['--config', join(site, 'config.yaml')];
  const localInit = await asMydoc(['init', ...cfg, '--recovery-key-out', join(site, 'recovery.pem')]);
  assert.equal(localInit.status, 0, localInit.stderr);
  const password = randomPassword();
  const add = await asMydoc(['user', 'add', 'alice', '--password-stdin', ...cfg], `${password}\n`);
  assert.equal(add.status, 0, add.stderr);
  const ca = '/var/lib/mydoc/pkg-test/tls/ca-cert.pem';
  const propfind = () => runCommand('curl', ['-sS', '--cacert', ca, '-u', `alice:${password}`, '-X', 'PROPFIND', '-H', 'Depth: 1', '-o', '/dev/null', '-w', '%{http_code}', `https://127.0.0.1:${port}/`], { timeoutMs: 10_000 });
  const service = await launchDaemon({
    name: 'mydoc serve (installed)',
    command: 'setpriv',
    args: ['--reuid=mydoc', '--regid=mydoc', '--init-groups', '--', '/usr/bin/mydoc', 'serve', ...cfg],
    ready: async () => (await propfind()).stdout === '207',
    readyTimeoutMs: 60_000,
    where: `https://127.0.0.1:${port}/`,
    graceMs: 30_000,
  });
  await stopDaemon(service, 30_000);
  assert.equal((await service.exited).code, 0, service.output());

  // Purge removes the program and the conffiles but never the data folder.
  await ok('dpkg', ['--purge', 'mydoc']);
  assert.equal(existsSync('/usr/bin/mydoc'), false);
  assert.equal(existsSync('/usr/lib/mydoc'), false);
  assert.equal(existsSync('/etc/mydoc/config.yaml'), false);
  assert.ok(existsSync('/var/lib/mydoc/agent/'), 'the agent\'s data folder is kept');
  assert.ok(existsSync('/var/lib/mydoc/console/'), 'the console\'s data folder is kept');
});
