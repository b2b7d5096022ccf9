/**
 * The console's registry (server/console/registry.ts) over the real SQLite
 * store and a real audit trail: every way in that must fail (no PC, no
 * token, a wrong, expired or reused token, another device key, a removed
 * PC) is refused with its code and a clear message and audited without the
 * token; an enrolment pins the device; a state change is written at once,
 * an unchanged status only as presence, in one batch per flush; the users
 * a PC reports are remembered, with a write only when the set grows.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import type { FastifyBaseLogger } from 'fastify';
import { generateP256KeyPair } from '../crypto/key-files.js';
import { AuditLog } from '../policy/audit/log.js';
import { addPc, removePc, type PcAdmin } from '../server/console/pcs.js';
import { Registry } from '../server/console/registry.js';
import type { AdmitPeer } from '../server/console/link/hub.js';
import { openConsoleStore } from '../server/console/store/open.js';
import type { ConsoleStore } from '../server/console/store/store.js';
import { deviceIdOf } from '../server/link/device-identity.js';
import type { PcStatus } from '../server/link/status.js';
import { tempDir } from './helpers/keys.js';

const logger = pino({ level: 'silent' }) as unknown as FastifyBaseLogger;
const STATUS: PcStatus = { gate: 'online', takeoutUntil: null, users: ['alice'], lastBackupAt: null, agentVersion: '1.0.0' };

function device(): { deviceId: string; devicePublicPem: string } {
  const { publicPem } = generateP256KeyPair();
  return { deviceId: deviceIdOf(publicPem), devicePublicPem: publicPem };
}

describe('the console registry', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let store: ConsoleStore;
  let audit: AuditLog;
  let registry: Registry;
  let now = Date.UTC(2026, 0, 1);
  const clock = () => now;
  const calls = { saveStatus: 0, touchPresence: [] as number[], inFlight: 0, maxInFlight: 0, hold: undefined as Promise<void> | undefined, saved: [] as PcStatus[], addKnownUsers: [] as string[][], listKnownUsers: 0 };
  let admin: PcAdmin;
  const tokens: string[] = [];

  const peer = (pcId: string, dev: { deviceId: string; devicePublicPem: string }, enrolmentToken?: string): AdmitPeer => ({
    ...dev,
    identity: { pcId, agentVersion: '1.0.0', ...(enrolmentToken === undefined ? {} : { enrolmentToken }) },
    address: '127.0.0.9',
  });
  const token = async (pcId: string): Promise<string> => {
    const added = await addPc(admin, pcId, 'local:test');
    tokens.push(added.token);
    return added.token;
  };
  async function refused(p: AdmitPeer, code: string, message: RegExp): Promise<void> {
    const answer = await registry.admit(p);
    assert.equal(answer.ok, false, `${p.identity.pcId} must be refused`);
    if (answer.ok) return;
    assert.equal(answer.refusal.code, code);
    assert.match(answer.refusal.message, message);
  }

  before(async () => {
    ({ dir, cleanup } = await tempDir('mydoc-registry-'));
    const real = await openConsoleStore({ kind: 'sqlite', file: join(dir, 'console.sqlite') }, logger);
    // The real store, its status and presence writes counted.
    store = new Proxy(real, {
      get(target, name, receiver) {
        if (name === 'saveStatus') {
          return async (pcId: string, status: PcStatus, at: number) => {
            calls.saveStatus++;
            calls.maxInFlight = Math.max(calls.maxInFlight, ++calls.inFlight);
            try {
              await calls.hold;
              await target.saveStatus(pcId, status, at);
              calls.saved.push(status);
            } finally {
              calls.inFlight--;
            }
          };
        }
        if (name === 'addKnownUsers') return (pcId: string, users: string[], at: number) => (calls.addKnownUsers.push(users), target.addKnownUsers(pcId, users, at));
        if (name === 'listKnownUsers') return (pcId: string) => (calls.listKnownUsers++, target.listKnownUsers(pcId));
        if (name === 'touchPresence') return (batch: { pcId: string; at: number }[]) => (calls.touchPresence.push(batch.length), target.touchPresence(batch));
        const value = Reflect.get(target, name, receiver) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    audit = await AuditLog.open(join(dir, 'audit.log'), { now: clock });
    registry = new Registry({ store, audit, clock, logger, onAgentEvent: async () => undefined, onConnected: async () => undefined, presenceFlushMs: 3_600_000 });
    admin = { store, audit, clock, tokenHours: 1, dropLink: () => undefined };
  });

  after(async () => {
    await registry.close();
    await audit.close();
    await store.close();
    await cleanup();
  });

  it('refuses an unknown PC, a registered PC without a token, a wrong token and an expired one', async () => {
    const dev = device();
    await refused(peer('pc-none', dev), 'ERR_ENROL_UNKNOWN', /PC pc-none is not registered on this console .*mydoc console pc add pc-none/);
    await token('pc-a');
    await refused(peer('pc-a', dev), 'ERR_LINK_NOT_ENROLLED', /PC pc-a is registered but not enrolled: its configuration needs console\.enrolmentToken/);
    await refused(peer('pc-a', dev, `mydoc-enrol-${'x'.repeat(43)}`), 'ERR_ENROL_UNKNOWN', /not one this console issued for PC pc-a/);
    const early = await token('pc-b');
    now += 2 * 3600_000;
    await refused(peer('pc-b', dev, early), 'ERR_ENROL_EXPIRED', /has expired; make a new one with "mydoc console pc add pc-b"/);
    // A token is for its own PC only.
    const forB = await token('pc-b');
    await refused(peer('pc-a', dev, forB), 'ERR_ENROL_UNKNOWN', /pc-a/);
  });

  it('enrols once with a valid token, pins the device, and refuses another device and the reused token', async () => {
    const dev = device();
    const valid = await token('pc-c');
    assert.deepEqual(await registry.admit(peer('pc-c', dev, valid)), { ok: true, pcId: 'pc-c', enrolled: true });
    const row = await store.getPc('pc-c');
    assert.equal(row?.deviceId, dev.deviceId);
    assert.equal(row?.devicePublicPem, dev.devicePublicPem);
    // The enrolled device comes back without its token, or with it (its welcome was lost).
    assert.deepEqual(await registry.admit(peer('pc-c', dev)), { ok: true, pcId: 'pc-c', enrolled: false });
    assert.deepEqual(await registry.admit(peer('pc-c', dev, valid)), { ok: true, pcId: 'pc-c', enrolled: true });
    // Another key claiming pc-c: nothing is trusted on a pcId alone.
    const other = device();
    await refused(peer('pc-c', other), 'ERR_LINK_WRONG_DEVICE', /PC pc-c is enrolled with another device key .*this device .* is refused/);
    await refused(peer('pc-c', other, valid), 'ERR_ENROL_USED', /the enrolment token of PC pc-c was used already/);
    await refused(peer('pc-c', other, 'not-a-token'), 'ERR_ENROL_TAKEN', /PC pc-c is enrolled with another device key/);
    // One device is one PC: pc-c's key cannot take another PC's token.
    await refused(peer('pc-g', dev, await token('pc-g')), 'ERR_ENROL_TAKEN', /this device key is enrolled as PC pc-c; it cannot enrol as PC pc-g too/);
    assert.equal((await store.getPc('pc-g'))?.deviceId, null, 'pc-g stays unenrolled');
    // pc add of an enrolled PC is refused: it must be removed first.
    await assert.rejects(addPc(admin, 'pc-c', 'local:test'), { code: 'ERR_CONSOLE_PC_ENROLLED' });
  });

  it('refuses a removed PC, its own device too', async () => {
    const dev = device();
    const valid = await token('pc-d');
    assert.equal((await registry.admit(peer('pc-d', dev, valid))).ok, true);
    let dropped = '';
    await removePc({ ...admin, dropLink: (pcId) => (dropped = pcId) }, 'pc-d', 'local:test');
    assert.equal(dropped, 'pc-d', 'the live link is dropped at once');
    await refused(peer('pc-d', dev), 'ERR_ENROL_REMOVED', /PC pc-d was removed from this console/);
  });

  it('audits every refusal and enrolment with its reason, never a token', async () => {
    const trail = await readFile(join(dir, 'audit.log'), 'utf8');
    const records = trail.trim().split('\n').map((l) => JSON.parse(l) as { action: string; decision: string; target?: string; reason?: string });
    const denied = records.filter((r) => (r.action === 'pc.enrol' || r.action === 'pc.connect') && r.decision === 'deny').map((r) => r.reason!.split(':')[0]);
    for (const code of ['ERR_ENROL_UNKNOWN', 'ERR_LINK_NOT_ENROLLED', 'ERR_ENROL_EXPIRED', 'ERR_LINK_WRONG_DEVICE', 'ERR_ENROL_TAKEN', 'ERR_ENROL_REMOVED']) {
      assert.ok(denied.includes(code), `${code} in the trail`);
    }
    assert.ok(records.some((r) => r.action === 'pc.enrol' && r.decision === 'allow' && r.target === 'pc-c' && /from 127\.0\.0\.9/.test(r.reason ?? '')));
    for (const t of tokens) assert.equal(trail.includes(t), false, 'no token in the trail');
  });

  it('writes a state change at once, an unchanged status as presence only, in one batch per flush', async () => {
    for (const pcId of ['pc-e', 'pc-f']) {
      const dev = device();
      const admitted = await registry.admit(peer(pcId, dev, await token(pcId)));
      assert.equal(admitted.ok, true);
      registry.connected(pcId);
    }
    const before = calls.saveStatus;
    registry.status('pc-e', STATUS);
    for (let i = 0; i < 50 && (await store.getPc('pc-e'))?.status === null; i++) await sleep(10);
    assert.deepEqual((await store.getPc('pc-e'))?.status, STATUS, 'the first status is written at once');
    registry.status('pc-e', { ...STATUS, users: ['alice'] });
    await sleep(50);
    assert.equal(calls.saveStatus, before + 1, 'the same status again is not written');
    registry.status('pc-e', { ...STATUS, gate: 'locked' });
    for (let i = 0; i < 50 && (await store.getPc('pc-e'))?.status?.gate !== 'locked'; i++) await sleep(10);
    assert.equal((await store.getPc('pc-e'))?.status?.gate, 'locked', 'a change is written at once');

    now += 60_000;
    registry.status('pc-e', { ...STATUS, gate: 'locked' });
    registry.status('pc-f', STATUS);
    registry.disconnected('pc-f');
    assert.deepEqual(calls.touchPresence, [], 'presence waits for the flush');
    await registry.flush();
    assert.deepEqual(calls.touchPresence, [2], 'one statement for both PCs');
    assert.equal((await store.getPc('pc-e'))?.lastSeenAt, now);
    await registry.flush();
    assert.deepEqual(calls.touchPresence, [2], 'nothing new, nothing written');
  });

  it('remembers every user a PC reported: written only when a status names a new user, kept when sessions close and across a reconnect, gone with the PC', async () => {
    const dev = device();
    assert.equal((await registry.admit(peer('pc-k', dev, await token('pc-k')))).ok, true);
    registry.connected('pc-k');
    const written = async (status: PcStatus) => {
      registry.status('pc-k', status);
      for (let i = 0; i < 100 && JSON.stringify((await store.getPc('pc-k'))?.status) !== JSON.stringify(status); i++) await sleep(10);
      assert.deepEqual((await store.getPc('pc-k'))?.status, status);
    };
    calls.addKnownUsers.length = 0;
    calls.listKnownUsers = 0;
    await written({ ...STATUS, users: ['alice'] });
    assert.deepEqual(calls.addKnownUsers, [['alice']]);
    await written({ ...STATUS, users: [] }); // alice's session closed
    await written({ ...STATUS, users: ['alice'] }); // and opened again
    await written({ ...STATUS, users: ['alice'], lastBackupAt: 5 });
    for (let i = 0; i < 20; i++) registry.status('pc-k', { ...STATUS, users: ['alice'], lastBackupAt: 5 }); // heartbeats
    await sleep(30);
    assert.deepEqual(calls.addKnownUsers, [['alice']], 'no known-user write without a new user');
    await written({ ...STATUS, users: ['alice', 'bob'] });
    assert.deepEqual(calls.addKnownUsers, [['alice'], ['bob']], 'only the new user is written');
    assert.equal(calls.listKnownUsers, 1, 'the known users are read once per link');
    await written({ ...STATUS, users: [] });
    assert.deepEqual(await store.listKnownUsers('pc-k'), ['alice', 'bob'], 'known while no session is open');

    // The agent restarts (no session open) and the console too: nothing is forgotten, nothing written again.
    registry.disconnected('pc-k');
    const fresh = new Registry({ store, audit, clock, logger, onAgentEvent: async () => undefined, onConnected: async () => undefined, presenceFlushMs: 3_600_000 });
    try {
      assert.deepEqual(await fresh.admit(peer('pc-k', dev)), { ok: true, pcId: 'pc-k', enrolled: false });
      fresh.connected('pc-k');
      fresh.status('pc-k', { ...STATUS, users: ['carol'] });
      for (let i = 0; i < 100 && (await store.listKnownUsers('pc-k')).length < 3; i++) await sleep(10);
      assert.deepEqual(await store.listKnownUsers('pc-k'), ['alice', 'bob', 'carol']);
      assert.deepEqual(calls.addKnownUsers, [['alice'], ['bob'], ['carol']]);
    } finally {
      await fresh.close();
    }
    await removePc(admin, 'pc-k', 'local:test');
    assert.deepEqual(await store.listKnownUsers('pc-k'), [], 'forgotten with the PC');
  });

  it('the same refusal of one device is audited once a minute, the rest counted in the next record', async () => {
    const dev = device();
    const deniedNow = async () => (await readFile(join(dir, 'audit.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { target?: string; reason?: string }).filter((r) => r.target === 'pc-flooder');
    for (let i = 0; i < 5; i++) await refused(peer('pc-flooder', dev), 'ERR_ENROL_UNKNOWN', /pc-flooder is not registered/);
    assert.equal((await deniedNow()).length, 1, 'five refusals within a minute: one record');
    now += 60_000;
    await refused(peer('pc-flooder', dev), 'ERR_ENROL_UNKNOWN', /pc-flooder is not registered/);
    const records = await deniedNow();
    assert.equal(records.length, 2);
    assert.match(records[1]!.reason ?? '', /; 4 more such refusals of this device since the last record\)$/);
    // Another device's refusal is its own.
    await refused(peer('pc-flooder', device()), 'ERR_ENROL_UNKNOWN', /pc-flooder/);
    assert.equal((await deniedNow()).length, 3);
  });

  it('a PC sending changes fast gets one status write in flight; only the newest waiting change is written after it', async () => {
    const dev = device();
    assert.equal((await registry.admit(peer('pc-flood', dev, await token('pc-flood')))).ok, true);
    registry.connected('pc-flood');
    let release!: () => void;
    calls.hold = new Promise<void>((resolve) => (release = resolve));
    const before = calls.saveStatus;
    calls.saved.length = 0;
    calls.maxInFlight = 0;
    for (let i = 0; i < 200; i++) registry.status('pc-flood', { ...STATUS, lastBackupAt: i });
    await sleep(20);
    assert.equal(calls.saveStatus - before, 1, 'one write in flight while it is held');
    calls.hold = undefined;
    release();
    await registry.close();
    assert.equal(calls.maxInFlight, 1);
    assert.deepEqual(calls.saved.map((s) => s.lastBackupAt), [0, 199], 'the first, then only the newest');
    assert.equal((await store.getPc('pc-flood'))?.status?.lastBackupAt, 199);
  });
});
