// Runs every compiled test file (dist/test/**/*.test.js) with Node's test
// runner. Test files are listed explicitly so the same command works on
// Node 20, 22 and 24.
//
// First it checks that the Debian packages the tests drive (real clients and
// servers, see docs in /work/shared/docs/test-servers.md) are installed. When one
// is missing and we are root with apt-get, it installs it; otherwise it names
// the missing packages and fails. A test is never skipped for a missing tool.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, readdirSync } from 'node:fs';
import { delimiter, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * Debian packages the tests need, each with one command it installs. The one
 * place to add more, e.g. { pkg: 'slapd', command: 'slapd' },
 * { pkg: 'ldap-utils', command: 'ldapsearch' }, { pkg: 'samba', command: 'smbd' },
 * { pkg: 'smbclient', command: 'smbclient' }.
 */
const REQUIRED_PACKAGES = [
  { pkg: 'litmus', command: 'litmus' },
  { pkg: 'rclone', command: 'rclone' },
  { pkg: 'curl', command: 'curl' }, // the README's examples and the HTTP benchmarks
  { pkg: 'slapd', command: 'slapd' },
  { pkg: 'ldap-utils', command: 'ldapmodify' },
  { pkg: 'samba', command: 'smbd' },
  // A metapackage without commands of its own (it pulls in samba-dsdb-modules, the AD DC's
  // database modules): `samba` is the binary it exists for.
  { pkg: 'samba-ad-dc', command: 'samba' },
  { pkg: 'smbclient', command: 'smbclient' },
  { pkg: 'ldb-tools', command: 'ldbmodify' }, // the shipped Samba AD kit (deploy/active-directory/samba/) applies LDIF with it
  { pkg: 'krb5-user', command: 'kinit' },
  { pkg: 'winbind', command: 'winbindd' },
  { pkg: 'systemd', command: 'systemd-analyze' }, // checks the shipped unit file
  { pkg: 'coreutils', command: 'stdbuf' }, // the SMB target runs smbclient unbuffered
  { pkg: 'e2fsprogs', command: 'mkfs.ext4' }, // a small, full ext4 data disk (loop-mounted)
  // The Debian package: built (dpkg-deb, dpkg-shlibdeps, strip), checked (lintian), installed (adduser).
  { pkg: 'dpkg-dev', command: 'dpkg-shlibdeps' },
  { pkg: 'binutils', command: 'strip' },
  { pkg: 'lintian', command: 'lintian' },
  { pkg: 'adduser', command: 'adduser' },
  { pkg: 'chromium', command: 'chromium' }, // the console's web page in a real headless browser (driven by playwright-core)
  // The console store's PostgreSQL half (test/helpers/postgres.ts); Debian keeps the server's programs off PATH.
  { pkg: 'postgresql', command: 'initdb', dirs: postgresBinDirs },
];

/** Where Debian keeps each installed PostgreSQL version's programs: /usr/lib/postgresql/<version>/bin. */
function postgresBinDirs() {
  try {
    return readdirSync('/usr/lib/postgresql').map((version) => join('/usr/lib/postgresql', version, 'bin'));
  } catch {
    return [];
  }
}

/** Full path of an executable on PATH (plus the sbin folders, where daemons live, and `extraDirs`), or null. */
function which(command, extraDirs = []) {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin', ...extraDirs];
  for (const dir of dirs.filter(Boolean)) {
    const file = join(dir, command);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

function missingPackages() {
  return REQUIRED_PACKAGES.filter((p) => which(p.command, p.dirs?.() ?? []) === null);
}

function aptGet(args) {
  process.stderr.write(`test: apt-get ${args.join(' ')}\n`);
  const r = spawnSync('apt-get', args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return r.status === 0;
}

function ensurePackages() {
  let missing = missingPackages();
  if (missing.length === 0) return;
  const names = () => missing.map((p) => p.pkg).join(' ');
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot && which('apt-get') !== null) {
    process.stderr.write(`test: installing Debian packages the tests need: ${names()}\n`);
    const ok = aptGet(['update']) && aptGet(['-o', 'DPkg::Lock::Timeout=600', 'install', '-y', ...missing.map((p) => p.pkg)]);
    missing = missingPackages();
    if (ok && missing.length === 0) return;
  }
  process.stderr.write(
    `test: the tests need these Debian packages, which are missing: ${names()}\n` +
      `test: (commands not found: ${missing.map((p) => p.command).join(', ')})\n` +
      `test: install them as root with:\n` +
      `test:   apt-get update && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y ${names()}\n`,
  );
  process.exit(1);
}

ensurePackages();

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? find(join(dir, e.name)) : e.name.endsWith('.test.js') ? [join(dir, e.name)] : []));
}

const only = process.argv.slice(2);
const files = find(join(root, 'dist', 'test'))
  .map((f) => relative(root, f))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();
if (files.length === 0) {
  process.stderr.write('test: no test files found under dist/test\n');
  process.exit(1);
}
// Every test has a timeout: 3 minutes unless it sets its own, so a hung request fails
// its test instead of hanging CI; after the last test a file's process exits even if
// something it started is still pending. The whole run is stopped after 40 minutes.
const TEST_TIMEOUT_MS = 180_000;
const RUN_TIMEOUT_MS = 40 * 60_000;
const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', `--test-timeout=${TEST_TIMEOUT_MS}`, '--test-force-exit', ...files], {
  cwd: root,
  stdio: 'inherit',
  timeout: RUN_TIMEOUT_MS,
  killSignal: 'SIGKILL',
});
if (r.error?.code === 'ETIMEDOUT') process.stderr.write(`test: the suite did not finish within ${RUN_TIMEOUT_MS / 60_000} minutes and was stopped\n`);
process.exit(r.status ?? 1);
