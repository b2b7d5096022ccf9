/**
 * Test helper: the administrators' web page on a real HTTPS socket (fastify on
 * 127.0.0.1, a free port, a fresh self-signed certificate), over the real SQLite
 * console store seeded through its contract, with the real AdminAuthenticator over
 * a local users file with groups, a real audit trail, and a take-out double that
 * records the decisions and writes them to the store (the real ConsoleTakeout
 * signs keys and needs a PC on a link; the web page only calls it).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import Fastify, { type FastifyInstance } from 'fastify';
import { AuditLog } from '../../policy/audit/log.js';
import { LocalMemberDirectory } from '../../policy/directory/local/members.js';
import { LocalUsersFile } from '../../policy/directory/local/users-file.js';
import { AdminAuthenticator, type RoleGroups } from '../../server/console/admins.js';
import { openConsoleStore } from '../../server/console/store/open.js';
import type { PcTable } from '../../server/console/store/schema.js';
import type { ConsoleStore, PcStatus, TakeoutRequestRow } from '../../server/console/store/store.js';
import { registerAdminWeb } from '../../server/console/web/register.js';
import { createTlsMaterial } from '../../server/http/tls.js';

export const DAY = 24 * 60 * 60 * 1000;
export const HEARTBEAT_SECONDS = 60;
export const ONLINE_WINDOW_MS = (2 * HEARTBEAT_SECONDS + 30) * 1000;
export const ROLE_GROUPS: RoleGroups = { viewer: ['mydoc-viewers'], approver: ['mydoc-approvers'], data: [], sharing: [] };

export interface Account {
  name: string;
  password: string;
}

export interface TakeoutCall {
  kind: 'approve' | 'deny' | 'revoke';
  id: string;
  admin: string;
  value: number | string;
}

export interface ConsoleWebServer {
  url: string;
  port: number;
  certPem: string;
  caPem: string;
  store: ConsoleStore;
  now: number;
  approver: Account;
  viewer: Account;
  /** In the directory, in no role's group. */
  outsider: Account;
  takeoutCalls: TakeoutCall[];
  auditFile: string;
  stop(): Promise<void>;
}

/** A PC as the seed describes it. */
export interface SeedPc {
  pcId: string;
  status: PcStatus | null;
  lastSeenAt: number | null;
}

/** A request as the seed describes it. */
export type SeedRequest = Pick<TakeoutRequestRow, 'id' | 'pcId' | 'user' | 'days' | 'reason' | 'requestedAt' | 'maxDays'>;

const silent = { info() {}, warn() {}, error() {}, debug() {}, fatal() {}, trace() {}, child: () => silent, level: 'silent', silent() {} } as never;

/** Registers, enrols and reports each PC through the store's contract (as the registry would). */
export async function seedStore(store: ConsoleStore, pcs: readonly SeedPc[], requests: readonly SeedRequest[], now: number): Promise<void> {
  for (const pc of pcs) {
    await store.addPc(pc.pcId, now - 90 * DAY);
    const token = createHash('sha256').update(`token-${pc.pcId}`).digest();
    await store.createEnrolment(pc.pcId, token, now + DAY);
    const deviceId = createHash('sha256').update(`device-${pc.pcId}`).digest('hex');
    const enrolled = await store.consumeEnrolment(pc.pcId, token, deviceId, `-----BEGIN PUBLIC KEY-----\n${pc.pcId}\n-----END PUBLIC KEY-----\n`, now - 80 * DAY);
    if (!enrolled.ok) throw new Error(`seed: enrolment of ${pc.pcId} failed: ${enrolled.code}`);
    if (pc.status) {
      await store.addKnownUsers(pc.pcId, pc.status.users, pc.lastSeenAt ?? now);
      await store.saveStatus(pc.pcId, pc.status, pc.lastSeenAt ?? now);
    }
  }
  await store.touchPresence(pcs.filter((pc) => pc.lastSeenAt !== null).map((pc) => ({ pcId: pc.pcId, at: pc.lastSeenAt! })));
  for (const r of requests) await store.putRequest({ ...r, envelopes: {} });
}

/** What a test seeds: `pcs` and `requests` through the store's contract, `bulk` straight into its table. */
export interface Seed {
  pcs: SeedPc[];
  requests: SeedRequest[];
  bulk: SeedPc[];
}

/**
 * Writes many enrolled PCs in one transaction straight into the SQLite store's
 * table (the row type is schema.ts's, so a schema change breaks this at compile
 * time): through the contract, with the store's FULL sync, 10,000 PCs take minutes.
 */
function bulkInsert(file: string, pcs: readonly SeedPc[], now: number): void {
  const db = new Database(file);
  try {
    const insert = db.prepare(
      'INSERT INTO pc (pc_id, device_id, device_public_pem, added_at, enrolled_at, removed_at, last_seen_at, status, gate, takeout_until, last_backup_at, search_text) VALUES (@pc_id, @device_id, @device_public_pem, @added_at, @enrolled_at, @removed_at, @last_seen_at, @status, @gate, @takeout_until, @last_backup_at, @search_text)',
    );
    db.transaction(() => {
      for (const pc of pcs) {
        const row: PcTable = {
          pc_id: pc.pcId,
          device_id: createHash('sha256').update(`device-${pc.pcId}`).digest('hex'),
          device_public_pem: `-----BEGIN PUBLIC KEY-----\n${pc.pcId}\n-----END PUBLIC KEY-----\n`,
          added_at: now - 90 * DAY,
          enrolled_at: now - 80 * DAY,
          removed_at: null,
          last_seen_at: pc.lastSeenAt,
          status: pc.status ? JSON.stringify(pc.status) : null,
          gate: pc.status?.gate ?? null,
          takeout_until: pc.status?.takeoutUntil ?? null,
          last_backup_at: pc.status?.lastBackupAt ?? null,
          search_text: [pc.pcId, ...(pc.status?.users ?? [])].map((v) => v.toLowerCase()).join('\n'),
        };
        insert.run(row);
      }
    })();
  } finally {
    db.close();
  }
}

export async function startConsoleWebServer(seed: (now: number) => Seed): Promise<ConsoleWebServer> {
  const dir = await mkdtemp(join(tmpdir(), 'mydoc-console-web-'));
  let app: FastifyInstance | undefined;
  let store: ConsoleStore | undefined;
  let audit: AuditLog | undefined;
  try {
    const now = Date.now();
    const storeFile = join(dir, 'console.sqlite');
    const { pcs, requests, bulk } = seed(now);
    await (await openConsoleStore({ kind: 'sqlite', file: storeFile }, silent)).close(); // made by its migrations
    bulkInsert(storeFile, bulk, now);
    store = await openConsoleStore({ kind: 'sqlite', file: storeFile }, silent);
    await seedStore(store, pcs, requests, now);

    const usersFile = join(dir, 'users.json');
    const users = new LocalUsersFile(usersFile);
    const account = (name: string): Account => ({ name, password: `${name}-${randomBytes(6).toString('hex')}` });
    const approver = account('ada');
    const viewer = account('vic');
    const outsider = account('ned');
    for (const a of [approver, viewer, outsider]) await users.add(a.name, a.password);
    await users.setGroup('mydoc-approvers', { users: [approver.name] });
    await users.setGroup('mydoc-viewers', { users: [viewer.name] });

    const auditFile = join(dir, 'audit', 'console.log');
    audit = await AuditLog.open(auditFile);
    const admins = new AdminAuthenticator({ directory: new LocalMemberDirectory(usersFile), roles: ROLE_GROUPS, audit, clock: Date.now, logger: silent });

    const takeoutCalls: TakeoutCall[] = [];
    const theStore = store;
    const decided = async (id: string) => (await theStore.getRequest(id))!;
    const takeout = {
      approve: async (id: string, admin: string, days: number) => {
        takeoutCalls.push({ kind: 'approve', id, admin, value: days });
        await theStore.decideRequest(id, { state: 'approved', by: admin, at: Date.now(), note: String(days), jti: `jti-${id}`, until: Date.now() + days * DAY });
        return decided(id);
      },
      deny: async (id: string, admin: string, note: string) => {
        takeoutCalls.push({ kind: 'deny', id, admin, value: note });
        await theStore.decideRequest(id, { state: 'denied', by: admin, at: Date.now(), note });
        return decided(id);
      },
      revoke: async (jti: string, admin: string) => {
        takeoutCalls.push({ kind: 'revoke', id: jti, admin, value: jti });
        return (await theStore.revokeRequest(jti, admin, Date.now()))!;
      },
    };

    const tls = await createTlsMaterial({ hostNames: [], ipAddresses: [], commonName: 'mydoc console test' });
    app = Fastify({ https: { key: tls.keyPem, cert: tls.certPem, minVersion: 'TLSv1.2' }, logger: false });
    const connected = new Set([...pcs, ...bulk].filter((pc) => pc.lastSeenAt !== null && now - pc.lastSeenAt < ONLINE_WINDOW_MS).map((pc) => pc.pcId));
    registerAdminWeb(app, {
      store,
      admins,
      takeout,
      hub: { isConnected: (pcId) => connected.has(pcId) },
      audit: { file: auditFile },
      onlineWindowMs: ONLINE_WINDOW_MS,
      clock: Date.now,
      logger: app.log,
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as { port: number }).port;
    const running = { app, store, audit };
    return {
      url: `https://127.0.0.1:${port}`,
      port,
      certPem: tls.certPem,
      caPem: tls.caCertPem,
      store,
      now,
      approver,
      viewer,
      outsider,
      takeoutCalls,
      auditFile,
      stop: async () => {
        await running.app.close();
        await running.store.close();
        await running.audit.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await app?.close();
    await store?.close();
    await audit?.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
