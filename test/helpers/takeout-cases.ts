/**
 * The take-out life cycle as cases over a fixture (test/helpers/takeout.ts):
 * request, approval, offline use (own vault only), expiry to the second with
 * the injected clock, the clock set back, a period not yet begun,
 * revocation, and back online destroying slot T. takeout.test.ts runs them
 * over the local directory flipped through the gate; takeout-ldap-cut.test.ts
 * over a real slapd that is cut (gone and hung), the monitor driving the gate.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Keyring } from '../../crypto/keyring.js';
import { LOCKED_MESSAGE } from '../../policy/gate.js';
import { KEYRING_FILE, userDir } from '../../shares/vault/user-vaults.js';
import type { TakeoutFixture } from './takeout.js';

export const DAY = 86_400_000;

export async function slotsOf(f: TakeoutFixture, user: string): Promise<string[]> {
  return (await Keyring.load(join(userDir(f.config.dataDir, f.config.pcId, user), KEYRING_FILE))).slots;
}

export async function put(f: TakeoutFixture, user: 'alice' | 'bob', path: string, body: string): Promise<void> {
  const res = await f.request('PUT', path, { user, body });
  assert.ok(res.status === 201 || res.status === 204, `PUT ${path}: ${res.status} ${res.body}`);
}

/** alice asks for `days`, dave approves (signs `signDays`) and installs; returns the key id. */
export async function requestAndApprove(f: TakeoutFixture, days = 2, signDays = days): Promise<string> {
  const asked = await f.request('POST', '/api/takeout/requests', { body: { days, reason: 'customer visit' } });
  assert.equal(asked.status, 201, asked.body);
  const { id } = asked.json<{ id: string }>();
  const installed = await f.request('POST', `/api/takeout/requests/${id}/key`, { user: 'dave', body: { token: await f.signFor(id, signDays) } });
  assert.equal(installed.status, 200, installed.body);
  return id;
}

/** The gate's state; anonymous /healthz must say only "locked" or "ok" (no take-out state). */
export async function healthState(f: TakeoutFixture): Promise<string> {
  const state = f.gate.state();
  assert.deepEqual((await f.request('GET', '/healthz', { user: null })).json(), { state: state === 'locked' ? 'locked' : 'ok' });
  return state;
}

export function actions(records: { action: string; decision: string; reason?: string }[]): string[] {
  return records.filter((r) => r.action.startsWith('takeout.')).map((r) => `${r.action} ${r.decision}${r.reason?.startsWith('ERR_') ? ` ${r.reason.split(':')[0]}` : ''}`);
}






export const TAKEOUT_CASES: { name: string; run: (f: TakeoutFixture) => Promise<void> }[] = [
  {
    name: 'life cycle: request, approve, offline use of her own vault only, expiry to the second',
    async run(f) {
      await put(f, 'alice', '/Documents/alice.txt', 'alice secret');
      await put(f, 'bob', '/Documents/bob.txt', 'bob secret');

      // Request: slot T appears, the request is pending, only administrators see it.
      const asked = await f.request('POST', '/api/takeout/requests', { body: { days: 2, reason: 'customer visit' } });
      assert.equal(asked.status, 201, asked.body);
      const { id } = asked.json<{ id: string }>();
      assert.deepEqual(await slotsOf(f, 'alice'), ['N', 'R', 'T']);
      assert.equal((await f.request('GET', '/api/takeout/requests')).status, 403, 'alice is no administrator');
      const listed = await f.request('GET', '/api/takeout/requests', { user: 'dave' });
      assert.deepEqual(listed.json<{ requests: { id: string; user: string; days: number }[] }>().requests.map((r) => [r.id, r.user, r.days]), [[id, 'alice', 2]]);
      assert.equal((await f.request('GET', '/api/device-key')).status, 403);
      assert.match((await f.request('GET', '/api/device-key', { user: 'dave' })).json<{ publicKeyPem: string }>().publicKeyPem, /BEGIN PUBLIC KEY/);
      const state = await readFile(join(f.config.dataDir, 'takeout', 'state.json'), 'utf8');
      assert.doesNotMatch(state, /alice-password/, 'no password on disk');

      // Approval: beyond maxDays the issuer side refuses to sign; then a valid key is installed.
      await assert.rejects(f.signFor(id, 15), { code: 'ERR_TAKEOUT_TOO_LONG' });
      const token = await f.signFor(id, 2);
      const installed = await f.request('POST', `/api/takeout/requests/${id}/key`, { user: 'dave', body: { token } });
      assert.equal(installed.status, 200, installed.body);
      const exp = f.clock.now + 2 * DAY;
      const status = (await f.request('GET', '/api/takeout/status')).json<{ state: string; key: { remainingSeconds: number; valid: boolean } }>();
      assert.deepEqual([status.state, status.key.valid, status.key.remainingSeconds], ['online', true, 2 * 86_400]);

      // Offline: alice, with her password, gets her own data; bob is locked out.
      await f.setOffline(true);
      assert.equal(await healthState(f), 'takeout');
      const mine = await f.request('GET', '/Documents/alice.txt');
      assert.equal(mine.status, 200, mine.body);
      assert.equal(mine.body, 'alice secret');
      assert.equal((await f.request('GET', '/Documents/bob.txt')).status, 404, 'bob\'s file is not in alice\'s vault');
      const bob = await f.request('GET', '/Documents/bob.txt', { user: 'bob' });
      assert.deepEqual([bob.status, bob.body.includes(LOCKED_MESSAGE)], [403, true]);
      assert.equal((await f.request('GET', '/Documents/alice.txt', { user: 'bob', password: f.passwords.alice })).status, 403, 'alice\'s key does not let bob in');
      assert.equal((await f.request('GET', '/Documents/alice.txt', { user: 'alice', password: f.passwords.bob })).status, 401, 'the password is checked by slot T');
      assert.equal((await f.request('GET', '/Documents/', { user: null })).status, 401, 'Windows gets its challenge');
      assert.equal((await f.request('GET', '/api/takeout/requests', { user: 'alice' })).status, 403, 'no approvals offline');
      const offlineStatus = (await f.request('GET', '/api/takeout/status')).json<{ state: string; key: { remainingSeconds: number } }>();
      assert.deepEqual([offlineStatus.state, offlineStatus.key.remainingSeconds], ['takeout', 2 * 86_400]);
      await put(f, 'alice', '/Documents/written-offline.txt', 'offline work');

      // Expiry to the second.
      f.clock.now = exp - 1000;
      assert.equal((await f.request('GET', '/Documents/alice.txt')).status, 200, 'one second before exp');
      assert.equal((await f.request('GET', '/api/takeout/status')).json<{ key: { remainingSeconds: number } }>().key.remainingSeconds, 1);
      f.clock.now = exp;
      const late = await f.request('GET', '/Documents/alice.txt');
      assert.deepEqual([late.status, late.body.includes(LOCKED_MESSAGE)], [403, true]);
      assert.equal(await healthState(f), 'locked');
      assert.deepEqual(await slotsOf(f, 'alice'), ['N', 'R'], 'slot T destroyed at expiry');
      assert.equal((await f.sessions.all()).length, 0, 'keys dropped from memory');

      assert.deepEqual(actions(await f.audit()), [
        'takeout.request allow',
        'takeout.approve allow',
        'takeout.use allow',
        'takeout.expire deny ERR_TAKEOUT_EXPIRED',
        'takeout.destroy info',
      ]);
    },
  },
  {
    name: 'back online destroys slot T of a key used offline; an online check before any use keeps it',
    async run(f) {
      await put(f, 'alice', '/Documents/a.txt', 'x');
      const jti = await requestAndApprove(f);
      await f.setOffline(false); // no change: already online
      await f.takeout.onlineCheck();
      assert.deepEqual(await slotsOf(f, 'alice'), ['N', 'R', 'T'], 'an online check before any use keeps the key');

      await f.setOffline(true);
      assert.equal((await f.request('GET', '/Documents/a.txt')).status, 200);
      await f.setOffline(false);
      assert.equal(await healthState(f), 'online');
      assert.deepEqual(await slotsOf(f, 'alice'), ['N', 'R'], 'slot T destroyed back online');
      assert.equal((await f.request('GET', '/Documents/a.txt')).status, 200, 'online, slot N serves her again');
      const destroyed = (await f.audit()).find((r) => r.action === 'takeout.destroy');
      assert.equal(destroyed?.target, jti);
      assert.match(destroyed?.reason ?? '', /back online/);

      await f.setOffline(true);
      assert.equal((await f.request('GET', '/Documents/a.txt')).status, 403, 'the period is over');
      assert.equal(await healthState(f), 'locked');
    },
  },
  {
    name: 'a clock set back is detected and refuses take-out keys until the directory answers',
    async run(f) {
      await put(f, 'alice', '/Documents/a.txt', 'x');
      await requestAndApprove(f, 3);
      await f.setOffline(true);
      f.clock.now += 2 * DAY;
      assert.equal((await f.request('GET', '/Documents/a.txt')).status, 200);
      f.clock.now -= 1 * DAY; // the user turns the clock back a day
      assert.equal((await f.request('GET', '/Documents/a.txt')).status, 403);
      f.clock.now += 1 * DAY; // and forward again: still refused (sealed)
      assert.equal((await f.request('GET', '/Documents/a.txt')).status, 403);
      assert.equal(await healthState(f), 'locked');
      const refusal = (await f.audit()).filter((r) => r.action === 'takeout.clock');
      assert.equal(refusal.length, 1, 'audited once');
      assert.match(refusal[0]!.reason!, /^ERR_TAKEOUT_CLOCK/);
      const sealed = JSON.parse(await readFile(join(f.config.dataDir, 'takeout', 'clock.json'), 'utf8')) as { setBack: boolean };
      assert.equal(sealed.setBack, true);
    },
  },
  {
    name: 'a key whose period has not begun is installed but refused until its start',
    async run(f) {
      await put(f, 'alice', '/Documents/a.txt', 'x');
      const asked = (await f.request('POST', '/api/takeout/requests', { body: { days: 1, reason: 'tomorrow' } })).json<{ id: string }>();
      const start = f.clock.now + 3_600_000;
      const saved = f.clock.now;
      // The case is what the PC does offline; and an online check while the clock reads the
      // issuer's time would seal that time, so that the PC's own time then looks set back.
      f.holdOnlineChecks(true);
      f.clock.now = start; // the issuer's clock: a period that begins in an hour
      const token = await f.signFor(asked.id, 1);
      f.clock.now = saved;
      assert.equal((await f.request('POST', `/api/takeout/requests/${asked.id}/key`, { user: 'dave', body: { token } })).status, 200);
      await f.setOffline(true);
      f.holdOnlineChecks(false);
      assert.equal((await f.request('GET', '/Documents/a.txt')).status, 403);
      assert.match((await f.audit()).find((r) => r.action === 'takeout.refuse')?.reason ?? '', /^ERR_TAKEOUT_NOT_YET_VALID/);
      f.clock.now = start;
      assert.equal((await f.request('GET', '/Documents/a.txt')).status, 200, 'from nbf on');
    },
  },
  {
    name: 'revocation: refused at once (audited), slot T destroyed at the next online check',
    async run(f) {
      await put(f, 'alice', '/Documents/a.txt', 'x');
      const jti = await requestAndApprove(f);
      // Offline before the next online check, which would destroy the revoked key at once.
      f.holdOnlineChecks(true);
      assert.equal((await f.request('POST', '/api/takeout/revocations', { user: 'alice', body: { jti } })).status, 403, 'administrators only');
      const revoked = await f.request('POST', '/api/takeout/revocations', { user: 'dave', body: { jti } });
      assert.deepEqual(revoked.json(), { jti, user: 'alice' });
      await f.setOffline(true);
      assert.equal((await f.request('GET', '/Documents/a.txt')).status, 403);
      assert.match((await f.audit()).find((r) => r.action === 'takeout.refuse')?.reason ?? '', /^ERR_TAKEOUT_REVOKED/);
      assert.deepEqual(await slotsOf(f, 'alice'), ['N', 'R', 'T']);
      f.holdOnlineChecks(false);
      await f.setOffline(false);
      assert.deepEqual(await slotsOf(f, 'alice'), ['N', 'R'], 'destroyed at the online check');
      assert.match((await f.audit()).find((r) => r.action === 'takeout.destroy')?.reason ?? '', /revoked/);
    },
  },
];
