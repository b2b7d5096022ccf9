/**
 * The user's page on the agent (server/agent/user-page.ts) through the real
 * app in-process (test/helpers/takeout.ts): a browser's GET of `/` gets the
 * page, Basic-authenticated as the drive is; every state (online, take-out,
 * locked; pending, approved with the countdown, denied with the note,
 * expired); values escaped (a `<script>` reason stays text); the inline
 * script allowed by its hash only; the form's API still refuses cross-site
 * posts; and WebDAV clients' GET and PROPFIND of `/` answered as before.
 * windows-replay.test.ts and litmus.test.ts run the share itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { basicAuth } from './helpers/server.js';
import { requestAndApprove } from './helpers/takeout-cases.js';
import { PASSWORDS, startTakeoutFixture, type TakeoutFixture, type TestUser } from './helpers/takeout.js';

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

async function get(f: TakeoutFixture, opts: { user?: TestUser | null; accept?: string; url?: string; method?: string } = {}) {
  const headers: Record<string, string> = {};
  const user = opts.user === undefined ? 'alice' : opts.user;
  if (user) headers.authorization = basicAuth(user, f.passwords[user]);
  if (opts.accept !== null) headers.accept = opts.accept ?? BROWSER_ACCEPT;
  const res = await f.app.inject({ method: (opts.method ?? 'GET') as 'GET', url: opts.url ?? '/', headers });
  return { status: res.statusCode, headers: res.headers, body: res.body };
}

async function withFixture(run: (f: TakeoutFixture) => Promise<void>): Promise<void> {
  const f = await startTakeoutFixture();
  try {
    await run(f);
  } finally {
    await f.close();
  }
}

/** The page's inline scripts and styles, and the hashes its CSP allows. */
function inline(body: string, tag: 'script' | 'style'): string[] {
  return [...body.matchAll(new RegExp(`<${tag}[^>]*>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => m[1]!);
}
const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

test('the page: online state, the form, no request yet; authenticated as the drive; locked down by CSP', { timeout: 60_000 }, () =>
  withFixture(async (f) => {
    const anonymous = await get(f, { user: null });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.headers['www-authenticate'], 'Basic realm="mydoc", charset="UTF-8"');
    const wrong = await f.app.inject({ method: 'GET', url: '/', headers: { accept: BROWSER_ACCEPT, authorization: basicAuth('alice', 'wrong') } });
    assert.equal(wrong.statusCode, 401);
    assert.doesNotMatch(wrong.body, /My documents/);

    const page = await get(f);
    assert.equal(page.status, 200);
    assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
    assert.match(page.body, /<h1>My documents on pc-test<\/h1>/);
    assert.match(page.body, /Signed in as <strong id="user">alice<\/strong>/);
    assert.match(page.body, /id="state">Online:/);
    assert.match(page.body, /You have no take-out request/);
    assert.match(page.body, /<form id="ask">[\s\S]*name="days"[^>]*max="14"[\s\S]*name="reason"/);
    assert.match(page.body, /<section id="notices"><h2>Access notices<\/h2>/);
    assert.equal(page.headers['cache-control'], 'no-store');
    assert.equal(page.headers['x-frame-options'], 'DENY');
    const csp = String(page.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /form-action 'none'/);
    const scripts = inline(page.body, 'script');
    const styles = inline(page.body, 'style');
    assert.equal(scripts.length, 1, 'one inline script');
    assert.equal(styles.length, 1);
    assert.match(csp, new RegExp(`script-src ${sha256(scripts[0]!).replace(/[+/]/g, '\\$&')}(;|$)`), 'only that script, by its hash');
    assert.match(csp, new RegExp(`style-src ${sha256(styles[0]!).replace(/[+/]/g, '\\$&')}(;|$)`));
    assert.doesNotMatch(page.body, /\son[a-z]+=/i, 'no inline event handlers (CSP would block them anyway)');
  }));

test('a <script> in the reason or the note stays text; pending, denied and expired are shown', { timeout: 60_000 }, () =>
  withFixture(async (f) => {
    const evil = '<script>alert(1)</script>"\'&';
    const asked = await f.request('POST', '/api/takeout/requests', { body: { days: 3, reason: evil } });
    assert.equal(asked.status, 201, asked.body);
    const { id } = asked.json<{ id: string }>();
    const pending = await get(f);
    assert.match(pending.body, /id="pending">Pending: you asked on \d{4}-\d\d-\d\d \d\d:\d\d UTC for 3 day\(s\)/);
    assert.ok(pending.body.includes('&#60;script&#62;alert(1)&#60;/script&#62;&#34;&#39;&#38;'), 'the reason escaped');
    assert.equal(inline(pending.body, 'script').length, 1, 'no script but the page\'s own');
    assert.doesNotMatch(pending.body, /<script>alert/);

    await f.takeout.deny(id, { outcome: 'denied', by: 'dave<b>', note: '<img src=x onerror=alert(2)>' });
    const denied = await get(f);
    assert.match(denied.body, /id="denied">Denied: your request of .* for 3 day\(s\) was denied by dave&#60;b&#62; on /);
    assert.ok(denied.body.includes('Note: <span class="note">&#60;img src=x onerror=alert(2)&#62;</span>'));
    assert.doesNotMatch(denied.body, /<img/);
    assert.doesNotMatch(denied.body, /id="pending"/);

    const again = (await f.request('POST', '/api/takeout/requests', { body: { days: 1, reason: 'again' } })).json<{ id: string }>().id;
    await f.takeout.deny(again, { outcome: 'expired', by: 'console', note: 'unanswered for 7 day(s)' });
    const expired = await get(f);
    assert.match(expired.body, /id="expired">Expired: your request of .* for 1 day\(s\) was not answered in time/);
    assert.doesNotMatch(expired.body, /id="denied"/, 'the new request replaced the denied one');

    // Each user sees their own page only.
    const bob = await get(f, { user: 'bob' });
    assert.match(bob.body, /You have no take-out request/);
  }));

test('approved: the end and a countdown; offline the state says take-out until T; locked: the locked page without login', { timeout: 60_000 }, () =>
  withFixture(async (f) => {
    await requestAndApprove(f, 2);
    const end = new Date(f.clock.now + 2 * 86_400_000).toISOString();
    const approved = await get(f);
    assert.ok(approved.body.includes(`until <strong>${end.slice(0, 10)} ${end.slice(11, 16)} UTC</strong>`), approved.body);
    assert.match(approved.body, /data-remaining="172800">2 d 0 h 0 min 0 s</);
    f.clock.now += 3_600_000 + 61_000;
    assert.match((await get(f)).body, /data-remaining="169139">1 d 22 h 58 min 59 s</, 'counted on the agent\'s clock');

    await f.setOffline(true);
    const offline = await get(f);
    assert.equal(offline.status, 200);
    assert.match(offline.body, /id="state">Take-out: your documents are served away from the company network until \d{4}-/);
    assert.match(offline.body, /can only be asked for on the company network/);
    assert.doesNotMatch(offline.body, /<form/);
    const bob = await get(f, { user: 'bob' });
    assert.equal(bob.status, 403, 'bob has no key: locked for him');
    assert.match(bob.body, /<h1>This PC is locked<\/h1>/);

    f.clock.now += 2 * 86_400_000; // the key has ended: the PC locks
    await f.takeout.sweep();
    const locked = await get(f, { user: null });
    assert.equal(locked.status, 403);
    assert.equal(locked.headers['content-type'], 'text/html; charset=utf-8');
    assert.match(locked.body, /id="state">Locked: /);
    assert.doesNotMatch(locked.body, /alice/, 'nothing about any user');
    assert.match(String(locked.headers['content-security-policy']), /default-src 'none'/);
  }));

test('WebDAV at / is unchanged: GET and PROPFIND of / without HTML, other paths, q=0 never get the page', { timeout: 60_000 }, () =>
  withFixture(async (f) => {
    const propfind = await f.app.inject({ method: 'PROPFIND' as 'GET', url: '/', headers: { authorization: basicAuth('alice', PASSWORDS.alice), depth: '0', accept: BROWSER_ACCEPT } });
    assert.equal(propfind.statusCode, 207);
    assert.match(propfind.body, /<D:href>\/<\/D:href>/);
    const windows = await get(f, { accept: '*/*' });
    const bare = await f.app.inject({ method: 'GET', url: '/', headers: { authorization: basicAuth('alice', PASSWORDS.alice), 'user-agent': 'Microsoft-WebDAV-MiniRedir/10.0.19045', translate: 'f' } });
    for (const res of [windows, { status: bare.statusCode, headers: bare.headers, body: bare.body }, await get(f, { accept: 'text/html;q=0' }), await get(f, { url: '/Documents/' }), await get(f, { url: '/?x=1' })]) {
      assert.doesNotMatch(String(res.headers['content-type'] ?? ''), /text\/html/);
      assert.doesNotMatch(res.body, /My documents on/);
    }
    assert.equal(windows.status, bare.statusCode, 'the same answer as a bare WebDAV GET of /');
    assert.equal(windows.body, bare.body);
    const options = await f.app.inject({ method: 'OPTIONS', url: '/', headers: { accept: BROWSER_ACCEPT } });
    assert.equal(options.statusCode, 200);
    assert.equal(options.headers['dav'], '1, 2');
    // The internal route's name reaches the share like any other path, never the page.
    const internal = await get(f, { url: '/.mydoc-user-page' });
    assert.doesNotMatch(internal.body, /My documents on/);
  }));

test('the form\'s API keeps its guard: a cross-site post with the cached credentials is refused', { timeout: 60_000 }, () =>
  withFixture(async (f) => {
    const post = (headers: Record<string, string>) =>
      f.app.inject({ method: 'POST', url: '/api/takeout/requests', headers: { authorization: basicAuth('alice', PASSWORDS.alice), host: 'svc:8443', ...headers }, payload: JSON.stringify({ days: 1, reason: 'x' }) });
    const crossSite = await post({ 'content-type': 'application/json', origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' });
    assert.equal(crossSite.statusCode, 403);
    const formPost = await post({ 'content-type': 'application/x-www-form-urlencoded', origin: 'https://svc:8443', 'sec-fetch-site': 'same-origin' });
    assert.equal(formPost.statusCode, 415);
    assert.equal((await f.request('GET', '/api/takeout/status')).json<{ request?: unknown }>().request, undefined, 'nothing was asked');
    const page = await post({ 'content-type': 'application/json', origin: 'https://svc:8443', 'sec-fetch-site': 'same-origin' });
    assert.equal(page.statusCode, 201, 'the page\'s own post (same origin, JSON) goes through');
  }));
