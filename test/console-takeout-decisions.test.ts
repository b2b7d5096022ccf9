/**
 * ConsoleTakeout (server/console/takeout/) against a real agent's take-out
 * engine in-process: the link is a fake that calls the agent's real link
 * routes (server/agent/link-takeout.ts) and can be cut; the store is an
 * in-memory fake of the ConsoleStore contract (the real stores have their
 * own contract suite). Approval signs for the device key pinned in the
 * store, is recorded only once the agent installed the key, and a key for
 * another device is refused by the agent; denials, expiries and revocations
 * decided while the PC is offline reach it at the next connect; a request
 * whose event was lost is picked up then too. console-takeout.test.ts runs
 * the whole thing with the real processes and slapd.
 */
import { mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { AuditLog, type AuditRecord } from '../policy/audit/log.js';
import { readFile } from 'node:fs/promises';
import { takeoutLinkRoutes } from '../server/agent/link-takeout.js';
import type { AgentEvent } from '../server/link/protocol.js';
import type { ConsoleStore, PcRow, RequestState, TakeoutRequestRow } from '../server/console/store/store.js';
import { ConsoleTakeout } from '../server/console/takeout/console-takeout.js';
import { ConsoleTakeoutError } from '../server/console/takeout/errors.js';
import { expectCode } from './helpers/expect-code.js';
import { DAY, slotsOf } from './helpers/takeout-cases.js';
import { startTakeoutFixture, type TakeoutFixture } from './helpers/takeout.js';
import type { TakeoutStatus } from '../policy/takeout/agent/status.js';
import Fastify from 'fastify';

/** The take-out half of the ConsoleStore contract, in memory. */
class MemoryStore {
  readonly pcs = new Map<string, PcRow>();
  readonly requests = new Map<string, TakeoutRequestRow>();
  /** The database is down: decideRequest throws. */
  down = false;

  async getPc(pcId: string) {
    return this.pcs.get(pcId);
  }
  async putRequest(row: Omit<TakeoutRequestRow, 'state' | 'decidedBy' | 'decidedAt' | 'note' | 'jti' | 'until'>) {
    if (!this.requests.has(row.id)) this.requests.set(row.id, { ...row, state: 'pending', decidedBy: null, decidedAt: null, note: null, jti: null, until: null });
  }
  async getRequest(id: string) {
    const row = this.requests.get(id);
    return row && { ...row };
  }
  async listRequests(filter: { state?: RequestState; pcId?: string; limit: number }) {
    return [...this.requests.values()].filter((r) => (!filter.state || r.state === filter.state) && (!filter.pcId || r.pcId === filter.pcId)).sort((a, b) => a.requestedAt - b.requestedAt).slice(0, filter.limit).map((r) => ({ ...r }));
  }
  async decideRequest(id: string, d: { state: Exclude<RequestState, 'pending'>; by: string; at: number; note: string | null; jti?: string; until?: number }) {
    if (this.down) throw Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' });
    const row = this.requests.get(id);
    if (!row || row.state !== 'pending') return false;
    Object.assign(row, { state: d.state, decidedBy: d.by, decidedAt: d.at, note: d.note, jti: d.jti ?? null, until: d.until ?? null });
    return true;
  }
  async revokeRequest(jti: string, by: string, at: number) {
    const row = [...this.requests.values()].find((r) => r.jti === jti && r.state === 'approved');
    if (!row) return undefined;
    Object.assign(row, { state: 'revoked', decidedBy: by, decidedAt: at });
    return { ...row };
  }
  async expireRequests(before: number, now: number) {
    const due = [...this.requests.values()].filter((r) => r.state === 'pending' && r.requestedAt < before);
    for (const row of due) Object.assign(row, { state: 'expired', decidedBy: 'console', decidedAt: now, note: null });
    return due.map((r) => ({ ...r }));
  }
}

/** A PC whose link is up but never answers. */
const HUNG_PC = 'pc-hung';

interface Bench {
  f: TakeoutFixture;
  store: MemoryStore;
  console: ConsoleTakeout;
  link: { up: boolean; timeoutAfterDelivery: boolean; sent: string[]; keyAnswerLost?: { code: 'ERR_LINK_BROKEN' | 'ERR_LINK_ANSWER'; drop: boolean } };
  /** The PC (re)connects: the console reconciles, as the registry's onConnected has it. */
  connect(): Promise<void>;
  consoleAudit(): Promise<AuditRecord[]>;
  ask(reason?: string, days?: number): Promise<string>;
  agentStatus(): Promise<TakeoutStatus>;
}

async function withBench(run: (b: Bench) => Promise<void>): Promise<void> {
  const f = await startTakeoutFixture({ maxDays: 5 });
  const store = new MemoryStore();
  const pcId = f.config.pcId;
  store.pcs.set(pcId, { pcId, deviceId: 'd', devicePublicPem: f.devicePublicKey.export({ type: 'spki', format: 'pem' }).toString(), addedAt: 0, enrolledAt: 0, removedAt: null, lastSeenAt: 0, status: null, pendingRequests: 0 });
  const routes = takeoutLinkRoutes(f.takeout);
  const link: Bench['link'] = { up: true, timeoutAfterDelivery: false, sent: [] };
  const hungTimers: NodeJS.Timeout[] = [];
  const hub = {
    // HUNG_PC is connected but its link never answers.
    isConnected: (id: string) => (id === pcId && link.up) || id === HUNG_PC,
    async request(id: string, path: string, body: unknown, opts?: { timeoutMs?: number }) {
      // As the real hub: no answer within timeoutMs (30 s when not given) is ERR_LINK_TIMEOUT; the hung PC's denial outlives the test.
      if (id === HUNG_PC) return new Promise<never>((_, reject) => hungTimers.push(setTimeout(() => reject(Object.assign(new Error('no answer in time'), { code: 'ERR_LINK_TIMEOUT' })), opts?.timeoutMs ?? 30_000)));
      if (id !== pcId || !link.up) throw Object.assign(new Error(`PC ${id} is not connected`), { code: 'ERR_LINK_OFFLINE' });
      link.sent.push(path);
      // As over the wire: JSON both ways.
      const answer = await routes[path]!(JSON.parse(JSON.stringify(body)));
      if (path === '/link/takeout/key' && link.keyAnswerLost) {
        // The key reached the agent, then the answer was lost: the link broke (and is down now) or the answer was garbled.
        if (link.keyAnswerLost.drop) link.up = false;
        throw Object.assign(new Error('the answer was lost'), { code: link.keyAnswerLost.code });
      }
      if (link.timeoutAfterDelivery) throw Object.assign(new Error('no answer in time'), { code: 'ERR_LINK_TIMEOUT' });
      return { status: answer.status, body: answer.body === undefined ? undefined : JSON.parse(JSON.stringify(answer.body)) };
    },
  };
  const auditFile = join(f.dir, 'console-audit', 'audit.log');
  const audit = await AuditLog.open(auditFile, { now: () => f.clock.now });
  const consoleTakeout = new ConsoleTakeout({ store: store as unknown as ConsoleStore, hub, issuerKey: f.issuer, audit, requestExpiryDays: 7, clock: () => f.clock.now, logger: Fastify({ logger: { level: 'silent' } }).log });
  // The agent pushes each request on its link; an event sent while the link is down is lost here (worst case).
  f.takeout.onRequest((request) => {
    if (link.up) void consoleTakeout.onAgentEvent(pcId, { type: 'takeout.request', request } satisfies AgentEvent);
  });
  const bench: Bench = {
    f,
    store,
    console: consoleTakeout,
    link,
    async connect() {
      link.up = true;
      await consoleTakeout.reconcile(pcId);
    },
    async consoleAudit() {
      return (await readFile(auditFile, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as AuditRecord);
    },
    async ask(reason = 'customer visit', days = 2) {
      const res = await f.request('POST', '/api/takeout/requests', { body: { days, reason } });
      assert.equal(res.status, 201, res.body);
      const { id } = res.json<{ id: string }>();
      for (let i = 0; i < 50 && link.up && !store.requests.has(id); i++) await new Promise((r) => setTimeout(r, 10));
      return id;
    },
    async agentStatus() {
      return (await f.request('GET', '/api/takeout/status')).json<TakeoutStatus>();
    },
  };
  try {
    await run(bench);
  } finally {
    for (const t of hungTimers) clearTimeout(t);
    consoleTakeout.close();
    await audit.close();
    await f.close();
  }
}

test('approve: days checked, PC must be online, signed for the pinned device key, recorded once the agent installed it', { timeout: 60_000 }, () =>
  withBench(async (b) => {
    const id = await b.ask();
    const row = b.store.requests.get(id)!;
    assert.deepEqual([row.state, row.user, row.days, row.reason, row.maxDays, row.pcId], ['pending', 'alice', 2, 'customer visit', 5, 'pc-test']);
    assert.deepEqual(Object.keys(row.envelopes), [b.f.issuer.kid]);

    await expectCode(b.console.approve(id, 'dave', 6), 'ERR_CTAKEOUT_DAYS', ConsoleTakeoutError);
    await expectCode(b.console.approve(id, 'dave', 0), 'ERR_CTAKEOUT_DAYS', ConsoleTakeoutError);
    b.link.up = false;
    await expectCode(b.console.approve(id, 'dave', 3), 'ERR_CTAKEOUT_PC_OFFLINE', ConsoleTakeoutError);
    b.link.up = true;
    assert.equal(b.store.requests.get(id)!.state, 'pending');

    // A device key in the store that is not this PC's: the agent cannot open K_to and refuses; nothing recorded.
    const pinned = b.store.pcs.get('pc-test')!;
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    b.store.pcs.set('pc-test', { ...pinned, devicePublicPem: other });
    const refused = await expectCode(b.console.approve(id, 'dave', 3), 'ERR_CTAKEOUT_AGENT', ConsoleTakeoutError);
    assert.match(refused.message, /ERR_TAKEOUT_SECRET/);
    assert.equal(b.store.requests.get(id)!.state, 'pending');
    assert.equal((await b.agentStatus()).key, undefined);
    b.store.pcs.set('pc-test', { ...pinned, removedAt: 1 });
    await expectCode(b.console.approve(id, 'dave', 3), 'ERR_CTAKEOUT_PC', ConsoleTakeoutError);
    b.store.pcs.set('pc-test', pinned);

    const approved = await b.console.approve(id, 'dave', 3);
    assert.deepEqual([approved.state, approved.decidedBy, approved.jti, approved.until, approved.note], ['approved', 'dave', id, b.f.clock.now + 3 * DAY, '3']);
    const status = await b.agentStatus();
    assert.equal(status.key?.valid, true);
    assert.equal(status.key?.expires, new Date(b.f.clock.now + 3 * DAY).toISOString());
    await expectCode(b.console.approve(id, 'dave', 3), 'ERR_CTAKEOUT_DECIDED', ConsoleTakeoutError);
    await expectCode(b.console.approve('nope', 'dave', 3), 'ERR_CTAKEOUT_NO_REQUEST', ConsoleTakeoutError);

    const trail = (await b.consoleAudit()).filter((r) => r.action === 'takeout.approve');
    assert.deepEqual(trail.map((r) => r.decision), ['deny', 'deny', 'deny', 'deny', 'deny', 'allow'], 'every refused and the granted approval audited');
    assert.ok(trail.every((r) => r.actor === 'dave' && r.target === id));
    assert.doesNotMatch(JSON.stringify(await b.consoleAudit()), /eyJ/, 'no token in the trail');
  }));

test('deny while the PC is offline: recorded at once, told at the next connect; the user sees the note', { timeout: 60_000 }, () =>
  withBench(async (b) => {
    const id = await b.ask();
    b.link.up = false;
    await expectCode(b.console.deny(id, 'dave', '   '), 'ERR_CTAKEOUT_NOTE', ConsoleTakeoutError);
    const denied = await b.console.deny(id, 'dave', 'not during the audit');
    assert.deepEqual([denied.state, denied.decidedBy, denied.note], ['denied', 'dave', 'not during the audit']);
    await expectCode(b.console.deny(id, 'dave', 'again'), 'ERR_CTAKEOUT_DECIDED', ConsoleTakeoutError);
    await expectCode(b.console.approve(id, 'dave', 1), 'ERR_CTAKEOUT_DECIDED', ConsoleTakeoutError);
    assert.equal((await b.agentStatus()).request?.id, id, 'the PC does not know yet');

    await b.connect();
    const status = await b.agentStatus();
    assert.equal(status.request, undefined);
    assert.deepEqual([status.ended?.outcome, status.ended?.note, status.ended?.by], ['denied', 'not during the audit', 'dave']);
    assert.deepEqual(await slotsOf(b.f, 'alice'), ['N', 'R']);
    const sent = b.link.sent.length;
    await b.connect();
    assert.deepEqual(b.link.sent.slice(sent), ['/link/takeout/state'], 'nothing sent twice');
    assert.ok((await b.consoleAudit()).some((r) => r.action === 'takeout.deny' && r.actor === 'dave' && r.target === id));
  }));

test('an unanswered request expires after requestExpiryDays and the PC is told; a younger one stays', { timeout: 60_000 }, () =>
  withBench(async (b) => {
    const old = await b.ask('old');
    b.f.clock.now += 7 * DAY - 1000;
    const young = await (async () => {
      const res = await b.f.request('POST', '/api/takeout/requests', { user: 'bob', body: { days: 1, reason: 'young' } });
      assert.equal(res.status, 201);
      const { id } = res.json<{ id: string }>();
      for (let i = 0; i < 50 && !b.store.requests.has(id); i++) await new Promise((r) => setTimeout(r, 10));
      return id;
    })();
    assert.equal(await b.console.expireDue(), 0, 'not yet 7 days');
    b.f.clock.now += 1001;
    assert.equal(await b.console.expireDue(), 1);
    assert.equal(b.store.requests.get(old)!.state, 'expired');
    assert.equal(b.store.requests.get(young)!.state, 'pending');
    const status = await b.agentStatus();
    assert.deepEqual([status.ended?.outcome, status.ended?.note], ['expired', 'unanswered for 7 day(s)']);
    assert.deepEqual(await slotsOf(b.f, 'alice'), ['N', 'R']);
    assert.ok((await b.consoleAudit()).some((r) => r.action === 'takeout.expire' && r.target === old));
  }));

test('revoke while the PC is offline: kept and sent at the next connect, once; only approved keys', { timeout: 60_000 }, () =>
  withBench(async (b) => {
    const id = await b.ask();
    await expectCode(b.console.revoke(id, 'dave'), 'ERR_CTAKEOUT_DECIDED', ConsoleTakeoutError);
    await b.console.approve(id, 'dave', 2);
    b.link.up = false;
    const revoked = await b.console.revoke(id, 'carol');
    assert.equal(revoked.state, 'revoked');
    await expectCode(b.console.revoke(id, 'dave'), 'ERR_CTAKEOUT_DECIDED', ConsoleTakeoutError);
    await expectCode(b.console.revoke('AAAAAAAAAAAAAAAAAAAAAA', 'dave'), 'ERR_CTAKEOUT_NO_REQUEST', ConsoleTakeoutError);
    assert.equal((await b.agentStatus()).key?.valid, true, 'the PC does not know yet');

    await b.connect();
    const status = await b.agentStatus();
    assert.equal(status.key?.valid, false);
    assert.equal(status.key?.refusal, 'ERR_TAKEOUT_REVOKED');
    await b.connect();
    const agentRevocations = (await b.f.audit()).filter((r) => r.action === 'takeout.revoke');
    assert.equal(agentRevocations.length, 1, 'sent once: the agent already had it at the second connect');
    assert.equal(agentRevocations[0]!.actor, 'carol');
  }));

test('a request made while the link was down is picked up at the next connect; a newer one replaces the older', { timeout: 60_000 }, () =>
  withBench(async (b) => {
    const first = await b.ask('first');
    b.link.up = false;
    const second = await b.ask('second');
    assert.equal(b.store.requests.has(second), false, 'the event was lost');
    await b.connect();
    assert.equal(b.store.requests.get(second)?.state, 'pending');
    assert.deepEqual([b.store.requests.get(first)?.state, b.store.requests.get(first)?.note], ['expired', 'replaced by a newer request on the PC']);

    // What an agent reports is checked: another PC's request, or a malformed one, is not stored.
    const detail = b.f.takeout.get(second);
    await b.console.onAgentEvent('pc-other', { type: 'takeout.request', request: detail });
    await b.console.onAgentEvent('pc-test', { type: 'takeout.request', request: { ...detail, id: 'BBBBBBBBBBBBBBBBBBBBBB', days: 99 } });
    await b.console.onAgentEvent('pc-test', { type: 'takeout.request', request: { ...detail, id: 'CCCCCCCCCCCCCCCCCCCCCC', envelopes: 'x' as unknown as Record<string, string> } });
    assert.deepEqual([...b.store.requests.keys()].sort(), [first, second].sort());
  }));

test('an approval the PC does not confirm in time is revoked, so no key exists unrecorded', { timeout: 60_000 }, () =>
  withBench(async (b) => {
    const id = await b.ask();
    b.link.timeoutAfterDelivery = true;
    const err = await expectCode(b.console.approve(id, 'dave', 2), 'ERR_CTAKEOUT_PC_TIMEOUT', ConsoleTakeoutError);
    assert.match(err.message, /revoked/);
    b.link.timeoutAfterDelivery = false;
    assert.equal(b.store.requests.get(id)!.state, 'revoked');
    assert.equal((await b.agentStatus()).key?.refusal, 'ERR_TAKEOUT_REVOKED', 'the revocation went after it');
    await b.connect();
    assert.equal((await b.f.audit()).filter((r) => r.action === 'takeout.revoke').length, 1);
  }));

test('an approval whose answer is lost after the key was sent (link broken, garbled answer) is revoked, told now or at the next connect', { timeout: 60_000 }, () =>
  withBench(async (b) => {
    const id = await b.ask();
    b.link.keyAnswerLost = { code: 'ERR_LINK_BROKEN', drop: true };
    const err = await expectCode(b.console.approve(id, 'dave', 2), 'ERR_CTAKEOUT_UNCONFIRMED', ConsoleTakeoutError);
    assert.match(err.message, /revoked/);
    b.link.keyAnswerLost = undefined;
    assert.equal(b.store.requests.get(id)!.state, 'revoked', 'recorded, so it is sent at the next connect');
    assert.equal((await b.agentStatus()).key?.valid, true, 'the PC installed the key and does not know yet');
    await b.connect();
    assert.equal((await b.agentStatus()).key?.refusal, 'ERR_TAKEOUT_REVOKED');
    assert.ok((await b.consoleAudit()).some((r) => r.action === 'takeout.revoke' && r.target === id && r.actor === 'console'));

    const second = await b.ask('again');
    b.link.keyAnswerLost = { code: 'ERR_LINK_ANSWER', drop: false };
    await expectCode(b.console.approve(second, 'dave', 2), 'ERR_CTAKEOUT_UNCONFIRMED', ConsoleTakeoutError);
    b.link.keyAnswerLost = undefined;
    assert.equal(b.store.requests.get(second)!.state, 'revoked');
    assert.equal((await b.agentStatus()).key?.refusal, 'ERR_TAKEOUT_REVOKED', 'the link is up: told at once');
  }));

test('an approval the agent installed but the store cannot record (database down) is revoked on the PC at once', { timeout: 60_000 }, () =>
  withBench(async (b) => {
    const id = await b.ask();
    b.store.down = true;
    const err = await expectCode(b.console.approve(id, 'dave', 2), 'ERR_CTAKEOUT_UNCONFIRMED', ConsoleTakeoutError);
    assert.match(err.message, /store could not record/);
    assert.equal((await b.agentStatus()).key?.refusal, 'ERR_TAKEOUT_REVOKED', 'no valid key the console does not know');
    assert.ok((await b.consoleAudit()).some((r) => r.action === 'takeout.revoke' && r.target === id));
    assert.ok((await b.consoleAudit()).some((r) => r.action === 'takeout.approve' && r.decision === 'deny' && /UNCONFIRMED/.test(r.reason ?? '')));
  }));

test("a PC whose link never answers does not delay decisions on another PC, nor the expiry sweep", { timeout: 60_000 }, () =>
  withBench(async (b) => {
    const hung = 'HHHHHHHHHHHHHHHHHHHHHH';
    const old = 'OOOOOOOOOOOOOOOOOOOOOO';
    for (const [id, at] of [[hung, b.f.clock.now], [old, b.f.clock.now - 8 * DAY]] as const) {
      b.store.requests.set(id, { id, pcId: HUNG_PC, user: 'erin', days: 1, reason: 'r', requestedAt: at, maxDays: 5, envelopes: {}, state: 'pending', decidedBy: null, decidedAt: null, note: null, jti: null, until: null });
    }
    const id = await b.ask();
    // The denial is recorded, then its telling hangs on the PC's link, holding that PC's queue.
    void b.console.deny(hung, 'dave', 'no');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(b.store.requests.get(hung)!.state, 'denied');
    const started = Date.now();
    const approved = await b.console.approve(id, 'dave', 2);
    assert.equal(approved.state, 'approved');
    assert.ok(Date.now() - started < 5_000, `the approval on another PC took ${Date.now() - started} ms`);
    assert.equal((await b.agentStatus()).key?.valid, true);

    // The sweep writes the expiry at once and gives the hung PC a short timeout, not the hung denial's queue.
    const swept = Date.now();
    assert.equal(await b.console.expireDue(), 1);
    assert.equal(b.store.requests.get(old)!.state, 'expired');
    assert.ok(Date.now() - swept < 10_000, `the sweep took ${Date.now() - swept} ms`);
  }));

test('start is idempotent: started twice, the expiry sweep runs once an hour, and close stops it', { timeout: 60_000 }, () =>
  withBench(async (b) => {
    let sweeps = 0;
    const expire = b.store.expireRequests.bind(b.store);
    b.store.expireRequests = async (before, now) => {
      sweeps++;
      return expire(before, now);
    };
    mock.timers.enable({ apis: ['setInterval'] });
    try {
      b.console.start();
      b.console.start();
      mock.timers.tick(60 * 60_000);
      await new Promise((r) => setImmediate(r));
      assert.equal(sweeps, 1, 'one interval, not two');
      b.console.close();
      mock.timers.tick(60 * 60_000);
      await new Promise((r) => setImmediate(r));
      assert.equal(sweeps, 1, 'stopped');
    } finally {
      mock.timers.reset();
    }
  }));

test('a request the agent dates in the future counts from when the console received it, and expires', { timeout: 60_000 }, () =>
  withBench(async (b) => {
    b.link.up = false;
    const id = await b.ask();
    b.link.up = true;
    const detail = b.f.takeout.get(id);
    await b.console.onAgentEvent('pc-test', { type: 'takeout.request', request: { ...detail, requested: '2100-01-01T00:00:00.000Z' } });
    assert.equal(b.store.requests.get(id)!.requestedAt, b.f.clock.now, 'clamped to the receive time');
    b.f.clock.now += 7 * DAY + 1;
    assert.equal(await b.console.expireDue(), 1);
    assert.equal(b.store.requests.get(id)!.state, 'expired');
  }));
