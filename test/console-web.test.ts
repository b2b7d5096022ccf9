// The administrators' web page in a real headless Chromium over a real HTTPS
// socket (test/helpers/browser.ts, console-web-server.ts): log in, the alert
// counts, filter/search/sort/page 10,000 PCs, export CSV, approve and deny;
// injected markup stays text and no script runs; forms without their CSRF
// token, a viewer's approval and cross-role POSTs are refused; login attempts
// are slowed per account and per address (from distinct loopback addresses).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import type { Page } from 'playwright-core';
import { launchBrowser, type RunningBrowser } from './helpers/browser.js';
import { FORMULA_USER, HOSTILE_PC, HOSTILE_REASON, HOSTILE_USER, fleetSeed } from './helpers/console-web-seed.js';
import { ONLINE_WINDOW_MS, startConsoleWebServer, type Account, type ConsoleWebServer } from './helpers/console-web-server.js';

const FLEET = 10_000;
let server: ConsoleWebServer;
let browser: RunningBrowser;
let page: Page;

before(async () => {
  server = await startConsoleWebServer((now) => fleetSeed(now, { count: FLEET, hostile: true }));
  browser = await launchBrowser(server.certPem);
  page = await browser.context.newPage();
  page.on('dialog', (d) => {
    throw new Error(`a dialog opened: ${d.message()}`);
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** One HTTPS exchange trusting only the test server's CA, from `localAddress` (any 127.x address). */
function request(opts: { method: string; path: string; headers?: Record<string, string>; body?: string; localAddress?: string }): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: server.port, method: opts.method, path: opts.path, ca: server.caPem, headers: opts.headers, localAddress: opts.localAddress ?? '127.0.0.1', agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, ms: Date.now() - started }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A non-browser client of the page with its own session cookie (to test what a browser's UI would not send). */
class Client {
  cookie = '';
  csrf = '';
  constructor(readonly localAddress = '127.0.0.1') {}

  async get(path: string) {
    const res = await request({ method: 'GET', path, headers: this.cookie ? { cookie: this.cookie } : {}, localAddress: this.localAddress });
    this.take(res);
    return res;
  }

  async post(path: string, fields: Record<string, string>) {
    const body = new URLSearchParams(fields).toString();
    const res = await request({ method: 'POST', path, body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...(this.cookie && { cookie: this.cookie }) }, localAddress: this.localAddress });
    this.take(res);
    return res;
  }

  /** GET the login form, then POST it. */
  async login(name: string, password: string) {
    await this.get('/admin/login');
    return this.post('/admin/login', { csrf: this.csrf, name, password });
  }

  private take(res: { headers: Record<string, string | string[] | undefined>; body: string }) {
    const set = [res.headers['set-cookie'] ?? []].flat().find((c) => c.startsWith('__Host-mydoc-console='));
    if (set) this.cookie = set.split(';')[0]!;
    const token = /name="csrf" value="([^"]+)"/.exec(res.body);
    if (token) this.csrf = token[1]!;
  }
}

async function logIn(account: Account): Promise<void> {
  await page.goto(`${server.url}/admin/login`);
  await page.fill('#name', account.name);
  await page.fill('#password', account.password);
  await Promise.all([page.waitForURL(/\/admin\/pcs$/), page.click('button[type=submit]')]);
}

const rowIds = (p: Page) => p.$$eval('#pcs tbody tr[data-pc]', (rows) => rows.map((r) => r.getAttribute('data-pc')));

test('an administrator logs in; the PC list shows the alert counts and pages 10,000 PCs on the server', async () => {
  await page.goto(`${server.url}/`);
  assert.match(page.url(), /\/admin\/login$/, 'not logged in: the page is the login');
  await logIn(server.approver);
  const now = Date.now();
  const alerts = await server.store.alertCounts(now, now - ONLINE_WINDOW_MS);
  const shown = await page.$$eval('.alerts a', (as) => as.map((a) => Number(a.querySelector('b')!.textContent)));
  assert.deepEqual(shown, [alerts.notSeen30Days, alerts.noBackup7Days, alerts.pendingRequests, alerts.takeoutsEndingIn24h]);
  assert.ok(alerts.notSeen30Days > 3000 && alerts.pendingRequests === 3 && alerts.takeoutsEndingIn24h === 1, JSON.stringify(alerts));
  const total = FLEET + 5;
  assert.equal(await page.textContent('#count'), `${total} PCs · page 1 of ${Math.ceil(total / 50)}`);
  assert.equal((await rowIds(page)).length, 50);
  await page.click('text=next →');
  assert.match(await page.textContent('#count') ?? '', /page 2 of/);
  await page.goto(`${server.url}/admin/pcs?page=${Math.ceil(total / 50)}`);
  assert.equal((await rowIds(page)).length, total % 50 || 50, 'the last page');
});

test('filters, search and sort narrow the list as the store does', async () => {
  await page.goto(`${server.url}/admin/pcs`);
  await page.selectOption('select[name=filter]', 'offline');
  await page.fill('input[name=days]', '30');
  await Promise.all([page.waitForURL(/filter=offline/), page.click('button:text("Apply")')]);
  const offline = await server.store.listPcs({ filter: 'offline', days: 30, sort: 'pcId', descending: false, offset: 0, limit: 50, onlineSince: Date.now() - ONLINE_WINDOW_MS, now: Date.now() });
  assert.match(await page.textContent('#count') ?? '', new RegExp(`^${offline.total} PCs`));
  assert.deepEqual(await rowIds(page), offline.rows.map((r) => r.pcId));
  assert.ok((await page.$$eval('#pcs tbody tr[data-pc] td:nth-child(2) span.off', (s) => s.length)) === 50, 'every row is offline');

  await page.goto(`${server.url}/admin/pcs`);
  await page.fill('input[name=q]', 'VERA');
  await Promise.all([page.waitForURL(/q=VERA/), page.click('button:text("Apply")')]);
  assert.deepEqual(await rowIds(page), ['laptop-hr-01'], 'search by user, case-insensitive');

  await page.goto(`${server.url}/admin/pcs?filter=takeout`);
  assert.deepEqual(await rowIds(page), ['laptop-sales-07']);
  await page.goto(`${server.url}/admin/pcs?filter=pending`);
  assert.deepEqual((await rowIds(page)).sort(), [HOSTILE_PC, 'laptop-field-02', 'laptop-hr-01'].sort());

  await page.goto(`${server.url}/admin/pcs?filter=no-backup&days=7`);
  await Promise.all([page.waitForURL(/sort=lastBackup/), page.click('#pcs th a:text("Last complete backup")')]);
  const sorted = await server.store.listPcs({ filter: 'no-backup', days: 7, sort: 'lastBackup', descending: false, offset: 0, limit: 50, onlineSince: Date.now() - ONLINE_WINDOW_MS, now: Date.now() });
  assert.deepEqual(await rowIds(page), sorted.rows.map((r) => r.pcId));

  const bad = await page.goto(`${server.url}/admin/pcs?filter=nonsense`);
  assert.equal(bad?.status(), 400);
  assert.match(await page.textContent('.error') ?? '', /filter must be one of all, online, offline/);
});

test('CSV export: the whole filtered set, streamed, cells cannot start a formula', async () => {
  await page.goto(`${server.url}/admin/pcs?filter=pending`);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('text=Export CSV')]);
  const csv = await readFile((await download.path())!, 'utf8');
  const lines = csv.trimEnd().split('\r\n');
  assert.equal(lines[0], 'pc,online,last seen (UTC),gate,take-out until (UTC),users,last complete backup (UTC),backup age (days),agent version,device id,pending requests');
  assert.equal(lines.length, 4);
  const hostile = lines.find((l) => l.startsWith('"<script>') || l.startsWith('<script>'))!;
  assert.ok(hostile.includes(`'${FORMULA_USER.replace(/"/g, '""')}`), `the formula cell is prefixed: ${hostile}`);

  await page.goto(`${server.url}/admin/pcs?filter=offline&days=30`);
  const [all] = await Promise.all([page.waitForEvent('download'), page.click('text=Export CSV')]);
  const rows = (await readFile((await all.path())!, 'utf8')).trimEnd().split('\r\n');
  const offline = await server.store.listPcs({ filter: 'offline', days: 30, sort: 'pcId', descending: false, offset: 0, limit: 1, onlineSince: Date.now() - ONLINE_WINDOW_MS, now: Date.now() });
  assert.ok(offline.total > 3000);
  assert.equal(rows.length - 1, offline.total, 'every page of the store is in the file');
  assert.ok(rows.slice(1).every((r) => r.split(',')[1] === 'offline'));
});

test('an injected <script> in a PC name, a user name and a reason is shown as text; no script runs', async () => {
  await page.goto(`${server.url}/admin/requests`);
  const row = page.locator('tr[data-request="req-hostile"]');
  assert.equal(await row.locator('td').nth(0).innerText(), HOSTILE_PC);
  assert.equal(await row.locator('td').nth(1).innerText(), HOSTILE_USER);
  assert.equal(await row.locator('td').nth(4).innerText(), HOSTILE_REASON);
  await page.goto(`${server.url}/admin/pcs/${encodeURIComponent(HOSTILE_PC)}`);
  assert.equal(await page.textContent('h1'), `PC ${HOSTILE_PC}`);
  assert.ok((await page.textContent('dl.facts')) !.includes(HOSTILE_USER));
  await page.goto(`${server.url}/admin/pcs?q=${encodeURIComponent('<script>')}`);
  assert.deepEqual(await rowIds(page), [HOSTILE_PC]);
  assert.equal(await page.locator('#pcs tbody tr[data-pc] td').nth(5).innerText(), '<b>9</b>', 'the agent version too');
  assert.equal(await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned), undefined, 'no injected script ran');
  assert.equal(await page.locator('main script, main img').count(), 0, 'no element was made from a value');
  const res = await request({ method: 'GET', path: '/admin/login' });
  assert.match(String(res.headers['content-security-policy']), /default-src 'none'/);
  assert.doesNotMatch(String(res.headers['content-security-policy']), /script-src/, 'no script source at all');
});

test('an approver approves (days up to the PC\'s maxDays) and denies with a note; the take-out service gets each decision', async () => {
  await page.goto(`${server.url}/admin/requests`);
  const hr = page.locator('tr[data-request="req-hr-01"]');
  await hr.locator('input[name=days]').fill('4');
  await Promise.all([page.waitForURL(/done=approved/), hr.locator('button:text("Approve")').click()]);
  assert.match(await page.textContent('.notice') ?? '', /Approved/);
  assert.equal(await page.locator('tr[data-request="req-hr-01"]').count(), 0, 'no longer pending');
  assert.deepEqual(server.takeoutCalls.at(-1), { kind: 'approve', id: 'req-hr-01', admin: server.approver.name, value: 4 });

  const field = page.locator('tr[data-request="req-field-02"]');
  assert.equal(await field.locator('input[name=days]').getAttribute('max'), '14');
  assert.equal(await field.locator('input[name=days]').inputValue(), '14', 'asked 20, the PC allows 14');
  await field.locator('input[name=note]').fill('Two weeks is too long: ask for 5 days');
  await Promise.all([page.waitForURL(/done=denied/), field.locator('button:text("Deny")').click()]);
  assert.deepEqual(server.takeoutCalls.at(-1), { kind: 'deny', id: 'req-field-02', admin: server.approver.name, value: 'Two weeks is too long: ask for 5 days' });

  // Past the browser's own limits: the server checks days against maxDays itself.
  const client = new Client();
  assert.equal((await client.login(server.approver.name, server.approver.password)).status, 303);
  await client.get('/admin/requests');
  const calls = server.takeoutCalls.length;
  const over = await client.post('/admin/requests/req-hostile/approve', { csrf: client.csrf, days: '8' });
  assert.equal(over.status, 400);
  assert.match(over.body, /days must be a whole number from 1 to 7/);
  const noNote = await client.post('/admin/requests/req-hostile/deny', { csrf: client.csrf, note: ' ' });
  assert.equal(noNote.status, 400);
  assert.equal(server.takeoutCalls.length, calls, 'nothing was decided');

  // The approved request's PC page offers revocation.
  await page.goto(`${server.url}/admin/pcs/laptop-hr-01`);
  await Promise.all([page.waitForURL(/done=revoked/), page.click('button:text("Revoke")')]);
  assert.deepEqual(server.takeoutCalls.at(-1), { kind: 'revoke', id: 'jti-req-hr-01', admin: server.approver.name, value: 'jti-req-hr-01' });
});

test('a form posted without its CSRF token (or with another session\'s) is refused with 403 and does nothing', async () => {
  await page.goto(`${server.url}/admin/requests`);
  const row = page.locator('tr[data-request="req-hostile"]');
  await row.locator('form:has(button:text("Deny")) input[name=csrf]').evaluate((input) => input.remove());
  await row.locator('input[name=note]').fill('no');
  const calls = server.takeoutCalls.length;
  const [response] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), row.locator('button:text("Deny")').click()]);
  assert.equal(response.status(), 403);
  await page.waitForLoadState();
  assert.match(await page.textContent('.error') ?? '', /did not carry the CSRF token of your session/);
  assert.equal(server.takeoutCalls.length, calls);

  const other = new Client();
  await other.login(server.approver.name, server.approver.password);
  await other.get('/admin/requests');
  const mine = new Client();
  await mine.login(server.approver.name, server.approver.password);
  const forged = await mine.post('/admin/requests/req-hostile/deny', { csrf: other.csrf, note: 'no' });
  assert.equal(forged.status, 403, "another session's token");
  const none = await mine.post('/admin/logout', {});
  assert.equal(none.status, 403, 'logout needs the token too');
  const loginWithout = await new Client().post('/admin/login', { name: server.approver.name, password: server.approver.password });
  assert.equal(loginWithout.status, 403, 'so does the login');
  assert.equal(server.takeoutCalls.length, calls);
});

test('a viewer sees the list and the requests but cannot approve, deny or revoke; an account in no role cannot log in', async () => {
  const viewer = new Client();
  assert.equal((await viewer.login(server.viewer.name, server.viewer.password)).status, 303);
  const list = await viewer.get('/admin/pcs');
  assert.equal(list.status, 200);
  const requests = await viewer.get('/admin/requests');
  assert.match(requests.body, /approver role needed/);
  assert.doesNotMatch(requests.body, />Approve</);
  const calls = server.takeoutCalls.length;
  for (const [path, fields] of [
    ['/admin/requests/req-hostile/approve', { days: '1' }],
    ['/admin/requests/req-hostile/deny', { note: 'no' }],
    ['/admin/revocations', { jti: 'jti-req-hr-01' }],
  ] as const) {
    const res = await viewer.post(path, { csrf: viewer.csrf, ...fields });
    assert.equal(res.status, 403, path);
    assert.match(res.body, /this needs the approver role, which vic does not have/);
  }
  assert.equal(server.takeoutCalls.length, calls);

  const outsider = await new Client().login(server.outsider.name, server.outsider.password);
  assert.equal(outsider.status, 401);
  assert.match(outsider.body, /ned is not an administrator of this console/);
  const anonymous = await request({ method: 'POST', path: '/admin/requests/req-hostile/approve', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'days=1' });
  assert.equal(anonymous.status, 401);
  assert.equal((await request({ method: 'GET', path: '/admin/audit' })).headers.location, '/admin/login');
});

test('the session cookie is __Host-, HttpOnly, Secure, SameSite=Strict; pages are no-store and cannot be framed; logout ends the session', async () => {
  const cookies = await browser.context.cookies(server.url);
  const session = cookies.find((c) => c.name === '__Host-mydoc-console')!;
  assert.deepEqual([session.httpOnly, session.secure, session.sameSite, session.path], [true, true, 'Strict', '/']);
  const client = new Client();
  const login = await client.login(server.approver.name, server.approver.password);
  assert.match(String(login.headers['set-cookie']), /^__Host-mydoc-console=[\w-]{43}; Path=\/; HttpOnly; Secure; SameSite=Strict$/);
  const before = client.cookie;
  const res = await client.get('/admin/pcs');
  assert.equal(res.headers['cache-control'], 'no-store');
  assert.equal(res.headers['x-frame-options'], 'DENY');
  assert.match(String(res.headers['content-security-policy']), /frame-ancestors 'none'/);
  assert.equal((await client.post('/admin/logout', { csrf: client.csrf })).status, 303);
  client.cookie = before;
  assert.equal((await client.get('/admin/pcs')).headers.location, '/admin/login', 'the old cookie is worth nothing');

  // The audit trail page shows the logins, newest first.
  await page.goto(`${server.url}/admin/audit`);
  const first = await page.locator('#audit tbody tr').first().innerText();
  assert.match(first, /console\.login/);
  const refused = await page.locator('#audit tbody tr', { hasText: 'not in any of the console roles' }).first().locator('td').allInnerTexts();
  assert.deepEqual(refused.slice(2), [server.outsider.name, 'console.login', '127.0.0.1', 'deny', 'not in any of the console roles']);
});

test('login attempts are slowed per account (from any address) and per address (for any account); the right password never is', async () => {
  const wrong = async (name: string, address: string) => {
    const res = await new Client(address).login(name, 'not-the-password');
    assert.equal(res.status, 401);
    return res;
  };
  // Per account: ned, from a new address each time.
  for (let i = 0; i < 5; i++) assert.doesNotMatch((await wrong(server.outsider.name, `127.0.1.${i + 1}`)).body, /slowed/);
  const sixth = await wrong(server.outsider.name, '127.0.1.6');
  const seventh = await wrong(server.outsider.name, '127.0.1.7');
  assert.match(seventh.body, /after repeated wrong passwords, each answer is slowed down/);
  assert.ok(sixth.ms >= 250 && seventh.ms >= 500, `held back: ${sixth.ms} ms, ${seventh.ms} ms`);
  assert.doesNotMatch((await wrong(server.viewer.name, '127.0.1.8')).body, /slowed/, 'another account from a fresh address is not slowed');
  // Per address: many accounts from one address.
  for (let i = 0; i < 6; i++) await wrong(`nobody-${i}`, '127.0.2.1');
  const sameAddress = await wrong(server.viewer.name, '127.0.2.1');
  assert.match(sameAddress.body, /slowed down/);
  assert.ok(sameAddress.ms >= 500, `${sameAddress.ms} ms`);
  const owner = await new Client('127.0.2.1').login(server.viewer.name, server.viewer.password);
  assert.equal(owner.status, 303, 'the right password from the guessing address still works');
  // In the browser: the held-back answer says so.
  const fresh = await browser.context.newPage();
  await browser.context.clearCookies();
  await fresh.goto(`${server.url}/admin/login`);
  await fresh.fill('#name', server.outsider.name);
  await fresh.fill('#password', 'still-wrong');
  await Promise.all([fresh.waitForLoadState(), fresh.click('button[type=submit]')]);
  await fresh.waitForSelector('.error');
  assert.match(await fresh.textContent('.error') ?? '', /slowed down/);
  await fresh.close();
});
