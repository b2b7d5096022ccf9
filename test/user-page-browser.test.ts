/**
 * The user's page in a real headless Chromium (test/helpers/browser.ts)
 * against a real `mydoc serve`: the page's one script runs under its
 * Content-Security-Policy (allowed by its hash; no violation reported), the
 * form asks for a take-out period as same-origin JSON, a `<script>` in the
 * reason is shown as text and never runs, and after an approval the
 * countdown ticks.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { launchBrowser, type RunningBrowser } from './helpers/browser.js';
import { tempDir } from './helpers/keys.js';
import { MYDOC_BIN, basicAuth, davRequest, randomPassword, startServer, type RunningServer } from './helpers/server.js';

let server: RunningServer;
let browser: RunningBrowser;
let issuer: { dir: string; cleanup: () => Promise<void> };
const alice = { name: 'alice', password: randomPassword() };
const dave = { name: 'dave', password: randomPassword(), admin: true };

function mydoc(args: string[], input = '') {
  return spawnSync(process.execPath, [MYDOC_BIN, ...args], { input, encoding: 'utf8' });
}

before(async () => {
  issuer = await tempDir('mydoc-issuer-');
  const keys = mydoc(['keys', 'issuer', '--out', join(issuer.dir, 'issuer.pem'), '--public-out', join(issuer.dir, 'issuer.pub.pem')]);
  assert.equal(keys.status, 0, keys.stderr);
  server = await startServer({
    users: [alice, dave],
    files: { 'issuer.pub.pem': await readFile(join(issuer.dir, 'issuer.pub.pem'), 'utf8') },
    extraConfig: ['takeout:', '  maxDays: 5', '  issuerPublicKeys: [issuer.pub.pem]'],
  });
  browser = await launchBrowser(await readFile(join(server.dataDir, 'tls', 'server-cert.pem'), 'utf8'));
});
after(async () => {
  await browser?.close();
  await server?.stop();
  await issuer?.cleanup();
});

test('the page in Chromium: its script runs under the CSP, the form asks, a <script> reason stays text, the countdown ticks', { timeout: 120_000 }, async () => {
  const page = await browser.context.newPage();
  // As the browser sends the credentials it cached at the login prompt: on every request of the origin, fetch too.
  await page.setExtraHTTPHeaders({ authorization: basicAuth(alice.name, alice.password) });
  const problems: string[] = [];
  page.on('console', (m) => {
    // Failed loads (the refused request's 400, /favicon.ico) are expected; a CSP refusal or a script error is not.
    if (/Content Security Policy|Refused to/i.test(m.text()) || (m.type() === 'error' && !/Failed to load resource/.test(m.text()))) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));

  const res = await page.goto(server.url);
  assert.equal(res?.status(), 200);
  assert.match((await page.textContent('#state')) ?? '', /^Online:/);
  assert.equal(await page.textContent('#user'), 'alice');

  const evil = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">';
  await page.fill('#days', '2');
  await page.fill('#reason', evil);
  await Promise.all([page.waitForEvent('load'), page.click('button[type=submit]')]);
  const pending = (await page.textContent('#pending')) ?? '';
  assert.ok(pending.includes(evil), 'the reason shown as text');
  assert.equal(await page.evaluate('typeof window.pwned'), 'undefined', 'the reason never ran');
  assert.equal(await page.locator('#pending img').count(), 0);

  const status = await davRequest(server, 'GET', '/api/takeout/status', { user: 'alice', password: alice.password });
  const id = (JSON.parse(status.body.toString()) as { request: { id: string } }).request.id;
  const approve = mydoc(['takeout', 'approve', '--agent', server.url, '--ca', server.caFile, '--user', 'dave', '--password-stdin', '--id', id, '--days', '2', '--issuer-key', join(issuer.dir, 'issuer.pem')], dave.password);
  assert.equal(approve.status, 0, approve.stderr);

  await page.reload();
  const left = page.locator('[data-remaining]');
  const first = await left.textContent();
  assert.match(first ?? '', /^(2 d 0 h 0 min 0 s|1 d 23 h 59 min \d+ s)$/);
  await sleep(2100);
  const later = (await left.textContent()) ?? '';
  assert.match(later, /^1 d 23 h 59 min \d+ s$/);
  assert.notEqual(later, first, 'the countdown ticks');
  assert.deepEqual(problems, [], 'no script error and no CSP violation');
  await page.close();
});
