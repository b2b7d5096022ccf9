// Unit tests of the console web page's parts: the HTML escaper, the CSV
// export's cells, the in-memory sessions, the audit trail reader, and the
// administrators' login (roles from nested groups, hold-back per account and
// per address, audited without the password).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { AuditLog } from '../policy/audit/log.js';
import { LocalUsersFile } from '../policy/directory/local/users-file.js';
import { LocalMemberDirectory } from '../policy/directory/local/members.js';
import type { MemberDirectory } from '../policy/directory/directory.js';
import { AdminAuthenticator, rolesOf, type RoleGroups } from '../server/console/admins.js';
import { readTrailPage } from '../server/console/web/audit-trail.js';
import { csvCell, csvExport } from '../server/console/web/csv.js';
import { html, url } from '../server/console/web/html.js';
import { ABSOLUTE_MS, ANONYMOUS_MS, IDLE_MS, LoginForms, Sessions } from '../server/console/web/sessions.js';
import { WEB_STATUS } from '../server/console/web/errors.js';
import { API_STATUS } from '../server/console/error-status.js';
import { statusOf } from '../server/http/error-status.js';
import { StoreError, type StoreErrorCode } from '../server/console/store/errors.js';
import { LinkError, type LinkErrorCode } from '../server/link/errors.js';

const silent = { info() {}, warn() {}, error() {}, debug() {}, fatal() {}, trace() {}, child() { return silent; }, level: 'silent', silent() {} } as never;

test('html escapes every interpolated value, in text and in attributes; fragments built with html are kept', () => {
  const name = `<script>alert("x")</script>&'`;
  const out = html`<td title="${name}">${name}</td>`.text;
  assert.equal(out, '<td title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;</td>');
  assert.equal(html`<p>${html`<b>${'<i>'}</b>`}</p>`.text, '<p><b>&lt;i&gt;</b></p>');
  assert.equal(html`${['<a>', html`<br>`, 3, null, undefined, false]}`.text, '&lt;a&gt;<br>3');
  assert.equal(html`<a href="${'" onmouseover="x'}">`.text, '<a href="&quot; onmouseover=&quot;x">');
});

test('url percent-encodes each value and leaves out empty ones', () => {
  assert.equal(url('/admin/pcs', { q: 'a&b=c d', filter: undefined, page: 2, desc: false }), '/admin/pcs?q=a%26b%3Dc+d&page=2');
  assert.equal(url('/admin/pcs'), '/admin/pcs');
});

test('CSV cells that a spreadsheet would run as a formula get an apostrophe; quoting is RFC 4180', async () => {
  for (const v of ['=1+1', '+1', '-1', '@SUM(A1)', '\t=1', '\r=1']) assert.equal(csvCell(v), `'${v}`);
  for (const v of ['pc-1', 'a=b', '', '1-2']) assert.equal(csvCell(v), v);
  const csv = csvExport(['pc', 'users'], [['=HYPERLINK("http://x")', 'alice, "bob"'], ['pc-2', 'line\nbreak']], (err) => assert.fail(err));
  assert.equal(await text(csv), 'pc,users\r\n"\'=HYPERLINK(""http://x"")","alice, ""bob"""\r\npc-2,"line\nbreak"\r\n');
});

test('a CSV download the client leaves part-way stops: the rows\' generator is returned (its finally runs), nothing waits for drain', async () => {
  let made = 0;
  let finished = false;
  const errors: Error[] = [];
  async function* rows() {
    try {
      for (let i = 0; i < 1_000_000; i++) {
        made++;
        yield [`pc-${i}`, 'x'.repeat(200)];
      }
    } finally {
      finished = true;
    }
  }
  const csv = csvExport(['pc', 'users'], rows(), (err) => errors.push(err));
  let read = 0;
  for await (const chunk of csv) {
    read += (chunk as Buffer).length;
    if (read > 256 * 1024) break; // the client goes away (for await destroys the stream)
  }
  for (let i = 0; i < 50 && !finished; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(finished, true, 'the generator was returned');
  assert.ok(made < 100_000, `it stopped pulling rows (${made} made)`);
  assert.deepEqual(errors, [], 'a client that left is no export failure');
  // A failure of the rows part-way is reported and ends the stream with it.
  async function* failing() {
    yield ['pc-1', ''];
    throw new Error('store lost');
  }
  const failed: Error[] = [];
  await assert.rejects(text(csvExport(['pc', 'users'], failing(), (err) => failed.push(err))), /store lost/);
  assert.equal(failed.length, 1);
});

test('sessions: a new id each time, idle and absolute expiry, anonymous ones short-lived, CSRF compared exactly', () => {
  let now = 1_000_000;
  const sessions = new Sessions(() => now);
  const admin = { name: 'ada', roles: new Set(['viewer'] as const) };
  const a = sessions.create(admin);
  const b = sessions.create(admin);
  assert.notEqual(a.id, b.id);
  assert.notEqual(a.session.csrf, b.session.csrf);
  assert.equal(sessions.get(a.id), a.session);
  assert.equal(sessions.get('forged'), undefined);
  assert.equal(sessions.get(undefined), undefined);
  assert.equal(Sessions.csrfMatches(a.session, a.session.csrf), true);
  assert.equal(Sessions.csrfMatches(a.session, b.session.csrf), false);
  assert.equal(Sessions.csrfMatches(a.session, undefined), false);
  assert.equal(Sessions.csrfMatches(a.session, [a.session.csrf]), false);
  // Idle: kept alive by use, gone after IDLE_MS without.
  let uses = 0;
  while (now + IDLE_MS - 1000 - a.session.created <= ABSOLUTE_MS) {
    now += IDLE_MS - 1000;
    assert.ok(sessions.get(a.id), 'used within the idle time');
    uses++;
  }
  assert.ok(uses > 10);
  now += IDLE_MS - 1000;
  assert.equal(sessions.get(a.id), undefined, 'absolute expiry even when used');
  assert.equal(sessions.get(b.id), undefined, 'idle expiry');
  const c = sessions.create(admin);
  sessions.end(c.id);
  assert.equal(sessions.get(c.id), undefined, 'logout forgets the session');
});

test('login forms keep nothing: a flood of them evicts no session, and a form fetched before the flood still logs in', () => {
  let now = 1_000_000;
  const sessions = new Sessions(() => now);
  const forms = new LoginForms(() => now);
  const admin = { name: 'ada', roles: new Set(['viewer'] as const) };
  const loggedIn = sessions.create(admin);
  const mine = forms.issue();
  for (let i = 0; i < 20_000; i++) forms.issue();
  assert.equal(sessions.size, 1, 'login forms are not sessions');
  assert.equal(sessions.get(loggedIn.id), loggedIn.session, 'the logged-in session is still there');
  assert.equal(forms.matches(mine.cookie, mine.csrf), true, 'the form fetched before the flood still works');
  // Forged, mixed, tampered and expired forms are refused.
  const other = forms.issue();
  assert.equal(forms.matches(mine.cookie, other.csrf), false, 'the token of another form');
  assert.equal(forms.matches(mine.cookie, undefined), false);
  assert.equal(forms.matches(undefined, mine.csrf), false);
  const [issued, nonce, mac] = mine.cookie.split('.');
  assert.equal(forms.matches(`${(now + 1).toString(36)}.${nonce}.${mac}`, mine.csrf), false, 'a changed issue time');
  assert.equal(new LoginForms(() => now).matches(mine.cookie, mine.csrf), false, 'a form of another process (key)');
  assert.equal(forms.csrfOf(`${issued}.${nonce}`), undefined, 'no MAC');
  now += ANONYMOUS_MS + 1;
  assert.equal(forms.matches(mine.cookie, mine.csrf), false, 'a login form lives 10 minutes');
});

test('the audit trail is read newest first, in pages, across chunk boundaries; damage is shown', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mydoc-trail-'));
  try {
    const file = join(dir, 'audit.log');
    const log = await AuditLog.open(file);
    for (let i = 1; i <= 300; i++) await log.append({ actor: `admin-${i}`, action: 'console.test', decision: 'info', reason: 'x'.repeat(400) });
    await log.close();
    const first = await readTrailPage(file, 0, 100);
    assert.equal(first.entries.length, 100);
    assert.equal(first.more, true);
    assert.deepEqual(first.entries.slice(0, 2).map((e) => ('record' in e ? e.record.actor : '')), ['admin-300', 'admin-299']);
    const last = await readTrailPage(file, 300, 100);
    assert.equal(last.more, false);
    assert.deepEqual(last.entries.map((e) => ('record' in e ? e.record.action : '')), ['audit.created']);
    const all = [...(await readTrailPage(file, 0, 1000)).entries];
    assert.equal(all.length, 301);
    assert.deepEqual(all.map((e) => ('record' in e ? e.record.seq : 0)), Array.from({ length: 301 }, (_, i) => 301 - i));
    await writeFile(file, (await readFile(file, 'utf8')) + 'not json\n');
    const damaged = await readTrailPage(file, 0, 1);
    assert.deepEqual(damaged.entries, [{ damaged: 'not json' }]);
    assert.deepEqual(await readTrailPage(join(dir, 'none.log'), 0, 10), { entries: [], more: false });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

const ROLES: RoleGroups = { viewer: ['viewers'], approver: ['approvers'], data: ['data-team'], sharing: [] };

test('roles: any role includes viewer; none for an account in no role group', () => {
  assert.deepEqual([...rolesOf(new Set(['approvers']), ROLES)].sort(), ['approver', 'viewer']);
  assert.deepEqual([...rolesOf(new Set(['CN=Viewers']), { ...ROLES, viewer: ['cn=viewers'] })], ['viewer'], 'DNs compare case-insensitively');
  assert.equal(rolesOf(new Set(['staff']), ROLES).size, 0);
});

async function localAdmins() {
  const dir = await mkdtemp(join(tmpdir(), 'mydoc-admins-'));
  const usersFile = join(dir, 'users.json');
  const users = new LocalUsersFile(usersFile);
  await users.add('ada', 'ada-password-1');
  await users.add('vic', 'vic-password-1');
  await users.add('ned', 'ned-password-1');
  await users.setGroup('leads', { users: ['ada'] });
  await users.setGroup('approvers', { groups: ['leads'] }); // ada through a nested group
  await users.setGroup('viewers', { users: ['vic'], groups: ['approvers', 'viewers'] }); // a cycle ends the walk
  const audit = await AuditLog.open(join(dir, 'audit', 'console.log'));
  return { dir, usersFile, audit, directory: new LocalMemberDirectory(usersFile) };
}

test('administrators log in with the local directory: nested groups give roles, no role is refused, every checked login is audited without the password', async () => {
  const { dir, audit, directory } = await localAdmins();
  try {
    const admins = new AdminAuthenticator({ directory, roles: ROLES, audit, clock: Date.now, logger: silent });
    const ada = await admins.login('CORP\\Ada', 'ada-password-1', '10.0.0.1');
    assert.ok(ada.ok);
    assert.equal(ada.admin.name, 'ada');
    assert.deepEqual([...ada.admin.roles], ['viewer', 'approver']);
    const vic = await admins.login('vic', 'vic-password-1', '10.0.0.1');
    assert.ok(vic.ok);
    assert.deepEqual([...vic.admin.roles], ['viewer']);
    const ned = await admins.login('ned', 'ned-password-1', '10.0.0.1');
    assert.deepEqual(ned, { ok: false, status: 401, message: 'ned is not an administrator of this console (in none of the groups of its roles)' });
    const wrong = await admins.login('ada', 'guess', '10.0.0.2');
    assert.deepEqual(wrong, { ok: false, status: 401, message: 'wrong user name or password' });
    assert.deepEqual(await admins.login('', 'x', '10.0.0.2'), { ok: false, status: 401, message: 'enter your user name and password' });
    await audit.close();
    const trail = await readFile(join(dir, 'audit', 'console.log'), 'utf8');
    const logins = trail.trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.action === 'console.login');
    assert.deepEqual(logins.map((r) => [r.actor, r.decision, r.target]), [['ada', 'allow', '10.0.0.1'], ['vic', 'allow', '10.0.0.1'], ['ned', 'deny', '10.0.0.1'], ['ada', 'deny', '10.0.0.2']]);
    assert.equal(logins[0].reason, 'roles: viewer, approver');
    for (const secret of ['ada-password-1', 'vic-password-1', 'ned-password-1', 'guess']) assert.ok(!trail.includes(secret), 'no password in the trail');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** A directory where `right` is everyone's password and everyone is an approver. */
const fastDirectory: MemberDirectory = {
  authenticateMember: async (login, password) => (password === 'right' ? { ok: true, user: login, groups: new Set(['approvers']) } : { ok: false, reason: 'wrong user name or password' }),
};

test('login hold-back: per account (from many addresses) and per address (for many accounts); the right password is never held', async () => {
  const slept: number[] = [];
  let now = 0;
  const admins = new AdminAuthenticator({
    directory: fastDirectory,
    roles: ROLES,
    audit: { append: async () => undefined as never },
    clock: () => now,
    logger: silent,
    sleep: async (ms) => {
      slept.push(ms);
      now += ms;
    },
  });
  // Per account: guesses for ada from a new address each time.
  for (let i = 0; i < 8; i++) assert.equal((await admins.login('ada', `guess-${i}`, `10.1.0.${i}`)).ok, false);
  assert.deepEqual(slept, [250, 500, 1000]);
  const held = await admins.login('ada', 'guess-9', '10.1.0.99');
  assert.ok(!held.ok && held.message.includes('slowed down'), 'the answer says it is slowed');
  slept.length = 0;
  assert.equal((await admins.login('ada', 'right', '10.1.0.100')).ok, true, 'no lockout');
  assert.deepEqual(slept, []);
  assert.equal(admins.delayFor('ada', '10.9.9.9'), 0, 'success resets the account');
  // Per address: guesses from one address, a new account each time.
  for (let i = 0; i < 7; i++) await admins.login(`user-${i}`, 'guess', '10.2.0.1');
  assert.deepEqual(slept, [250, 500]);
  assert.equal(admins.delayFor('someone-else', '10.2.0.1'), 500, 'the address is slowed for any account');
  assert.equal(admins.delayFor('someone-else', '10.2.0.2'), 0, 'another address is not');
  now += 16 * 60 * 1000;
  assert.equal(admins.delayFor('someone-else', '10.2.0.1'), 0, 'forgotten after 15 quiet minutes');
});

test('a flood from one address is refused with 429 and Retry-After; a directory that fails is 503, audited', async () => {
  const gates: (() => void)[] = [];
  const slow: MemberDirectory = { authenticateMember: () => new Promise((resolve) => gates.push(() => resolve({ ok: false, reason: 'wrong user name or password' }))) };
  const records: unknown[] = [];
  const admins = new AdminAuthenticator({ directory: slow, roles: ROLES, audit: { append: async (e) => (records.push(e), undefined as never) }, clock: Date.now, logger: silent, sleep: async () => undefined });
  const waiting = Array.from({ length: 34 }, (_, i) => admins.login(`u${i}`, 'guess', '10.3.0.1'));
  const refused = await admins.login('u99', 'guess', '10.3.0.1');
  assert.deepEqual(refused, { ok: false, status: 429, message: 'too many login attempts from your address at once; try again in a few seconds', retryAfter: 5 });
  while (gates.length > 0 || records.length < 34) {
    gates.splice(0).forEach((open) => open());
    await new Promise((r) => setImmediate(r));
  }
  await Promise.all(waiting);
  const broken: MemberDirectory = { authenticateMember: async () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:636'), { code: 'ERR_DIRECTORY_UNREACHABLE' })) };
  const records2: { reason?: string; decision: string }[] = [];
  const admins2 = new AdminAuthenticator({ directory: broken, roles: ROLES, audit: { append: async (e) => (records2.push(e), undefined as never) }, clock: Date.now, logger: silent });
  assert.deepEqual(await admins2.login('ada', 'right', '10.0.0.1'), { ok: false, status: 503, message: 'the directory does not answer; try again in a minute' });
  assert.deepEqual(records2, [{ actor: 'ada', action: 'console.login', target: '10.0.0.1', decision: 'deny', reason: 'the directory does not answer' }]);
});

test('the web page and the API answer every store and link failure with its own status, not a bare 500', () => {
  const store: Record<StoreErrorCode, number> = {
    ERR_STORE_UNAVAILABLE: 503,
    ERR_STORE_FILE: 503,
    ERR_STORE_CLOSED: 503,
    ERR_STORE_MIGRATION: 500,
    ERR_STORE_FAILED: 500,
    ERR_STORE_PC_EXISTS: 409,
    ERR_STORE_PC_UNKNOWN: 404,
    ERR_STORE_QUERY: 400,
  };
  const link: Record<LinkErrorCode, number> = { ERR_LINK_OFFLINE: 503, ERR_LINK_TIMEOUT: 504, ERR_LINK_BROKEN: 502, ERR_LINK_ANSWER: 502 };
  for (const [name, table] of [['web', WEB_STATUS], ['api', API_STATUS]] as const) {
    for (const [code, status] of Object.entries(store)) assert.equal(statusOf(table, new StoreError(code as StoreErrorCode, 'x')), status, `${name} ${code}`);
    for (const [code, status] of Object.entries(link)) assert.equal(statusOf(table, new LinkError(code as LinkErrorCode, 'x')), status, `${name} ${code}`);
  }
});
