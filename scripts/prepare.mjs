// Makes a fresh clone runnable: installs the locked dependencies when they
// are missing and compiles the TypeScript. (.prebuild-installrc makes the
// SQLite cipher addon build from source: nothing is fetched from outside the
// npm registry.)
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const [major] = process.versions.node.split('.').map(Number);
if (major < 20) {
  process.stderr.write(`mydoc needs Node.js 20 or newer (this is ${process.version})\n`);
  process.exit(1);
}

function run(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, ...env } });
  if (r.status !== 0) {
    process.stderr.write(`prepare: "${cmd} ${args.join(' ')}" failed (exit ${r.status ?? r.signal})\n`);
    process.exit(1);
  }
}

const addon = 'node_modules/better-sqlite3-multiple-ciphers/build/Release/better_sqlite3.node';
if (!existsSync(`${root}/node_modules/.package-lock.json`) || !existsSync(`${root}/${addon}`)) {
  process.stderr.write('prepare: installing dependencies (npm ci; the SQLite cipher addon builds from source, ~2 minutes)\n');
  run('npm', ['ci', '--no-audit', '--no-fund']);
}
run(process.execPath, [`${root}/node_modules/typescript/bin/tsc`, '-p', 'tsconfig.json']);
