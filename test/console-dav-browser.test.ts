/**
 * The console's side of /pcs and of the web page's file browser with a real
 * console process (test/helpers/console-fleet.ts) and a PC whose agent end
 * is scripted (test/helpers/scripted-agent.ts: enrolled with a real token,
 * linked, grants verified with the console key it was welcomed with). What
 * the console signs is checked exactly (kind, role, actor, user, base, root,
 * prefix, method, access); the file browser in Chromium lists folders with
 * sizes and dates, escapes a hostile file name (no script runs), and
 * downloads a file as an attachment; an agent's refusal is relayed with its
 * status and audited.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { ServerHttp2Stream } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { decodePath, encodeHref } from '../shares/webdav/paths.js';
import { escapeXml } from '../shares/webdav/xml.js';
import { launchBrowser } from './helpers/browser.js';
import { startConsoleFleet, type ConsoleFleet } from './helpers/console-fleet.js';
import { tempDir } from './helpers/keys.js';
import { dialScriptedAgent, type ScriptedAgent } from './helpers/scripted-agent.js';

const HOSTILE = '<img src=x onerror="window.__pwned=1">.txt';
const MODIFIED = 'Tue, 01 Dec 2026 10:00:00 GMT';
const deep = randomBytes(1024 * 1024 + 17);
/** The scripted vault of alice on pc-fake: a folder is null, a file its bytes. */
const TREE = new Map<string, Buffer | null>([
  ['', null],
  ['Documents', null],
  ['Documents/report.txt', Buffer.from('quarterly report\n')],
  ['Documents/sub', null],
  ['Documents/sub/deep.bin', deep],
  [`Documents/${HOSTILE}`, Buffer.from('<script>window.__pwned=2</script>')],
]);

function entryXml(names: string[]): string {
  const value = TREE.get(names.join('/'));
  const isDir = value === null;
  const props = `<D:resourcetype>${isDir ? '<D:collection/>' : ''}</D:resourcetype>${isDir ? '' : `<D:getcontentlength>${value!.length}</D:getcontentlength>`}<D:getlastmodified>${MODIFIED}</D:getlastmodified>`;
  return `<D:response><D:href>${escapeXml(encodeHref(['pcs', 'pc-fake', 'alice', ...names], isDir))}</D:href><D:propstat><D:prop>${props}</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>`;
}

/** A WebDAV answer from the scripted tree (PROPFIND Depth 0/1, GET, HEAD). */
function answerFromTree(stream: ServerHttp2Stream, method: string, path: string, depth: string | undefined): void {
  const names = decodePath(path).slice(3);
  const key = names.join('/');
  if (!TREE.has(key)) {
    stream.respond({ ':status': 404, 'content-type': 'text/plain' });
    return void stream.end('not found\n');
  }
  const value = TREE.get(key)!;
  stream.resume();
  if (method === 'PROPFIND') {
    const children = depth === '0' || value !== null ? [] : [...TREE.keys()].filter((k) => k !== key && k.startsWith(key === '' ? '' : `${key}/`) && !k.slice(key === '' ? 0 : key.length + 1).includes('/') && k !== '');
    const xml = `<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">${entryXml(names)}${children.map((c) => entryXml(c.split('/'))).join('')}</D:multistatus>`;
    stream.respond({ ':status': 207, 'content-type': 'application/xml; charset=utf-8' });
    return void stream.end(xml);
  }
  if (value === null) {
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    return void stream.end('a folder\n');
  }
  stream.respond({ ':status': 200, 'content-type': 'text/html', 'content-length': String(value.length) });
  stream.end(method === 'HEAD' ? undefined : value);
}

describe('console /pcs and the file browser against a scripted agent end', { timeout: 240_000 }, () => {
  let fleet: ConsoleFleet;
  let agent: ScriptedAgent;
  let cleanup: () => Promise<void>;

  before(async () => {
    fleet = await startConsoleFleet({ pcs: [{ pcId: 'pc-1', users: ['alice'] }] });
    const added = await fleet.mydocConsole(['pc', 'add', 'pc-fake']);
    const token = /enrolmentToken: (\S+)\n/.exec(added.stdout)?.[1];
    assert.ok(token, added.stdout + added.stderr);
    const tmp = await tempDir('mydoc-scripted-');
    cleanup = tmp.cleanup;
    agent = await dialScriptedAgent({ host: '127.0.0.1', port: fleet.linkPort, caPem: fleet.caPem, pcId: 'pc-fake', token, users: ['alice'], dir: tmp.dir });
    agent.dav = (stream, headers) => answerFromTree(stream, headers[':method']!, headers[':path']!.slice('/link/dav'.length), headers.depth as string | undefined);
    await agent.welcomed;
    let listed = '';
    const deadline = Date.now() + 20_000;
    while (!listed.includes('/pcs/pc-fake/alice/') && Date.now() < deadline) {
      listed = (await fleet.consoleRequest('PROPFIND', '/pcs/pc-fake/', { as: fleet.admin('viewer'), headers: { depth: '1' } })).body.toString();
      if (!listed.includes('/pcs/pc-fake/alice/')) await new Promise((r) => setTimeout(r, 200));
    }
    assert.match(listed, /\/pcs\/pc-fake\/alice\//, 'the scripted PC reported its user');
  });
  after(async () => {
    agent?.close();
    await fleet?.stop();
    await cleanup?.();
  });

  it('signs exactly the grant each request needs and relays the agent\'s answer', async () => {
    const dana = fleet.admin('data');
    const before = agent.grants.length;
    const list = await fleet.consoleRequest('PROPFIND', '/pcs/pc-fake/alice/Documents/', { as: dana, headers: { depth: '1' } });
    assert.equal(list.status, 207, list.body.toString());
    assert.match(list.body.toString(), /<D:href>\/pcs\/pc-fake\/alice\/Documents\/report.txt<\/D:href>/);
    const got = await fleet.consoleRequest('GET', '/pcs/pc-fake/alice/Documents/sub/deep.bin', { as: dana });
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, deep);
    const [g1, g2] = agent.grants.slice(before);
    assert.deepEqual(
      { kind: g1!.kind, role: g1!.role, actor: g1!.actor, user: g1!.user, access: g1!.access, method: g1!.method, base: g1!.base, root: g1!.root, prefix: g1!.prefix, pcId: g1!.pcId },
      { kind: 'admin', role: 'data', actor: dana.name, user: 'alice', access: 'read', method: 'PROPFIND', base: '/pcs/pc-fake/alice', root: [], prefix: ['Documents'], pcId: 'pc-fake' },
    );
    assert.equal(g2!.method, 'GET');
    assert.deepEqual(g2!.prefix, ['Documents', 'sub', 'deep.bin']);
    assert.equal(g1!.expires - g1!.issuedAt, 60);
    assert.notEqual(g1!.id, g2!.id);
    const trail = await fleet.consoleTrail();
    assert.ok(trail.some((r) => r.action === 'data.access' && r.actor === dana.name && r.target === 'pc-fake/alice/Documents/sub/deep.bin' && r.reason === `GET 200 request ${g2!.id} role data`));
  });

  it('relays an agent\'s refusal with its status and sentence, audited with its code', async () => {
    const saved = agent.dav;
    agent.dav = (stream) => {
      stream.respond({ ':status': 403, 'content-type': 'application/json' });
      stream.end(JSON.stringify({ error: { code: 'ERR_GRANT_PREFIX', message: 'the path is outside the grant' } }));
    };
    try {
      const res = await fleet.consoleRequest('GET', '/pcs/pc-fake/alice/Documents/report.txt', { as: fleet.admin('data') });
      assert.equal(res.status, 403);
      assert.equal(res.body.toString(), 'the path is outside the grant\n');
    } finally {
      agent.dav = saved;
    }
    const trail = await fleet.consoleTrail();
    assert.ok(trail.some((r) => r.target === 'pc-fake/alice/Documents/report.txt' && r.decision === 'deny' && / ERR_GRANT_PREFIX$/.test(r.reason ?? '')));
  });

  it('the file browser (Chromium) lists folders with sizes and dates, escapes hostile names and downloads attachments', async () => {
    const dana = fleet.admin('data');
    const browser = await launchBrowser(fleet.certPem);
    try {
      const page = await browser.context.newPage();
      await page.goto(`${fleet.url}/admin/login`);
      await page.fill('#name', dana.name);
      await page.fill('#password', dana.password);
      await Promise.all([page.waitForURL(/\/admin\/pcs$/), page.click('button[type=submit]')]);
      await page.goto(`${fleet.url}/admin/pcs/pc-fake`);
      await Promise.all([page.waitForURL(/\/files\/alice\/$/), page.click('dd.files a:text("alice")')]);
      await Promise.all([page.waitForURL(/\/files\/alice\/Documents\/$/), page.click('#files a:text("Documents/")')]);
      const rows = await page.locator('#files tbody tr').allInnerTexts();
      assert.equal(rows[0], '../\t\t', 'the way up first');
      assert.match(rows[1]!, /^sub\/\t—\t2026-12-01 10:00 UTC$/, 'folders before files');
      assert.ok(rows.some((r) => r === 'report.txt\t17 B\t2026-12-01 10:00 UTC'), rows.join(' | '));
      assert.ok(rows.some((r) => r.startsWith(HOSTILE)), 'the hostile name shown as text');
      assert.equal(await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned), undefined, 'no injected script ran');
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#files a:text("report.txt")')]);
      assert.deepEqual(await readFile((await download.path())!), TREE.get('Documents/report.txt'));
      assert.equal(download.suggestedFilename(), 'report.txt');
      await Promise.all([page.waitForURL(/\/sub\/$/), page.click('#files a:text("sub/")')]);
      assert.match(await page.locator('#files').innerText(), /deep\.bin\s+1\.0 MiB/);
    } finally {
      await browser.close();
    }
    // A user's HTML is never served as HTML on the console's origin.
    const web = await fleet.webSession(dana);
    const hostile = await web.get(`/admin/pcs/pc-fake/download/alice/Documents/${encodeURIComponent(HOSTILE)}`);
    assert.equal(hostile.status, 200);
    assert.equal(hostile.headers['content-type'], 'application/octet-stream');
    assert.match(String(hostile.headers['content-disposition']), /^attachment; /);
    assert.match(String(hostile.headers['content-security-policy']), /default-src 'none'/);
    const trail = await fleet.consoleTrail();
    assert.ok(trail.some((r) => r.actor === dana.name && r.target === 'pc-fake/alice/Documents' && /^PROPFIND 207 request \S+ role data \(web page\)$/.test(r.reason ?? '')));
    assert.ok(trail.some((r) => r.actor === dana.name && r.target === 'pc-fake/alice/Documents/report.txt' && /^GET 200 request \S+ role data \(web page\)$/.test(r.reason ?? '')));
  });

  it('the file browser answers a missing folder and an offline PC with a page, never a hang', async () => {
    const web = await fleet.webSession(fleet.admin('data'));
    const missing = await web.get('/admin/pcs/pc-fake/files/alice/Nope/');
    assert.equal(missing.status, 404);
    assert.match(missing.body.toString(), /There is no such folder/);
    agent.close();
    let offline = await web.get('/admin/pcs/pc-fake/files/alice/Documents/');
    for (let i = 0; i < 20 && offline.status !== 503; i++) {
      await new Promise((r) => setTimeout(r, 200));
      offline = await web.get('/admin/pcs/pc-fake/files/alice/Documents/');
    }
    assert.equal(offline.status, 503);
    assert.match(offline.body.toString(), /PC pc-fake is not connected to the console; it was last seen at/);
    assert.ok(offline.ms < 2000, `${offline.ms} ms`);
  });
});
