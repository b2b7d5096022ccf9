// Builds the Debian package of mydoc (agent and console) from this checkout,
// after "npm run build" (what "npm run package" does):
//
//   node scripts/build-deb.mjs [--out DIR] [--node FILE] [--node-license FILE] [--compression xz|gzip|zstd]
//
// The package carries its own Node.js runtime (the one running this script,
// or --node) and the SQLite cipher addon compiled for it, so installing it
// needs neither Node.js (Debian 12 has 18) nor a compiler. It is made with
// dpkg-deb from deploy/debian/ and deploy/systemd/; what goes where is in the
// README ("The Debian package"). Prints the path of the .deb it wrote.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';

const root = fileURLToPath(new URL('..', import.meta.url));
const debianDir = join(root, 'deploy/debian');
const SOURCE_DIRS = ['server', 'crypto', 'policy', 'shares', 'backup'];
const CONFFILES = ['/etc/mydoc/config.yaml', '/etc/mydoc/console.yaml'];
const UNITS = ['mydoc.service', 'mydoc-console.service'];
const ADDON = 'better-sqlite3-multiple-ciphers';
const ADDON_BINARY = 'build/Release/better_sqlite3.node';

function fail(message) {
  process.stderr.write(`build-deb: ${message}\n`);
  process.exit(1);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) fail(`cannot run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`"${cmd} ${args.join(' ')}" failed (exit ${r.status ?? r.signal}): ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

function requireTools() {
  const tools = { 'dpkg-deb': 'dpkg', 'dpkg-shlibdeps': 'dpkg-dev', strip: 'binutils' };
  const missing = Object.entries(tools).filter(([tool]) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
  if (missing.length > 0) fail(`missing ${missing.map(([t, p]) => `${t} (Debian package ${p})`).join(', ')}`);
}

function options() {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        out: { type: 'string', default: join(root, 'dist/package') },
        node: { type: 'string', default: process.execPath },
        'node-license': { type: 'string' },
        compression: { type: 'string', default: 'xz' },
      },
    }).values;
  } catch (error) {
    fail(`${error.message}\nusage: node scripts/build-deb.mjs [--out DIR] [--node FILE] [--node-license FILE] [--compression xz|gzip|zstd]`);
  }
  if (!['xz', 'gzip', 'zstd'].includes(parsed.compression)) fail(`--compression must be xz, gzip or zstd (got "${parsed.compression}")`);
  return parsed;
}

/** The runtime to ship: Node.js 20 or newer (package.json's engines), with the license that must travel with it. */
function nodeRuntime(file, licenseOption) {
  const node = resolve(file);
  const [major, minor] = run(node, ['-p', 'process.versions.node']).trim().split('.').map(Number);
  if (major < 20 || (major === 20 && minor < 12)) fail(`${node} is Node.js ${major}.${minor}; the package ships Node.js 20.12 or newer`);
  const candidates = licenseOption ? [resolve(licenseOption)] : [join(dirname(node), '../share/doc/node/LICENSE'), '/usr/share/doc/nodejs/LICENSE', join(dirname(node), '../LICENSE')];
  const license = candidates.find((f) => existsSync(f));
  if (!license) fail(`cannot find the license of ${node} (looked at ${candidates.join(', ')}); pass --node-license FILE`);
  return { node, license };
}

function packageVersion() {
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const top = /^mydoc \(([^)]+)\)/.exec(readFileSync(join(debianDir, 'changelog'), 'utf8'))?.[1];
  if (top !== version) fail(`deploy/debian/changelog's latest entry is ${top ?? 'missing'}, package.json says ${version}: add a changelog entry`);
  return version;
}

/** Top-level folders of the production dependencies (nested ones come with their parent). */
function productionModules() {
  const r = spawnSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: root, encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) fail(`"npm ls --omit=dev" failed: the installed modules do not match package-lock.json (run npm ci): ${r.stderr.trim()}`);
  const dirs = r.stdout.split('\n').filter((line) => line.startsWith(join(root, 'node_modules/')));
  return dirs.filter((dir) => !dirs.some((other) => other !== dir && dir.startsWith(`${other}/`))).map((dir) => relative(root, dir));
}

/** What of an npm package's folder nothing loads at run time: its tests, tooling, TypeScript types, web pages. */
const UNUSED_FOLDERS = new Set(['test', 'tests', '__tests__', 'integration', 'benchmark', 'benchmarks', 'bench', 'example', 'examples', 'docs', 'scripts']);
const UNUSED_FILES = /\.(d\.[cm]?ts|ts|map|html|sh)$/;

/** Copies a module but for dot files (VCS, lint and npm settings) and the unused parts above. */
function moduleFilter(moduleDir) {
  return (src) => {
    const rel = relative(moduleDir, src);
    if (rel === '') return true;
    return !rel.split('/').some((part) => part.startsWith('.') || UNUSED_FOLDERS.has(part)) && !UNUSED_FILES.test(rel);
  };
}

/** The SQLite cipher addon without its C sources and object files: the compiled addon, its JS and metadata. */
function addonFilter(src) {
  const rel = relative(join(root, 'node_modules', ADDON), src);
  if (rel.startsWith('deps') || rel.startsWith('src')) return false;
  if (rel === 'build' || rel === 'build/Release' || rel === ADDON_BINARY) return true;
  return !rel.startsWith('build') && moduleFilter(join(root, 'node_modules', ADDON))(src);
}

function copyProgram(lib) {
  if (!existsSync(join(root, 'dist/server/cli/main.js'))) fail('dist/ is not built: run "npm run build" first');
  for (const dir of SOURCE_DIRS) {
    cpSync(join(root, 'dist', dir), join(lib, 'dist', dir), { recursive: true, filter: (src) => !src.endsWith('.map') });
  }
  // The wrapper /usr/bin/mydoc runs it with the bundled runtime: no "#!/usr/bin/env node" line.
  mkdirSync(join(lib, 'bin'), { recursive: true });
  writeFileSync(join(lib, 'bin/mydoc.js'), readFileSync(join(root, 'bin/mydoc.js'), 'utf8').replace(/^#!.*\n/, ''));
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const { name, version, description, type, license, private: isPrivate } = pkg;
  writeFileSync(join(lib, 'package.json'), `${JSON.stringify({ name, version, description, type, license, private: isPrivate }, null, 2)}\n`);
  const modules = productionModules();
  for (const dir of modules) {
    cpSync(join(root, dir), join(lib, dir), { recursive: true, filter: dir === `node_modules/${ADDON}` ? addonFilter : moduleFilter(join(root, dir)) });
  }
  if (!existsSync(join(lib, 'node_modules', ADDON, ADDON_BINARY))) fail(`the SQLite cipher addon is not built (${ADDON_BINARY}): run npm ci`);
  return modules;
}

/** Directories 0755; files 0644 but the two programs: nothing in node_modules runs on its own. */
function normaliseModes(dir, executables) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      chmodSync(path, 0o755);
      normaliseModes(path, executables);
    } else {
      chmodSync(path, executables.has(path) ? 0o755 : 0o644);
    }
  }
}

function walkFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? walkFiles(path) : [path];
  });
}

function renderManPage(version, helpText) {
  const commands = helpText
    .trimEnd()
    .split('\n')
    .map((line) => line.replaceAll('\\', '\\e').replaceAll('-', '\\-'))
    .map((line) => (/^[.']/.test(line) ? `\\&${line}` : line))
    .join('\n');
  const date = readFileSync(join(debianDir, 'changelog'), 'utf8').match(/^ -- .*? {2}\w+, (\d+) (\w+) (\d+)/m);
  return readFileSync(join(debianDir, 'mydoc.1.in'), 'utf8')
    .replace('@DATE@', date ? `${date[2]} ${date[3]}` : version)
    .replace('@VERSION@', version)
    .replace('@COMMANDS@', commands);
}

/** debian/copyright (DEP-5): mydoc, the Node.js runtime, and each bundled npm package with its own license file. */
function renderCopyright(pkg, lib, modules) {
  const sections = [
    'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
    'Upstream-Name: mydoc',
    'Comment: The Node.js runtime and the npm packages listed below are bundled; each',
    ' npm package keeps its own license file in its folder under',
    ' /usr/lib/mydoc/node_modules.',
    '',
    'Files: *',
    'Copyright: 2026 My Doc Manager developers',
    'License: proprietary',
    ' All rights reserved. For use inside the organisation that deployed it.',
    '',
    'Files: usr/lib/mydoc/bin/node',
    'Copyright: Node.js contributors and the authors of the software it bundles',
    'License: Expat-and-others',
    ' The full text, with the licenses of every library built into the binary,',
    ' is in /usr/share/doc/mydoc/nodejs-LICENSE.',
  ];
  const packages = modules.flatMap((dir) => walkFiles(join(lib, dir)).filter((f) => f.endsWith('/package.json')));
  const seen = new Set();
  for (const file of packages.sort()) {
    const folder = dirname(file);
    if (!/node_modules\/(@[^/]+\/)?[^/]+$/.test(folder)) continue;
    const meta = JSON.parse(readFileSync(file, 'utf8'));
    if (!meta.name || !meta.version) continue;
    const id = `${meta.name}@${meta.version}`;
    if (seen.has(id)) continue;
    seen.add(id);
    const license = typeof meta.license === 'string' ? meta.license : 'see its license file';
    const path = relative(pkg, folder);
    sections.push('', `Files: ${path}/*`, `Copyright: the authors of ${id}`, `License: ${license}`, ` The text is in /${path}/ (LICENSE or README).`);
  }
  return `${sections.join('\n')}\n`;
}

function shlibsDepends(stage, binaries) {
  mkdirSync(join(stage, 'debian'), { recursive: true });
  writeFileSync(join(stage, 'debian/control'), 'Source: mydoc\n\nPackage: mydoc\nArchitecture: any\n');
  const out = run('dpkg-shlibdeps', ['-O', ...binaries.map((b) => `-e${relative(stage, b)}`)], { cwd: stage });
  const depends = /shlibs:Depends=(.*)/.exec(out)?.[1];
  if (!depends) fail(`dpkg-shlibdeps printed no dependencies: ${out}`);
  rmSync(join(stage, 'debian'), { recursive: true });
  return depends;
}

function build() {
  const opts = options();
  requireTools();
  const version = packageVersion();
  const runtime = nodeRuntime(opts.node, opts['node-license']);
  const arch = run('dpkg', ['--print-architecture']).trim();

  const stage = mkdtempSync(join(tmpdir(), 'mydoc-deb-'));
  try {
    const pkg = join(stage, 'mydoc');
    const lib = join(pkg, 'usr/lib/mydoc');
    const modules = copyProgram(lib);
    const node = join(lib, 'bin/node');
    const addon = join(lib, 'node_modules', ADDON, ADDON_BINARY);
    run('strip', ['--strip-unneeded', '-o', node, runtime.node]);
    run('strip', ['--strip-unneeded', addon]);
    const wrapper = join(pkg, 'usr/bin/mydoc');
    mkdirSync(dirname(wrapper), { recursive: true });
    writeFileSync(wrapper, '#!/bin/sh\n# mydoc on the Node.js runtime it ships with (/usr/lib/mydoc/bin/node).\nexec /usr/lib/mydoc/bin/node /usr/lib/mydoc/bin/mydoc.js "$@"\n');

    // The staged tree runs: the addon loads in the bundled runtime, and the help text goes into the man page.
    chmodSync(node, 0o755);
    run(node, ['--input-type=module', '-e', `const D = (await import('${ADDON}')).default; new D(':memory:').close();`], { cwd: lib });
    const help = run(node, [join(lib, 'bin/mydoc.js'), '--help']);

    mkdirSync(join(pkg, 'etc/mydoc'), { recursive: true });
    for (const file of CONFFILES) cpSync(join(debianDir, file.split('/').at(-1)), join(pkg, file));
    mkdirSync(join(pkg, 'lib/systemd/system'), { recursive: true });
    for (const unit of UNITS) cpSync(join(root, 'deploy/systemd', unit), join(pkg, 'lib/systemd/system', unit));

    const doc = join(pkg, 'usr/share/doc/mydoc');
    mkdirSync(doc, { recursive: true });
    cpSync(join(root, 'README.md'), join(doc, 'README.md'));
    cpSync(join(root, 'server/console/README.md'), join(doc, 'console.md'));
    cpSync(join(root, 'deploy/active-directory'), join(doc, 'active-directory'), { recursive: true });
    cpSync(join(root, 'deploy/openldap'), join(doc, 'openldap'), { recursive: true });
    cpSync(runtime.license, join(doc, 'nodejs-LICENSE'));
    writeFileSync(join(doc, 'changelog.gz'), gzipSync(readFileSync(join(debianDir, 'changelog')), { level: 9 }));
    writeFileSync(join(doc, 'copyright'), renderCopyright(pkg, lib, modules));
    const overrides = join(pkg, 'usr/share/lintian/overrides/mydoc');
    mkdirSync(dirname(overrides), { recursive: true });
    cpSync(join(debianDir, 'lintian-overrides'), overrides);
    const man = join(pkg, 'usr/share/man/man1/mydoc.1.gz');
    mkdirSync(dirname(man), { recursive: true });
    writeFileSync(man, gzipSync(renderManPage(version, help), { level: 9 }));

    normaliseModes(pkg, new Set([node, wrapper]));
    const depends = shlibsDepends(stage, [node, addon]);

    const files = walkFiles(pkg);
    const installedKiB = files.reduce((sum, f) => sum + Math.ceil(statSync(f).size / 1024), 0) + 4 * countDirs(pkg);
    const control = join(pkg, 'DEBIAN');
    mkdirSync(control);
    writeFileSync(
      join(control, 'control'),
      readFileSync(join(debianDir, 'control.in'), 'utf8')
        .replace('@VERSION@', version)
        .replace('@ARCH@', arch)
        .replace('@INSTALLED_SIZE@', String(installedKiB))
        .replace('@DEPENDS@', `adduser, ${depends}`),
    );
    writeFileSync(join(control, 'conffiles'), `${CONFFILES.join('\n')}\n`);
    writeFileSync(join(control, 'md5sums'), files.filter((f) => !f.startsWith(`${pkg}/etc/`)).map((f) => `${createHash('md5').update(readFileSync(f)).digest('hex')}  ${relative(pkg, f)}\n`).join(''));
    for (const script of ['postinst', 'prerm', 'postrm']) {
      cpSync(join(debianDir, script), join(control, script));
      chmodSync(join(control, script), 0o755);
    }
    chmodSync(join(control, 'control'), 0o644);
    chmodSync(join(control, 'conffiles'), 0o644);
    chmodSync(join(control, 'md5sums'), 0o644);

    mkdirSync(opts.out, { recursive: true });
    const deb = join(resolve(opts.out), `mydoc_${version}_${arch}.deb`);
    run('dpkg-deb', ['--root-owner-group', `-Z${opts.compression}`, '--build', pkg, deb]);
    process.stdout.write(`${deb}\n`);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

function countDirs(dir) {
  return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).reduce((n, e) => n + 1 + countDirs(join(dir, e.name)), 0);
}

build();
