/**
 * The agent's side of take-out through the console, in-process over the
 * real app and take-out engine (test/helpers/takeout.ts): a request denied
 * with a note or expired unanswered (slot T gone at once, the outcome in the
 * user's status, never approvable afterwards), the request listeners, and
 * the take-out routes of the console link (server/agent/link-takeout.ts),
 * which install a key only after the same verification as the API.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Takeout } from '../policy/takeout/agent/takeout.js';
import type { TakeoutStatus } from '../policy/takeout/agent/status.js';
import { randomBytes } from 'node:crypto';
import { sealKto } from '../policy/takeout/envelope.js';
import { signTakeoutKey } from '../policy/takeout/token.js';
import { generateIssuerKeyPair, loadIssuerPrivateKey } from '../policy/takeout/issuer-keys.js';
import type { RequestDetail } from '../policy/takeout/request.js';
import { takeoutLinkRoutes } from '../server/agent/link-takeout.js';
import { LINK_PATHS, type TakeoutStateAnswer } from '../server/link/protocol.js';
import { expectCode } from './helpers/expect-code.js';
import { slotsOf } from './helpers/takeout-cases.js';
import { startTakeoutFixture, type TakeoutFixture } from './helpers/takeout.js';

async function ask(f: TakeoutFixture, reason = 'customer visit', days = 2): Promise<string> {
  const res = await f.request('POST', '/api/takeout/requests', { body: { days, reason } });
  assert.equal(res.status, 201, res.body);
  return res.json<{ id: string }>().id;
}

async function statusOf(f: TakeoutFixture): Promise<TakeoutStatus & { state: string }> {
  const res = await f.request('GET', '/api/takeout/status');
  assert.equal(res.status, 200, res.body);
  return res.json<TakeoutStatus & { state: string }>();
}

async function withFixture(run: (f: TakeoutFixture) => Promise<void>): Promise<void> {
  const f = await startTakeoutFixture();
  try {
    await run(f);
  } finally {
    await f.close();
  }
}

test('a denied request loses slot T at once, shows the note, and can never be approved', { timeout: 60_000 }, () =>
  withFixture(async (f) => {
    const id = await ask(f);
    const token = await f.signFor(id, 2); // signed before the denial: must not install after it
    assert.deepEqual((await statusOf(f)).request, { id, days: 2, reason: 'customer visit', requested: new Date(f.clock.now).toISOString() });

    assert.deepEqual(await f.takeout.deny(id, { outcome: 'denied', by: 'dave', note: '  not this week  ' }), { user: 'alice', repeated: false });
    assert.deepEqual(await slotsOf(f, 'alice'), ['N', 'R'], 'slot T destroyed with the request');
    const status = await statusOf(f);
    assert.equal(status.request, undefined, 'no longer pending');
    assert.deepEqual(status.ended, { id, days: 2, reason: 'customer visit', requested: new Date(f.clock.now).toISOString(), outcome: 'denied', note: 'not this week', by: 'dave', at: new Date(f.clock.now).toISOString() });

    const install = await f.request('POST', `/api/takeout/requests/${id}/key`, { user: 'dave', body: { token } });
    assert.equal(install.status, 404, 'a denied request cannot be approved afterwards');
    assert.equal(install.json<{ error: { code: string } }>().error.code, 'ERR_TAKEOUT_NO_REQUEST');

    // Told again (a console re-sending after a reconnect): same answer, one audit record.
    assert.deepEqual(await f.takeout.deny(id, { outcome: 'denied', by: 'dave', note: 'not this week' }), { user: 'alice', repeated: true });
    await expectCode(f.takeout.deny(id, { outcome: 'expired', by: 'console', note: '' }), 'ERR_TAKEOUT_NO_REQUEST');
    await expectCode(f.takeout.deny('AAAAAAAAAAAAAAAAAAAAAA', { outcome: 'denied', by: 'dave', note: 'x' }), 'ERR_TAKEOUT_NO_REQUEST');
    const denials = (await f.audit()).filter((r) => r.action === 'takeout.deny');
    assert.equal(denials.length, 1);
    assert.deepEqual([denials[0]!.actor, denials[0]!.target, denials[0]!.decision], ['dave', id, 'deny']);

    // Asking again clears the outcome.
    const again = await ask(f, 'second try', 1);
    const after = await statusOf(f);
    assert.equal(after.ended, undefined);
    assert.equal(after.request?.id, again);
  }));

test('an unanswered request expires: slot T gone, the user sees "expired"; a note over 500 characters is refused', { timeout: 60_000 }, () =>
  withFixture(async (f) => {
    const id = await ask(f);
    await expectCode(f.takeout.deny(id, { outcome: 'expired', by: 'console', note: 'x'.repeat(501) }), 'ERR_TAKEOUT_REQUEST');
    assert.deepEqual(await slotsOf(f, 'alice'), ['N', 'R', 'T'], 'a refused denial changes nothing');
    await f.takeout.deny(id, { outcome: 'expired', by: 'console', note: 'unanswered for 7 day(s)' });
    assert.deepEqual(await slotsOf(f, 'alice'), ['N', 'R']);
    const status = await statusOf(f);
    assert.equal(status.ended?.outcome, 'expired');
    assert.equal(status.ended?.note, 'unanswered for 7 day(s)');
    assert.ok((await f.audit()).some((r) => r.action === 'takeout.request-expire' && r.target === id && r.actor === 'console'));
    // Only the user's own outcome: bob sees nothing of alice's.
    assert.equal((await f.request('GET', '/api/takeout/status', { user: 'bob' })).json<TakeoutStatus>().ended, undefined);
  }));

test('request listeners get each new request with its envelopes, after it is stored', { timeout: 60_000 }, () =>
  withFixture(async (f) => {
    const told: RequestDetail[] = [];
    f.takeout.onRequest((detail) => told.push(detail));
    const id = await ask(f, 'trip');
    assert.equal(told.length, 1);
    assert.deepEqual(told[0], f.takeout.get(id));
    assert.equal(told[0]!.pcId, 'pc-test');
    assert.deepEqual(Object.keys(told[0]!.envelopes), [f.issuer.kid]);
    assert.deepEqual(f.takeout.pendingDetails(), told);
    const refused = await f.request('POST', '/api/takeout/requests', { body: { days: 99, reason: 'x' } });
    assert.equal(refused.status, 400);
    assert.equal(told.length, 1, 'a refused request is not told');
  }));

test('link routes: a delivered key is verified as on the API; forged, foreign and malformed deliveries are refused', { timeout: 60_000 }, () =>
  withFixture(async (f) => {
    const routes = takeoutLinkRoutes(f.takeout);
    assert.deepEqual(Object.keys(routes).sort(), [LINK_PATHS.takeoutDenial, LINK_PATHS.takeoutKey, LINK_PATHS.takeoutRevocation, LINK_PATHS.takeoutState].sort());
    const key = routes[LINK_PATHS.takeoutKey]!;
    const id = await ask(f);

    // Malformed bodies: 400 with the agent's code, nothing touched.
    for (const body of [null, 'x', [], { requestId: 'nope', token: 't', admin: 'dave' }, { requestId: id, token: 5, admin: 'dave' }, { requestId: id, token: 't', admin: '' }]) {
      const answer = await key(body);
      assert.equal(answer.status, 400, JSON.stringify(body));
      assert.equal((answer.body as { error: { code: string } }).error.code, 'ERR_API_BODY');
    }
    // A key signed by an issuer this PC does not trust.
    const rogue = await generateIssuerKeyPair('ES256');
    const rogueFile = join(f.dir, 'rogue.pem');
    await writeFile(rogueFile, rogue.privatePem, { mode: 0o600 });
    const rogueKey = await loadIssuerPrivateKey(rogueFile, 'rogue');
    const iat = Math.floor(f.clock.now / 1000);
    const kto = await sealKto(randomBytes(32), { rid: id, user: 'alice', pcId: 'pc-test' }, f.devicePublicKey, 'mydoc-kto+json');
    const forged = await signTakeoutKey({ issuer: rogueKey, iss: 'dave', sub: 'alice', aud: 'pc-test', jti: id, iat, nbf: iat, exp: iat + 86_400, kto });
    const refusedForged = await key({ requestId: id, token: forged, admin: 'dave' });
    assert.equal(refusedForged.status, 400);
    assert.equal((refusedForged.body as { error: { code: string } }).error.code, 'ERR_TAKEOUT_UNKNOWN_KID', 'the link is no way around the issuer keys');
    // A real key, but delivered as another administrator than its iss.
    const token = await f.signFor(id, 2);
    const wrongAdmin = await key({ requestId: id, token, admin: 'mallory' });
    assert.equal(wrongAdmin.status, 400);
    assert.equal((wrongAdmin.body as { error: { code: string } }).error.code, 'ERR_TAKEOUT_MALFORMED');
    // A tampered key.
    const [h, p, s] = token.split('.');
    const tampered = await key({ requestId: id, token: `${h}.${p}x.${s}`, admin: 'dave' });
    assert.equal(tampered.status, 400);
    // For another request.
    const other = await key({ requestId: 'AAAAAAAAAAAAAAAAAAAAAA', token, admin: 'dave' });
    assert.equal(other.status, 404);
    assert.deepEqual(await slotsOf(f, 'alice'), ['N', 'R', 'T']);
    assert.equal((await statusOf(f)).key, undefined, 'nothing installed by a refused delivery');

    const ok = await key({ requestId: id, token, admin: 'dave' });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body, { user: 'alice', expires: new Date(f.clock.now + 2 * 86_400_000).toISOString() });
    assert.equal((await statusOf(f)).key?.valid, true);
  }));

test('link routes: denial, revocation and the take-out state the console reconciles', { timeout: 60_000 }, () =>
  withFixture(async (f) => {
    const routes = takeoutLinkRoutes(f.takeout);
    const state = async () => {
      const answer = await routes[LINK_PATHS.takeoutState]!({});
      assert.equal(answer.status, 200);
      return answer.body as TakeoutStateAnswer;
    };
    const id = await ask(f);
    assert.deepEqual(await state(), { pending: [f.takeout.get(id)], revoked: [] });

    const bad = await routes[LINK_PATHS.takeoutDenial]!({ requestId: id, admin: 'dave', outcome: 'maybe', note: '' });
    assert.equal(bad.status, 400);
    assert.deepEqual(await routes[LINK_PATHS.takeoutDenial]!({ requestId: id, admin: 'dave', outcome: 'denied', note: 'no' }), { status: 204 });
    assert.equal((await statusOf(f)).ended?.note, 'no');
    assert.deepEqual((await state()).pending, []);

    const second = await ask(f);
    const token = await f.signFor(second, 2);
    assert.equal((await routes[LINK_PATHS.takeoutKey]!({ requestId: second, token, admin: 'dave' })).status, 200);
    assert.equal((await routes[LINK_PATHS.takeoutRevocation]!({ jti: 'x', admin: 'dave' })).status, 400);
    assert.deepEqual(await routes[LINK_PATHS.takeoutRevocation]!({ jti: second, admin: 'dave' }), { status: 204 });
    assert.deepEqual((await state()).revoked, [second]);
    const status = await statusOf(f);
    assert.equal(status.key?.valid, false, 'revoked at once');
    assert.equal(status.key?.refusal, 'ERR_TAKEOUT_REVOKED');
  }));

test('a take-out state file written before denials existed still opens', { timeout: 60_000 }, () =>
  withFixture(async (f) => {
    const id = await ask(f);
    const file = join(f.config.dataDir, 'takeout', 'state.json');
    const old = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    delete old.ended;
    await writeFile(file, JSON.stringify(old), { mode: 0o600 });
    const reopened = await Takeout.open({ dataDir: f.config.dataDir, pcId: f.config.pcId, maxDays: 14, issuers: new Map(), deviceKey: f.deviceKey, sessions: f.sessions, audit: f.auditLog, now: () => f.clock.now });
    try {
      assert.deepEqual(reopened.list().map((r) => r.id), [id]);
      assert.equal((await reopened.status('alice')).ended, undefined);
      await reopened.deny(id, { outcome: 'expired', by: 'console', note: '' });
      assert.equal((await reopened.status('alice')).ended?.outcome, 'expired');
    } finally {
      reopened.close();
    }
    old.ended = [];
    await writeFile(file, JSON.stringify(old), { mode: 0o600 });
    await expectCode(Takeout.open({ dataDir: f.config.dataDir, pcId: f.config.pcId, maxDays: 14, issuers: new Map(), deviceKey: f.deviceKey, sessions: f.sessions, audit: f.auditLog }), 'ERR_TAKEOUT_STATE');
  }));
