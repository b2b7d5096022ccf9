/**
 * The help and the usage errors come from the command table (server/cli/):
 * every command listed by `mydoc --help` has its own `--help`, and a missing
 * required option or argument is a one-line usage error naming it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { main } from '../server/cli/main.js';

async function run(args: string[]) {
  let stdout = '';
  let stderr = '';
  const status = await main(args, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), stdin: async () => Buffer.alloc(0), stdinIsTty: false, env: {} });
  return { status, stdout, stderr };
}

test('every command of mydoc --help has its own --help, with its options', async () => {
  const help = await run(['--help']);
  assert.equal(help.status, 0);
  const names = [...help.stdout.matchAll(/^ {2}mydoc ([a-z]+(?: [a-z]+)?)(?= |$)/gm)].map((m) => m[1]!);
  for (const name of ['init', 'user add', 'user enroll', 'serve', 'locks list', 'locks clear', 'keys issuer', 'takeout list', 'takeout approve', 'takeout deny', 'takeout revoke', 'backup', 'stop', 'backup list', 'backup verify', 'backup prune', 'restore', 'recover', 'audit verify', 'demo']) {
    assert.ok(names.includes(name), `mydoc --help lists ${name}`);
  }
  for (const name of names) {
    const r = await run([...name.split(' '), '--help']);
    assert.equal(r.status, 0, `${name} --help: ${r.stderr}`);
    assert.ok(r.stdout.includes(`  mydoc ${name}`), `${name} --help shows its command line:\n${r.stdout}`);
  }
  assert.match((await run(['backup', '--help'])).stdout, /mydoc backup prune --keep N[\s\S]*--keep N +how many of the newest snapshots to keep\s+\(required\)/);
  assert.match((await run(['user', '--help'])).stdout, /mydoc user enroll NAME[\s\S]*mydoc user add NAME/);
});

test('usage errors are generated from the table: one line, exit 2', async () => {
  for (const [args, message] of [
    [['user', 'add'], 'mydoc: usage: mydoc user add NAME --password-stdin [--admin] --config FILE\n'],
    [['user'], 'mydoc: usage: mydoc user enroll|add ... (see mydoc user --help)\n'],
    [['keys', 'issuer'], 'mydoc: mydoc keys issuer needs --out FILE and --public-out FILE\n'],
    [['keys', 'issuer', '--out', 'a', '--public-out', 'b', '--alg', 'HS256'], 'mydoc: --alg must be ES256 or EdDSA (got "HS256")\n'],
    [['takeout', 'approve', '--id', '-x', '--days', '3'], 'mydoc: mydoc takeout approve needs --id ID, --days N, --user ADMIN and --password-stdin\n'],
    [['demo', '--port', '65536'], 'mydoc: --port must be a number from 1 to 65535 (a whole number; got "65536")\n'],
    [['backup', 'verify', '--read-data', ''], 'mydoc: --read-data must be a number from 0 to 100 (got "")\n'],
    [['backup', '--from', 'x'], 'mydoc: --from is for "backup list" and "backup verify", not "backup"\n'],
    [['serve', 'extra'], 'mydoc: unexpected argument "extra"\n'],
  ] as const) {
    const r = await run([...args]);
    assert.equal(r.status, 2, args.join(' '));
    assert.equal(r.stderr, message, args.join(' '));
  }
});
