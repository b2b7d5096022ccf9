/**
 * The store's schema, as versioned migrations run by Kysely's Migrator when
 * a store opens: each runs once, in its own transaction, and is recorded in
 * `kysely_migration` (PostgreSQL holds an advisory lock meanwhile, so two
 * consoles starting together do not both migrate). A database that records
 * a migration this code does not know (written by a newer mydoc) is refused,
 * never changed. Migrations are only ever added, never edited.
 *
 * One schema for both engines: the same builder calls; the only difference
 * is that PostgreSQL compares and sorts pcIds bytewise (COLLATE "C"), as
 * SQLite does, whatever the database's locale.
 */
import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import type { FastifyBaseLogger } from 'fastify';
import { StoreError } from './errors.js';
import type { Engine } from './sql-store.js';
import type { StoreKind } from './store.js';

function migrations(kind: StoreKind): Record<string, Migration> {
  const pcIdType = kind === 'postgres' ? sql`text collate "C"` : sql`text`;
  return {
    '0001-pcs-enrolments-requests': {
      async up(db: Kysely<any>): Promise<void> {
        await db.schema
          .createTable('pc')
          .addColumn('pc_id', pcIdType, (c) => c.primaryKey())
          .addColumn('device_id', 'text')
          .addColumn('device_public_pem', 'text')
          .addColumn('added_at', 'bigint', (c) => c.notNull())
          .addColumn('enrolled_at', 'bigint')
          .addColumn('removed_at', 'bigint')
          .addColumn('last_seen_at', 'bigint')
          .addColumn('status', 'text')
          .addColumn('gate', 'text')
          .addColumn('takeout_until', 'bigint')
          .addColumn('last_backup_at', 'bigint')
          .addColumn('search_text', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('pc_last_seen').on('pc').column('last_seen_at').execute();
        await db.schema.createIndex('pc_last_backup').on('pc').column('last_backup_at').execute();
        await db.schema.createIndex('pc_takeout_until').on('pc').column('takeout_until').execute();
        await db.schema.createIndex('pc_gate').on('pc').columns(['gate', 'pc_id']).execute();

        await db.schema
          .createTable('enrolment')
          .addColumn('token_hash', 'text', (c) => c.primaryKey())
          .addColumn('pc_id', pcIdType, (c) => c.notNull().references('pc.pc_id'))
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .addColumn('used_at', 'bigint')
          .execute();
        await db.schema.createIndex('enrolment_pc').on('enrolment').column('pc_id').execute();

        await db.schema
          .createTable('takeout_request')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('pc_id', pcIdType, (c) => c.notNull().references('pc.pc_id'))
          .addColumn('user_name', 'text', (c) => c.notNull())
          .addColumn('days', 'integer', (c) => c.notNull())
          .addColumn('reason', 'text', (c) => c.notNull())
          .addColumn('requested_at', 'bigint', (c) => c.notNull())
          .addColumn('max_days', 'integer', (c) => c.notNull())
          .addColumn('envelopes', 'text', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('decided_by', 'text')
          .addColumn('decided_at', 'bigint')
          .addColumn('note', 'text')
          .addColumn('jti', 'text')
          .addColumn('until_at', 'bigint')
          .execute();
        await db.schema.createIndex('takeout_request_state').on('takeout_request').columns(['state', 'requested_at']).execute();
        await db.schema.createIndex('takeout_request_pc').on('takeout_request').columns(['pc_id', 'state']).execute();
        await db.schema.createIndex('takeout_request_jti').on('takeout_request').column('jti').execute();
      },
    },
    '0002-pc-device-unique': {
      // One device key is one live PC (a removed PC's key may enrol again); also getPcByDevice's index.
      async up(db: Kysely<any>): Promise<void> {
        await db.schema.createIndex('pc_device_live').on('pc').column('device_id').unique().where(sql.ref('removed_at'), 'is', null).execute();
      },
    },
    '0003-access-requests': {
      // The two-person rule: an administrator's request to read one user's contents on one PC, and its decision.
      async up(db: Kysely<any>): Promise<void> {
        await db.schema
          .createTable('access_request')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('admin', 'text', (c) => c.notNull())
          .addColumn('pc_id', pcIdType, (c) => c.notNull().references('pc.pc_id'))
          .addColumn('user_name', 'text', (c) => c.notNull())
          .addColumn('reason', 'text', (c) => c.notNull())
          .addColumn('hours', 'double precision', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('decided_by', 'text')
          .addColumn('decided_at', 'bigint')
          .addColumn('note', 'text')
          .addColumn('until_at', 'bigint')
          .execute();
        await db.schema.createIndex('access_request_live').on('access_request').columns(['admin', 'pc_id', 'user_name', 'status', 'until_at']).execute();
        await db.schema.createIndex('access_request_status').on('access_request').columns(['status', 'created_at']).execute();
      },
    },
    '0004-share-rules': {
      // Sharing: an administrator's rule that lets an AD user or group reach one folder of one user on one PC.
      async up(db: Kysely<any>): Promise<void> {
        await db.schema
          .createTable('share_rule')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('pc_id', pcIdType, (c) => c.notNull().references('pc.pc_id'))
          .addColumn('user_name', 'text', (c) => c.notNull())
          .addColumn('folder', 'text', (c) => c.notNull())
          .addColumn('grantee_kind', 'text', (c) => c.notNull())
          .addColumn('grantee_name', 'text', (c) => c.notNull())
          .addColumn('access', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .addColumn('created_by', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('revoked_at', 'bigint')
          .addColumn('revoked_by', 'text')
          .execute();
        await db.schema.createIndex('share_rule_pc_live').on('share_rule').columns(['pc_id', 'revoked_at', 'expires_at']).execute();
        await db.schema.createIndex('share_rule_grantee').on('share_rule').columns(['grantee_kind', 'grantee_name']).execute();
      },
    },
    '0005-known-users': {
      // Every user a PC has ever reported (its status names only open sessions), so that a closed vault can still be browsed.
      async up(db: Kysely<any>): Promise<void> {
        await db.schema
          .createTable('known_user')
          .addColumn('pc_id', pcIdType, (c) => c.notNull().references('pc.pc_id'))
          .addColumn('user_name', 'text', (c) => c.notNull())
          .addColumn('first_seen_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('known_user_pk', ['pc_id', 'user_name'])
          .execute();
        // The users of each live PC's last status are known already.
        const pcs = await db.selectFrom('pc').select(['pc_id', 'status', 'last_seen_at', 'added_at']).where('removed_at', 'is', null).where('status', 'is not', null).execute();
        for (const pc of pcs as { pc_id: string; status: string; last_seen_at: number | null; added_at: number }[]) {
          const users = (JSON.parse(pc.status) as { users?: unknown }).users;
          const names = Array.isArray(users) ? [...new Set(users.filter((u): u is string => typeof u === 'string'))] : [];
          if (names.length === 0) continue;
          const at = Number(pc.last_seen_at ?? pc.added_at);
          await db.insertInto('known_user').values(names.map((user_name) => ({ pc_id: pc.pc_id, user_name, first_seen_at: at }))).execute();
        }
      },
    },
  };
}

/**
 * Brings the schema up to date (nothing to do when it is); `where` names the
 * database in errors. A database that does not answer is the engine's
 * error (ERR_STORE_UNAVAILABLE, ERR_STORE_FILE); any other failure is
 * ERR_STORE_MIGRATION, and the failed migration left nothing behind.
 */
export async function migrateToLatest(db: Kysely<any>, engine: Engine, where: string, logger: FastifyBaseLogger): Promise<void> {
  const all = migrations(engine.kind);
  const provider: MigrationProvider = { getMigrations: async () => all };
  const { error, results } = await new Migrator({ db, provider }).migrateToLatest();
  for (const r of results ?? []) {
    if (r.status === 'Success') logger.info({ migration: r.migrationName }, 'console store: migration applied');
  }
  if (error === undefined) return;
  const mapped = engine.toStoreError(error, 'migration');
  if (mapped.code !== 'ERR_STORE_FAILED') throw mapped;
  const failed = results?.find((r) => r.status === 'Error')?.migrationName;
  const reason = error instanceof Error ? error.message : String(error);
  throw new StoreError('ERR_STORE_MIGRATION', `the console's store at ${where} could not be migrated${failed ? ` (migration ${failed})` : ''}: ${reason}`, { cause: error });
}
