/**
 * Restore onto a new PC with a company directory (a real slapd): the user's
 * data comes back from the NAS, the DEK is sealed into the new PC's slot N
 * (a new K_dir created in the directory), and the user logs in with their
 * directory password as before. The old PC's K_dir is not needed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { MYDOC_BIN, davRequest, runCommand, startServer } from './helpers/server.js';
import { slapdServerOptions, startSlapd } from './helpers/slapd.js';
import { patternBytes } from './helpers/keys.js';

const cli = (args: string[]) => runCommand(process.execPath, [MYDOC_BIN, ...args], { env: { ...process.env, MYDOC_CONFIG: '' }, timeoutMs: 120_000 });

test('restore onto a new PC: the user logs in with their directory password and finds their files', async (t) => {
  const slapd = await startSlapd();
  t.after(() => slapd.stop());
  const alice = { name: 'alice', password: slapd.users.alice.password };
  const oldPc = await startServer({ pcId: 'pc-old', users: [alice], ...slapdServerOptions(slapd) });
  t.after(() => oldPc.stop());
  const body = patternBytes(700_000, 3);
  assert.equal((await davRequest(oldPc, 'PUT', '/Documents/plan.bin', { body })).status, 201);
  const backup = await cli(['backup', '--config', oldPc.configFile]);
  assert.equal(backup.status, 0, backup.stderr);

  const newPc = await startServer({ pcId: 'pc-new', users: [alice], ...slapdServerOptions(slapd) });
  t.after(() => newPc.stop());
  const restoreArgs = ['restore', '--config', newPc.configFile, '--from', join(oldPc.dir, 'nas'), '--recovery-key', join(oldPc.dir, 'offline', 'recovery-private.pem'), '--pc', 'pc-old'];
  const refused = await cli(restoreArgs);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /the service is running on this data folder: stop it first/);
  // Stopped hard (a stale admin socket stays behind): restore, then serve again.
  process.kill(newPc.pid, 'SIGKILL');
  await newPc.exited;
  const restored = await cli(restoreArgs);
  assert.equal(restored.status, 0, restored.stderr);
  assert.match(restored.stdout, /restored user "alice"/);
  await oldPc.stop(); // the old PC is gone; the new one needs nothing of it

  const serve = spawn(process.execPath, [MYDOC_BIN, 'serve', '--config', newPc.configFile], { stdio: 'ignore', env: { ...process.env, MYDOC_CONFIG: '' } });
  t.after(() => void serve.kill('SIGKILL'));
  const again = { ...newPc, agent: new Agent({ keepAlive: true, ca: newPc.caPem }) };
  const deadline = Date.now() + 20_000;
  let got = await davRequest(again, 'GET', '/Documents/plan.bin').catch(() => undefined);
  while (!got || got.status === 403) {
    assert.ok(Date.now() < deadline, 'the new PC did not serve within 20 s');
    await new Promise((r) => setTimeout(r, 200));
    got = await davRequest(again, 'GET', '/Documents/plan.bin').catch(() => undefined);
  }
  assert.equal(got.status, 200, got.body.toString());
  assert.deepEqual(got.body, body);
  const wrong = await davRequest(again, 'GET', '/Documents/plan.bin', { password: 'not-her-password' });
  assert.equal(wrong.status, 401);
  again.agent.destroy();
});
