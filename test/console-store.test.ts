/**
 * The console store's contract (server/console/store/store.ts): one suite,
 * run against the embedded SQLite file (in a temporary folder) and against a
 * real PostgreSQL server this file starts (test/helpers/postgres.ts), each
 * test on an empty database. Then what only one engine has: SQLite's file
 * modes; PostgreSQL down at start, silent, lost at run time and back.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, test, type TestContext } from 'node:test';
import Database from 'better-sqlite3-multiple-ciphers';
import type { FastifyBaseLogger } from 'fastify';
import { openConsoleStore } from '../server/console/store/open.js';
import type { ConsoleStore, PcQuery, PcStatus, TakeoutRequestRow } from '../server/console/store/store.js';
import { StoreError } from '../server/console/store/errors.js';
import { expectCode } from './helpers/expect-code.js';
import { startPostgres, type Postgres } from './helpers/postgres.js';
import { createTlsMaterial } from '../server/http/tls.js';
import { freePort } from './helpers/server.js';

interface StoreUnderTest {
  store: ConsoleStore;
  /** Inserts PCs `fleet-00000` .. `fleet-<n-1>` (see fleetPc for their columns). */
  seed(n: number): Promise<void>;
}

const DAY = 86_400_000;
/** The suite's "now": a fixed time, so every expectation is exact. */
const NOW = Date.UTC(2026, 10, 1, 12, 0, 0);
const ONLINE_SINCE = NOW - 150_000;

/** What seed() writes for PC number i (both seeders follow it). */
function fleetPc(i: number): { pcId: string; lastSeenAt: number | null; lastBackupAt: number | null; gate: 'online' | 'takeout' | 'locked'; takeoutUntil: number | null; users: string[] } {
  return {
    pcId: `fleet-${String(i).padStart(5, '0')}`,
    lastSeenAt: i % 10 === 0 ? null : i % 10 === 5 ? NOW - 1000 : NOW - (i % 100) * DAY,
    lastBackupAt: i % 7 === 0 ? null : NOW - (i % 20) * DAY,
    gate: i % 3 === 0 ? 'takeout' : i % 3 === 1 ? 'online' : 'locked',
    takeoutUntil: i % 3 === 0 ? NOW + (i % 5) * DAY : null,
    users: [`user${i}`, `Shared${i % 50}`],
  };
}

/** The columns seed() fills, and PC number i's values for them. */
const FLEET_COLUMNS = ['pc_id', 'added_at', 'last_seen_at', 'status', 'gate', 'takeout_until', 'last_backup_at', 'search_text'] as const;
function fleetRow(i: number): (string | number | null)[] {
  const p = fleetPc(i);
  const st: PcStatus = { gate: p.gate, takeoutUntil: p.takeoutUntil, users: p.users, lastBackupAt: p.lastBackupAt, agentVersion: '0.1.0' };
  const seen = p.lastSeenAt === null ? null : JSON.stringify(st);
  return [p.pcId, NOW - 365 * DAY, p.lastSeenAt, seen, seen && p.gate, seen && p.takeoutUntil, seen && p.lastBackupAt, [p.pcId, ...p.users].join('\n').toLowerCase()];
}

function status(overrides: Partial<PcStatus> = {}): PcStatus {
  return { gate: 'online', takeoutUntil: null, users: ['alice'], lastBackupAt: null, agentVersion: '0.1.0', ...overrides };
}

function tokenHash(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

function request(id: string, pcId: string, overrides: Partial<TakeoutRequestRow> = {}) {
  return { id, pcId, user: 'alice', days: 3, reason: 'travel', requestedAt: NOW - DAY, maxDays: 14, envelopes: { kid1: 'sealed-1' }, ...overrides };
}

function query(overrides: Partial<PcQuery> = {}): PcQuery {
  return { filter: 'all', sort: 'pcId', descending: false, offset: 0, limit: 100, onlineSince: ONLINE_SINCE, now: NOW, ...overrides };
}

async function ids(store: ConsoleStore, overrides: Partial<PcQuery> = {}): Promise<string[]> {
  return (await store.listPcs(query(overrides))).rows.map((r) => r.pcId);
}

/** Registers the contract tests; `fresh` opens a store over an empty database (closed by the test). */
function storeContract(fresh: (t: TestContext) => Promise<StoreUnderTest>): void {
  const withStore = (name: string, fn: (s: ConsoleStore, u: StoreUnderTest, t: TestContext) => Promise<void>) =>
    test(name, async (t) => {
      const u = await fresh(t);
      try {
        await fn(u.store, u, t);
      } finally {
        await u.store.close();
      }
    });

  withStore('addPc registers a PC once; a removed PC can be added again and starts over', async (s) => {
    await s.addPc('pc1', NOW);
    const row = await s.getPc('pc1');
    assert.deepEqual(row, { pcId: 'pc1', deviceId: null, devicePublicPem: null, addedAt: NOW, enrolledAt: null, removedAt: null, lastSeenAt: null, status: null, pendingRequests: 0 });
    await expectCode(s.addPc('pc1', NOW + 1), 'ERR_STORE_PC_EXISTS', StoreError);
    assert.equal(await s.getPc('nope'), undefined);

    await s.createEnrolment('pc1', tokenHash('t1'), NOW + DAY);
    assert.deepEqual(await s.consumeEnrolment('pc1', tokenHash('t1'), 'dev-a', 'PEM-A', NOW), { ok: true });
    await s.saveStatus('pc1', status(), NOW);
    assert.equal(await s.removePc('pc1', NOW + 10), true);
    assert.equal((await s.getPc('pc1'))?.removedAt, NOW + 10);
    assert.equal(await s.removePc('pc1', NOW + 11), false, 'removing twice');
    assert.equal(await s.removePc('unknown', NOW), false);

    await s.addPc('pc1', NOW + 20);
    assert.deepEqual(await s.getPc('pc1'), { pcId: 'pc1', deviceId: null, devicePublicPem: null, addedAt: NOW + 20, enrolledAt: null, removedAt: null, lastSeenAt: null, status: null, pendingRequests: 0 });
    // The old token went with the old device; a new device enrols with a new token.
    assert.deepEqual(await s.consumeEnrolment('pc1', tokenHash('t1'), 'dev-b', 'PEM-B', NOW + 21), { ok: false, code: 'ERR_ENROL_UNKNOWN' });
    await s.createEnrolment('pc1', tokenHash('t2'), NOW + DAY);
    assert.deepEqual(await s.consumeEnrolment('pc1', tokenHash('t2'), 'dev-b', 'PEM-B', NOW + 22), { ok: true });
    assert.equal((await s.getPc('pc1'))?.deviceId, 'dev-b');
  });

  withStore('two concurrent addPc of one pcId: one registers it, the other is told it exists', async (s) => {
    const results = await Promise.allSettled([s.addPc('race', NOW), s.addPc('race', NOW + 1)]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.equal((refused.reason as StoreError).code, 'ERR_STORE_PC_EXISTS');
  });

  withStore('enrolment: a token binds one device once; reused, expired, wrong, foreign, taken and removed are refused by code', async (s) => {
    await expectCode(s.createEnrolment('ghost', tokenHash('x'), NOW + DAY), 'ERR_STORE_PC_UNKNOWN', StoreError);
    await expectCode(s.createEnrolment('ghost', Buffer.alloc(5), NOW + DAY), 'ERR_STORE_QUERY', StoreError);
    await s.addPc('pc1', NOW);
    await s.addPc('pc2', NOW);
    await s.createEnrolment('pc1', tokenHash('old'), NOW + DAY);
    await s.createEnrolment('pc1', tokenHash('tok'), NOW + DAY); // replaces the unused one
    await s.createEnrolment('pc2', tokenHash('pc2-tok'), NOW + DAY);

    assert.deepEqual(await s.consumeEnrolment('ghost', tokenHash('tok'), 'dev-a', 'PEM', NOW), { ok: false, code: 'ERR_ENROL_UNKNOWN' });
    assert.deepEqual(await s.consumeEnrolment('pc1', tokenHash('old'), 'dev-a', 'PEM', NOW), { ok: false, code: 'ERR_ENROL_UNKNOWN' }, 'a replaced token');
    assert.deepEqual(await s.consumeEnrolment('pc1', tokenHash('wrong'), 'dev-a', 'PEM', NOW), { ok: false, code: 'ERR_ENROL_UNKNOWN' });
    assert.deepEqual(await s.consumeEnrolment('pc1', tokenHash('pc2-tok'), 'dev-a', 'PEM', NOW), { ok: false, code: 'ERR_ENROL_UNKNOWN' }, "another PC's token");
    assert.equal((await s.getPc('pc1'))?.deviceId, null, 'nothing bound by a refusal');

    assert.deepEqual(await s.consumeEnrolment('pc1', tokenHash('tok'), 'dev-a', 'PEM-A', NOW + 5), { ok: true });
    const pc1 = await s.getPc('pc1');
    assert.equal(pc1?.deviceId, 'dev-a');
    assert.equal(pc1?.devicePublicPem, 'PEM-A');
    assert.equal(pc1?.enrolledAt, NOW + 5);

    assert.deepEqual(await s.consumeEnrolment('pc1', tokenHash('tok'), 'dev-a', 'PEM-A', NOW + 6), { ok: false, code: 'ERR_ENROL_USED' });
    // The used token says so, whoever presents it.
    assert.deepEqual(await s.consumeEnrolment('pc1', tokenHash('tok'), 'dev-x', 'PEM-X', NOW + 6), { ok: false, code: 'ERR_ENROL_USED' });
    // Without a valid token of its own, another device finds pc1 taken.
    assert.deepEqual(await s.consumeEnrolment('pc1', tokenHash('wrong'), 'dev-x', 'PEM-X', NOW + 6), { ok: false, code: 'ERR_ENROL_TAKEN' });
    // Even a fresh token does not let another device take an enrolled pcId.
    await s.createEnrolment('pc1', tokenHash('fresh'), NOW + DAY);
    assert.deepEqual(await s.consumeEnrolment('pc1', tokenHash('fresh'), 'dev-x', 'PEM-X', NOW + 7), { ok: false, code: 'ERR_ENROL_TAKEN' });
    assert.equal((await s.getPc('pc1'))?.deviceId, 'dev-a');

    // Expiry: a token is good strictly before expiresAt.
    await s.addPc('pc3', NOW);
    await s.createEnrolment('pc3', tokenHash('short'), NOW + 100);
    assert.deepEqual(await s.consumeEnrolment('pc3', tokenHash('short'), 'dev-c', 'PEM-C', NOW + 100), { ok: false, code: 'ERR_ENROL_EXPIRED' });
    assert.deepEqual(await s.consumeEnrolment('pc3', tokenHash('short'), 'dev-c', 'PEM-C', NOW + 99), { ok: true });

    assert.equal(await s.removePc('pc2', NOW + 8), true);
    assert.deepEqual(await s.consumeEnrolment('pc2', tokenHash('pc2-tok'), 'dev-b', 'PEM-B', NOW + 9), { ok: false, code: 'ERR_ENROL_REMOVED' });
    await expectCode(s.createEnrolment('pc2', tokenHash('again'), NOW + DAY), 'ERR_STORE_PC_UNKNOWN', StoreError);
  });

  withStore('enrolment is single use under concurrency: of two handshakes racing with one token, exactly one binds its device', async (s) => {
    for (let round = 0; round < 5; round++) {
      const pcId = `race-${round}`;
      await s.addPc(pcId, NOW);
      await s.createEnrolment(pcId, tokenHash(pcId), NOW + DAY);
      const results = await Promise.all([
        s.consumeEnrolment(pcId, tokenHash(pcId), `dev-a-${round}`, 'PEM-A', NOW),
        s.consumeEnrolment(pcId, tokenHash(pcId), `dev-b-${round}`, 'PEM-B', NOW),
      ]);
      const winners = results.flatMap((r, i) => (r.ok ? [i] : []));
      assert.equal(winners.length, 1, `round ${round}: ${JSON.stringify(results)}`);
      const loser = results[1 - winners[0]!]!;
      assert.deepEqual(loser, { ok: false, code: 'ERR_ENROL_USED' }, 'the loser finds the token used');
      assert.equal((await s.getPc(pcId))?.deviceId, winners[0] === 0 ? `dev-a-${round}` : `dev-b-${round}`);
    }
    // The same device racing itself: one enrols, the other finds the token used.
    await s.addPc('self', NOW);
    await s.createEnrolment('self', tokenHash('self'), NOW + DAY);
    const same = await Promise.all([0, 1].map(() => s.consumeEnrolment('self', tokenHash('self'), 'dev-s', 'PEM-S', NOW)));
    assert.deepEqual(same.map((r) => r.ok).sort(), [false, true]);
    assert.deepEqual(same.find((r) => !r.ok), { ok: false, code: 'ERR_ENROL_USED' });
  });

  withStore('one device key is one live PC: enrolling it as a second PC is ERR_ENROL_TAKEN, racing or not; a removed PC frees its key', async (s) => {
    for (let round = 0; round < 5; round++) {
      const pcs = [`twin-a-${round}`, `twin-b-${round}`];
      for (const pcId of pcs) {
        await s.addPc(pcId, NOW);
        await s.createEnrolment(pcId, tokenHash(pcId), NOW + DAY);
      }
      const results = await Promise.all(pcs.map((pcId) => s.consumeEnrolment(pcId, tokenHash(pcId), `dev-twin-${round}`, 'PEM', NOW)));
      assert.deepEqual(results.map((r) => (r.ok ? 'ok' : r.code)).sort(), ['ERR_ENROL_TAKEN', 'ok'], `round ${round}: ${JSON.stringify(results)}`);
      const bound = await Promise.all(pcs.map(async (pcId) => (await s.getPc(pcId))?.deviceId ?? null));
      assert.equal(bound.filter((d) => d === `dev-twin-${round}`).length, 1, `round ${round}: one PC holds the key: ${JSON.stringify(bound)}`);
      assert.equal((await s.getPcByDevice(`dev-twin-${round}`))?.pcId, pcs[results.findIndex((r) => r.ok)]);
    }
    // The removed PC's key may enrol as another PC.
    const winner = (await s.getPcByDevice('dev-twin-0'))!.pcId;
    const loser = winner === 'twin-a-0' ? 'twin-b-0' : 'twin-a-0';
    assert.equal(await s.removePc(winner, NOW + 1), true);
    assert.deepEqual(await s.consumeEnrolment(loser, tokenHash(loser), 'dev-twin-0', 'PEM', NOW + 2), { ok: true });
  });

  withStore('saveStatus stores the status at once and counts as seen; never moves last seen back; unknown PCs are refused', async (s) => {
    await s.addPc('pc1', NOW - DAY);
    const st = status({ gate: 'takeout', takeoutUntil: NOW + DAY, users: ['Alice', 'bob'], lastBackupAt: NOW - 3600_000 });
    await s.saveStatus('pc1', st, NOW);
    let row = await s.getPc('pc1');
    assert.deepEqual(row?.status, st);
    assert.equal(row?.lastSeenAt, NOW);
    await s.saveStatus('pc1', status({ gate: 'locked' }), NOW - 1000);
    row = await s.getPc('pc1');
    assert.equal(row?.status?.gate, 'locked');
    assert.equal(row?.lastSeenAt, NOW, 'an older time does not move last seen back');
    await expectCode(s.saveStatus('ghost', st, NOW), 'ERR_STORE_PC_UNKNOWN', StoreError);
    await s.removePc('pc1', NOW);
    await expectCode(s.saveStatus('pc1', st, NOW), 'ERR_STORE_PC_UNKNOWN', StoreError);
  });

  withStore('touchPresence writes a whole batch: the latest time per PC, never backwards, unknown PCs ignored', async (s) => {
    const n = 500;
    for (let i = 0; i < n; i++) await s.addPc(`p${i}`, NOW - DAY);
    await s.touchPresence([]);
    const batch = Array.from({ length: n }, (_, i) => ({ pcId: `p${i}`, at: NOW - i }));
    batch.push({ pcId: 'p0', at: NOW - 50 }, { pcId: 'p1', at: NOW + 7 }, { pcId: 'ghost', at: NOW });
    await s.touchPresence(batch);
    assert.equal((await s.getPc('p0'))?.lastSeenAt, NOW, 'the latest of two times in one batch');
    assert.equal((await s.getPc('p1'))?.lastSeenAt, NOW + 7);
    assert.equal((await s.getPc(`p${n - 1}`))?.lastSeenAt, NOW - (n - 1));
    assert.equal(await s.getPc('ghost'), undefined);
    await s.touchPresence([{ pcId: 'p2', at: NOW - 10_000 }]);
    assert.equal((await s.getPc('p2'))?.lastSeenAt, NOW - 2, 'an older time does not move last seen back');
    const online = await s.listPcs(query({ filter: 'online', onlineSince: NOW - 100, limit: 1000 }));
    assert.equal(online.total, 101); // p0..p100 (p1 at NOW+7)
  });

  withStore('listPcs: each filter, the search over pcId and users, each sort both ways, paging and total; removed PCs are not listed', async (s) => {
    // a: online now, backed up an hour ago, take-out ending in 12 h, users Alice+Bob, 2 pending
    // b: seen 40 days ago, never backed up (added 60 days ago), user carol
    // c: seen 2 days ago, backed up 10 days ago, locked, user "100%_real"
    // d: never seen, added 1 day ago, no status
    // e: removed
    await s.addPc('pc-a', NOW - 60 * DAY);
    await s.addPc('pc-b', NOW - 60 * DAY);
    await s.addPc('pc-c', NOW - 60 * DAY);
    await s.addPc('pc-d', NOW - DAY);
    await s.addPc('pc-e', NOW - 60 * DAY);
    await s.saveStatus('pc-a', status({ gate: 'takeout', takeoutUntil: NOW + 12 * 3600_000, users: ['Alice', 'Bob'], lastBackupAt: NOW - 3600_000 }), NOW);
    await s.saveStatus('pc-b', status({ gate: 'online', users: ['carol'] }), NOW - 40 * DAY);
    await s.saveStatus('pc-c', status({ gate: 'locked', users: ['100%_real'], lastBackupAt: NOW - 10 * DAY }), NOW - 2 * DAY);
    await s.saveStatus('pc-e', status({ users: ['alice'] }), NOW);
    await s.removePc('pc-e', NOW);
    await s.putRequest(request('r1', 'pc-a'));
    await s.putRequest(request('r2', 'pc-a', { requestedAt: NOW - 2 * DAY }));
    await s.putRequest(request('r3', 'pc-c'));
    await s.decideRequest('r3', { state: 'denied', by: 'admin', at: NOW, note: 'no' });

    assert.deepEqual(await ids(s), ['pc-a', 'pc-b', 'pc-c', 'pc-d']);
    assert.equal((await s.listPcs(query())).rows[0]?.pendingRequests, 2);
    assert.deepEqual(await ids(s, { filter: 'online' }), ['pc-a']);
    assert.deepEqual(await ids(s, { filter: 'offline' }), ['pc-b', 'pc-c', 'pc-d']);
    assert.deepEqual(await ids(s, { filter: 'offline', days: 30 }), ['pc-b']);
    assert.deepEqual(await ids(s, { filter: 'offline', days: 1 }), ['pc-b', 'pc-c'], 'never seen counts from when it was added (exactly 1 day: not more)');
    assert.deepEqual(await ids(s, { filter: 'no-backup' }), ['pc-b', 'pc-d'], 'never backed up');
    assert.deepEqual(await ids(s, { filter: 'no-backup', days: 7 }), ['pc-b', 'pc-c']);
    assert.deepEqual(await ids(s, { filter: 'takeout' }), ['pc-a']);
    assert.deepEqual(await ids(s, { filter: 'takeout', now: NOW + 13 * 3600_000 }), [], 'an ended take-out is not active');
    assert.deepEqual(await ids(s, { filter: 'pending' }), ['pc-a']);

    assert.deepEqual(await ids(s, { search: 'ALICE' }), ['pc-a'], 'users, case-insensitively');
    assert.deepEqual(await ids(s, { search: 'ro' }), ['pc-b'], 'a substring of a user');
    assert.deepEqual(await ids(s, { search: 'PC-' }), ['pc-a', 'pc-b', 'pc-c', 'pc-d'], 'the pcId');
    assert.deepEqual(await ids(s, { search: '0%_' }), ['pc-c'], "LIKE's wildcards are plain characters");
    assert.deepEqual(await ids(s, { search: '%' }), ['pc-c']);
    assert.deepEqual(await ids(s, { search: '_' }), ['pc-c']);
    assert.deepEqual(await ids(s, { search: 'zzz' }), []);
    assert.deepEqual(await ids(s, { search: "'; delete from pc; --" }), [], 'a search is text, never SQL');
    assert.deepEqual(await ids(s, { search: 'alice', filter: 'offline' }), []);

    // Sorts: a missing value is the smallest; pcId breaks ties.
    assert.deepEqual(await ids(s, { sort: 'pcId', descending: true }), ['pc-d', 'pc-c', 'pc-b', 'pc-a']);
    assert.deepEqual(await ids(s, { sort: 'lastSeen' }), ['pc-d', 'pc-b', 'pc-c', 'pc-a']);
    assert.deepEqual(await ids(s, { sort: 'lastSeen', descending: true }), ['pc-a', 'pc-c', 'pc-b', 'pc-d']);
    assert.deepEqual(await ids(s, { sort: 'lastBackup' }), ['pc-b', 'pc-d', 'pc-c', 'pc-a']);
    assert.deepEqual(await ids(s, { sort: 'lastBackup', descending: true }), ['pc-a', 'pc-c', 'pc-b', 'pc-d']);
    assert.deepEqual(await ids(s, { sort: 'gate' }), ['pc-d', 'pc-c', 'pc-b', 'pc-a']);
    assert.deepEqual(await ids(s, { sort: 'gate', descending: true }), ['pc-a', 'pc-b', 'pc-c', 'pc-d']);
    assert.deepEqual(await ids(s, { sort: 'pending' }), ['pc-b', 'pc-c', 'pc-d', 'pc-a']);
    assert.deepEqual(await ids(s, { sort: 'pending', descending: true }), ['pc-a', 'pc-b', 'pc-c', 'pc-d']);

    const page = await s.listPcs(query({ offset: 1, limit: 2 }));
    assert.deepEqual(page.rows.map((r) => r.pcId), ['pc-b', 'pc-c']);
    assert.equal(page.total, 4);
    assert.deepEqual(await s.listPcs(query({ offset: 10, limit: 2 })), { rows: [], total: 4 });
    assert.equal((await s.listPcs(query({ limit: 0 }))).total, 4);
    await expectCode(s.listPcs(query({ limit: 1001 })), 'ERR_STORE_QUERY', StoreError);
    await expectCode(s.listPcs(query({ offset: -1 })), 'ERR_STORE_QUERY', StoreError);
    await expectCode(s.listPcs(query({ sort: 'status; drop table pc' as never })), 'ERR_STORE_QUERY', StoreError);
    await expectCode(s.listPcs(query({ filter: 'bogus' as never })), 'ERR_STORE_QUERY', StoreError);
    await expectCode(s.listPcs(query({ filter: 'offline', days: -1 })), 'ERR_STORE_QUERY', StoreError);
    await expectCode(s.listPcs(query({ filter: 'offline', days: Number.NaN })), 'ERR_STORE_QUERY', StoreError);
    assert.equal((await s.listPcs(query())).total, 4, 'still all there');
  });

  withStore('PC ids sort bytewise on both engines (upper case, digits and punctuation as in SQLite)', async (s) => {
    const names = ['b', 'B', 'a-1', 'a.1', 'a_1', 'A1', '9'];
    for (const n of names) await s.addPc(n, NOW);
    assert.deepEqual(await ids(s), [...names].sort());
  });

  withStore('alertCounts: not seen for 30 days, no backup for 7 days, pending requests, take-outs ending within 24 h', async (s) => {
    assert.deepEqual(await s.alertCounts(NOW, ONLINE_SINCE), { notSeen30Days: 0, noBackup7Days: 0, pendingRequests: 0, takeoutsEndingIn24h: 0 });
    await s.addPc('old-never-seen', NOW - 40 * DAY); // not seen (from added), no backup
    await s.addPc('new-never-seen', NOW - DAY); // neither
    await s.addPc('seen-31', NOW - 90 * DAY);
    await s.saveStatus('seen-31', status({ lastBackupAt: NOW - 6 * DAY }), NOW - 31 * DAY); // not seen; backup 6 days: fine
    await s.addPc('ending', NOW - 90 * DAY);
    await s.saveStatus('ending', status({ gate: 'takeout', takeoutUntil: NOW + 23 * 3600_000, lastBackupAt: NOW - 8 * DAY }), NOW); // ending, no backup 7
    await s.addPc('later', NOW - 90 * DAY);
    await s.saveStatus('later', status({ gate: 'takeout', takeoutUntil: NOW + 25 * 3600_000, lastBackupAt: NOW }), NOW);
    await s.addPc('ended', NOW - 90 * DAY);
    await s.saveStatus('ended', status({ takeoutUntil: NOW - 1, lastBackupAt: NOW }), NOW);
    await s.putRequest(request('q1', 'ending'));
    await s.putRequest(request('q2', 'later'));
    await s.putRequest(request('q3', 'later'));
    await s.decideRequest('q3', { state: 'approved', by: 'admin', at: NOW, note: '3', jti: 'j3', until: NOW + 3 * DAY });
    await s.addPc('gone', NOW - 90 * DAY); // removed: not counted at all
    await s.putRequest(request('q4', 'gone'));
    await s.removePc('gone', NOW);
    assert.deepEqual(await s.alertCounts(NOW, ONLINE_SINCE), { notSeen30Days: 2, noBackup7Days: 2, pendingRequests: 2, takeoutsEndingIn24h: 1 });
  });

  withStore('take-out requests: stored once, decided once (compare-and-set), revoked by jti, listed by state and PC', async (s) => {
    await s.addPc('pc1', NOW);
    await s.addPc('pc2', NOW);
    await s.putRequest(request('r1', 'pc1'));
    await s.putRequest(request('r1', 'pc2', { user: 'mallory', days: 90, reason: 'overwrite' })); // same id again: left as it is
    const r1 = await s.getRequest('r1');
    assert.deepEqual(r1, { ...request('r1', 'pc1'), state: 'pending', decidedBy: null, decidedAt: null, note: null, jti: null, until: null });
    assert.equal(await s.getRequest('nope'), undefined);
    await expectCode(s.putRequest(request('r9', 'ghost')), 'ERR_STORE_PC_UNKNOWN', StoreError);
    assert.equal((await s.getPc('pc1'))?.pendingRequests, 1);

    await s.putRequest(request('r2', 'pc1', { requestedAt: NOW - 3 * DAY }));
    await s.putRequest(request('r3', 'pc2', { requestedAt: NOW - 2 * DAY }));
    assert.deepEqual((await s.listRequests({ limit: 10 })).map((r) => r.id), ['r1', 'r3', 'r2'], 'newest first');
    assert.deepEqual((await s.listRequests({ pcId: 'pc1', limit: 10 })).map((r) => r.id), ['r1', 'r2']);
    assert.deepEqual((await s.listRequests({ limit: 1 })).map((r) => r.id), ['r1']);
    await expectCode(s.listRequests({ limit: 1001 }), 'ERR_STORE_QUERY', StoreError);

    const approval = { state: 'approved' as const, by: 'approver1', at: NOW, note: '3', jti: 'jti-1', until: NOW + 3 * DAY };
    assert.equal(await s.decideRequest('r1', approval), true);
    assert.equal(await s.decideRequest('r1', { state: 'denied', by: 'approver2', at: NOW + 1, note: 'late' }), false, 'decided already');
    assert.equal(await s.decideRequest('ghost', approval), false);
    assert.deepEqual(await s.getRequest('r1'), { ...request('r1', 'pc1'), state: 'approved', decidedBy: 'approver1', decidedAt: NOW, note: '3', jti: 'jti-1', until: NOW + 3 * DAY });
    assert.equal((await s.getPc('pc1'))?.pendingRequests, 1);

    assert.equal(await s.decideRequest('r3', { state: 'denied', by: 'approver2', at: NOW, note: 'not now' }), true);
    const denied = await s.getRequest('r3');
    assert.equal(denied?.state, 'denied');
    assert.equal(denied?.note, 'not now');
    assert.equal(denied?.jti, null);
    assert.deepEqual((await s.listRequests({ state: 'pending', limit: 10 })).map((r) => r.id), ['r2']);
    assert.deepEqual((await s.listRequests({ state: 'denied', pcId: 'pc2', limit: 10 })).map((r) => r.id), ['r3']);

    const revoked = await s.revokeRequest('jti-1', 'approver3', NOW + 5);
    assert.equal(revoked?.id, 'r1');
    assert.equal(revoked?.state, 'revoked');
    assert.equal(revoked?.decidedBy, 'approver3');
    assert.equal(revoked?.decidedAt, NOW + 5);
    assert.equal(revoked?.until, NOW + 3 * DAY);
    assert.equal(await s.revokeRequest('jti-1', 'approver3', NOW + 6), undefined, 'revoked already');
    assert.equal(await s.revokeRequest('no-such-jti', 'approver3', NOW), undefined);
    assert.equal((await s.getRequest('r1'))?.state, 'revoked');
  });

  withStore('two approvers deciding one request at once: exactly one decision wins', async (s) => {
    await s.addPc('pc1', NOW);
    await s.putRequest(request('r1', 'pc1'));
    const [a, b] = await Promise.all([
      s.decideRequest('r1', { state: 'approved', by: 'one', at: NOW, note: '3', jti: 'j', until: NOW + DAY }),
      s.decideRequest('r1', { state: 'denied', by: 'two', at: NOW, note: 'no' }),
    ]);
    assert.equal(Number(a) + Number(b), 1);
    assert.equal((await s.getRequest('r1'))?.decidedBy, a ? 'one' : 'two');
  });

  withStore('expireRequests expires only pending requests asked before the cut-off, once; removing a PC expires its pending ones', async (s) => {
    await s.addPc('pc1', NOW);
    await s.addPc('pc2', NOW);
    await s.putRequest(request('old1', 'pc1', { requestedAt: NOW - 9 * DAY }));
    await s.putRequest(request('old2', 'pc1', { requestedAt: NOW - 8 * DAY }));
    await s.putRequest(request('edge', 'pc1', { requestedAt: NOW - 7 * DAY }));
    await s.putRequest(request('new', 'pc1', { requestedAt: NOW - DAY }));
    await s.putRequest(request('decided', 'pc1', { requestedAt: NOW - 9 * DAY }));
    await s.decideRequest('decided', { state: 'denied', by: 'a', at: NOW - 8 * DAY, note: 'no' });
    const expired = await s.expireRequests(NOW - 7 * DAY, NOW);
    assert.deepEqual(expired.map((r) => [r.id, r.state, r.decidedAt]), [
      ['old1', 'expired', NOW],
      ['old2', 'expired', NOW],
    ]);
    assert.deepEqual(await s.expireRequests(NOW - 7 * DAY, NOW + 1), []);
    assert.equal((await s.getRequest('edge'))?.state, 'pending');
    assert.equal((await s.getRequest('decided'))?.state, 'denied');

    await s.putRequest(request('p2', 'pc2'));
    await s.removePc('pc2', NOW + 2);
    const p2 = await s.getRequest('p2');
    assert.equal(p2?.state, 'expired');
    assert.equal(p2?.decidedAt, NOW + 2);
    await expectCode(s.putRequest(request('p3', 'pc2')), 'ERR_STORE_PC_UNKNOWN', StoreError);
  });

  withStore('a closed store refuses every call with ERR_STORE_CLOSED', async (s) => {
    await s.addPc('pc1', NOW);
    await s.close();
    await s.close();
    await expectCode(s.getPc('pc1'), 'ERR_STORE_CLOSED', StoreError);
    await expectCode(s.touchPresence([{ pcId: 'pc1', at: NOW }]), 'ERR_STORE_CLOSED', StoreError);
  });

  withStore('10,000 PCs: a page of any filter, search and sort, with its total, is answered fast', async (s, u, t) => {
    await u.seed(10_000);
    for (let i = 0; i < 40; i++) await s.putRequest(request(`fleet-r${i}`, fleetPc(i * 37).pcId));
    const cases: Partial<PcQuery>[] = [
      { sort: 'lastSeen', descending: true },
      { filter: 'online', sort: 'pcId' },
      { filter: 'offline', days: 30, sort: 'lastSeen' },
      { filter: 'no-backup', days: 7, sort: 'lastBackup', descending: true, offset: 2000 },
      { filter: 'takeout', sort: 'gate' },
      { filter: 'pending', sort: 'pending', descending: true },
      { search: 'shared4', sort: 'pcId' },
      { search: 'user9999', sort: 'pcId' },
      { sort: 'pcId', offset: 9950 },
    ];
    const expectedOffline = Array.from({ length: 10_000 }, (_, i) => fleetPc(i)).filter((p) => p.lastSeenAt === null || p.lastSeenAt < NOW - 30 * DAY).length;
    for (const c of cases) {
      const started = performance.now();
      const result = await s.listPcs(query({ limit: 50, ...c }));
      const ms = performance.now() - started;
      t.diagnostic(`${JSON.stringify(c)}: ${result.total} rows, ${ms.toFixed(1)} ms`);
      assert.ok(ms < 1000, `${JSON.stringify(c)} took ${ms.toFixed(0)} ms`);
      if (c.filter === 'offline') assert.equal(result.total, expectedOffline);
      if (c.filter === 'online') assert.equal(result.total, 1000);
      if (c.search === 'user9999') assert.deepEqual(result.rows.map((r) => r.pcId), ['fleet-09999']);
      if (c.search === 'shared4') assert.equal(result.total, 11 * 200, 'Shared4 and Shared40..49, 200 PCs each');
      if (c.filter === 'pending') assert.equal(result.total, 40);
      if (c.offset === 9950) assert.equal(result.rows.length, 50);
    }
    const counts = await s.alertCounts(NOW, ONLINE_SINCE);
    assert.equal(counts.pendingRequests, 40);
  });
  // Known users (migration 0005)

  withStore('known users: every user a PC ever reported, kept when its status no longer names them, sorted, forgotten with the PC', async (s) => {
    await s.addPc('pc1', NOW);
    await s.addPc('pc2', NOW);
    assert.deepEqual(await s.listKnownUsers('pc1'), []);
    await s.addKnownUsers('pc1', ['carol', 'alice'], NOW);
    await s.addKnownUsers('pc1', ['alice', 'Bob', 'alice'], NOW + 1); // known ones and repeats are left as they are
    await s.addKnownUsers('pc1', [], NOW + 2);
    await s.addKnownUsers('pc2', ['zed'], NOW);
    assert.deepEqual(await s.listKnownUsers('pc1'), ['Bob', 'alice', 'carol'], 'bytewise order');
    assert.deepEqual(await s.listKnownUsers('pc2'), ['zed'], 'one PC does not see another\'s users');
    // The status is the current sessions only: the known users stay.
    await s.saveStatus('pc1', status({ users: [] }), NOW + 3);
    assert.deepEqual(await s.listKnownUsers('pc1'), ['Bob', 'alice', 'carol']);
    await expectCode(s.addKnownUsers('ghost', ['x'], NOW), 'ERR_STORE_PC_UNKNOWN', StoreError);
    assert.deepEqual(await s.listKnownUsers('ghost'), []);

    assert.equal(await s.removePc('pc1', NOW + 10), true);
    assert.deepEqual(await s.listKnownUsers('pc1'), [], 'removed with the PC');
    await expectCode(s.addKnownUsers('pc1', ['alice'], NOW + 11), 'ERR_STORE_PC_UNKNOWN', StoreError);
    await s.addPc('pc1', NOW + 20);
    assert.deepEqual(await s.listKnownUsers('pc1'), [], 'a PC added again starts with no known users');
    assert.deepEqual(await s.listKnownUsers('pc2'), ['zed']);
  });

  // Access requests (the two-person rule, migration 0003)

  withStore('access requests: stored pending, decided once (compare-and-set), live only while until is ahead, listed newest first', async (s) => {
    await s.addPc('pc1', NOW);
    const base = { admin: 'anna', pcId: 'pc1', user: 'alice', reason: 'case 42', hours: 2 };
    await s.putAccessRequest({ id: 'a1', ...base, createdAt: NOW - 2000 });
    await s.putAccessRequest({ id: 'a2', ...base, hours: 0.5, createdAt: NOW - 1000 });
    await expectCode(s.putAccessRequest({ id: 'a3', ...base, pcId: 'nope', createdAt: NOW }), 'ERR_STORE_PC_UNKNOWN', StoreError);
    assert.deepEqual(await s.getAccessRequest('a2'), { id: 'a2', ...base, hours: 0.5, createdAt: NOW - 1000, status: 'pending', decidedBy: null, decidedAt: null, note: null, until: null });
    assert.equal(await s.getAccessRequest('zz'), undefined);
    assert.equal(await s.hasLiveAccess('anna', 'pc1', 'alice', NOW), false, 'pending is not access');

    assert.equal(await s.decideAccessRequest('a1', { status: 'approved', by: 'bert', at: NOW, note: null, until: NOW + 2 * 3_600_000 }), true);
    assert.equal(await s.decideAccessRequest('a1', { status: 'denied', by: 'carl', at: NOW, note: 'no', until: null }), false, 'decided once');
    assert.equal(await s.decideAccessRequest('a2', { status: 'denied', by: 'bert', at: NOW, note: 'no reason', until: null }), true);
    assert.equal((await s.getAccessRequest('a1'))!.decidedBy, 'bert');
    assert.equal((await s.getAccessRequest('a2'))!.note, 'no reason');

    assert.equal(await s.hasLiveAccess('anna', 'pc1', 'alice', NOW), true);
    assert.equal(await s.hasLiveAccess('anna', 'pc1', 'alice', NOW + 2 * 3_600_000), false, 'until is exclusive');
    assert.equal(await s.hasLiveAccess('bert', 'pc1', 'alice', NOW), false, 'another administrator');
    assert.equal(await s.hasLiveAccess('anna', 'pc1', 'bob', NOW), false, 'another user');
    assert.equal(await s.hasLiveAccess('anna', 'pc2', 'alice', NOW), false, 'another PC');

    assert.deepEqual((await s.listAccessRequests({ limit: 10 })).map((r) => r.id), ['a2', 'a1']);
    assert.deepEqual((await s.listAccessRequests({ status: 'denied', limit: 10 })).map((r) => r.id), ['a2']);
    assert.deepEqual((await s.listAccessRequests({ liveAt: NOW, limit: 10 })).map((r) => r.id), ['a1']);
    assert.deepEqual((await s.listAccessRequests({ liveAt: NOW + 3 * 3_600_000, limit: 10 })).map((r) => r.id), []);
    assert.deepEqual((await s.listAccessRequests({ pcId: 'pc2', limit: 10 })).map((r) => r.id), []);
    await expectCode(s.listAccessRequests({ limit: 5000 }), 'ERR_STORE_QUERY', StoreError);
  });

  // Share rules (sharing, migration 0004)

  withStore('share rules: stored with their folder names, live while neither revoked nor expired, revoked once, listed newest first', async (s) => {
    await s.addPc('pc1', NOW);
    const base = { pcId: 'pc1', user: 'alice', folder: ['Documents', 'Projekt "Ä"'], grantee: { kind: 'group' as const, name: 'CN=Team,DC=corp' }, access: 'read' as const, createdBy: 'anna' };
    await s.putShareRule({ id: 'r1', ...base, expiresAt: NOW + 1000, createdAt: NOW - 2000 });
    await s.putShareRule({ id: 'r2', ...base, access: 'readwrite', grantee: { kind: 'user', name: 'bob' }, expiresAt: NOW + 5000, createdAt: NOW - 1000 });
    await expectCode(s.putShareRule({ id: 'r3', ...base, pcId: 'nope', expiresAt: NOW + 1000, createdAt: NOW }), 'ERR_STORE_PC_UNKNOWN', StoreError);
    assert.deepEqual(await s.getShareRule('r1'), { id: 'r1', ...base, expiresAt: NOW + 1000, createdAt: NOW - 2000, revokedAt: null, revokedBy: null });
    assert.equal(await s.getShareRule('zz'), undefined);

    assert.deepEqual((await s.listShareRules({ limit: 10 })).map((r) => r.id), ['r2', 'r1']);
    assert.deepEqual((await s.listShareRules({ pcId: 'pc1', liveAt: NOW, limit: 10 })).map((r) => r.id), ['r2', 'r1']);
    assert.deepEqual((await s.listShareRules({ pcId: 'pc1', liveAt: NOW + 1000, limit: 10 })).map((r) => r.id), ['r2'], 'expiry is exclusive');
    assert.deepEqual((await s.listShareRules({ pcId: 'pc2', limit: 10 })).map((r) => r.id), []);

    const revoked = await s.revokeShareRule('r2', 'bert', NOW);
    assert.equal(revoked?.revokedBy, 'bert');
    assert.equal(revoked?.revokedAt, NOW);
    assert.equal(await s.revokeShareRule('r2', 'carl', NOW + 1), undefined, 'revoked once');
    assert.equal(await s.revokeShareRule('zz', 'carl', NOW), undefined);
    assert.deepEqual((await s.listShareRules({ liveAt: NOW, limit: 10 })).map((r) => r.id), ['r1']);
    await expectCode(s.listShareRules({ limit: 5000 }), 'ERR_STORE_QUERY', StoreError);

    // A removed PC's rules end with it.
    assert.equal(await s.removePc('pc1', NOW + 10), true);
    assert.deepEqual((await s.listShareRules({ liveAt: NOW, limit: 10 })).map((r) => r.id), []);
    assert.equal((await s.getShareRule('r1'))!.revokedBy, 'console (PC removed)');
    assert.equal((await s.getShareRule('r2'))!.revokedBy, 'bert', 'an earlier revocation stays as it was');
  });
}

/** A logger that keeps its warnings (the PostgreSQL tests check a lost connection is logged, not thrown). */
function recordingLogger(): { logger: FastifyBaseLogger; warnings: string[] } {
  const warnings: string[] = [];
  const logger = {
    level: 'info',
    info: () => undefined,
    debug: () => undefined,
    trace: () => undefined,
    error: () => undefined,
    fatal: () => undefined,
    silent: () => undefined,
    warn: (_obj: unknown, msg?: string) => void warnings.push(String(msg)),
    child: () => logger,
  } as unknown as FastifyBaseLogger;
  return { logger, warnings };
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mydoc-console-store-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function seedSqlite(file: string, n: number): void {
  const db = new Database(file);
  try {
    db.pragma('busy_timeout = 5000');
    const insert = db.prepare(`insert into pc (${FLEET_COLUMNS.join(', ')}) values (${FLEET_COLUMNS.map(() => '?').join(', ')})`);
    db.transaction(() => {
      for (let i = 0; i < n; i++) insert.run(...fleetRow(i));
    })();
  } finally {
    db.close();
  }
}

describe('SQLite store', () => {
  storeContract(async (t) => {
    const file = join(await tempDir(t), 'console.sqlite');
    const store = await openConsoleStore({ kind: 'sqlite', file }, recordingLogger().logger);
    assert.equal(store.kind, 'sqlite');
    return { store, seed: async (n) => seedSqlite(file, n) };
  });

  test('the file and its WAL are 0600 whatever the umask; opening again migrates nothing and keeps the data', async (t) => {
    const file = join(await tempDir(t), 'console.sqlite');
    const oldUmask = process.umask(0o000);
    let store;
    try {
      store = await openConsoleStore({ kind: 'sqlite', file }, recordingLogger().logger);
      await store.addPc('pc1', NOW);
    } finally {
      process.umask(oldUmask);
    }
    for (const f of [file, `${file}-wal`, `${file}-shm`]) assert.equal(statSync(f).mode & 0o777, 0o600, f);
    const db = new Database(file, { readonly: true });
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    const recorded = () => db.prepare('select name from kysely_migration order by name').all();
    assert.deepEqual(recorded(), [{ name: '0001-pcs-enrolments-requests' }, { name: '0002-pc-device-unique' }, { name: '0003-access-requests' }, { name: '0004-share-rules' }, { name: '0005-known-users' }]);
    const again = await openConsoleStore({ kind: 'sqlite', file }, recordingLogger().logger);
    assert.deepEqual(recorded(), [{ name: '0001-pcs-enrolments-requests' }, { name: '0002-pc-device-unique' }, { name: '0003-access-requests' }, { name: '0004-share-rules' }, { name: '0005-known-users' }], 'recorded once');
    assert.equal((await again.getPc('pc1'))?.addedAt, NOW);
    db.close();
    await again.close();
    await store.close();
  });

  test('migration 0005 on a store written before it: the users of each live PC\'s last status become known', async (t) => {
    const file = join(await tempDir(t), 'console.sqlite');
    const store = await openConsoleStore({ kind: 'sqlite', file }, recordingLogger().logger);
    await store.addPc('pc1', NOW);
    await store.addPc('pc2', NOW);
    await store.addPc('gone', NOW);
    await store.saveStatus('pc1', status({ users: ['bob', 'alice'] }), NOW + 5);
    await store.saveStatus('gone', status({ users: ['eve'] }), NOW + 5);
    await store.removePc('gone', NOW + 6);
    await store.close();
    // Back to the schema before 0005 (as a console of the previous version left it).
    const db = new Database(file);
    db.exec("drop table known_user; delete from kysely_migration where name = '0005-known-users'");
    db.close();
    const again = await openConsoleStore({ kind: 'sqlite', file }, recordingLogger().logger);
    try {
      assert.deepEqual(await again.listKnownUsers('pc1'), ['alice', 'bob']);
      assert.deepEqual(await again.listKnownUsers('pc2'), [], 'no status: no users');
      const rows = new Database(file, { readonly: true });
      assert.deepEqual(rows.prepare('select pc_id, user_name, first_seen_at from known_user order by user_name').all(), [
        { pc_id: 'pc1', user_name: 'alice', first_seen_at: NOW + 5 },
        { pc_id: 'pc1', user_name: 'bob', first_seen_at: NOW + 5 },
      ], 'a removed PC\'s users are not brought back');
      rows.close();
    } finally {
      await again.close();
    }
  });

  test('a store written by a newer mydoc (an unknown migration recorded) is refused, not changed', async (t) => {
    const file = join(await tempDir(t), 'console.sqlite');
    await (await openConsoleStore({ kind: 'sqlite', file }, recordingLogger().logger)).close();
    const db = new Database(file);
    db.prepare("insert into kysely_migration (name, timestamp) values ('9999-from-the-future', 'x')").run();
    db.close();
    const err = await expectCode(openConsoleStore({ kind: 'sqlite', file }, recordingLogger().logger), 'ERR_STORE_MIGRATION', StoreError);
    assert.match(err.message, /9999-from-the-future/);
  });

  test('a file that cannot be opened is ERR_STORE_FILE naming it', async (t) => {
    const dir = await tempDir(t);
    const missing = join(dir, 'no-such-folder', 'console.sqlite');
    const err = await expectCode(openConsoleStore({ kind: 'sqlite', file: missing }, recordingLogger().logger), 'ERR_STORE_FILE', StoreError);
    assert.ok(err.message.includes(missing), err.message);
    const notDb = join(dir, 'not-a-database');
    await mkdir(notDb);
    await expectCode(openConsoleStore({ kind: 'sqlite', file: notDb }, recordingLogger().logger), 'ERR_STORE_FILE', StoreError);
  });
});

async function seedPostgres(pg: Postgres, database: string, n: number): Promise<void> {
  const CHUNK = 1000;
  for (let from = 0; from < n; from += CHUNK) {
    const rows = Array.from({ length: Math.min(CHUNK, n - from) }, (_, k) => fleetRow(from + k));
    const placeholders = rows.map((_, r) => `(${FLEET_COLUMNS.map((_c, c) => `$${r * FLEET_COLUMNS.length + c + 1}`).join(', ')})`);
    await pg.query(`insert into pc (${FLEET_COLUMNS.join(', ')}) values ${placeholders.join(', ')}`, rows.flat(), database);
  }
}

describe('PostgreSQL store over TLS', () => {
  let server: Postgres;
  before(async () => {
    server = await startPostgres({ tls: true });
    await server.createDatabase('tls');
  });
  after(async () => {
    await server?.stop();
  });

  test('verify-full with the server\'s CA connects encrypted; another CA is refused with a clear error; require connects', async () => {
    const store = await openConsoleStore({ kind: 'postgres', ...server.params('tls'), ssl: { mode: 'verify-full', ca: server.caPem! } }, recordingLogger().logger);
    try {
      await store.addPc('pc-tls', NOW);
      assert.equal((await store.getPc('pc-tls'))?.addedAt, NOW);
      // The server sees encrypted sessions of the console (application_name mydoc-console).
      const sessions = await server.query<{ ssl: boolean }>("select s.ssl from pg_stat_ssl s join pg_stat_activity a on a.pid = s.pid where a.application_name = 'mydoc-console'");
      assert.ok(sessions.rows.length > 0 && sessions.rows.every((r) => r.ssl), JSON.stringify(sessions.rows));
    } finally {
      await store.close();
    }
    const other = await createTlsMaterial({ hostNames: [], ipAddresses: [], commonName: 'someone else' });
    const err = await expectCode(
      openConsoleStore({ kind: 'postgres', ...server.params('tls'), ssl: { mode: 'verify-full', ca: other.caCertPem } }, recordingLogger().logger),
      'ERR_STORE_UNAVAILABLE',
      StoreError,
    );
    assert.match(err.message, new RegExp(`^the console's PostgreSQL at 127\\.0\\.0\\.1:${server.port} cannot be reached over TLS \\(store\\.postgres\\.ssl is "verify-full"\\): `));
    await (await openConsoleStore({ kind: 'postgres', ...server.params('tls'), ssl: { mode: 'require' } }, recordingLogger().logger)).close();
  });
});

describe('PostgreSQL store', () => {
  let server: Postgres;
  let databases = 0;
  const freshDatabase = async () => {
    const name = `store_${++databases}`;
    // A linguistic default collation (as a site's database may have), so bytewise pcId order is the schema's doing.
    await server.createDatabase(name, { icuLocale: 'en-US' });
    return name;
  };
  before(async () => {
    server = await startPostgres();
  });
  after(async () => {
    await server?.stop();
  });

  storeContract(async () => {
    const database = await freshDatabase();
    const store = await openConsoleStore({ kind: 'postgres', ...server.params(database) }, recordingLogger().logger);
    assert.equal(store.kind, 'postgres');
    return { store, seed: (n) => seedPostgres(server, database, n) };
  });

  test('migrations are recorded once; two consoles opening one new database at once both get the schema', async () => {
    const database = await freshDatabase();
    const stores = await Promise.all([0, 1].map(() => openConsoleStore({ kind: 'postgres', ...server.params(database) }, recordingLogger().logger)));
    const recorded = await server.query('select name from kysely_migration order by name', [], database);
    assert.deepEqual(recorded.rows, [{ name: '0001-pcs-enrolments-requests' }, { name: '0002-pc-device-unique' }, { name: '0003-access-requests' }, { name: '0004-share-rules' }, { name: '0005-known-users' }]);
    await stores[0]!.addPc('pc1', NOW);
    assert.equal((await stores[1]!.getPc('pc1'))?.addedAt, NOW);
    await Promise.all(stores.map((s) => s.close()));
    await server.query("insert into kysely_migration (name, timestamp) values ('9999-from-the-future', 'x')", [], database);
    await expectCode(openConsoleStore({ kind: 'postgres', ...server.params(database) }, recordingLogger().logger), 'ERR_STORE_MIGRATION', StoreError);
  });

  test('touchPresence of 300 PCs is one UPDATE statement (counted in the server log)', async () => {
    const database = await freshDatabase();
    const store = await openConsoleStore({ kind: 'postgres', ...server.params(database) }, recordingLogger().logger);
    try {
      for (let i = 0; i < 300; i++) await store.addPc(`p${i}`, NOW);
      await server.query(`alter database ${database} set log_statement = 'mod'`);
      await store.close();
      // New connections read the setting.
      const logged = await openConsoleStore({ kind: 'postgres', ...server.params(database) }, recordingLogger().logger);
      try {
        const before = server.output().length;
        await logged.touchPresence(Array.from({ length: 300 }, (_, i) => ({ pcId: `p${i}`, at: NOW + i })));
        assert.equal((await logged.getPc('p299'))?.lastSeenAt, NOW + 299);
        const updates = server.output().slice(before).match(/update "pc" set "last_seen_at"/gi) ?? [];
        assert.equal(updates.length, 1, server.output().slice(before, before + 2000));
      } finally {
        await logged.close();
      }
    } finally {
      await store.close();
    }
  });

  test('TLS asked of a server without it (store.postgres.ssl require or verify-full): a clear ERR_STORE_UNAVAILABLE naming the mode, never a plaintext fallback', async () => {
    const database = await freshDatabase();
    for (const ssl of [{ mode: 'require' }, { mode: 'verify-full' }] as const) {
      const err = await expectCode(openConsoleStore({ kind: 'postgres', ...server.params(database), ssl }, recordingLogger().logger), 'ERR_STORE_UNAVAILABLE', StoreError);
      assert.equal(err.message, `the console's PostgreSQL at 127.0.0.1:${server.port} cannot be reached over TLS (store.postgres.ssl is "${ssl.mode}"): The server does not support SSL connections`);
    }
    // disable (the loopback default) still connects.
    await (await openConsoleStore({ kind: 'postgres', ...server.params(database), ssl: { mode: 'disable' } }, recordingLogger().logger)).close();
  });

  test('PostgreSQL down at start: ERR_STORE_UNAVAILABLE naming host:port, at once', async () => {
    const port = await freePort();
    const started = Date.now();
    const err = await expectCode(
      openConsoleStore({ kind: 'postgres', host: '127.0.0.1', port, database: 'x', user: 'mydoc', password: 'secret-pw' }, recordingLogger().logger),
      'ERR_STORE_UNAVAILABLE',
      StoreError,
    );
    assert.ok(err.message.startsWith(`the console's PostgreSQL at 127.0.0.1:${port} does not answer: `), err.message);
    assert.ok(!err.message.includes('secret-pw'));
    assert.ok(Date.now() - started < 5000);
  });

  test('a PostgreSQL address that accepts but never answers: ERR_STORE_UNAVAILABLE after the bounded connect timeout, no hang', async (t) => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      for (const s of sockets) s.destroy();
      silent.close();
    });
    const port = (silent.address() as AddressInfo).port;
    const started = Date.now();
    const err = await expectCode(
      openConsoleStore({ kind: 'postgres', host: '127.0.0.1', port, database: 'x', user: 'mydoc', password: 'pw' }, recordingLogger().logger),
      'ERR_STORE_UNAVAILABLE',
      StoreError,
    );
    const elapsed = Date.now() - started;
    assert.match(err.message, new RegExp(`^the console's PostgreSQL at 127\\.0\\.0\\.1:${port} does not answer: .*timeout`));
    assert.ok(elapsed >= 4000 && elapsed < 9000, `gave up after ${elapsed} ms`);
  });

  test('a wrong password or database: ERR_STORE_UNAVAILABLE saying the server refuses, without the password', async () => {
    const wrong = { kind: 'postgres' as const, ...server.params(), password: 'not-the-password' };
    const err = await expectCode(openConsoleStore(wrong, recordingLogger().logger), 'ERR_STORE_UNAVAILABLE', StoreError);
    assert.match(err.message, new RegExp(`^the console's PostgreSQL at 127\\.0\\.0\\.1:${server.port} refuses the console: .*password authentication failed`));
    assert.ok(!err.message.includes('not-the-password'));
    await expectCode(openConsoleStore({ kind: 'postgres', ...server.params('no_such_db') }, recordingLogger().logger), 'ERR_STORE_UNAVAILABLE', StoreError);
  });

  test('PostgreSQL lost at run time: calls fail with ERR_STORE_UNAVAILABLE (logged, never thrown as an event); the same store works again when it is back', async () => {
    const database = await freshDatabase();
    const { logger, warnings } = recordingLogger();
    const store = await openConsoleStore({ kind: 'postgres', ...server.params(database) }, logger);
    try {
      await store.addPc('pc1', NOW);
      // Several connections in the pool, all idle when the server goes.
      await Promise.all(Array.from({ length: 8 }, () => store.listPcs(query())));
      await server.stop({ keepData: true });
      for (const call of [() => store.getPc('pc1'), () => store.listPcs(query()), () => store.touchPresence([{ pcId: 'pc1', at: NOW }]), () => store.addPc('pc2', NOW)]) {
        const err = await expectCode(call(), 'ERR_STORE_UNAVAILABLE', StoreError);
        assert.ok(err.message.startsWith(`the console's PostgreSQL at 127.0.0.1:${server.port} does not answer: `), err.message);
      }
      assert.ok(warnings.some((w) => w.includes(`PostgreSQL connection to 127.0.0.1:${server.port} failed`)), JSON.stringify(warnings));

      await server.start();
      assert.equal((await store.getPc('pc1'))?.pcId, 'pc1');
      await store.addPc('pc2', NOW);

      // Calls in flight while it stops: each either finishes or fails as unavailable.
      const inFlight = Promise.allSettled(Array.from({ length: 30 }, (_, i) => store.touchPresence([{ pcId: 'pc1', at: NOW + i }])));
      await server.stop({ keepData: true });
      for (const r of await inFlight) {
        if (r.status === 'rejected') assert.equal((r.reason as StoreError).code, 'ERR_STORE_UNAVAILABLE', String(r.reason));
      }
      await expectCode(store.getPc('pc1'), 'ERR_STORE_UNAVAILABLE', StoreError);
      await server.start();
      assert.equal((await store.listPcs(query())).total, 2);
    } finally {
      await store.close();
    }
  });

  test('PostgreSQL that stops answering (SIGSTOP) mid-use: a call fails as unavailable after the query timeout, no hang; it works again after SIGCONT', async () => {
    const database = await freshDatabase();
    const store = await openConsoleStore({ kind: 'postgres', ...server.params(database) }, recordingLogger().logger);
    try {
      await store.addPc('pc1', NOW);
      server.signalAll('SIGSTOP');
      const started = Date.now();
      const err = await expectCode(store.getPc('pc1'), 'ERR_STORE_UNAVAILABLE', StoreError).finally(() => server.signalAll('SIGCONT'));
      const elapsed = Date.now() - started;
      assert.match(err.message, new RegExp(`^the console's PostgreSQL at 127\\.0\\.0\\.1:${server.port} does not answer: .*timeout`, 'i'));
      assert.ok(elapsed >= 14_000 && elapsed < 25_000, `gave up after ${elapsed} ms`);
      assert.equal((await store.getPc('pc1'))?.pcId, 'pc1');
    } finally {
      server.signalAll('SIGCONT');
      await store.close();
    }
  });
});
