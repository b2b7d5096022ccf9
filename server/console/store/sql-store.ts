/**
 * The ConsoleStore's queries, written once (Kysely) for both engines:
 * sqlite.ts and postgres.ts open a connection, run the migrations and hand
 * it here with the little that differs between them (an `Engine`): how a
 * presence batch becomes one table, whether rows can be locked, and what a
 * driver error means.
 *
 * Atomic steps: consumeEnrolment reads and writes in one transaction with
 * the PC's row locked (FOR UPDATE on PostgreSQL; SQLite runs one write
 * transaction at a time), so a token binds one device once, however many
 * handshakes race for it, and binds a device key to one live PC (checked in
 * the transaction, backed by the unique index pc_device_live). decideRequest and revokeRequest are
 * compare-and-set UPDATEs. touchPresence is one UPDATE for its batch.
 *
 * Security considerations: enrolment tokens arrive as their SHA-256 and are
 * looked up by it (a hash lookup: nothing secret is compared in SQL or
 * here). Every value goes into SQL as a parameter, never as text; the PC
 * list's search escapes LIKE's wildcards, so a search is a substring match
 * and nothing else. Statuses are stored as the link validated them.
 */
import { sql, type Expression, type ExpressionBuilder, type Kysely, type RawBuilder, type Selectable, type SqlBool, type Transaction } from 'kysely';
import type {
  AccessRequestFilter,
  AccessRequestRow,
  AccessRequestStatus,
  ShareRuleFilter,
  ShareRuleRow,
  AlertCounts,
  ConsoleStore,
  EnrolmentResult,
  PcQuery,
  PcRow,
  PcSort,
  PcStatus,
  RequestState,
  StoreKind,
  TakeoutRequestRow,
} from './store.js';
import type { AccessRequestTable, PcTable, ShareRuleTable, StoreDatabase, TakeoutRequestTable } from './schema.js';
import { StoreError } from './errors.js';

const DAY_MS = 86_400_000;
/** Who revoked the share rules of a removed PC (store.ts ShareRuleRow.revokedBy). */
export const REMOVED_PC_REVOKER = 'console (PC removed)';
/** The largest page listPcs and listRequests return. */
const MAX_PAGE = 1000;

/** What differs between the engines. */
export interface Engine {
  readonly kind: StoreKind;
  /** A subquery of columns (pc_id, at) over one JSON parameter: an array of [pcId, at] pairs. */
  presenceRows(json: string): RawBuilder<{ pc_id: string; at: number }>;
  /** Whether SELECT ... FOR UPDATE locks rows (PostgreSQL); SQLite's write transactions are serial anyway. */
  readonly rowLocks: boolean;
  /** Whether a driver's error is a unique index refusing a row. */
  isUniqueViolation(err: unknown): boolean;
  /** The StoreError for a driver's error (a StoreError passes through). */
  toStoreError(err: unknown, operation: string): StoreError;
}

type Db = Kysely<StoreDatabase>;
type PcScope = ExpressionBuilder<StoreDatabase & { p: { pc_id: string; n: number } }, 'pc' | 'p'>;

export class SqlConsoleStore implements ConsoleStore {
  private closed = false;

  constructor(
    private readonly db: Db,
    private readonly engine: Engine,
  ) {}

  get kind(): StoreKind {
    return this.engine.kind;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.destroy();
  }

  // PCs

  addPc(pcId: string, now: number): Promise<void> {
    return this.run('addPc', () =>
      this.db.transaction().execute(async (trx) => {
        const fresh = { device_id: null, device_public_pem: null, enrolled_at: null, removed_at: null, last_seen_at: null, status: null, gate: null, takeout_until: null, last_backup_at: null };
        const result = await trx
          .insertInto('pc')
          .values({ pc_id: pcId, added_at: now, search_text: searchText(pcId, []), ...fresh })
          .onConflict((oc) =>
            oc
              .column('pc_id')
              .doUpdateSet((eb) => ({ ...fresh, added_at: eb.ref('excluded.added_at'), search_text: eb.ref('excluded.search_text') }))
              .where('pc.removed_at', 'is not', null),
          )
          .executeTakeFirst();
        if (Number(result.numInsertedOrUpdatedRows ?? 0) === 0) throw new StoreError('ERR_STORE_PC_EXISTS', `PC ${pcId} is registered already`);
        // A removed PC added again starts over: its old tokens are gone with its old device.
        await trx.deleteFrom('enrolment').where('pc_id', '=', pcId).execute();
      }),
    );
  }

  removePc(pcId: string, now: number): Promise<boolean> {
    return this.run('removePc', () =>
      this.db.transaction().execute(async (trx) => {
        const removed = await trx.updateTable('pc').set({ removed_at: now }).where('pc_id', '=', pcId).where('removed_at', 'is', null).executeTakeFirst();
        if (Number(removed.numUpdatedRows) === 0) return false;
        await trx.updateTable('takeout_request').set({ state: 'expired', decided_at: now }).where('pc_id', '=', pcId).where('state', '=', 'pending').execute();
        // Sharing (0004): a removed PC's share rules end with it (a PC added again under its id is another device).
        await trx.updateTable('share_rule').set({ revoked_at: now, revoked_by: REMOVED_PC_REVOKER }).where('pc_id', '=', pcId).where('revoked_at', 'is', null).execute();
        // Known users (0005): forgotten with the PC (a PC added again under its id reports its own).
        await trx.deleteFrom('known_user').where('pc_id', '=', pcId).execute();
        return true;
      }),
    );
  }

  getPc(pcId: string): Promise<PcRow | undefined> {
    return this.run('getPc', async () => {
      const row = await this.pcsWithPending().where('pc.pc_id', '=', pcId).executeTakeFirst();
      return row && toPcRow(row);
    });
  }

  getPcByDevice(deviceId: string): Promise<PcRow | undefined> {
    return this.run('getPcByDevice', async () => {
      const row = await this.pcsWithPending().where('pc.device_id', '=', deviceId).where('pc.removed_at', 'is', null).executeTakeFirst();
      return row && toPcRow(row);
    });
  }

  listPcs(query: PcQuery): Promise<{ rows: PcRow[]; total: number }> {
    return this.run('listPcs', async () => {
      checkPage(query.offset, query.limit);
      const matching = (eb: PcScope) => pcConditions(eb, query);
      const column = Object.hasOwn(SORT_COLUMNS, query.sort) ? SORT_COLUMNS[query.sort] : undefined;
      if (column === undefined) throw new StoreError('ERR_STORE_QUERY', `unknown PC sort ${JSON.stringify(query.sort)}`);
      let page = this.pcsWithPending()
        .where(matching)
        .orderBy(column, (ob) => (query.descending ? ob.desc().nullsLast() : ob.asc().nullsFirst()));
      if (column !== 'pc.pc_id') page = page.orderBy('pc.pc_id');
      const [rows, count] = await Promise.all([
        page.offset(query.offset).limit(query.limit).execute(),
        this.pcsWithPending()
          .clearSelect()
          .select((eb) => eb.fn.countAll<number>().as('total'))
          .where(matching)
          .executeTakeFirstOrThrow(),
      ]);
      return { rows: rows.map(toPcRow), total: Number(count.total) };
    });
  }

  alertCounts(now: number, onlineSince: number): Promise<AlertCounts> {
    return this.run('alertCounts', async () => {
      const countWhere = (eb: ExpressionBuilder<StoreDatabase, 'pc'>, condition: Expression<SqlBool>) =>
        eb.fn.coalesce(eb.fn.sum<number>(eb.case().when(condition).then(1).else(0).end()), eb.lit(0));
      const pcs = await this.db
        .selectFrom('pc')
        .where('removed_at', 'is', null)
        .select((eb) => [
          countWhere(eb, notSeenFor(eb, onlineSince, now - 30 * DAY_MS)).as('not_seen'),
          countWhere(eb, noBackupFor(eb, now - 7 * DAY_MS)).as('no_backup'),
          countWhere(eb, eb.and([eb('takeout_until', '>', now), eb('takeout_until', '<=', now + DAY_MS)])).as('takeouts_ending'),
        ])
        .executeTakeFirstOrThrow();
      const pending = await this.db
        .selectFrom('takeout_request')
        .innerJoin('pc', 'pc.pc_id', 'takeout_request.pc_id')
        .where('takeout_request.state', '=', 'pending')
        .where('pc.removed_at', 'is', null)
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      return {
        notSeen30Days: Number(pcs.not_seen),
        noBackup7Days: Number(pcs.no_backup),
        pendingRequests: Number(pending.n),
        takeoutsEndingIn24h: Number(pcs.takeouts_ending),
      };
    });
  }

  // Enrolment

  createEnrolment(pcId: string, tokenHash: Buffer, expiresAt: number): Promise<void> {
    return this.run('createEnrolment', () =>
      this.db.transaction().execute(async (trx) => {
        const hash = hashHex(tokenHash);
        const pc = await this.lockPc(trx, pcId);
        if (pc === undefined || pc.removed_at !== null) throw new StoreError('ERR_STORE_PC_UNKNOWN', `PC ${pcId} is not registered`);
        await trx.deleteFrom('enrolment').where('pc_id', '=', pcId).where('used_at', 'is', null).execute();
        await trx.insertInto('enrolment').values({ token_hash: hash, pc_id: pcId, expires_at: expiresAt, used_at: null }).execute();
      }),
    );
  }

  consumeEnrolment(pcId: string, tokenHash: Buffer, deviceId: string, devicePublicPem: string, now: number): Promise<EnrolmentResult> {
    return this.run('consumeEnrolment', () =>
      this.db
        .transaction()
        .execute(async (trx): Promise<EnrolmentResult> => {
          const hash = hashHex(tokenHash);
          const pc = await this.lockPc(trx, pcId);
          if (pc === undefined) return { ok: false, code: 'ERR_ENROL_UNKNOWN' };
          if (pc.removed_at !== null) return { ok: false, code: 'ERR_ENROL_REMOVED' };
          const token = await trx.selectFrom('enrolment').selectAll().where('token_hash', '=', hash).where('pc_id', '=', pcId).executeTakeFirst();
          // A used token says so, whoever presents it; an enrolled PC claimed without one is taken.
          if (token !== undefined && token.used_at !== null) return { ok: false, code: 'ERR_ENROL_USED' };
          if (pc.device_id !== null) return { ok: false, code: 'ERR_ENROL_TAKEN' };
          if (token === undefined) return { ok: false, code: 'ERR_ENROL_UNKNOWN' };
          if (token.expires_at <= now) return { ok: false, code: 'ERR_ENROL_EXPIRED' };
          // One device is one PC (the unique index pc_device_live backs this against a race).
          const other = await trx.selectFrom('pc').select('pc_id').where('device_id', '=', deviceId).where('removed_at', 'is', null).where('pc_id', '!=', pcId).executeTakeFirst();
          if (other !== undefined) return { ok: false, code: 'ERR_ENROL_TAKEN' };
          await trx.updateTable('enrolment').set({ used_at: now }).where('token_hash', '=', hash).execute();
          await trx.updateTable('pc').set({ device_id: deviceId, device_public_pem: devicePublicPem, enrolled_at: now }).where('pc_id', '=', pcId).execute();
          return { ok: true };
        })
        .catch((err: unknown): EnrolmentResult => {
          // Another PC enrolled the same device key in a transaction that committed first.
          if (this.engine.isUniqueViolation(err)) return { ok: false, code: 'ERR_ENROL_TAKEN' };
          throw err;
        }),
    );
  }

  // Status

  saveStatus(pcId: string, status: PcStatus, now: number): Promise<void> {
    return this.run('saveStatus', async () => {
      const result = await this.db
        .updateTable('pc')
        .set({
          status: JSON.stringify(status),
          gate: status.gate,
          takeout_until: status.takeoutUntil,
          last_backup_at: status.lastBackupAt,
          search_text: searchText(pcId, status.users),
          last_seen_at: sql<number>`case when last_seen_at is null or last_seen_at < ${now} then ${now} else last_seen_at end`,
        })
        .where('pc_id', '=', pcId)
        .where('removed_at', 'is', null)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) throw new StoreError('ERR_STORE_PC_UNKNOWN', `PC ${pcId} is not registered`);
    });
  }

  touchPresence(seen: readonly { pcId: string; at: number }[]): Promise<void> {
    return this.run('touchPresence', async () => {
      // The latest time per PC: one row each, so the UPDATE has one source row per target.
      const latest = new Map<string, number>();
      for (const { pcId, at } of seen) latest.set(pcId, Math.max(at, latest.get(pcId) ?? at));
      if (latest.size === 0) return;
      await this.db
        .updateTable('pc')
        .from(this.engine.presenceRows(JSON.stringify([...latest])).as('seen'))
        .set((eb) => ({ last_seen_at: eb.ref('seen.at') }))
        .whereRef('pc.pc_id', '=', 'seen.pc_id')
        .where((eb) => eb.or([eb('pc.last_seen_at', 'is', null), eb('pc.last_seen_at', '<', eb.ref('seen.at'))]))
        .execute();
    });
  }

  // Known users (migration 0005)

  addKnownUsers(pcId: string, users: readonly string[], now: number): Promise<void> {
    return this.run('addKnownUsers', () =>
      this.db.transaction().execute(async (trx) => {
        const pc = await trx.selectFrom('pc').select('removed_at').where('pc_id', '=', pcId).executeTakeFirst();
        if (pc === undefined || pc.removed_at !== null) throw new StoreError('ERR_STORE_PC_UNKNOWN', `PC ${pcId} is not registered`);
        const names = [...new Set(users)];
        if (names.length === 0) return;
        await trx
          .insertInto('known_user')
          .values(names.map((user_name) => ({ pc_id: pcId, user_name, first_seen_at: now })))
          .onConflict((oc) => oc.columns(['pc_id', 'user_name']).doNothing())
          .execute();
      }),
    );
  }

  listKnownUsers(pcId: string): Promise<string[]> {
    return this.run('listKnownUsers', async () => {
      const rows = await this.db
        .selectFrom('known_user')
        .innerJoin('pc', 'pc.pc_id', 'known_user.pc_id')
        .select('known_user.user_name')
        .where('known_user.pc_id', '=', pcId)
        .where('pc.removed_at', 'is', null)
        .execute();
      // Sorted here, bytewise, whatever the database's collation.
      return rows.map((r) => r.user_name).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    });
  }

  // Take-out requests

  putRequest(row: Omit<TakeoutRequestRow, 'state' | 'decidedBy' | 'decidedAt' | 'note' | 'jti' | 'until'>): Promise<void> {
    return this.run('putRequest', () =>
      this.db.transaction().execute(async (trx) => {
        const pc = await trx.selectFrom('pc').select('removed_at').where('pc_id', '=', row.pcId).executeTakeFirst();
        if (pc === undefined || pc.removed_at !== null) throw new StoreError('ERR_STORE_PC_UNKNOWN', `PC ${row.pcId} is not registered`);
        await trx
          .insertInto('takeout_request')
          .values({
            id: row.id,
            pc_id: row.pcId,
            user_name: row.user,
            days: row.days,
            reason: row.reason,
            requested_at: row.requestedAt,
            max_days: row.maxDays,
            envelopes: JSON.stringify(row.envelopes),
            state: 'pending',
            decided_by: null,
            decided_at: null,
            note: null,
            jti: null,
            until_at: null,
          })
          .onConflict((oc) => oc.column('id').doNothing())
          .execute();
      }),
    );
  }

  getRequest(id: string): Promise<TakeoutRequestRow | undefined> {
    return this.run('getRequest', async () => {
      const row = await this.db.selectFrom('takeout_request').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toRequestRow(row);
    });
  }

  listRequests(filter: { state?: RequestState; pcId?: string; limit: number }): Promise<TakeoutRequestRow[]> {
    return this.run('listRequests', async () => {
      checkPage(0, filter.limit);
      let q = this.db.selectFrom('takeout_request').selectAll();
      if (filter.state !== undefined) q = q.where('state', '=', filter.state);
      if (filter.pcId !== undefined) q = q.where('pc_id', '=', filter.pcId);
      const rows = await q.orderBy('requested_at', 'desc').orderBy('id').limit(filter.limit).execute();
      return rows.map(toRequestRow);
    });
  }

  decideRequest(
    id: string,
    decision: { state: Exclude<RequestState, 'pending'>; by: string; at: number; note: string | null; jti?: string; until?: number },
  ): Promise<boolean> {
    return this.run('decideRequest', async () => {
      const result = await this.db
        .updateTable('takeout_request')
        .set({ state: decision.state, decided_by: decision.by, decided_at: decision.at, note: decision.note, jti: decision.jti ?? null, until_at: decision.until ?? null })
        .where('id', '=', id)
        .where('state', '=', 'pending')
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    });
  }

  revokeRequest(jti: string, by: string, at: number): Promise<TakeoutRequestRow | undefined> {
    return this.run('revokeRequest', async () => {
      const rows = await this.db
        .updateTable('takeout_request')
        .set({ state: 'revoked', decided_by: by, decided_at: at })
        .where('jti', '=', jti)
        .where('state', '=', 'approved')
        .returningAll()
        .execute();
      return rows[0] && toRequestRow(rows[0]);
    });
  }

  expireRequests(before: number, now: number): Promise<TakeoutRequestRow[]> {
    return this.run('expireRequests', async () => {
      const rows = await this.db
        .updateTable('takeout_request')
        .set({ state: 'expired', decided_at: now })
        .where('state', '=', 'pending')
        .where('requested_at', '<', before)
        .returningAll()
        .execute();
      return rows.map(toRequestRow).sort((a, b) => a.requestedAt - b.requestedAt || (a.id < b.id ? -1 : 1));
    });
  }

  // Access requests (the two-person rule, migration 0003)

  putAccessRequest(row: Omit<AccessRequestRow, 'status' | 'decidedBy' | 'decidedAt' | 'note' | 'until'>): Promise<void> {
    return this.run('putAccessRequest', () =>
      this.db.transaction().execute(async (trx) => {
        const pc = await trx.selectFrom('pc').select('removed_at').where('pc_id', '=', row.pcId).executeTakeFirst();
        if (pc === undefined || pc.removed_at !== null) throw new StoreError('ERR_STORE_PC_UNKNOWN', `PC ${row.pcId} is not registered`);
        await trx
          .insertInto('access_request')
          .values({
            id: row.id,
            admin: row.admin,
            pc_id: row.pcId,
            user_name: row.user,
            reason: row.reason,
            hours: row.hours,
            created_at: row.createdAt,
            status: 'pending',
            decided_by: null,
            decided_at: null,
            note: null,
            until_at: null,
          })
          .execute();
      }),
    );
  }

  getAccessRequest(id: string): Promise<AccessRequestRow | undefined> {
    return this.run('getAccessRequest', async () => {
      const row = await this.db.selectFrom('access_request').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toAccessRequestRow(row);
    });
  }

  listAccessRequests(filter: AccessRequestFilter): Promise<AccessRequestRow[]> {
    return this.run('listAccessRequests', async () => {
      checkPage(0, filter.limit);
      let q = this.db.selectFrom('access_request').selectAll();
      if (filter.status !== undefined) q = q.where('status', '=', filter.status);
      if (filter.pcId !== undefined) q = q.where('pc_id', '=', filter.pcId);
      if (filter.liveAt !== undefined) q = q.where('status', '=', 'approved').where('until_at', '>', filter.liveAt);
      const rows = await q.orderBy('created_at', 'desc').orderBy('id').limit(filter.limit).execute();
      return rows.map(toAccessRequestRow);
    });
  }

  decideAccessRequest(id: string, decision: { status: 'approved' | 'denied'; by: string; at: number; note: string | null; until: number | null }): Promise<boolean> {
    return this.run('decideAccessRequest', async () => {
      const result = await this.db
        .updateTable('access_request')
        .set({ status: decision.status, decided_by: decision.by, decided_at: decision.at, note: decision.note, until_at: decision.until })
        .where('id', '=', id)
        .where('status', '=', 'pending')
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    });
  }

  hasLiveAccess(admin: string, pcId: string, user: string, now: number): Promise<boolean> {
    return this.run('hasLiveAccess', async () => {
      const row = await this.db
        .selectFrom('access_request')
        .select('id')
        .where('admin', '=', admin)
        .where('pc_id', '=', pcId)
        .where('user_name', '=', user)
        .where('status', '=', 'approved')
        .where('until_at', '>', now)
        .limit(1)
        .executeTakeFirst();
      return row !== undefined;
    });
  }

  // Share rules (sharing, migration 0004)

  putShareRule(row: Omit<ShareRuleRow, 'revokedAt' | 'revokedBy'>): Promise<void> {
    return this.run('putShareRule', () =>
      this.db.transaction().execute(async (trx) => {
        const pc = await trx.selectFrom('pc').select('removed_at').where('pc_id', '=', row.pcId).executeTakeFirst();
        if (pc === undefined || pc.removed_at !== null) throw new StoreError('ERR_STORE_PC_UNKNOWN', `PC ${row.pcId} is not registered`);
        await trx
          .insertInto('share_rule')
          .values({
            id: row.id,
            pc_id: row.pcId,
            user_name: row.user,
            folder: JSON.stringify(row.folder),
            grantee_kind: row.grantee.kind,
            grantee_name: row.grantee.name,
            access: row.access,
            expires_at: row.expiresAt,
            created_by: row.createdBy,
            created_at: row.createdAt,
            revoked_at: null,
            revoked_by: null,
          })
          .execute();
      }),
    );
  }

  getShareRule(id: string): Promise<ShareRuleRow | undefined> {
    return this.run('getShareRule', async () => {
      const row = await this.db.selectFrom('share_rule').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toShareRuleRow(row);
    });
  }

  listShareRules(filter: ShareRuleFilter): Promise<ShareRuleRow[]> {
    return this.run('listShareRules', async () => {
      checkPage(0, filter.limit);
      let q = this.db.selectFrom('share_rule').selectAll();
      if (filter.pcId !== undefined) q = q.where('pc_id', '=', filter.pcId);
      if (filter.liveAt !== undefined) q = q.where('revoked_at', 'is', null).where('expires_at', '>', filter.liveAt);
      const rows = await q.orderBy('created_at', 'desc').orderBy('id').limit(filter.limit).execute();
      return rows.map(toShareRuleRow);
    });
  }

  revokeShareRule(id: string, by: string, at: number): Promise<ShareRuleRow | undefined> {
    return this.run('revokeShareRule', () =>
      this.db.transaction().execute(async (trx) => {
        const result = await trx.updateTable('share_rule').set({ revoked_at: at, revoked_by: by }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
        if (Number(result.numUpdatedRows) === 0) return undefined;
        const row = await trx.selectFrom('share_rule').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
        return toShareRuleRow(row);
      }),
    );
  }

  // Helpers

  /** Runs one operation: refused after close(); a driver's error becomes a StoreError. */
  private async run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreError('ERR_STORE_CLOSED', `the console's store is closed (${operation})`);
    try {
      return await fn();
    } catch (err) {
      throw this.engine.toStoreError(err, operation);
    }
  }

  /** The PC's row, locked until the transaction ends where the engine locks rows. */
  private lockPc(trx: Transaction<StoreDatabase>, pcId: string) {
    const q = trx.selectFrom('pc').select(['removed_at', 'device_id']).where('pc_id', '=', pcId);
    return (this.engine.rowLocks ? q.forUpdate() : q).executeTakeFirst();
  }

  /** PCs with their count of pending requests (`pending`). */
  private pcsWithPending() {
    const pending = this.db
      .selectFrom('takeout_request')
      .select((eb) => ['pc_id', eb.fn.countAll<number>().as('n')])
      .where('state', '=', 'pending')
      .groupBy('pc_id')
      .as('p');
    return this.db
      .selectFrom('pc')
      .leftJoin(pending, 'p.pc_id', 'pc.pc_id')
      .selectAll('pc')
      .select((eb) => eb.fn.coalesce('p.n', eb.lit(0)).as('pending'));
  }
}

/** The WHERE of a PC list query: not removed, its filter, its search. */
function pcConditions(eb: PcScope, query: PcQuery): Expression<SqlBool> {
  const all: Expression<SqlBool>[] = [eb('pc.removed_at', 'is', null)];
  if (query.days !== undefined && !(Number.isFinite(query.days) && query.days >= 0)) throw new StoreError('ERR_STORE_QUERY', `days must be a number >= 0 (got ${query.days})`);
  const since = query.days === undefined ? undefined : query.now - query.days * DAY_MS;
  switch (query.filter) {
    case 'all':
      break;
    case 'online':
      all.push(eb('pc.last_seen_at', '>=', query.onlineSince));
      break;
    case 'offline':
      all.push(notSeenFor(eb, query.onlineSince, since));
      break;
    case 'no-backup':
      all.push(since === undefined ? eb('pc.last_backup_at', 'is', null) : noBackupFor(eb, since));
      break;
    case 'takeout':
      all.push(eb('pc.takeout_until', '>', query.now));
      break;
    case 'pending':
      all.push(eb(eb.fn.coalesce('p.n', eb.lit(0)), '>', 0));
      break;
    default:
      throw new StoreError('ERR_STORE_QUERY', `unknown PC filter ${JSON.stringify(query.filter)}`);
  }
  const search = query.search?.trim().toLowerCase();
  if (search) all.push(sql<SqlBool>`${sql.ref('pc.search_text')} like ${`%${search.replace(/[\\%_]/g, '\\$&')}%`} escape '\\'`);
  return eb.and(all);
}

/** Offline, and (with `before`) not seen since `before`; a PC never seen counts from when it was added. */
function notSeenFor(eb: ExpressionBuilder<StoreDatabase, 'pc'>, onlineSince: number, before: number | undefined): Expression<SqlBool> {
  const offline = eb.or([eb('pc.last_seen_at', 'is', null), eb('pc.last_seen_at', '<', onlineSince)]);
  return before === undefined ? offline : eb.and([offline, eb(eb.fn.coalesce('pc.last_seen_at', 'pc.added_at'), '<', before)]);
}

/** No complete backup since `before`; a PC that never had one counts from when it was added. */
function noBackupFor(eb: ExpressionBuilder<StoreDatabase, 'pc'>, before: number): Expression<SqlBool> {
  return eb(eb.fn.coalesce('pc.last_backup_at', 'pc.added_at'), '<', before);
}

/** What each sort orders by (a missing time or gate counts as the smallest); pcId breaks ties. */
const SORT_COLUMNS = {
  pcId: 'pc.pc_id',
  lastSeen: 'pc.last_seen_at',
  lastBackup: 'pc.last_backup_at',
  gate: 'pc.gate',
  pending: 'pending',
} as const satisfies Record<PcSort, string>;

function checkPage(offset: number, limit: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new StoreError('ERR_STORE_QUERY', `offset must be a whole number >= 0 (got ${offset})`);
  if (!Number.isSafeInteger(limit) || limit < 0 || limit > MAX_PAGE) throw new StoreError('ERR_STORE_QUERY', `limit must be a whole number from 0 to ${MAX_PAGE} (got ${limit})`);
}

function hashHex(tokenHash: Buffer): string {
  if (tokenHash.length !== 32) throw new StoreError('ERR_STORE_QUERY', `an enrolment token hash is a SHA-256 (32 bytes; got ${tokenHash.length})`);
  return tokenHash.toString('hex');
}

/** The search column: the pcId and each user, lower-cased, one a line. */
function searchText(pcId: string, users: readonly string[]): string {
  return [pcId, ...users].map((s) => s.toLowerCase()).join('\n');
}

function toPcRow(row: Selectable<PcTable> & { pending: number }): PcRow {
  return {
    pcId: row.pc_id,
    deviceId: row.device_id,
    devicePublicPem: row.device_public_pem,
    addedAt: Number(row.added_at),
    enrolledAt: nullableNumber(row.enrolled_at),
    removedAt: nullableNumber(row.removed_at),
    lastSeenAt: nullableNumber(row.last_seen_at),
    status: row.status === null ? null : (JSON.parse(row.status) as PcStatus),
    pendingRequests: Number(row.pending),
  };
}

function toRequestRow(row: Selectable<TakeoutRequestTable>): TakeoutRequestRow {
  return {
    id: row.id,
    pcId: row.pc_id,
    user: row.user_name,
    days: Number(row.days),
    reason: row.reason,
    requestedAt: Number(row.requested_at),
    maxDays: Number(row.max_days),
    envelopes: JSON.parse(row.envelopes) as Record<string, string>,
    state: row.state as RequestState,
    decidedBy: row.decided_by,
    decidedAt: nullableNumber(row.decided_at),
    note: row.note,
    jti: row.jti,
    until: nullableNumber(row.until_at),
  };
}

function toAccessRequestRow(row: Selectable<AccessRequestTable>): AccessRequestRow {
  return {
    id: row.id,
    admin: row.admin,
    pcId: row.pc_id,
    user: row.user_name,
    reason: row.reason,
    hours: Number(row.hours),
    createdAt: Number(row.created_at),
    status: row.status as AccessRequestStatus,
    decidedBy: row.decided_by,
    decidedAt: nullableNumber(row.decided_at),
    note: row.note,
    until: nullableNumber(row.until_at),
  };
}

function toShareRuleRow(row: Selectable<ShareRuleTable>): ShareRuleRow {
  return {
    id: row.id,
    pcId: row.pc_id,
    user: row.user_name,
    folder: JSON.parse(row.folder) as string[],
    grantee: { kind: row.grantee_kind as 'user' | 'group', name: row.grantee_name },
    access: row.access as 'read' | 'readwrite',
    expiresAt: Number(row.expires_at),
    createdBy: row.created_by,
    createdAt: Number(row.created_at),
    revokedAt: nullableNumber(row.revoked_at),
    revokedBy: row.revoked_by,
  };
}

function nullableNumber(v: number | null): number | null {
  return v === null ? null : Number(v);
}
