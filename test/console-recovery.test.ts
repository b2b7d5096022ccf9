/**
 * The console's recovery view end to end: a real agent (`mydoc serve`) with
 * files backs up (`mydoc backup`) to a local-folder NAS; a real console
 * (`mydoc console serve`, local directory) whose store pinned that agent's
 * device key at enrolment (through the store's enrolment, as the registry
 * does) and whose `recovery.target` is that NAS. Over HTTPS with a login and
 * cookies: a `data` administrator pastes the recovery private key and sees
 * the tree of the latest snapshot (names, sizes, dates); a viewer, an
 * online PC, a PC never enrolled, a NAS folder whose manifests the pinned
 * device key did not sign, a bad paste, a wrong key and a POST
 * without the CSRF token are refused, each in the trail; another session
 * does not get the key; forget and logout drop it; the key's bytes are
 * nowhere in the console's folder.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { cp, rm, readdir, readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { join } from 'node:path';
import { generateP256KeyPair } from '../crypto/key-files.js';
import { LocalUsersFile } from '../policy/directory/local/users-file.js';
import { loadConsoleConfig } from '../server/console/config.js';
import { consoleFolder } from '../server/console/data-folder.js';
import { hashEnrolmentToken } from '../server/console/enrolment.js';
import { openConfiguredStore } from '../server/console/open-store.js';
import { launchDaemon, stopDaemon, type Daemon } from './helpers/daemon.js';
import { tempDir } from './helpers/keys.js';
import { davRequest, freePort, MYDOC_BIN, runCommand, startServer, type RunningServer } from './helpers/server.js';

const PC = 'pc-lost';
const PASSWORDS = { dora: 'dora-data-admin-1', vic: 'vic-viewer-22' } as const;
type Admin = keyof typeof PASSWORDS;

let agent: RunningServer;
let consoleDir: string;
let cleanupConsole: () => Promise<void>;
let daemon: Daemon;
let base: string;
let ca: string;
let recoveryPem: string;
let nasSnapshots: string[];
let nasDir: string | undefined;

const silent = { info() {}, warn() {}, error() {}, debug() {}, fatal() {}, trace() {}, child: () => silent, level: 'silent', silent() {} } as never;

async function mydoc(args: string[], input?: string) {
  const r = await runCommand(process.execPath, [MYDOC_BIN, ...args], { env: { ...process.env, MYDOC_CONFIG: '', MYDOC_CONSOLE_CONFIG: '' }, timeoutMs: 120_000, ...(input === undefined ? {} : { input }) });
  assert.equal(r.status, 0, `mydoc ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  agent = await startServer({ pcId: PC });
  for (const [path, body] of [
    ['/Documents/report.txt', 'quarterly numbers'],
    ['/Documents/Projects', undefined],
    ["/Documents/Projects/Tom & Jerry's notes.md", 'x'.repeat(5000)],
    ['/Desktop/todo.txt', 'buy milk'],
  ] as const) {
    const r = await davRequest(agent, body === undefined ? 'MKCOL' : 'PUT', encodeURI(path), body === undefined ? {} : { body });
    assert.equal(r.status, 201, `${path}: ${r.status}`);
  }
  await mydoc(['backup', '--config', agent.configFile]);
  nasSnapshots = (await readdir(join(agent.dir, 'nas', PC, 'manifests'))).sort();
  recoveryPem = await readFile(join(agent.dir, 'offline', 'recovery-private.pem'), 'utf8');
  const devicePublicPem = await readFile(join(agent.dataDir, 'keys', 'device-public.pem'), 'utf8');

  ({ dir: consoleDir, cleanup: cleanupConsole } = await tempDir('mydoc-console-recovery-'));
  // The NAS outlives the PC (whose folder goes when it stops).
  const nas = join(consoleDir, '..', `${consoleDir.split('/').pop()}-nas`);
  await cp(join(agent.dir, 'nas'), nas, { recursive: true });
  nasDir = nas;
  // A PC whose NAS folder holds manifests its pinned device key did not sign (pc-lost's, copied).
  await cp(join(nas, PC), join(nas, 'pc-twin'), { recursive: true });
  const [port, linkPort] = [await freePort(), await freePort()];
  const configFile = join(consoleDir, 'console.yaml');
  await writeFile(
    configFile,
    [
      'dataDir: data',
      `listen: { host: 127.0.0.1, port: ${port}, linkPort: ${linkPort} }`,
      'directory: { kind: local }',
      'roles:',
      '  viewer: [viewers]',
      '  approver: []',
      '  data: [data-admins]',
      '  sharing: []',
      'store: { kind: sqlite }',
      'recovery:',
      '  target:',
      '    kind: path',
      `    path: ${nas}`,
      '',
    ].join('\n'),
  );
  await mydoc(['console', 'init', '--config', configFile]);
  const config = await loadConsoleConfig(configFile);
  const users = new LocalUsersFile(consoleFolder(config.dataDir).usersFile);
  for (const [name, pw] of Object.entries(PASSWORDS)) await users.add(name, pw);
  await users.setGroup('data-admins', { users: ['dora'] });
  await users.setGroup('viewers', { users: ['vic'] });
  // Enrolled as the registry enrols a PC: the token's hash consumed with the device key the agent presents.
  const tokens: Record<string, string> = {};
  for (const pc of [PC, 'pc-online', 'pc-never', 'pc-twin']) tokens[pc] = /enrolmentToken: (\S+)/.exec(await mydoc(['console', 'pc', 'add', pc, '--config', configFile]))![1]!;
  const store = await openConfiguredStore(config, silent);
  try {
    const der = createPublicKey(devicePublicPem).export({ type: 'spki', format: 'der' });
    const ok = await store.consumeEnrolment(PC, hashEnrolmentToken(tokens[PC]!), createHash('sha256').update(der).digest('hex'), devicePublicPem, Date.now() - 86_400_000);
    assert.deepEqual(ok, { ok: true });
    const other = generateP256KeyPair().publicPem;
    const otherDer = createPublicKey(other).export({ type: 'spki', format: 'der' });
    assert.deepEqual(await store.consumeEnrolment('pc-online', hashEnrolmentToken(tokens['pc-online']!), createHash('sha256').update(otherDer).digest('hex'), other, Date.now()), { ok: true });
    await store.touchPresence([{ pcId: 'pc-online', at: Date.now() }]);
    const twin = generateP256KeyPair().publicPem;
    const twinDer = createPublicKey(twin).export({ type: 'spki', format: 'der' });
    assert.deepEqual(await store.consumeEnrolment('pc-twin', hashEnrolmentToken(tokens['pc-twin']!), createHash('sha256').update(twinDer).digest('hex'), twin, Date.now() - 86_400_000), { ok: true });
  } finally {
    await store.close();
  }
  await agent.stop(); // the PC is lost: only its backup is left
  base = `https://127.0.0.1:${port}`;
  ca = await readFile(consoleFolder(config.dataDir).tls.caFile, 'utf8');
  daemon = await launchDaemon({
    name: 'mydoc console serve',
    command: process.execPath,
    args: [MYDOC_BIN, 'console', 'serve', '--config', configFile],
    env: { ...process.env, MYDOC_CONFIG: '', MYDOC_CONSOLE_CONFIG: '' },
    ready: async () => (await get(new Browser(), '/healthz').catch(() => ({ status: 0 }))).status === 200,
    readyTimeoutMs: 20_000,
    where: base,
    graceMs: 5000,
  });
});

after(async () => {
  if (daemon) await stopDaemon(daemon, 5000);
  await agent?.stop();
  await cleanupConsole?.();
  if (nasDir) await rm(nasDir, { recursive: true, force: true });
});

/** A browser's cookie jar (one web session). */
class Browser {
  cookies = new Map<string, string>();
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function send(b: Browser, method: string, path: string, form?: Record<string, string>): Promise<Answer> {
  const body = form ? new URLSearchParams(form).toString() : undefined;
  return new Promise((resolve, reject) => {
    const req = https.request(
      new URL(path, base),
      {
        method,
        ca,
        headers: {
          ...(b.cookies.size ? { cookie: [...b.cookies].map(([k, v]) => `${k}=${v}`).join('; ') } : {}),
          ...(body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } : {}),
        },
      },
      (res) => {
        for (const c of ([] as string[]).concat(res.headers['set-cookie'] ?? [])) {
          const [pair] = c.split(';');
          const eq = pair!.indexOf('=');
          const value = pair!.slice(eq + 1);
          if (value === '' || /Max-Age=0|Expires=Thu, 01 Jan 1970/i.test(c)) b.cookies.delete(pair!.slice(0, eq));
          else b.cookies.set(pair!.slice(0, eq), value);
        }
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
const get = (b: Browser, path: string) => send(b, 'GET', path);
const csrfOf = (page: string) => /name="csrf" value="([^"]+)"/.exec(page)?.[1] ?? '';

async function login(who: Admin): Promise<Browser> {
  const b = new Browser();
  const form = await get(b, '/admin/login');
  const r = await send(b, 'POST', '/admin/login', { csrf: csrfOf(form.body), name: who, password: PASSWORDS[who] });
  assert.equal(r.status, 303, r.body);
  return b;
}

async function trail(): Promise<{ actor: string; action: string; target?: string; decision: string; reason?: string }[]> {
  const text = await readFile(join(consoleDir, 'data', 'audit', 'audit.log'), 'utf8');
  return text.trimEnd().split('\n').map((l) => JSON.parse(l));
}

const PAGE = `/admin/pcs/${PC}/recovery`;

async function postKey(b: Browser, pem: string, csrf?: string): Promise<Answer> {
  const page = await get(b, PAGE);
  return send(b, 'POST', `${PAGE}/key`, { csrf: csrf ?? csrfOf(page.body), key: pem });
}

test('a viewer, an online PC and a PC never enrolled are refused, in the trail', async () => {
  const vic = await login('vic');
  const viewer = await get(vic, PAGE);
  assert.equal(viewer.status, 403);
  assert.match(viewer.body, /needs the data role/);
  const dora = await login('dora');
  const online = await get(dora, '/admin/pcs/pc-online/recovery');
  assert.equal(online.status, 409);
  assert.match(online.body, /PC pc-online is online/);
  const never = await get(dora, '/admin/pcs/pc-never/recovery');
  assert.equal(never.status, 409);
  assert.match(never.body, /never enrolled/);
  assert.equal((await get(dora, '/admin/pcs/nope/recovery')).status, 404);
  const lines = await trail();
  assert.ok(lines.some((l) => l.actor === 'vic' && l.action === 'recovery.view' && l.target === PC && l.decision === 'deny' && l.reason === 'ERR_WEB_ROLE'));
  assert.ok(lines.some((l) => l.actor === 'dora' && l.action === 'recovery.view' && l.target === 'pc-online' && l.decision === 'deny' && l.reason === 'ERR_RECOVERY_ONLINE'));
  assert.ok(lines.some((l) => l.actor === 'dora' && l.action === 'recovery.view' && l.target === 'pc-never' && l.decision === 'deny' && l.reason === 'ERR_RECOVERY_NOT_ENROLLED'));
  // The PC page links to the view for a data administrator.
  assert.match((await get(dora, `/admin/pcs/${PC}`)).body, /id="recovery-link"/);
  assert.doesNotMatch((await get(vic, `/admin/pcs/${PC}`)).body, /id="recovery-link"/);
});

test('bad pastes, a wrong key and a POST without the CSRF token are refused; the form stays', async () => {
  const dora = await login('dora');
  const form = await get(dora, PAGE);
  assert.equal(form.status, 200);
  assert.match(form.body, /<form method="post" action="\/admin\/pcs\/pc-lost\/recovery\/key" id="recovery-key">/);
  assert.match(form.body, /never written to its disk/);
  const garbage = await postKey(dora, 'not a key at all');
  assert.equal(garbage.status, 400);
  assert.doesNotMatch(garbage.body, /not a key at all/, 'what was pasted is not echoed');
  const rsa = await postKey(dora, '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
  assert.equal(rsa.status, 400);
  const noCsrf = await postKey(dora, recoveryPem, 'forged');
  assert.equal(noCsrf.status, 403);
  assert.match(noCsrf.body, /CSRF/);
  assert.match((await get(dora, PAGE)).body, /id="recovery-key"/, 'no key is held after a forged POST');

  const wrong = await postKey(dora, generateP256KeyPair().privatePem);
  assert.equal(wrong.status, 303, 'a P-256 key is taken');
  const refused = await get(dora, PAGE);
  assert.equal(refused.status, 403);
  assert.match(refused.body, /not the recovery key/);
  assert.match((await get(dora, PAGE)).body, /id="recovery-key"/, 'the wrong key was dropped');
  const lines = await trail();
  assert.ok(lines.some((l) => l.actor === 'dora' && l.action === 'recovery.key' && l.decision === 'deny' && l.reason === 'ERR_RECOVERY_KEY'));
  assert.ok(lines.some((l) => l.actor === 'dora' && l.action === 'recovery.key' && l.decision === 'deny' && l.reason === 'ERR_WEB_CSRF'));
  assert.ok(lines.some((l) => l.actor === 'dora' && l.action === 'recovery.view' && l.decision === 'deny' && l.reason === 'ERR_SLOT_OPEN'));
});

test('with the recovery key the page shows the latest snapshot tree; only this session holds it; forget and logout drop it; it is never on disk', async () => {
  const dora = await login('dora');
  const held = await postKey(dora, recoveryPem);
  assert.equal(held.status, 303);
  assert.equal(held.headers.location, `${PAGE}?done=held`);
  const view = await get(dora, `${PAGE}?done=held`);
  assert.equal(view.status, 200, view.body);
  const snapshot = /id="snapshot">([^<]+)</.exec(view.body)?.[1];
  assert.equal(`${snapshot}.json`, nasSnapshots.at(-1), `the latest of ${nasSnapshots.join(', ')}`);
  const rows = [...view.body.matchAll(/<tr data-path="([^"]+)"><td>(?:<span class="mono">[^<]*<\/span>)?(?:<strong>)?([^<]+)(?:<\/strong>)?<\/td><td class="num">([^<]*)<\/td><td>([^<]*)<\/td><\/tr>/g)].map((m) => [m[1], m[2], m[3]]);
  const byPath = new Map(rows.map((r) => [r[0], r]));
  assert.deepEqual(byPath.get('/alice/Documents/report.txt'), ['/alice/Documents/report.txt', 'report.txt', '17 B']);
  assert.deepEqual(byPath.get('/alice/Documents/Projects/Tom &amp; Jerry&#39;s notes.md'), ['/alice/Documents/Projects/Tom &amp; Jerry&#39;s notes.md', 'Tom &amp; Jerry&#39;s notes.md', '4.9 KiB']);
  assert.deepEqual(byPath.get('/alice/Documents/Projects'), ['/alice/Documents/Projects', 'Projects/', '']);
  assert.deepEqual(byPath.get('/alice/Desktop/todo.txt'), ['/alice/Desktop/todo.txt', 'todo.txt', '8 B']);
  assert.doesNotMatch(view.body, /Tom & Jerry's/, 'names are escaped');
  assert.match(view.body, /\d{4}-\d\d-\d\d \d\d:\d\d UTC/);

  // Manifests not signed by the device key the console pinned for the PC are refused.
  const twin = await get(dora, '/admin/pcs/pc-twin/recovery');
  assert.equal(twin.status, 502, twin.body);
  assert.match(twin.body, /wrongly signed/);
  assert.ok((await trail()).some((l) => l.action === 'recovery.view' && l.target === 'pc-twin' && l.decision === 'deny' && l.reason === 'ERR_BACKUP_SIGNATURE'));

  // Another session of the same administrator holds no key.
  const other = await login('dora');
  assert.match((await get(other, PAGE)).body, /id="recovery-key"/);

  // Forget: the form again.
  const page = await get(dora, PAGE);
  assert.equal((await send(dora, 'POST', `${PAGE}/forget`, { csrf: csrfOf(page.body) })).status, 303);
  assert.match((await get(dora, PAGE)).body, /id="recovery-key"/);
  // Logout drops it too: held again, log out, log in: the form.
  assert.equal((await postKey(dora, recoveryPem)).status, 303);
  assert.match((await get(dora, PAGE)).body, /id="snapshot"/);
  const before = await get(dora, PAGE);
  assert.equal((await send(dora, 'POST', '/admin/logout', { csrf: csrfOf(before.body) })).status, 303);
  assert.equal((await get(dora, PAGE)).status, 303, 'logged out: to the login');
  const again = await login('dora');
  assert.match((await get(again, PAGE)).body, /id="recovery-key"/);

  const lines = await trail();
  assert.ok(lines.some((l) => l.actor === 'dora' && l.action === 'recovery.key' && l.target === PC && l.decision === 'allow'));
  assert.ok(lines.some((l) => l.actor === 'dora' && l.action === 'recovery.view' && l.target === PC && l.decision === 'allow' && l.reason?.startsWith(`snapshot ${snapshot} listed`)));
  assert.ok(lines.some((l) => l.actor === 'dora' && l.action === 'recovery.forget' && l.target === PC));

  // The key's bytes (its PEM body, its DER, its private scalar) are in no file of the console's folder.
  const key = createPrivateKey(recoveryPem);
  const der = key.export({ type: 'pkcs8', format: 'der' });
  const d = Buffer.from(key.export({ format: 'jwk' }).d!, 'base64url');
  const pemBody = recoveryPem.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
  // Every P-256 PKCS#8 PEM starts alike: the slices are taken after that common prefix (the private scalar's base64).
  const secretPart = pemBody.slice(48, 88);
  const needles = [der, d, Buffer.from(pemBody), Buffer.from(secretPart), Buffer.from(encodeURIComponent(secretPart))];
  const files = await listFiles(consoleDir);
  assert.ok(files.length > 5, files.join(' '));
  for (const file of files) {
    const bytes = await readFile(file).catch(() => Buffer.alloc(0));
    for (const needle of needles) assert.equal(bytes.indexOf(needle), -1, `key bytes in ${file}`);
  }
  assert.ok(!daemon.output().includes(secretPart), 'not in the console log either');
});

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}
