/**
 * The user's access notices in the vault's index (`notice` table, schema
 * version 2): appending one, keeping only the newest NOTICE_LIMIT, and
 * listing them newest first. The rows are as encrypted as the rest of the
 * index; nothing here logs a notice's contents (they name the user's files).
 */
import type { IndexDb } from './index-db.js';
import type { AccessNotice } from './notices.js';

/** The index keeps at most this many notices: the oldest go first. */
export const NOTICE_LIMIT = 10_000;

interface NoticeRow {
  time: number;
  actor: string;
  kind: AccessNotice['kind'];
  via: string;
  method: string;
  path: string;
  request_id: string;
  decision: AccessNotice['decision'];
}

/** Appends `n` and drops what is beyond NOTICE_LIMIT. Runs inside the caller's write transaction. */
export function appendNotice(index: IndexDb, n: AccessNotice): void {
  const { lastInsertRowid } = index
    .stmt('INSERT INTO notice (time, actor, kind, via, method, path, request_id, decision) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
    .run(Math.trunc(n.time), n.actor, n.kind, n.via, n.method, n.path, n.requestId, n.decision);
  // Ids are contiguous (each new one is the largest + 1, and only the oldest are deleted).
  index.stmt('DELETE FROM notice WHERE id <= ?').run(BigInt(lastInsertRowid) - BigInt(NOTICE_LIMIT));
}

/**
 * The newest `limit` notices, newest (last recorded) first. An index of
 * schema version 1 opened read-only has no `notice` table: none then.
 */
export function listNotices(index: IndexDb, limit: number): AccessNotice[] {
  index.assertOpen();
  const exists = index.stmt("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'notice'").get();
  if (!exists) return [];
  const rows = index.stmt('SELECT * FROM notice ORDER BY id DESC LIMIT ?').all(limit) as NoticeRow[];
  return rows.map((r) => ({
    time: r.time,
    actor: r.actor,
    kind: r.kind,
    via: r.via,
    method: r.method,
    path: r.path,
    requestId: r.request_id,
    decision: r.decision,
  }));
}
