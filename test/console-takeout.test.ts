/**
 * Take-out through the console, end to end with the real processes: one
 * real slapd behind both `mydoc console serve` (administrators log in with
 * it; nested groups give the approver role) and `mydoc serve` (the PC,
 * enrolled on the console with a one-time token, its link up). Users ask on
 * the agent as its page does (same-origin JSON); approvers list, approve,
 * deny and revoke with `mydoc takeout ... --console`; the key, signed by the
 * console's issuer key, travels down the link and is installed by the agent.
 * Then the directory is cut and the vault serves through slot T; a key
 * revoked from the console is refused on the PC; a denial and the expiry of
 * an unanswered request (takeout.requestExpiryDays at its smallest, about 86 s)
 * are shown on the user's page. Last, the whole path in a real headless
 * Chromium: the user asks on the agent's page, an approver logs in on the
 * console's page and approves, and the agent's page counts down. A key's own end to the second is covered
 * in-process with an injected clock (takeout.test.ts).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import https from 'node:https';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { consoleFolder } from '../server/console/data-folder.js';
import { userDir } from '../shares/vault/user-vaults.js';
import { launchBrowser } from './helpers/browser.js';
import { launchDaemon, stopDaemon, type Daemon } from './helpers/daemon.js';
import { MYDOC_BIN, basicAuth, davRequest, freePort, startServer, type RunningServer } from './helpers/server.js';
import { startSlapd, slapdServerOptions, type Slapd } from './helpers/slapd.js';

const PC = 'pc-takeout';
const EXPIRY_DAYS = 0.001; // 86.4 s: the smallest the console's configuration allows

let slapd: Slapd;
let agent: RunningServer;
let consoleDir: string;
let consoleDaemon: Daemon;
let consoleUrl: string;
let consoleCa: string;
let consoleCaPem: string;
/** carol's request, made first: it is left unanswered until it expires (the last test). */
let unanswered: { id: string; at: number };

function mydoc(args: string[], input = '') {
  return spawnSync(process.execPath, [MYDOC_BIN, ...args], { input, encoding: 'utf8', env: { ...process.env, MYDOC_CONFIG: '' } });
}

function password(user: 'alice' | 'bob' | 'carol' | 'dave'): string {
  return slapd.users[user].password;
}

/** A call to the console's JSON API as `user`. */
function consoleApi(user: string, pw: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(path, consoleUrl), { method, ca: consoleCaPem, headers: { authorization: basicAuth(user, pw), ...(payload && { 'content-type': 'application/json' }) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** As the user's page sends it: same-origin JSON with the cached Basic credentials. */
async function askOnPage(user: 'alice' | 'bob' | 'carol', days: number, reason: string): Promise<string> {
  const origin = agent.url.replace(/\/$/, '');
  const res = await davRequest(agent, 'POST', '/api/takeout/requests', {
    user,
    password: password(user),
    headers: { 'content-type': 'application/json', origin, 'sec-fetch-site': 'same-origin', host: origin.slice('https://'.length) },
    body: JSON.stringify({ days, reason }),
  });
  assert.equal(res.status, 201, res.body.toString());
  return (JSON.parse(res.body.toString()) as { id: string }).id;
}

async function page(user: 'alice' | 'bob' | 'carol'): Promise<string> {
  const res = await davRequest(agent, 'GET', '/', { user, password: password(user), headers: { accept: 'text/html' } });
  assert.equal(res.status, 200, res.body.toString());
  return res.body.toString();
}

async function agentStatus(user: 'alice' | 'bob' | 'carol'): Promise<any> {
  const res = await davRequest(agent, 'GET', '/api/takeout/status', { user, password: password(user) });
  return res.status === 200 ? JSON.parse(res.body.toString()) : { httpStatus: res.status };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    assert.ok(Date.now() - start < timeoutMs, `timed out: ${what}`);
    await sleep(100);
  }
}

/** Waits until the console holds request `id` (reported up the link). */
function reported(id: string): Promise<any> {
  return until(`request ${id} on the console`, async () => {
    const res = await consoleApi('dave', password('dave'), 'GET', `/api/takeout/requests?pcId=${PC}`);
    return (res.json.requests as { id: string }[]).find((r) => r.id === id);
  });
}

function cli(args: string[], user: 'carol' | 'dave' | 'alice', pw = password(user)) {
  return mydoc(['takeout', ...args, '--console', consoleUrl, '--ca', consoleCa, '--user', user, '--password-stdin'], pw);
}

before(async () => {
  // bob is a viewer only: he may list the requests, not decide them.
  slapd = await startSlapd({ extraLdif: ['dn: cn=mydoc-viewers,ou=groups,dc=corp,dc=example', 'changetype: add', 'objectClass: groupOfNames', 'cn: mydoc-viewers', 'member: uid=bob,ou=people,dc=corp,dc=example', ''].join('\n') });
  consoleDir = await mkdtemp(join(tmpdir(), 'mydoc-console-'));
  const [port, linkPort] = [await freePort(), await freePort()];
  await writeFile(join(consoleDir, 'ldap-ca.pem'), slapd.caPem);
  await writeFile(join(consoleDir, 'svc.password'), slapd.servicePassword, { mode: 0o600 });
  const configFile = join(consoleDir, 'console.yaml');
  await writeFile(
    configFile,
    [
      'dataDir: data',
      `listen: { host: 127.0.0.1, port: ${port}, linkPort: ${linkPort} }`,
      'directory:',
      '  kind: ldap',
      '  ldap:',
      `    urls: ["${slapd.url}"]`,
      '    flavor: openldap',
      `    baseDn: "${slapd.baseDn}"`,
      `    userBaseDn: "ou=people,${slapd.baseDn}"`,
      `    serviceDn: "${slapd.serviceDn}"`,
      '    servicePasswordFile: svc.password',
      '    caFile: ldap-ca.pem',
      'roles:',
      '  viewer: ["cn=mydoc-viewers,ou=groups,dc=corp,dc=example"]',
      `  approver: ["${slapd.groupDns.admins}"]`, // dave directly, carol through helpdesk
      '  data: []',
      '  sharing: []',
      'store: { kind: sqlite }',
      'link: { heartbeatSeconds: 2 }',
      `takeout: { requestExpiryDays: ${EXPIRY_DAYS} }`,
      '',
    ].join('\n'),
  );
  const init = mydoc(['console', 'init', '--config', configFile]);
  assert.equal(init.status, 0, init.stderr);
  const added = mydoc(['console', 'pc', 'add', PC, '--config', configFile]);
  assert.equal(added.status, 0, added.stderr);
  const token = /enrolmentToken: (\S+)/.exec(added.stdout)?.[1];
  assert.ok(token, added.stdout);
  consoleCa = join(consoleDir, 'data', 'tls', 'ca.pem');
  consoleCaPem = await readFile(consoleCa, 'utf8');
  consoleUrl = `https://127.0.0.1:${port}/`;
  consoleDaemon = await launchDaemon({
    name: 'mydoc console serve',
    command: process.execPath,
    args: [MYDOC_BIN, 'console', 'serve', '--config', configFile],
    env: { ...process.env, MYDOC_CONFIG: '' },
    ready: async () => (await consoleApi('nobody', 'x', 'GET', '/healthz').catch(() => ({ status: 0 }))).status === 200,
    readyTimeoutMs: 20_000,
    where: consoleUrl,
    graceMs: 5000,
  });

  const ldap = slapdServerOptions(slapd);
  agent = await startServer({
    pcId: PC,
    ...ldap,
    files: { ...ldap.files, 'issuer.pub.pem': await readFile(join(consoleDir, 'data', 'issuer-public.pem'), 'utf8'), 'console-ca.pem': consoleCaPem },
    extraConfig: ['takeout:', '  maxDays: 5', '  issuerPublicKeys: [issuer.pub.pem]', 'console:', `  url: https://127.0.0.1:${linkPort}`, '  caFile: console-ca.pem', `  enrolmentToken: ${token}`],
  });
  // Each user's first online login enrols them on the PC.
  for (const user of ['alice', 'bob', 'carol'] as const) assert.equal((await davRequest(agent, 'PUT', `/Documents/${user}.txt`, { user, password: password(user), body: `${user}'s notes` })).status, 201);
  unanswered = { id: await askOnPage('carol', 1, 'left unanswered'), at: Date.now() };
  await reported(unanswered.id);
});

after(async () => {
  await agent?.stop();
  if (consoleDaemon) await stopDaemon(consoleDaemon, 5000);
  if (consoleDir) await rm(consoleDir, { recursive: true, force: true });
  await slapd?.stop();
});

test('the console API: viewers list, only approvers decide, others are refused, a cross-site post is refused', { timeout: 60_000 }, async () => {
  const noRole = await consoleApi('alice', password('alice'), 'GET', '/api/takeout/requests');
  assert.equal(noRole.status, 401, 'alice has no role: not an administrator');
  assert.match(noRole.json.error.message, /not an administrator/);
  assert.equal((await consoleApi('dave', 'wrong', 'GET', '/api/takeout/requests')).status, 401);
  assert.equal((await consoleApi('bob', password('bob'), 'GET', '/api/takeout/requests')).status, 200, 'bob is a viewer');
  const viewerDecides = await consoleApi('bob', password('bob'), 'POST', `/api/takeout/requests/${unanswered.id}/denial`, { note: 'x' });
  assert.equal(viewerDecides.status, 403);
  assert.equal(viewerDecides.json.error.code, 'ERR_API_ROLE');
  const listed = await consoleApi('carol', password('carol'), 'GET', '/api/takeout/requests?state=pending');
  assert.equal(listed.status, 200, 'carol is an approver through the nested helpdesk group');
  const row = (listed.json.requests as any[]).find((r) => r.id === unanswered.id);
  assert.deepEqual([row.pcId, row.user, row.days, row.reason, row.state], [PC, 'carol', 1, 'left unanswered', 'pending']);
  assert.equal(row.envelopes, undefined, 'no envelopes in the API');
  assert.equal((await consoleApi('dave', password('dave'), 'GET', '/api/takeout/requests?state=bogus')).status, 400);
  const crossSite = await new Promise<number>((resolve, reject) => {
    const req = https.request(new URL(`/api/takeout/requests/${unanswered.id}/denial`, consoleUrl), { method: 'POST', ca: consoleCaPem, headers: { authorization: basicAuth('dave', password('dave')), 'content-type': 'application/json', origin: 'https://evil.example' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end(JSON.stringify({ note: 'forged' }));
  });
  assert.equal(crossSite, 403);
  assert.equal((await reported(unanswered.id)).state, 'pending', 'nothing was decided');
});

test('request on the page, approve with mydoc takeout --console, offline use through slot T', { timeout: 90_000 }, async () => {
  const id = await askOnPage('alice', 3, 'customer visit in <Lyon>');
  assert.match(await page('alice'), /id="pending">Pending: .*for 3 day\(s\)/);
  await reported(id);

  const list = cli(['list', '--state', 'pending'], 'dave');
  assert.equal(list.status, 0, list.stderr);
  assert.match(list.stdout, new RegExp(`${id}  ${PC}  alice  3 day\\(s\\)  asked .*reason: customer visit in <Lyon>`));
  const tooLong = cli(['approve', '--id', id, '--days', '6'], 'carol');
  assert.equal(tooLong.status, 1);
  assert.match(tooLong.stderr, /^mydoc: the console answered 400: days must be an integer from 1 to 5 .*\(ERR_CTAKEOUT_DAYS\)\n$/);
  const notApprover = cli(['approve', '--id', id, '--days', '3'], 'alice');
  assert.equal(notApprover.status, 1);
  assert.match(notApprover.stderr, /^mydoc: the console answered 401: alice is not an administrator/);
  const approved = cli(['approve', '--id', id, '--days', '3'], 'carol');
  assert.equal(approved.status, 0, approved.stderr);
  assert.match(approved.stdout, new RegExp(`^approved: take-out key ${id} for "alice" on PC "${PC}", valid until \\d{4}-`));
  const again = cli(['approve', '--id', id, '--days', '3'], 'dave');
  assert.equal(again.status, 1);
  assert.match(again.stderr, /409.*approved already.*ERR_CTAKEOUT_DECIDED/);

  const status = await agentStatus('alice');
  assert.equal(status.key.jti, id);
  assert.equal(status.key.valid, true);
  assert.ok(status.key.remainingSeconds > 3 * 86_400 - 60);
  assert.match(await page('alice'), /id="approved">Approved: .*until <strong>\d{4}-\d\d-\d\d \d\d:\d\d UTC<\/strong>[\s\S]*data-remaining="\d+"/);

  // The directory is cut: alice works offline through slot T, her own vault only.
  await slapd.stop({ keepData: true });
  try {
    await until('the agent in take-out', async () => ((await agentStatus('alice')).state === 'takeout' ? true : undefined));
    assert.equal((await davRequest(agent, 'GET', '/Documents/alice.txt', { user: 'alice', password: password('alice') })).body.toString(), "alice's notes");
    assert.equal((await davRequest(agent, 'GET', '/Documents/alice.txt', { user: 'alice', password: 'not-hers' })).status, 401, 'slot T needs her password');
    assert.equal((await davRequest(agent, 'GET', '/Documents/bob.txt', { user: 'bob', password: password('bob') })).status, 403, 'bob has no key');
    assert.match(await page('alice'), /id="state">Take-out: .* until \d{4}-/);
  } finally {
    await slapd.start();
  }
  await until('the agent online again', async () => ((await agentStatus('alice')).state === 'online' ? true : undefined));
  const trail = mydoc(['console', 'audit', 'verify', '--config', join(consoleDir, 'console.yaml')]);
  assert.equal(trail.status, 0, trail.stderr);
  const log = await readFile(consoleFolder(join(consoleDir, 'data')).auditLog, 'utf8');
  const records = log.trimEnd().split('\n').map((l) => JSON.parse(l) as { actor: string; action: string; target?: string; decision: string });
  assert.ok(records.some((r) => r.action === 'takeout.approve' && r.actor === 'carol' && r.target === id && r.decision === 'allow'), 'the approval in the console\'s trail');
  assert.ok(records.some((r) => r.action === 'takeout.approve' && r.decision === 'deny' && r.actor === 'carol'), 'the refused approval too');
});

test('a denial with a note reaches the PC and the user sees it (escaped)', { timeout: 60_000 }, async () => {
  const id = await askOnPage('bob', 2, 'conference');
  await reported(id);
  const denied = cli(['deny', '--id', id, '--note', 'not this month <b>sorry</b>'], 'dave');
  assert.equal(denied.status, 0, denied.stderr);
  assert.match(denied.stdout, new RegExp(`^denied: take-out request ${id} of "bob"`));
  const status = await until('the denial on the PC', async () => {
    const s = await agentStatus('bob');
    return s.ended?.outcome === 'denied' ? s : undefined;
  });
  assert.deepEqual([status.ended.id, status.ended.note, status.ended.by], [id, 'not this month <b>sorry</b>', 'dave']);
  assert.equal(status.request, undefined);
  const html = await page('bob');
  assert.ok(html.includes('was denied by dave on '), html);
  assert.ok(html.includes('not this month &#60;b&#62;sorry&#60;/b&#62;'));
  assert.doesNotMatch(html, /<b>sorry/);
  const keyring = JSON.parse(await readFile(join(userDir(agent.dataDir, PC, 'bob'), 'keyring.json'), 'utf8')) as { slots: object };
  assert.deepEqual(Object.keys(keyring.slots).sort(), ['N', 'R'], 'slot T destroyed with the denied request');
});

test('revocation from the console reaches the PC: the key is refused at once, and offline', { timeout: 90_000 }, async () => {
  const id = await askOnPage('bob', 2, 'second try');
  await reported(id);
  const approved = await consoleApi('dave', password('dave'), 'POST', `/api/takeout/requests/${id}/approval`, { days: 2 });
  assert.equal(approved.status, 200, JSON.stringify(approved.json));
  assert.equal(approved.json.state, 'approved');
  assert.equal((await agentStatus('bob')).key.valid, true);

  const revoked = cli(['revoke', '--jti', id], 'carol');
  assert.equal(revoked.status, 0, revoked.stderr);
  const status = await until('the revocation on the PC', async () => {
    const s = await agentStatus('bob');
    return s.key?.refusal === 'ERR_TAKEOUT_REVOKED' ? s : undefined;
  });
  assert.equal(status.key.valid, false);
  assert.equal((await consoleApi('dave', password('dave'), 'GET', `/api/takeout/requests?state=revoked`)).json.requests.some((r: { id: string }) => r.id === id), true);
  const twice = cli(['revoke', '--jti', id], 'carol');
  assert.equal(twice.status, 1);
  assert.match(twice.stderr, /revoked already/);

  await slapd.stop({ keepData: true });
  try {
    // No valid key is left on the PC (alice's ended with her offline use, bob's is revoked): it locks.
    await until('the agent locked', async () => (JSON.parse((await davRequest(agent, 'GET', '/healthz', { user: null })).body.toString()).state === 'locked' ? true : undefined));
    assert.equal((await davRequest(agent, 'GET', '/Documents/bob.txt', { user: 'bob', password: password('bob') })).status, 403, 'a revoked key does not open the vault offline');
  } finally {
    await slapd.start();
  }
  await until('the agent online again', async () => ((await agentStatus('alice')).state === 'online' ? true : undefined));
});

test('an unanswered request expires (takeout.requestExpiryDays) and the user sees it on the page', { timeout: 180_000 }, async () => {
  const dueAt = unanswered.at + EXPIRY_DAYS * 86_400_000;
  const wait = dueAt - Date.now();
  if (wait > 0) await sleep(wait);
  const status = await until(
    'the expiry on the PC',
    async () => {
      const s = await agentStatus('carol');
      return s.ended?.outcome === 'expired' ? s : undefined;
    },
    30_000,
  );
  assert.equal(status.ended.id, unanswered.id);
  assert.equal(status.request, undefined);
  assert.match(await page('carol'), /id="expired">Expired: your request of .* for 1 day\(s\) was not answered in time/);
  const rows = (await consoleApi('dave', password('dave'), 'GET', '/api/takeout/requests?state=expired')).json.requests as { id: string; decidedBy: string }[];
  assert.ok(rows.some((r) => r.id === unanswered.id));
  const late = cli(['approve', '--id', unanswered.id, '--days', '1'], 'dave');
  assert.equal(late.status, 1, 'an expired request cannot be approved');
  assert.match(late.stderr, /expired already/);
});

test("in Chromium: the user asks on the agent's page, the approver approves on the console's page, the agent's page counts down", { timeout: 90_000 }, async () => {
  const browser = await launchBrowser([await readFile(join(agent.dataDir, 'tls', 'server-cert.pem'), 'utf8'), await readFile(join(consoleDir, 'data', 'tls', 'cert.pem'), 'utf8')]);
  try {
    // carol's earlier request expired (the test before): she asks again, on her PC's page.
    const user = await browser.context.newPage();
    await user.setExtraHTTPHeaders({ authorization: basicAuth('carol', password('carol')) });
    assert.equal((await user.goto(agent.url))?.status(), 200);
    await user.fill('#days', '2');
    await user.fill('#reason', 'trade fair');
    await Promise.all([user.waitForEvent('load'), user.click('button[type=submit]')]);
    assert.match((await user.textContent('#pending')) ?? '', /trade fair/);
    const id = (await agentStatus('carol')).request.id as string;
    await reported(id);

    // The approver, on the console's page (no Basic credentials there: a login and its session).
    const admin = await browser.context.newPage();
    await admin.goto(new URL('/admin/login', consoleUrl).href);
    await admin.fill('#name', 'dave');
    await admin.fill('#password', password('dave'));
    await Promise.all([admin.waitForURL(/\/admin\/pcs$/), admin.click('button[type=submit]')]);
    await admin.goto(new URL('/admin/requests', consoleUrl).href);
    const row = admin.locator(`tr[data-request="${id}"]`);
    assert.match((await row.textContent()) ?? '', /carol[\s\S]*trade fair/);
    await row.locator('input[name=days]').fill('2');
    await Promise.all([admin.waitForURL(/done=approved/), row.locator('button:text("Approve")').click()]);
    assert.match((await admin.textContent('.notice')) ?? '', /Approved/);

    // The key went down the link: the user's page shows the approved period and its countdown ticks.
    await until('the key on the PC', async () => ((await agentStatus('carol')).key?.valid ? true : undefined));
    await user.reload();
    assert.match((await user.textContent('#approved')) ?? '', /Approved: .*until \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    const left = user.locator('[data-remaining]');
    const first = (await left.textContent()) ?? '';
    assert.match(first, /^(2 d 0 h 0 min 0 s|1 d 23 h 59 min \d+ s)$/);
    await sleep(2100);
    const later = (await left.textContent()) ?? '';
    assert.match(later, /^1 d 23 h 59 min \d+ s$/);
    assert.notEqual(later, first, 'the countdown ticks');
  } finally {
    await browser.close();
  }
});
