import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFile, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AuditLog, MAX_FIELD_CHARS, verifyAuditLog, type AuditEvent, type AuditHead } from '../policy/audit/log.js';
import { dataFolder } from '../shares/data-folder.js';
import { tempDir } from './helpers/keys.js';
import type { Clock } from '../shares/clock.js';

const bin = fileURLToPath(new URL('../../bin/mydoc.js', import.meta.url));

const EVENTS: AuditEvent[] = [
  { actor: 'alice', action: 'login', decision: 'allow' },
  { actor: 'mallory', action: 'login', decision: 'deny', reason: 'wrong password' },
  { actor: 'alice', action: 'vault.unlock', target: 'alice', decision: 'allow' },
  { actor: 'alice', action: 'takeout.request', target: 'alice', decision: 'info', reason: '3 days, travel' },
  { actor: 'admin', action: 'takeout.approve', target: 'alice', decision: 'allow' },
  { actor: 'alice', action: 'vault.lock', target: 'alice', decision: 'info' },
];

/** A clock that ticks 1 ms per call, from a fixed instant. */
function fakeClock(): Clock {
  let t = Date.parse('2025-03-01T08:00:00.000Z');
  return () => t++;
}

/** A log of `audit.created` plus EVENTS: 7 lines. */
async function sampleLog(file: string): Promise<AuditHead> {
  const log = await AuditLog.open(file, { now: fakeClock() });
  for (const e of EVENTS) await log.append(e);
  const head = log.head();
  await log.close();
  return head;
}

const sha256 = (data: string): string => createHash('sha256').update(data).digest('hex');

/** Seals a record the way the module's doc comment specifies, independently of its code. */
function forge(fields: Record<string, unknown>, previousLine: string | undefined): string {
  const { seq, time, actor, action, target, decision, reason } = fields;
  const body = { seq, time, actor, action, target, decision, reason, prev: previousLine === undefined ? '0'.repeat(64) : sha256(previousLine) };
  return JSON.stringify({ ...body, hash: sha256(JSON.stringify(body)) });
}

async function readLines(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8');
  assert.ok(text.endsWith('\n'));
  return text.slice(0, -1).split('\n');
}

const writeLines = (file: string, lines: string[]): Promise<void> => writeFile(file, lines.map((l) => `${l}\n`).join(''));

test('appended events form a valid chain that resumes on reopen', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const file = dataFolder(join(dir, 'data')).auditLog;
    const head = await sampleLog(file);
    assert.equal(head.seq, 7);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'data', 'audit'))).mode & 0o777, 0o700);

    const lines = await readLines(file);
    assert.equal(lines.length, 7);
    const first = JSON.parse(lines[0]!);
    assert.deepEqual(Object.keys(first), ['seq', 'time', 'actor', 'action', 'decision', 'prev', 'hash']);
    assert.equal(first.action, 'audit.created');
    assert.equal(first.time, '2025-03-01T08:00:00.000Z');
    // The documented format, recomputed independently: every line is its own forgery.
    lines.forEach((line, i) => assert.equal(forge(JSON.parse(line), lines[i - 1]), line, `line ${i + 1}`));

    assert.deepEqual(await verifyAuditLog(file), { ok: true, lines: 7, head });
    assert.deepEqual(await verifyAuditLog(file, { expectedHead: head }), { ok: true, lines: 7, head });

    const log = await AuditLog.open(file);
    assert.deepEqual(log.head(), head);
    const next = await log.append({ actor: 'alice', action: 'logout', decision: 'info' });
    assert.equal(next.seq, 8);
    assert.equal(next.prev, sha256(lines[6]!));
    await log.close();
    const after = await verifyAuditLog(file, { expectedHead: head });
    assert.ok(after.ok && after.lines === 8 && after.head.hash === next.hash);
  } finally {
    await cleanup();
  }
});

test('verify reports each kind of tampering at the line where it shows', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const original = join(dir, 'audit.log');
    const head = await sampleLog(original);
    const lines = await readLines(original);
    const rewriteFrom = (start: number, edited: string[]): string[] => {
      const out = edited.slice(0, start);
      for (let i = start; i < edited.length; i++) out.push(forge(JSON.parse(edited[i]!), out[i - 1]));
      return out;
    };

    const cases: { name: string; lines?: string[]; raw?: string; anchored?: boolean; line: number; problem: RegExp }[] = [
      { name: 'decision deny -> allow', lines: lines.map((l, i) => (i === 2 ? l.replace('"decision":"deny"', '"decision":"allow"') : l)), line: 3, problem: /hash does not match/ },
      { name: 'actor renamed', lines: lines.map((l, i) => (i === 3 ? l.replace('"actor":"alice"', '"actor":"bob"') : l)), line: 4, problem: /hash does not match/ },
      { name: 'spacing changed', lines: lines.map((l, i) => (i === 3 ? l.replace('","', '", "') : l)), line: 4, problem: /canonical/ },
      { name: 'middle line removed', lines: lines.filter((_, i) => i !== 3), line: 4, problem: /seq 5 where 4 .*removed/ },
      { name: 'first line removed', lines: lines.slice(1), line: 1, problem: /seq 2 where 1/ },
      { name: 'two lines swapped', lines: [...lines.slice(0, 2), lines[3]!, lines[2]!, ...lines.slice(4)], line: 3, problem: /seq 4 where 3/ },
      { name: 'line duplicated', lines: [...lines.slice(0, 4), lines[3]!, ...lines.slice(4)], line: 5, problem: /seq 4 where 5 .*duplicated/ },
      {
        name: 'forged line inserted, correctly sealed',
        lines: [...lines.slice(0, 3), forge({ ...JSON.parse(lines[2]!), seq: 4, actor: 'alice', decision: 'allow' }, lines[2]), ...lines.slice(3)],
        line: 5,
        problem: /seq 4 where 5 .*inserted/,
      },
      {
        name: 'line edited and resealed, later lines kept',
        lines: lines.map((l, i) => (i === 2 ? forge({ ...JSON.parse(l), decision: 'allow' }, lines[1]) : l)),
        line: 4,
        problem: /prev does not match line 3/,
      },
      { name: 'last line cut, anchored', lines: lines.slice(0, -1), anchored: true, line: 7, problem: /ends at seq 6 .*anchored head is seq 7/ },
      { name: 'last two lines cut, anchored', lines: lines.slice(0, -2), anchored: true, line: 6, problem: /ends at seq 5/ },
      {
        name: 'chain rewritten after an edit, anchored',
        lines: rewriteFrom(2, lines.map((l, i) => (i === 2 ? l.replace('"decision":"deny"', '"decision":"allow"') : l))),
        anchored: true,
        line: 7,
        problem: /anchored head/,
      },
      { name: 'garbage line appended', raw: `${lines.join('\n')}\nhello world\n`, line: 8, problem: /not JSON/ },
      { name: 'JSON that is no record appended', raw: `${lines.join('\n')}\n{"seq":8}\n`, line: 8, problem: /not an audit record/ },
      { name: 'unterminated garbage appended', raw: `${lines.join('\n')}\n{"seq":8,"ti`, line: 8, problem: /incomplete/ },
      { name: 'empty line inserted', raw: `${lines.slice(0, 2).join('\n')}\n\n${lines.slice(2).join('\n')}\n`, line: 3, problem: /not JSON/ },
      { name: 'overlong line', raw: `${lines[0]}\n${'x'.repeat(100_000)}\n`, line: 2, problem: /longer than/ },
      { name: 'empty file', raw: '', line: 0, problem: /empty/ },
    ];
    for (const c of cases) {
      const file = join(dir, 'tampered.log');
      if (c.lines) await writeLines(file, c.lines);
      else await writeFile(file, c.raw!);
      const result = await verifyAuditLog(file, c.anchored ? { expectedHead: head } : {});
      assert.equal(result.ok, false, `${c.name}: not detected`);
      if (!result.ok) {
        assert.equal(result.line, c.line, `${c.name}: ${result.problem}`);
        assert.match(result.problem, c.problem, c.name);
      }
    }
    assert.deepEqual(await verifyAuditLog(join(dir, 'missing.log')), { ok: false, line: 0, problem: 'the file does not exist' });

    // Without an anchor, a cut tail and a consistent rewrite are undetectable: that is what the anchor is for.
    const cut = join(dir, 'cut.log');
    await writeLines(cut, lines.slice(0, -1));
    assert.equal((await verifyAuditLog(cut)).ok, true);
    await assert.rejects(verifyAuditLog(cut, { expectedHead: { seq: 0, hash: head.hash } }), { code: 'ERR_AUDIT_ANCHOR' });
  } finally {
    await cleanup();
  }
});

test('a partial last line from a crash is moved aside and the chain stays valid', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const file = join(dir, 'audit.log');
    const head = await sampleLog(file);
    const partial = '{"seq":8,"time":"2025-03-01T08:00:00.010Z","actor":"ali';
    await appendFile(file, partial);
    assert.deepEqual(await verifyAuditLog(file), { ok: false, line: 8, problem: 'the last line is incomplete (no newline): an interrupted write or an edit' });

    const log = await AuditLog.open(file, { now: () => Date.parse('2025-03-02T09:10:11.012Z') });
    const aside = `${file}.partial-2025-03-02T091011.012Z`;
    assert.equal(await readFile(aside, 'utf8'), partial);
    assert.equal((await stat(aside)).mode & 0o777, 0o600);
    assert.equal(log.head().seq, 8);
    await log.append({ actor: 'alice', action: 'login', decision: 'allow' });
    await log.close();

    const result = await verifyAuditLog(file, { expectedHead: head });
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.lines, 9);
    const recovered = JSON.parse((await readLines(file))[7]!);
    assert.equal(recovered.action, 'audit.recovered');
    assert.equal(recovered.target, 'audit.log.partial-2025-03-02T091011.012Z');
    assert.match(recovered.reason, /partial last line \(\d+ bytes\)/);

    // A file that holds only a partial line starts a new chain.
    const lone = join(dir, 'lone.log');
    await writeFile(lone, '{"seq":1,"ti');
    await (await AuditLog.open(lone)).close();
    const actions = (await readLines(lone)).map((l) => JSON.parse(l).action);
    assert.deepEqual(actions, ['audit.created', 'audit.recovered']);
    assert.equal((await verifyAuditLog(lone)).ok, true);
  } finally {
    await cleanup();
  }
});

test('open refuses to continue a log whose last line is damaged', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const file = join(dir, 'audit.log');
    await sampleLog(file);
    const lines = await readLines(file);
    await writeLines(file, [...lines.slice(0, -1), lines[6]!.replace('"decision":"info"', '"decision":"allow"')]);
    await assert.rejects(AuditLog.open(file), { code: 'ERR_AUDIT_DAMAGED', message: /last line is damaged \(its hash does not match/ });
  } finally {
    await cleanup();
  }
});

test('concurrent appends keep call order and a valid chain', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const file = join(dir, 'audit.log');
    const log = await AuditLog.open(file);
    const records = await Promise.all(Array.from({ length: 50 }, (_, i) => log.append({ actor: `user${i}`, action: 'login', decision: 'allow' })));
    records.forEach((r, i) => assert.equal(r.seq, i + 2));
    await log.close();
    const result = await verifyAuditLog(file);
    assert.ok(result.ok && result.lines === 51 && result.head.hash === records[49]!.hash);
  } finally {
    await cleanup();
  }
});

test('event values: escaped, capped, token-like values redacted, bad events refused', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const file = join(dir, 'audit.log');
    const log = await AuditLog.open(file);
    const tricky = 'a"b\\c\nd\u001b[31m\u2028e';
    const r1 = await log.append({ actor: tricky, action: 'login', target: 'x'.repeat(10_000), decision: 'deny' });
    assert.equal(r1.actor, tricky);
    assert.equal(r1.target!.length, MAX_FIELD_CHARS);
    assert.ok(r1.target!.endsWith('…'));
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl';
    const r2 = await log.append({ actor: 'alice', action: 'takeout.use', decision: 'allow', reason: `key ${jwt} used` });
    assert.doesNotMatch(r2.reason!, /eyJ/);
    assert.match(r2.reason!, /^key \[redacted: token-like value\] used$/);

    await assert.rejects(log.append({ actor: 'a', action: 'Login Now', decision: 'allow' }), { code: 'ERR_AUDIT_EVENT' });
    await assert.rejects(log.append({ actor: 'a', action: 'login', decision: 'maybe' as 'allow' }), { code: 'ERR_AUDIT_EVENT' });
    await assert.rejects(log.append({ actor: 42 as unknown as string, action: 'login', decision: 'allow' }), { code: 'ERR_AUDIT_EVENT' });
    await log.close();
    await assert.rejects(log.append({ actor: 'a', action: 'login', decision: 'allow' }), { code: 'ERR_AUDIT_CLOSED' });

    const lines = await readLines(file);
    assert.equal(lines.length, 3);
    assert.equal(JSON.parse(lines[1]!).actor, tricky);
    assert.doesNotMatch(await readFile(file, 'utf8'), /eyJ/);
    assert.equal((await verifyAuditLog(file)).ok, true);
  } finally {
    await cleanup();
  }
});

function mydoc(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, MYDOC_CONFIG: '' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function assertOneLineError(r: { status: number | null; stderr: string }, status: number, expected: RegExp): void {
  assert.equal(r.status, status, r.stderr);
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  assert.match(r.stderr.trimEnd(), expected);
}

test('mydoc audit verify: exit status and one-line messages', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const file = join(dir, 'audit.log');
    const head = await sampleLog(file);
    const ok = mydoc(['audit', 'verify', '--file', file]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout, `audit log OK: 7 lines, head 7:${head.hash.slice(0, 16)}\n`);
    assert.equal(ok.stderr, '');

    const lines = await readLines(file);
    await writeLines(file, lines.filter((_, i) => i !== 4));
    assertOneLineError(mydoc(['audit', 'verify', '--file', file]), 1, /^mydoc: audit log damaged at line 5: seq 6 where 5 was expected/);
    assertOneLineError(mydoc(['audit', 'verify', '--file', join(dir, 'nope.log')]), 1, /^mydoc: audit log .*nope\.log: the file does not exist$/);
    assertOneLineError(mydoc(['audit']), 2, /^mydoc: usage: mydoc audit verify/);
    assertOneLineError(mydoc(['audit', 'verify', '--bogus']), 2, /bogus/);

    // Without --file, the log of the configured data folder.
    const config = join(dir, 'mydoc.yaml');
    await writeFile(config, 'pcId: pc-audit\ndataDir: data\ndirectory:\n  kind: local\nbackup:\n  target:\n    kind: path\n    path: nas\n');
    await sampleLog(dataFolder(join(dir, 'data')).auditLog);
    const viaConfig = mydoc(['audit', 'verify', '--config', config]);
    assert.equal(viaConfig.status, 0, viaConfig.stderr);
    assert.match(viaConfig.stdout, /^audit log OK: 7 lines, head 7:[0-9a-f]{16}\n$/);
    assert.deepEqual(await readdir(join(dir, 'data', 'audit')), ['audit.log']);
  } finally {
    await cleanup();
  }
});
