#!/usr/bin/env node
/**
 * Runs the compiled benchmarks dist/test/bench/*.bench.js one after another,
 * each as its own `node <file>` child process. Each prints one JSON line per
 * figure on stdout (passed through unchanged) and progress on stderr.
 *
 *   node scripts/bench.mjs [name-filter ...]
 *
 * MYDOC_BENCH_SCALE (default 1) is passed to every benchmark; 0.05 shrinks the
 * data sizes for a quick run. Exits non-zero if any benchmark fails.
 */
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const benchDir = join(root, 'dist', 'test', 'bench');
const filters = process.argv.slice(2);

let files;
try {
  files = (await readdir(benchDir)).filter((f) => f.endsWith('.bench.js')).sort();
} catch (err) {
  console.error(`bench: cannot list ${relative(root, benchDir)} (${err.code ?? err.message}); build first with npx tsc -p tsconfig.json`);
  process.exit(2);
}
if (filters.length > 0) files = files.filter((f) => filters.some((w) => f.includes(w)));
if (files.length === 0) {
  console.error(`bench: no benchmarks to run in ${relative(root, benchDir)}`);
  process.exit(2);
}

const env = { ...process.env, MYDOC_BENCH_SCALE: process.env.MYDOC_BENCH_SCALE || '1' };
const failed = [];
for (const file of files) {
  const code = await new Promise((resolve) => {
    const child = spawn(process.execPath, [join(benchDir, file)], { cwd: root, env, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', (err) => {
      console.error(`bench: cannot start ${file}: ${err.message}`);
      resolve(1);
    });
    child.on('exit', (status, signal) => resolve(signal ? `signal ${signal}` : status));
  });
  if (code !== 0) {
    console.error(`bench: ${file} failed (${typeof code === 'number' ? `exit code ${code}` : code})`);
    failed.push(file);
  }
}
if (failed.length > 0) {
  console.error(`bench: ${failed.length} of ${files.length} benchmarks failed: ${failed.join(', ')}`);
  process.exit(1);
}
