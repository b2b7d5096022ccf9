/**
 * The take-out engine (policy/takeout/agent/takeout.ts) called directly, without HTTP:
 * installation checks (the pending request, its jti, the installing
 * administrator, K_to to this PC's device key), the offline password check
 * through slot T, the validity window of `anyValid`, the expiry sweep,
 * revocation in advance, and keys surviving a restart of the engine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { buildTakeoutKey } from '../policy/takeout/issuer/approve.js';
import { Takeout } from '../policy/takeout/agent/takeout.js';
import type { RequestDetail } from '../policy/takeout/request.js';
import { loadIssuers } from '../server/agent/compose.js';
import { DAY, slotsOf } from './helpers/takeout-cases.js';
import { startTakeoutFixture, type TakeoutFixture } from './helpers/takeout.js';

async function pending(f: TakeoutFixture, days = 2): Promise<RequestDetail> {
  const { id } = await f.takeout.request('alice', f.passwords.alice, days, 'trip');
  return f.takeout.get(id);
}

const sign = (f: TakeoutFixture, request: RequestDetail, o: { admin?: string; days?: number; devicePublicKey?: TakeoutFixture['devicePublicKey'] } = {}) =>
  buildTakeoutKey({ issuer: f.issuer, admin: o.admin ?? 'dave', request, devicePublicKey: o.devicePublicKey ?? f.devicePublicKey, days: o.days ?? request.days, now: f.clock.now }).then((k) => k.token);

test('install: only for the pending request, by the administrator named in iss, with K_to to this PC\'s device key', { timeout: 60_000 }, async () => {
  const f = await startTakeoutFixture();
  try {
    const request = await pending(f);
    assert.deepEqual(f.takeout.list().map((r) => [r.id, r.user, r.days]), [[request.id, 'alice', 2]]);
    assert.deepEqual(Object.keys(request.envelopes), [f.issuer.kid], 'K_to kept only encrypted to the issuer');
    const token = await sign(f, request);
    await assert.rejects(f.takeout.install('A'.repeat(22), token, 'dave'), { code: 'ERR_TAKEOUT_NO_REQUEST' });
    await assert.rejects(f.takeout.install(request.id, token, 'mallory'), { code: 'ERR_TAKEOUT_MALFORMED', message: /administrator who installs it/ });
    const otherDevice = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    await assert.rejects(f.takeout.install(request.id, await sign(f, request, { devicePublicKey: otherDevice }), 'dave'), { code: 'ERR_TAKEOUT_SECRET' }, 'K_to sealed to another PC');
    assert.equal(f.takeout.anyValid(), false, 'nothing installed by the refusals');
    assert.deepEqual(await f.takeout.install(request.id, token, 'dave'), { user: 'alice', expires: new Date(f.clock.now + 2 * DAY).toISOString() });
    assert.deepEqual(f.takeout.list(), [], 'the request is no longer pending');
    await assert.rejects(f.takeout.install(request.id, token, 'dave'), { code: 'ERR_TAKEOUT_NO_REQUEST' }, 'installed once');
  } finally {
    await f.close();
  }
});

test('offline: slot T opens with the key and her password only; the window is [nbf, exp); the sweep destroys slot T at exp', { timeout: 60_000 }, async () => {
  const f = await startTakeoutFixture();
  try {
    const request = await pending(f, 1);
    await f.takeout.install(request.id, await sign(f, request), 'dave');
    const exp = f.clock.now + DAY;
    assert.deepEqual(await f.takeout.authenticate('bob', f.passwords.bob), { ok: false, reason: 'no valid take-out key' });
    assert.deepEqual(await f.takeout.authenticate('alice', f.passwords.bob), { ok: false, reason: 'wrong user name or password' });
    assert.deepEqual(await f.takeout.authenticate('CORP\\Alice', f.passwords.alice), { ok: true, user: 'alice', admin: false }, 'the login forms of the directory');
    assert.equal(await f.takeout.admit('alice'), true);
    assert.equal(await f.takeout.admit('bob'), false);
    f.clock.now = exp - 1000;
    assert.equal(f.takeout.anyValid(), true, 'one second before exp');
    f.clock.now = exp;
    assert.equal(f.takeout.anyValid(), false, 'at exp');
    assert.deepEqual(await slotsOf(f, 'alice'), ['N', 'R', 'T']);
    await f.takeout.sweep();
    assert.deepEqual(await slotsOf(f, 'alice'), ['N', 'R'], 'destroyed without any request');
    assert.deepEqual(await f.takeout.authenticate('alice', f.passwords.alice), { ok: false, reason: 'no valid take-out key' });
    const records = (await f.audit()).filter((r) => r.action.startsWith('takeout.')).map((r) => `${r.action} ${r.decision}`);
    assert.deepEqual(records.slice(-3), ['takeout.use allow', 'takeout.expire deny', 'takeout.destroy info']);
  } finally {
    await f.close();
  }
});

test('revocation in advance: a request revoked before approval is dropped at the online check and never installs', { timeout: 60_000 }, async () => {
  const f = await startTakeoutFixture();
  try {
    const request = await pending(f);
    assert.deepEqual(await f.takeout.revoke(request.id, 'dave'), { user: 'alice' });
    assert.deepEqual(await f.takeout.revoke('B'.repeat(22), 'dave'), { user: undefined }, 'an id not on this PC is revoked in advance');
    const token = await sign(f, request);
    await assert.rejects(f.takeout.install(request.id, token, 'dave'), { code: 'ERR_TAKEOUT_REVOKED' });
    await f.takeout.onlineCheck();
    assert.deepEqual(f.takeout.list(), [], 'dropped');
    assert.deepEqual(await slotsOf(f, 'alice'), ['N', 'R'], 'its slot T removed');
  } finally {
    await f.close();
  }
});

test('an installed key survives a restart of the engine; a revocation does too', { timeout: 60_000 }, async () => {
  const f = await startTakeoutFixture();
  try {
    const request = await pending(f);
    await f.takeout.install(request.id, await sign(f, request), 'dave');
    f.takeout.close();
    const reopen = () => Takeout.open({ dataDir: f.config.dataDir, pcId: f.config.pcId, maxDays: 14, issuers: issuers!, deviceKey: f.deviceKey, sessions: f.sessions, audit: f.auditLog, now: () => f.clock.now });
    const issuers = await loadIssuers(f.config);
    const again = await reopen();
    assert.equal(again.anyValid(), true);
    assert.equal((await again.authenticate('alice', f.passwords.alice)).ok, true);
    await again.revoke(request.id, 'dave');
    again.close();
    const third = await reopen();
    try {
      assert.equal(third.anyValid(), false);
      assert.equal(await third.admit('alice'), false);
      assert.equal((await third.status('alice')).key?.refusal, 'ERR_TAKEOUT_REVOKED');
    } finally {
      third.close();
    }
  } finally {
    await f.close();
  }
});
