/**
 * The user's access notices on their own drive and page, through the real
 * agent app (test/helpers/takeout.ts: composeAgent as `mydoc serve` builds
 * it) listening on 127.0.0.1 over HTTPS, driven by curl and rclone:
 * `Access notices.txt` is listed at the root, its GET gives the notices
 * newest first, every change to it (PUT, DELETE, MOVE, COPY onto it,
 * PROPPATCH, MKCOL of its name, any case) is refused 403 and it stays as it
 * was; the user page lists the same notices, escaped. The notices are put
 * in the user's vault as the link does (Vault.addNotice).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dataFolder } from '../shares/data-folder.js';
import type { AccessNotice } from '../shares/vault/notices.js';
import { runCommand } from './helpers/server.js';
import { startTakeoutFixture, type TakeoutFixture } from './helpers/takeout.js';

let f: TakeoutFixture;
let base: string;
let caFile: string;
let scratch: string;

const T0 = Date.UTC(2026, 11, 2, 16, 47, 5);
const NOTICES: AccessNotice[] = [
  { time: T0, actor: 'dave', kind: 'admin', via: 'role data', method: 'PROPFIND', path: '/Documents', requestId: 'req-one', decision: 'allow' },
  { time: T0 + 60_000, actor: 'dave', kind: 'admin', via: 'role data', method: 'GET', path: '/Documents/pay <slip>.pdf', requestId: 'req-two', decision: 'allow' },
  { time: T0 + 120_000, actor: 'bob', kind: 'share', via: 'share rule r-7', method: 'PUT', path: '/Documents/Team/notes.txt', requestId: 'req-three', decision: 'deny' },
];

before(async () => {
  f = await startTakeoutFixture();
  await f.app.listen({ host: '127.0.0.1', port: 0 });
  base = `https://127.0.0.1:${(f.app.server.address() as AddressInfo).port}`;
  caFile = dataFolder(f.config.dataDir).tls.caFile;
  scratch = await mkdtemp(join(tmpdir(), 'mydoc-notices-'));
  const { vault } = await f.sessions.get('alice');
  await vault.write('/Documents/mine.txt', ['my own file']);
  for (const n of NOTICES) vault.addNotice(n);
});

after(async () => {
  await f?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** curl as alice (or `user`), trusting only the agent's CA; the status on the last line of stdout. */
async function curl(method: string, path: string, extra: string[] = [], user = 'alice') {
  const r = await runCommand('curl', ['-sS', '--cacert', caFile, '-u', `${user}:${f.passwords[user as 'alice']}`, '-X', method, '-w', '\n%{http_code}', ...extra, `${base}${path}`], { timeoutMs: 30_000 });
  assert.equal(r.status, 0, `curl ${method} ${path}: ${r.stderr}`);
  const cut = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(cut + 1)), body: r.stdout.slice(0, cut) };
}

const FILE = '/Access%20notices.txt';

test('PROPFIND of the root lists the notice file, read-only, beside the areas', async () => {
  const r = await curl('PROPFIND', '/', ['-H', 'Depth: 1', '-H', 'Content-Type: application/xml', '--data', '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>']);
  assert.equal(r.status, 207);
  const hrefs = [...r.body.matchAll(/<D:href>([^<]*)<\/D:href>/g)].map((m) => m[1]);
  assert.ok(hrefs.includes(FILE), `hrefs: ${hrefs.join(' ')}`);
  for (const area of ['/Documents/', '/Desktop/', '/Profile/']) assert.ok(hrefs.includes(area), area);
  const block = r.body.split('<D:response>').find((b) => b.includes(`<D:href>${FILE}</D:href>`))!;
  const text = (await curl('GET', FILE)).body;
  assert.match(block, new RegExp(`<D:getcontentlength>${Buffer.byteLength(text)}</D:getcontentlength>`));
  assert.match(block, /Win32FileAttributes>00000021</, block);
  // Not in the areas: only at the root.
  const docs = await curl('PROPFIND', '/Documents/', ['-H', 'Depth: 1']);
  assert.equal(docs.status, 207);
  assert.doesNotMatch(docs.body, /Access%20notices/);
});

test('GET gives the notices newest first, one line each: time UTC, who and as what, what, path, request id', async () => {
  const r = await runCommand('curl', ['-sS', '--cacert', caFile, '-u', `alice:${f.passwords.alice}`, '-D', '-', `${base}${FILE}`], { timeoutMs: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const cut = r.stdout.indexOf('\r\n\r\n');
  const head = r.stdout.slice(0, cut);
  const body = r.stdout.slice(cut + 4);
  assert.match(head, /^HTTP\/1\.1 200/);
  const lines = body.split('\r\n').filter((l) => l.includes('\t'));
  assert.deepEqual(lines, [
    '2026-12-02 16:49:05 UTC\tbob (share grantee, share rule r-7)\twrote /Documents/Team/notes.txt (refused)\trequest req-three',
    '2026-12-02 16:48:05 UTC\tdave (administrator, role data)\tread /Documents/pay <slip>.pdf\trequest req-two',
    '2026-12-02 16:47:05 UTC\tdave (administrator, role data)\tlisted /Documents\trequest req-one',
  ]);
  assert.match(body, /^Accesses to your documents by administrators and share grantees, newest first/);
  // A range of it, as Explorer's copy engine asks.
  const part = await curl('GET', FILE, ['-H', 'Range: bytes=0-7']);
  assert.equal(part.status, 206);
  assert.equal(part.body, 'Accesses');
  // Case-insensitive, as every name in the vault.
  assert.equal((await curl('GET', '/ACCESS%20NOTICES.TXT')).status, 200);
});

test('every change to the notice file is refused 403, and it stays as it was', async () => {
  const before = (await curl('GET', FILE)).body;
  const attempts: [string, string, string[]][] = [
    ['PUT', FILE, ['--data-binary', 'nothing happened']],
    ['PUT', '/access%20NOTICES.txt', ['--data-binary', 'nothing happened']],
    ['DELETE', FILE, []],
    ['MOVE', FILE, ['-H', `Destination: ${base}/Documents/hidden.txt`]],
    ['COPY', FILE, ['-H', `Destination: ${base}/Documents/copy.txt`]],
    ['MOVE', '/Documents/mine.txt', ['-H', `Destination: ${base}${FILE}`, '-H', 'Overwrite: T']],
    ['COPY', '/Documents/mine.txt', ['-H', `Destination: ${base}${FILE}`, '-H', 'Overwrite: T']],
    // The file exists: MKCOL of its name is 405 (RFC 4918 9.3.1), and nothing is made.
    ['MKCOL', FILE, []],
    ['MKCOL', '/ACCESS%20NOTICES.TXT', []],
    [
      'PROPPATCH',
      FILE,
      ['-H', 'Content-Type: application/xml', '--data', '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop><Z:Win32FileAttributes>00000000</Z:Win32FileAttributes></D:prop></D:set></D:propertyupdate>'],
    ],
  ];
  for (const [method, path, extra] of attempts) {
    const r = await curl(method, path, extra);
    assert.equal(r.status, method === 'MKCOL' ? 405 : 403, `${method} ${path}: ${r.status} ${r.body}`);
    if (method !== 'MKCOL') assert.match(r.body, /cannot be changed, replaced, moved or deleted/);
  }
  assert.equal((await curl('GET', FILE)).body, before);
  assert.equal((await curl('GET', '/Documents/mine.txt')).body, 'my own file');
  for (const gone of ['/Documents/hidden.txt', '/Documents/copy.txt']) assert.equal((await curl('GET', gone)).status, 404, gone);
  // The vault itself has no file of that name (the virtual one stays the only one).
  const { vault } = await f.sessions.get('alice');
  assert.equal(vault.stat('/Access notices.txt'), undefined);
});

test('rclone sees the notice file, reads it, and cannot delete or replace it', async () => {
  const configFile = join(scratch, 'rclone.conf');
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^RCLONE_/i.test(k) && !/_proxy$/i.test(k)) env[k] = v;
  const obscured = await runCommand('rclone', ['obscure', f.passwords.alice], { env });
  assert.equal(obscured.status, 0, obscured.stderr);
  const flags = ['--config', configFile, '--ca-cert', caFile, '--webdav-url', `${base}/`, '--webdav-vendor', 'other', '--webdav-user', 'alice', '--webdav-pass', obscured.stdout.trim(), '--retries', '1', '--low-level-retries', '1'];
  const rclone = (args: string[]) => runCommand('rclone', [...args, ...flags], { env, timeoutMs: 60_000 });
  const ls = await rclone(['lsf', ':webdav:']);
  assert.equal(ls.status, 0, ls.stderr);
  assert.deepEqual(ls.stdout.trim().split('\n').sort(), ['Access notices.txt', 'Desktop/', 'Documents/', 'Profile/']);
  const cat = await rclone(['cat', ':webdav:Access notices.txt']);
  assert.equal(cat.status, 0, cat.stderr);
  assert.match(cat.stdout, /\trequest req-two\r\n/);
  const del = await rclone(['deletefile', ':webdav:Access notices.txt']);
  assert.notEqual(del.status, 0, 'rclone deletefile must fail');
  const local = join(scratch, 'fake.txt');
  await import('node:fs/promises').then((fs) => fs.writeFile(local, 'fake notices'));
  const put = await rclone(['copyto', local, ':webdav:Access notices.txt']);
  assert.notEqual(put.status, 0, 'rclone copyto over it must fail');
  const again = await rclone(['cat', ':webdav:Access notices.txt']);
  assert.equal(again.stdout, cat.stdout);
  assert.equal(await readFile(local, 'utf8'), 'fake notices');
});

test('the user page lists the notices newest first (who, when, what), escaped', async () => {
  const r = await curl('GET', '/', ['-H', 'Accept: text/html']);
  assert.equal(r.status, 200);
  const section = r.body.slice(r.body.indexOf('<section id="notices">'));
  assert.match(section, /<h2>Access notices<\/h2>/);
  const rows = [...section.matchAll(/<tr( class="deny")?><td>([^<]*)<\/td><td>([^<]*)<\/td><td>([^<]*)<\/td><td>([^<]*)<\/td><\/tr>/g)].map((m) => [m[1] ? 'deny' : 'allow', m[2], m[3], m[4], m[5]]);
  assert.deepEqual(rows, [
    ['deny', '2026-12-02 16:49:05 UTC', 'bob (share grantee, share rule r-7)', 'wrote /Documents/Team/notes.txt (refused)', 'req-three'],
    ['allow', '2026-12-02 16:48:05 UTC', 'dave (administrator, role data)', 'read /Documents/pay &#60;slip&#62;.pdf', 'req-two'],
    ['allow', '2026-12-02 16:47:05 UTC', 'dave (administrator, role data)', 'listed /Documents', 'req-one'],
  ]);
  assert.doesNotMatch(r.body, /<slip>/);
  // Another user sees only their own (none).
  const bob = await curl('GET', '/', ['-H', 'Accept: text/html'], 'bob');
  assert.equal(bob.status, 200);
  assert.match(bob.body, /No administrator or share grantee has accessed your documents/);
  assert.doesNotMatch(bob.body, /req-two/);
  const bobFile = await curl('GET', FILE, [], 'bob');
  assert.equal(bobFile.status, 200);
  assert.doesNotMatch(bobFile.body, /\t/);
});
