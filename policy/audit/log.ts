/**
 * The audit log of the policy layer: append-only JSON lines, each
 * hash-chained to the line before it, and the check of that chain
 * (`mydoc audit verify`). Logins, refusals, lock/unlock, take-out requests,
 * approvals, uses and expiry, and admin actions are recorded here.
 *
 * Line format. One record per line, UTF-8, each line ending in "\n". The
 * line is exactly `JSON.stringify` (ECMA-262 escaping, no spaces) of an object
 * with these keys in this order:
 *
 *   {"seq":1,"time":"2025-01-02T03:04:05.678Z","actor":"alice","action":"login",
 *    "target":"…","decision":"allow","reason":"…","prev":"<64 hex>","hash":"<64 hex>"}
 *
 * - `target` and `reason` are left out when absent (never `null`).
 * - `seq` is the line number: 1 on the first line, one more on each line.
 * - `time` is ISO 8601 UTC with milliseconds, from the writer's clock. Its
 *   order is not checked: clocks step.
 * - `prev` is the hex SHA-256 of the previous line's bytes (without its
 *   "\n"), or 64 zeros on line 1.
 * - `hash` is the hex SHA-256 of the same JSON without the `hash` key, that
 *   is of the line's bytes up to `,"hash"` followed by `}`.
 * A line with the right values but other bytes (spacing, key order, escapes)
 * is not canonical and is reported. Every log begins with an `audit.created`
 * record, so an empty file is damage, not a new log.
 *
 * Security considerations
 * - What the chain detects. A line edited, removed, duplicated, moved or
 *   inserted is reported at the first line where the chain breaks: `hash`
 *   catches an edit on the edited line itself, `seq` a removal, duplicate or
 *   move, `prev` a line rewritten with a fresh `hash`. This holds against
 *   anyone who cannot also rewrite every later line consistently.
 * - What it does not detect. The chain is a plain hash, so whoever can write
 *   the file (root in the service VM, a disk taken out of the PC) can rewrite
 *   it from any point on, drop lines from the end, or append forged lines,
 *   and the result verifies. Only an anchor kept elsewhere catches a rewrite
 *   or a cut tail: `AuditLog.head()` gives `{seq, hash}` for the caller to
 *   record off the PC (e.g. with the NAS backup), and `verifyAuditLog(file,
 *   { expectedHead })` then requires that record, unchanged. Lines after the
 *   anchor have only the chain's protection.
 * - Why not a keyed MAC. Its key would live on the same disk as the log (the
 *   service VM has no other persistent store), so it adds nothing against
 *   the disk attacker. A key from the directory would make logging stop
 *   off the company network, exactly when take-out events matter. The anchor
 *   is the honest defence.
 * - Values. `actor`, `target` and `reason` are user-influenced (user names,
 *   paths). JSON escaping keeps each record on one line whatever they hold
 *   (quotes, newlines, control characters); tools that print decoded values
 *   (e.g. `jq -r`) must escape them themselves. Each is cut to
 *   MAX_FIELD_CHARS, so a huge name cannot bloat the log.
 * - Secrets. Callers must never pass passwords, tokens or keys. As a guard,
 *   anything shaped like a JWT/JWS/JWE (`eyJ…` then two or more base64url
 *   parts) is replaced by a marker. It is redacted rather than refused: a
 *   user-supplied name must not be able to suppress its own audit record.
 * - Durability. Each line is written with O_APPEND and fdatasync'ed before
 *   `append` resolves. A crash can leave a partial last line; `open` moves it
 *   to `<file>.partial-<time>` and records `audit.recovered`, so that nothing
 *   is silently dropped. After a failed write the log refuses further records
 *   (fail closed) until it is reopened.
 * - One writer. One `AuditLog` per file, in one process: a second writer
 *   would fork the chain (verify then reports it), and its `open` could take
 *   the other's line in progress for a crash leftover. Other processes should
 *   record through the service.
 * - Files are created with mode 0600 in a 0700 folder.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { fsyncDir, writeFileAtomic } from '../../crypto/atomic-file.js';
import { systemClock, type Clock } from '../../shares/clock.js';

export type AuditDecision = 'allow' | 'deny' | 'info';

/** What happened. `actor`, `target` and `reason` must never hold secrets. */
export interface AuditEvent {
  actor: string;
  /** A dotted lower-case name chosen by the code, e.g. `login`, `takeout.approve`. */
  action: string;
  target?: string;
  decision: AuditDecision;
  reason?: string;
}

/** One line of the log, as written. */
export type AuditRecord = AuditEvent & {
  seq: number;
  /** ISO 8601 UTC with milliseconds. */
  time: string;
  /** Hex SHA-256 of the previous line's bytes, or 64 zeros on line 1. */
  prev: string;
  /** Hex SHA-256 of the canonical JSON of this record without `hash`. */
  hash: string;
};

/** The last record of a log, to be kept elsewhere as an anchor. */
export interface AuditHead {
  seq: number;
  hash: string;
}

/** `line` is 1-based; 0 means the file as a whole (missing or empty). */
export type AuditVerifyResult = { ok: true; lines: number; head: AuditHead } | { ok: false; line: number; problem: string };

export class AuditLogError extends Error {
  constructor(
    readonly code: 'ERR_AUDIT_EVENT' | 'ERR_AUDIT_ANCHOR' | 'ERR_AUDIT_DAMAGED' | 'ERR_AUDIT_CLOSED' | 'ERR_AUDIT_WRITE' | 'ERR_AUDIT_READ',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'AuditLogError';
  }
}

/** Longest `actor`, `target` or `reason` kept, in UTF-16 code units; longer values are cut and end in "…". */
export const MAX_FIELD_CHARS = 512;

/** No record is longer: three capped fields at 6 bytes per escaped code unit, plus the fixed fields. */
const MAX_LINE_BYTES = 16 * 1024;
/** How much of the end of the file `open` reads to find the last record. */
const TAIL_WINDOW = 4 * MAX_LINE_BYTES;
const FIRST_PREV = '0'.repeat(64);
const DECISIONS: readonly string[] = ['allow', 'deny', 'info'];
const KEYS: readonly string[] = ['seq', 'time', 'actor', 'action', 'target', 'decision', 'reason', 'prev', 'hash'];
const ACTION = /^[a-z][a-z0-9]*(?:[._-][a-z0-9]+)*$/;
const MAX_ACTION_CHARS = 64;
const HEX64 = /^[0-9a-f]{64}$/;
const ISO_UTC_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const TOKEN_LIKE = /eyJ[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*){2,}/g;
const REDACTED = '[redacted: token-like value]';
/** The actor of the log's own records. */
const SELF = 'mydoc';

/** Appends records to one log file; appends are serialized in call order. */
export class AuditLog {
  private queue: Promise<unknown> = Promise.resolve();
  private failure: AuditLogError | undefined;
  private closed = false;

  private constructor(
    private readonly fh: FileHandle,
    private readonly now: Clock,
    private last: { seq: number; hash: string; lineHash: string },
  ) {}

  /**
   * Opens (or creates) the log and resumes its chain from the last line, which
   * must be a valid record. Only the tail is read: run `verifyAuditLog` for the
   * whole chain.
   */
  static async open(file: string, opts: { now?: Clock } = {}): Promise<AuditLog> {
    const now = opts.now ?? systemClock;
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    const fh = await open(file, 'a+', 0o600);
    try {
      const tail = await readTail(fh, file);
      const aside = tail.partial.length > 0 ? await moveAside(fh, file, tail, new Date(now())) : undefined;
      const last = tail.lastLine === undefined ? { seq: 0, hash: FIRST_PREV, lineHash: FIRST_PREV } : resumeFrom(tail.lastLine, file);
      const log = new AuditLog(fh, now, last);
      if (tail.lastLine === undefined) {
        await fsyncDir(dirname(file));
        await log.append({ actor: SELF, action: 'audit.created', decision: 'info' });
      }
      if (aside !== undefined) {
        const reason = `a partial last line (${tail.partial.length} bytes) left by an interrupted write was moved aside`;
        await log.append({ actor: SELF, action: 'audit.recovered', target: basename(aside), decision: 'info', reason });
      }
      return log;
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /** Writes one record and makes it durable before resolving. */
  append(event: AuditEvent): Promise<AuditRecord> {
    if (this.closed) return Promise.reject(new AuditLogError('ERR_AUDIT_CLOSED', 'the audit log is closed'));
    const written = this.queue.then(() => this.write(event));
    this.queue = written.catch(() => undefined);
    return written;
  }

  /** The last record written: keep it elsewhere to anchor the log. */
  head(): AuditHead {
    return { seq: this.last.seq, hash: this.last.hash };
  }

  /** Waits for pending appends, then closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
    await this.fh.close();
  }

  private async write(event: AuditEvent): Promise<AuditRecord> {
    if (this.failure) throw this.failure;
    const record = seal({ seq: this.last.seq + 1, time: new Date(this.now()).toISOString(), ...cleanEvent(event), prev: this.last.lineHash });
    const line = Buffer.from(canonicalJson(record, record.hash), 'utf8');
    try {
      await writeAll(this.fh, Buffer.concat([line, Buffer.from('\n')]));
      await this.fh.datasync();
    } catch (err) {
      this.failure = new AuditLogError('ERR_AUDIT_WRITE', `the audit log could not be written (${(err as Error).message}); it accepts no more records until reopened`, { cause: err });
      throw this.failure;
    }
    this.last = { seq: record.seq, hash: record.hash, lineHash: sha256Hex(line) };
    return record;
  }
}

/** Checks the whole chain; `expectedHead` (an anchor kept elsewhere) must still be in it, unchanged. */
export async function verifyAuditLog(file: string, opts: { expectedHead?: AuditHead } = {}): Promise<AuditVerifyResult> {
  const anchor = opts.expectedHead;
  if (anchor !== undefined && !(Number.isSafeInteger(anchor.seq) && anchor.seq >= 1 && HEX64.test(anchor.hash))) {
    throw new AuditLogError('ERR_AUDIT_ANCHOR', 'the expected head must be a positive seq and a 64-digit lower-case hex hash');
  }
  let line = 0;
  let prev = FIRST_PREV;
  let head: AuditHead | undefined;
  try {
    for await (const { bytes, terminated } of readLines(file)) {
      line++;
      const record = checkLine(bytes, terminated, line, prev, anchor);
      if (typeof record === 'string') return { ok: false, line, problem: record };
      prev = sha256Hex(bytes);
      head = { seq: record.seq, hash: record.hash };
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ok: false, line: 0, problem: 'the file does not exist' };
    throw new AuditLogError('ERR_AUDIT_READ', `cannot read the audit log ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (head === undefined) return { ok: false, line: 0, problem: 'the file is empty: every line was removed' };
  if (anchor !== undefined && head.seq < anchor.seq) {
    return { ok: false, line: line + 1, problem: `the log ends at seq ${head.seq} but the anchored head is seq ${anchor.seq}: lines were removed from the end` };
  }
  return { ok: true, lines: line, head };
}

/** The record on line `line` of a log, given the previous line's hash, or what is wrong with it. */
function checkLine(bytes: Buffer, terminated: boolean, line: number, prev: string, anchor: AuditHead | undefined): AuditRecord | string {
  if (bytes.length > MAX_LINE_BYTES) return `longer than ${MAX_LINE_BYTES} bytes: not an audit record`;
  if (!terminated) return 'the last line is incomplete (no newline): an interrupted write or an edit';
  const record = parseRecord(bytes);
  if (typeof record === 'string') return record;
  if (record.seq > line) return `seq ${record.seq} where ${line} was expected: the line(s) before it were removed or moved`;
  if (record.seq < line) return `seq ${record.seq} where ${line} was expected: the line was inserted, duplicated or moved`;
  if (record.prev !== prev) return `prev does not match line ${line - 1}: a line was replaced or the chain rewritten`;
  if (anchor !== undefined && record.seq === anchor.seq && record.hash !== anchor.hash) {
    return `does not match the anchored head ${anchor.seq}:${anchor.hash.slice(0, 16)}: the log was rewritten`;
  }
  return record;
}

/** The record on a line, or what is wrong with it. */
function parseRecord(bytes: Buffer): AuditRecord | string {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return 'not JSON';
  }
  const shape = shapeProblem(value);
  if (shape !== undefined) return `not an audit record: ${shape}`;
  const record = value as AuditRecord;
  if (!Buffer.from(canonicalJson(record, record.hash), 'utf8').equals(bytes)) return 'not in canonical form: the line was edited';
  if (sha256Hex(canonicalJson(record)) !== record.hash) return 'its hash does not match its content: the line was edited';
  return record;
}

function shapeProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not an object';
  const o = value as Record<string, unknown>;
  if (Object.keys(o).some((k) => !KEYS.includes(k))) return 'an unknown key';
  if (!Number.isSafeInteger(o.seq) || (o.seq as number) < 1) return 'seq is not a positive integer';
  if (typeof o.time !== 'string' || !ISO_UTC_MS.test(o.time)) return 'time is not an ISO 8601 UTC time';
  if (typeof o.action !== 'string' || !isAction(o.action)) return 'action is not an action name';
  if (typeof o.decision !== 'string' || !DECISIONS.includes(o.decision)) return 'decision is not allow, deny or info';
  if (!isText(o.actor)) return 'actor is not a string of at most 512 characters';
  for (const key of ['target', 'reason'] as const) {
    if (o[key] !== undefined && !isText(o[key])) return `${key} is not a string of at most 512 characters`;
  }
  if (typeof o.prev !== 'string' || !HEX64.test(o.prev)) return 'prev is not a SHA-256 in hex';
  if (typeof o.hash !== 'string' || !HEX64.test(o.hash)) return 'hash is not a SHA-256 in hex';
  return undefined;
}

function isAction(value: string): boolean {
  return value.length <= MAX_ACTION_CHARS && ACTION.test(value);
}

function isText(value: unknown): boolean {
  return typeof value === 'string' && value.length <= MAX_FIELD_CHARS;
}

/** The event as it will be stored: checked, token-like values redacted, long values cut. */
function cleanEvent(event: AuditEvent): AuditEvent {
  if (typeof event.action !== 'string' || !isAction(event.action)) {
    throw new AuditLogError('ERR_AUDIT_EVENT', `audit action must be a dotted lower-case name of at most ${MAX_ACTION_CHARS} characters`);
  }
  if (!DECISIONS.includes(event.decision)) throw new AuditLogError('ERR_AUDIT_EVENT', 'audit decision must be allow, deny or info');
  return {
    actor: cleanText(event.actor, 'actor'),
    action: event.action,
    ...(event.target !== undefined && { target: cleanText(event.target, 'target') }),
    decision: event.decision,
    ...(event.reason !== undefined && { reason: cleanText(event.reason, 'reason') }),
  };
}

function cleanText(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new AuditLogError('ERR_AUDIT_EVENT', `audit ${field} must be a string`);
  const redacted = value.replace(TOKEN_LIKE, REDACTED);
  if (redacted.length <= MAX_FIELD_CHARS) return redacted;
  let end = MAX_FIELD_CHARS - 1;
  const last = redacted.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--; // do not split a surrogate pair
  return `${redacted.slice(0, end)}…`;
}

type UnsealedRecord = Omit<AuditRecord, 'hash'>;

/** The record's JSON in the fixed key order; without `hash` it is what `hash` covers. */
function canonicalJson(r: UnsealedRecord, hash?: string): string {
  const { seq, time, actor, action, target, decision, reason, prev } = r;
  return JSON.stringify({ seq, time, actor, action, target, decision, reason, prev, hash });
}

function seal(record: UnsealedRecord): AuditRecord {
  return { ...record, hash: sha256Hex(canonicalJson(record)) };
}

function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The chain state after `line`, the last complete line of `file`. */
function resumeFrom(line: Buffer, file: string): { seq: number; hash: string; lineHash: string } {
  const record = parseRecord(line);
  if (typeof record === 'string') throw damaged(file, `its last line is damaged (${record})`);
  return { seq: record.seq, hash: record.hash, lineHash: sha256Hex(line) };
}

interface Tail {
  size: number;
  /** The last complete line, without "\n"; undefined when there is none. */
  lastLine: Buffer | undefined;
  /** Bytes after the last "\n": a line whose write was interrupted. */
  partial: Buffer;
}

async function readTail(fh: FileHandle, file: string): Promise<Tail> {
  const { size } = await fh.stat();
  const start = Math.max(0, size - TAIL_WINDOW);
  const buf = Buffer.alloc(size - start);
  for (let done = 0; done < buf.length; ) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, start + done);
    if (bytesRead === 0) throw damaged(file, 'it shrank while being read');
    done += bytesRead;
  }
  const end = buf.lastIndexOf(0x0a);
  if (end < 0 && start > 0) throw damaged(file, `no line ends in its last ${TAIL_WINDOW} bytes`);
  const partial = buf.subarray(end + 1);
  if (end < 0) return { size, lastLine: undefined, partial };
  const begin = end === 0 ? -1 : buf.lastIndexOf(0x0a, end - 1);
  if (begin < 0 && start > 0) throw damaged(file, `its last line is longer than ${TAIL_WINDOW} bytes`);
  return { size, lastLine: buf.subarray(begin + 1, end), partial };
}

/** Saves the partial last line to `<file>.partial-<time>`, then cuts it off the log. */
async function moveAside(fh: FileHandle, file: string, tail: Tail, time: Date): Promise<string> {
  const aside = `${file}.partial-${time.toISOString().replace(/:/g, '')}`;
  await writeFileAtomic(aside, tail.partial, 0o600, 'create');
  await fh.truncate(tail.size - tail.partial.length);
  await fh.datasync();
  return aside;
}

async function writeAll(fh: FileHandle, data: Buffer): Promise<void> {
  for (let done = 0; done < data.length; ) {
    const { bytesWritten } = await fh.write(data, done, data.length - done);
    done += bytesWritten;
  }
}

/** The file's lines (without "\n"); `terminated` is false for bytes after the last "\n". Stops after an overlong line. */
async function* readLines(file: string): AsyncGenerator<{ bytes: Buffer; terminated: boolean }> {
  let pending: Buffer[] = [];
  let pendingLength = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 64 * 1024 }) as AsyncIterable<Buffer>) {
    let from = 0;
    for (let nl = chunk.indexOf(0x0a); nl >= 0; nl = chunk.indexOf(0x0a, from)) {
      pending.push(chunk.subarray(from, nl));
      yield { bytes: Buffer.concat(pending), terminated: true };
      pending = [];
      pendingLength = 0;
      from = nl + 1;
    }
    pending.push(chunk.subarray(from));
    pendingLength += chunk.length - from;
    if (pendingLength > MAX_LINE_BYTES) {
      yield { bytes: Buffer.concat(pending), terminated: false };
      return;
    }
  }
  if (pendingLength > 0) yield { bytes: Buffer.concat(pending), terminated: false };
}

function damaged(file: string, why: string): AuditLogError {
  return new AuditLogError('ERR_AUDIT_DAMAGED', `the audit log ${file} cannot be continued: ${why}; run "mydoc audit verify"`);
}
