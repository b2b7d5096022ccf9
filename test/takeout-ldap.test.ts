/**
 * Take-out end to end with the real pieces: `mydoc serve` against a real
 * slapd, the user's request over HTTPS, the administrator's `mydoc takeout
 * approve` on the command line with the issuer key kept off the agent, the
 * directory stopped (offline use of one's own vault only), and the return
 * online destroying slot T. Expiry to the second and every refused key are
 * covered in-process (takeout.test.ts, takeout-keys.test.ts) with an
 * injected clock.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { userDir } from '../shares/vault/user-vaults.js';
import { MYDOC_BIN, davRequest, startServer, type RunningServer } from './helpers/server.js';
import { slapdServerOptions, startSlapd, type Slapd } from './helpers/slapd.js';
import { tempDir } from './helpers/keys.js';

let slapd: Slapd;

function withIssuer(opts: { directory: string[]; files: Record<string, string> }, issuerPem: string) {
  return { ...opts, files: { ...opts.files, 'issuer.pub.pem': issuerPem } };
}
let server: RunningServer;
let issuer: { dir: string; cleanup: () => Promise<void> };

function mydoc(args: string[], input = '') {
  return spawnSync(process.execPath, [MYDOC_BIN, ...args], { input, encoding: 'utf8' });
}

before(async () => {
  slapd = await startSlapd();
  issuer = await tempDir('mydoc-issuer-');
  const keys = mydoc(['keys', 'issuer', '--out', join(issuer.dir, 'issuer.pem'), '--public-out', join(issuer.dir, 'issuer.pub.pem')]);
  assert.equal(keys.status, 0, keys.stderr);
  server = await startServer({
    pcId: 'pc-takeout',
    users: [
      { name: 'alice', password: slapd.users.alice.password },
      { name: 'bob', password: slapd.users.bob.password },
      { name: 'dave', password: slapd.users.dave.password },
    ],
    ...withIssuer(slapdServerOptions(slapd), await readFile(join(issuer.dir, 'issuer.pub.pem'), 'utf8')),
    extraConfig: ['takeout:', '  maxDays: 14', '  issuerPublicKeys: [issuer.pub.pem]'],
  });
});
after(async () => {
  await server?.stop();
  await slapd?.stop();
  await issuer?.cleanup();
});

/** Waits until alice's take-out status says `state` (anonymous /healthz says only "ok" for both). */
async function waitFor(state: 'online' | 'takeout'): Promise<void> {
  const start = Date.now();
  for (;;) {
    // A request in flight at the moment of the switch may be cut or refused: keep polling.
    const res = await davRequest(server, 'GET', '/api/takeout/status').catch(() => undefined);
    if (res?.status === 200 && (JSON.parse(res.body.toString()) as { state: string }).state === state) {
      const health = await davRequest(server, 'GET', '/healthz', { user: null });
      assert.deepEqual(JSON.parse(health.body.toString()), { state: 'ok' }, 'anonymous callers learn only "ok"');
      return;
    }
    assert.ok(Date.now() - start < 10_000, `state ${state} not reached`);
    await sleep(50);
  }
}

test('request online, approve with the CLI, use offline (own data only), back online destroys slot T', async () => {
  const asBob = { user: 'bob', password: slapd.users.bob.password };
  assert.equal((await davRequest(server, 'PUT', '/Documents/trip.txt', { body: 'itinerary' })).status, 201);
  assert.equal((await davRequest(server, 'PUT', '/Documents/bob.txt', { ...asBob, body: 'bob only' })).status, 201);

  const request = await davRequest(server, 'POST', '/api/takeout/requests', { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ days: 3, reason: 'customer visit' }) });
  assert.equal(request.status, 201, request.body.toString());
  const id = (JSON.parse(request.body.toString()) as { id: string }).id;
  const list = await davRequest(server, 'GET', '/api/takeout/requests', { user: 'alice' });
  assert.equal(list.status, 403, 'only administrators list requests');

  const approve = mydoc(
    ['takeout', 'approve', '--agent', server.url, '--ca', server.caFile, '--user', 'dave', '--password-stdin', '--id', id, '--days', '3', '--issuer-key', join(issuer.dir, 'issuer.pem')],
    slapd.users.dave.password,
  );
  assert.equal(approve.status, 0, approve.stderr);
  const keyring = await readFile(join(userDir(server.dataDir, 'pc-takeout', 'alice'), 'keyring.json'), 'utf8');
  assert.ok('T' in (JSON.parse(keyring) as { slots: object }).slots, 'slot T prepared');

  await slapd.stop({ keepData: true });
  await waitFor('takeout');
  assert.equal((await davRequest(server, 'GET', '/Documents/trip.txt')).body.toString(), 'itinerary', 'alice works offline');
  const status = await davRequest(server, 'GET', '/api/takeout/status');
  assert.equal(status.status, 200);
  assert.match(status.body.toString(), /remaining/i);
  assert.equal((await davRequest(server, 'GET', '/Documents/trip.txt', { password: 'not-her-password' })).status, 401, 'slot T needs her password');
  const bob = await davRequest(server, 'GET', '/Documents/bob.txt', asBob);
  assert.equal(bob.status, 403, 'bob has no take-out key: locked');
  assert.equal((await davRequest(server, 'GET', '/Documents/bob.txt')).status, 404, 'alice sees only her own vault');

  await slapd.start();
  await waitFor('online');
  for (let i = 0; i < 100; i++) {
    const now = JSON.parse(await readFile(join(userDir(server.dataDir, 'pc-takeout', 'alice'), 'keyring.json'), 'utf8')) as { slots: object };
    if (!('T' in now.slots)) break;
    await sleep(100);
  }
  const after = JSON.parse(await readFile(join(userDir(server.dataDir, 'pc-takeout', 'alice'), 'keyring.json'), 'utf8')) as { slots: object };
  assert.deepEqual(Object.keys(after.slots).sort(), ['N', 'R'], 'back online: slot T destroyed');
  assert.equal((await davRequest(server, 'GET', '/Documents/trip.txt')).body.toString(), 'itinerary', 'online again through slot N');
  const verify = mydoc(['audit', 'verify', '--config', server.configFile]);
  assert.equal(verify.status, 0, verify.stderr);
  const log = await readFile(join(server.dataDir, 'audit', 'audit.log'), 'utf8');
  for (const action of ['takeout.request', 'gate.lock', 'gate.unlock']) assert.match(log, new RegExp(`"action":"${action.replace('.', '\\.')}`), action);
});
