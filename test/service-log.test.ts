/**
 * The service log's form: on a terminal (a pseudo-terminal made by
 * util-linux `script`) `mydoc demo` prints readable lines (time, level,
 * message); into a pipe it prints pino's JSON lines. `--log-level` is
 * checked like every other option.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { tempDir } from './helpers/keys.js';
import { MYDOC_BIN, freePort, runCommand } from './helpers/server.js';

/** Runs the demo in `dir` (detached, own process group) until its output matches `until`, then stops it; returns the output. */
function demoOutput(command: string, args: string[], until: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => finish(new Error(`no match for ${until} within 60 s:\n${out}`)), 60_000);
    const finish = (err?: Error) => {
      clearTimeout(timer);
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      if (err) reject(err);
      else resolve(out);
    };
    const take = (d: Buffer) => {
      out += d.toString('utf8');
      if (until.test(out)) finish();
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.once('error', (err) => finish(err));
  });
}

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups) await c();
});

async function demoArgs(): Promise<string[]> {
  const { dir, cleanup } = await tempDir();
  cleanups.push(cleanup);
  return ['demo', '--dir', join(dir, 'demo'), '--port', String(await freePort()), '--console-port', String(await freePort())];
}

test('on a terminal the service log is readable lines, not JSON', { timeout: 90_000 }, async () => {
  const args = await demoArgs();
  const line = [process.execPath, MYDOC_BIN, ...args].map((a) => `'${a}'`).join(' ');
  const out = (await demoOutput('script', ['-qfec', line, '/dev/null'], /INFO.*Server listening at https:\/\/127\.0\.0\.1:\d+[\s\S]*INFO.*Server listening/)).replace(/\x1b\[[0-9;]*m/g, '');
  assert.match(out, /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] INFO: Server listening at https:\/\/127\.0\.0\.1:\d+\r?$/m);
  assert.doesNotMatch(out, /\{"level":/, 'no JSON line on a terminal');
});

test('into a pipe the service log is JSON lines (journald)', { timeout: 90_000 }, async () => {
  const out = await demoOutput(process.execPath, [MYDOC_BIN, ...(await demoArgs())], /"msg":"Server listening at[^\n]*\n[\s\S]*"msg":"Server listening at/);
  const lines = out.split('\n').filter((l) => l.startsWith('{'));
  assert.ok(lines.length >= 2);
  for (const l of lines) assert.equal(typeof (JSON.parse(l) as { level: unknown }).level, 'number');
  assert.doesNotMatch(out, /\] INFO: /);
});

test('--log-level: warn leaves out the info lines; a level that does not exist is refused with exit code 2', { timeout: 90_000 }, async () => {
  const out = await demoOutput(process.execPath, [MYDOC_BIN, ...(await demoArgs()), '--log-level', 'warn'], /mydoc: serving https/);
  assert.doesNotMatch(out, /"level":30/);
  const bad = await runCommand(process.execPath, [MYDOC_BIN, 'serve', '--log-level', 'loud']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--log-level must be .*info.*\(got "loud"\)/);
  const badEnv = await runCommand(process.execPath, [MYDOC_BIN, 'serve'], { env: { ...process.env, MYDOC_LOG_LEVEL: 'loud' } });
  assert.equal(badEnv.status, 2);
  assert.match(badEnv.stderr, /MYDOC_LOG_LEVEL must be one of .*not "loud"/);
});
