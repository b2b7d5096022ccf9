/**
 * The whole take-out life cycle through the real app, in-process
 * (test/helpers/takeout-cases.ts: request, approval, going offline, use of
 * one's own vault only, expiry to the second with an injected clock, the
 * clock set back, revocation, back online destroying slot T), over the
 * local directory whose reachability is flipped through the gate; plus the
 * checks on requests. takeout-ldap-cut.test.ts runs the same cases over a
 * real slapd that is cut.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TAKEOUT_CASES } from './helpers/takeout-cases.js';
import { startTakeoutFixture } from './helpers/takeout.js';

for (const c of TAKEOUT_CASES) {
  test(c.name, { timeout: 60_000 }, async () => {
    const f = await startTakeoutFixture();
    try {
      await c.run(f);
    } finally {
      await f.close();
    }
  });
}

test('requests: checked input, online only, a new request replaces the former one', { timeout: 60_000 }, async () => {
  const f = await startTakeoutFixture({ maxDays: 5 });
  try {
    for (const body of [{ days: 6, reason: 'x' }, { days: 0, reason: 'x' }, { days: 1.5, reason: 'x' }, { days: 2 }, { days: 2, reason: '' }]) {
      const res = await f.request('POST', '/api/takeout/requests', { body });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.json<{ error: { code: string } }>().error.code, 'ERR_TAKEOUT_REQUEST');
    }
    assert.equal((await f.request('POST', '/api/takeout/requests', { body: 'not json' })).status, 400);
    const first = (await f.request('POST', '/api/takeout/requests', { body: { days: 1, reason: 'a' } })).json<{ id: string }>().id;
    const second = (await f.request('POST', '/api/takeout/requests', { body: { days: 2, reason: 'b' } })).json<{ id: string }>().id;
    const pending = (await f.request('GET', '/api/takeout/requests', { user: 'dave' })).json<{ requests: { id: string }[] }>().requests;
    assert.deepEqual(pending.map((r) => r.id), [second]);
    assert.equal((await f.request('GET', `/api/takeout/requests/${first}`, { user: 'dave' })).status, 404);
    assert.equal((await f.request('GET', '/api/takeout/requests/nope', { user: 'dave' })).status, 404);
    await f.setOffline(true);
    assert.equal((await f.request('POST', '/api/takeout/requests', { body: { days: 1, reason: 'a' } })).status, 403);
  } finally {
    await f.close();
  }
});
