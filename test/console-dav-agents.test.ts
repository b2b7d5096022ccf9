/**
 * The console's /pcs WebDAV end to end, with real processes (a console and
 * two agents with their own vaults, test/helpers/console-fleet.ts): an
 * administrator with the data role reads a file on each PC through the
 * console and the bytes match; a PROPFIND answers with hrefs under the
 * console's /pcs path; the console's trail and the agent's audit log name
 * the administrator with the same request id; rclone copies a user's tree
 * through the console and `rclone check` finds no difference; the web
 * page's file browser (Chromium) lists folders with sizes and downloads a
 * file; a client that goes away mid-download leaves the console serving.
 * With the two-person rule on (`access.approvals: 1`, nothing approved),
 * contents are refused at the console while names and sizes are listed
 * (the agent accepts the `list` grant for PROPFIND).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, readdir, mkdir } from 'node:fs/promises';
import https from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { launchBrowser } from './helpers/browser.js';
import { startConsoleFleet, type ConsoleFleet } from './helpers/console-fleet.js';
import { tempDir } from './helpers/keys.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function hrefs(xml: string): string[] {
  return [...xml.matchAll(/<D:href>([^<]*)<\/D:href>/g)].map((m) => m[1]!);
}

async function put(fleet: ConsoleFleet, pcId: string, user: string, path: string, body: Buffer): Promise<void> {
  const res = await fleet.agentRequest(pcId, user, 'PUT', path, { body });
  assert.ok(res.status === 201 || res.status === 204, `PUT ${path} on ${pcId}: ${res.status}`);
}

async function mkcol(fleet: ConsoleFleet, pcId: string, user: string, path: string): Promise<void> {
  const res = await fleet.agentRequest(pcId, user, 'MKCOL', path);
  assert.equal(res.status, 201, `MKCOL ${path} on ${pcId}`);
}

describe('console /pcs through real agents', { timeout: 300_000 }, () => {
  let fleet: ConsoleFleet;
  const files: Record<string, Buffer> = {
    'report.txt': Buffer.from('quarterly report\n'),
    'sub/deep.bin': randomBytes(1024 * 1024 + 17),
    'Été #1 & co.txt': Buffer.from('names with spaces, accents, # and &\n'),
  };
  let carol: Buffer;
  let big: Buffer;

  before(async () => {
    fleet = await startConsoleFleet();
    await mkcol(fleet, 'pc-1', 'alice', '/Documents/sub/');
    for (const [name, body] of Object.entries(files)) await put(fleet, 'pc-1', 'alice', `/Documents/${name.split('/').map(encodeURIComponent).join('/')}`, body);
    carol = randomBytes(300_000);
    await put(fleet, 'pc-2', 'carol', '/Documents/carol.bin', carol);
    big = randomBytes(64 * 1024 * 1024);
    await put(fleet, 'pc-1', 'bob', '/Documents/big.bin', big);
  });
  after(async () => {
    await fleet?.stop();
  });

  it('reads a file on each PC through the console: the bytes match, both logs name the administrator with one request id', async () => {
    const dana = fleet.admin('data');
    const one = await fleet.consoleRequest('GET', '/pcs/pc-1/alice/Documents/sub/deep.bin', { as: dana });
    assert.equal(one.status, 200, one.body.toString().slice(0, 300));
    assert.equal(sha(one.body), sha(files['sub/deep.bin']!));
    const two = await fleet.consoleRequest('GET', '/pcs/pc-2/carol/Documents/carol.bin', { as: dana });
    assert.equal(two.status, 200);
    assert.equal(sha(two.body), sha(carol));
    const ranged = await fleet.consoleRequest('GET', '/pcs/pc-2/carol/Documents/carol.bin', { as: dana, headers: { range: 'bytes=10-19' } });
    assert.equal(ranged.status, 206);
    assert.deepEqual(ranged.body, carol.subarray(10, 20));

    const trail = (await fleet.consoleTrail()).filter((r) => r.action === 'data.access' && r.actor === dana.name && r.decision === 'allow');
    const line = trail.find((r) => r.target === 'pc-1/alice/Documents/sub/deep.bin');
    assert.ok(line, JSON.stringify(trail));
    const id = /^GET 200 request (\S+) role data$/.exec(line.reason ?? '')?.[1];
    assert.ok(id, line.reason);
    const agent = await fleet.agentAudit('pc-1');
    const mine = agent.find((r) => (r.reason ?? '').includes(`request ${id}`));
    assert.ok(mine, 'the agent logged the same request id');
    assert.equal(mine.actor, `${dana.name} (console administrator)`);
    assert.equal(mine.action, 'admin.access');
    assert.equal(mine.target, 'alice');
    assert.doesNotMatch(JSON.stringify(agent), /deep\.bin/, 'no file name in the agent\'s plaintext log');
    assert.ok((await fleet.agentAudit('pc-2')).some((r) => r.actor === `${dana.name} (console administrator)` && r.target === 'carol'));
  });

  it('PROPFIND answers with hrefs under /pcs, names encoded once', async () => {
    const res = await fleet.consoleRequest('PROPFIND', '/pcs/pc-1/alice/Documents/', { as: fleet.admin('data'), headers: { depth: '1' } });
    assert.equal(res.status, 207, res.body.toString().slice(0, 300));
    const got = hrefs(res.body.toString());
    assert.ok(got.includes('/pcs/pc-1/alice/Documents/'), got.join(' '));
    assert.ok(got.includes('/pcs/pc-1/alice/Documents/report.txt'));
    assert.ok(got.includes('/pcs/pc-1/alice/Documents/sub/'));
    assert.ok(got.includes(`/pcs/pc-1/alice/Documents/${encodeURIComponent('Été #1 & co.txt')}`.replace(/&/g, '&amp;')), got.join(' '));
    const root = await fleet.consoleRequest('PROPFIND', '/pcs/pc-1/alice/', { as: fleet.admin('data'), headers: { depth: '1' } });
    assert.equal(root.status, 207);
    assert.ok(hrefs(root.body.toString()).includes('/pcs/pc-1/alice/Documents/'));
  });

  it('rclone copies a user\'s tree through the console and rclone check finds no difference', async () => {
    const { dir, cleanup } = await tempDir('mydoc-rclone-');
    try {
      const remote = { url: `${fleet.url}/pcs/pc-1/alice/`, caFile: fleet.caFile };
      const local = join(dir, 'copy');
      await mkdir(local);
      const copy = await fleet.rclone(fleet.admin('data'), ['copy', ':webdav:Documents', local], remote);
      assert.equal(copy.status, 0, copy.stderr);
      const check = await fleet.rclone(fleet.admin('data'), ['check', ':webdav:Documents', local], remote);
      assert.equal(check.status, 0, check.stderr);
      for (const [name, body] of Object.entries(files)) assert.equal(sha(await readFile(join(local, name))), sha(body), name);
      assert.deepEqual((await readdir(local)).sort(), ['report.txt', 'sub', 'Été #1 & co.txt'].sort());
    } finally {
      await cleanup();
    }
  });

  it('a client that goes away mid-download leaves the console serving', async () => {
    const dana = fleet.admin('data');
    await new Promise<void>((resolve, reject) => {
      const req = https.request(`${fleet.url}/pcs/pc-1/bob/Documents/big.bin`, { ca: fleet.caPem, agent: false, headers: { authorization: `Basic ${Buffer.from(`${dana.name}:${dana.password}`).toString('base64')}` } }, (res) => {
        assert.equal(res.statusCode, 200);
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', (err) => (req.destroyed ? resolve() : reject(err)));
      req.end();
    });
    const again = await fleet.consoleRequest('GET', '/pcs/pc-1/bob/Documents/big.bin', { as: dana });
    assert.equal(again.status, 200);
    assert.equal(sha(again.body), sha(big));
  });

  it('the web page\'s file browser lists folders with sizes and dates and downloads a file (Chromium)', async () => {
    const dana = fleet.admin('data');
    const browser = await launchBrowser(fleet.certPem);
    try {
      const page = await browser.context.newPage();
      await page.goto(`${fleet.url}/admin/login`);
      await page.fill('#name', dana.name);
      await page.fill('#password', dana.password);
      await Promise.all([page.waitForURL(/\/admin\/pcs$/), page.click('button[type=submit]')]);
      await page.goto(`${fleet.url}/admin/pcs/pc-1`);
      await Promise.all([page.waitForURL(/\/files\/alice\/$/), page.click('dd.files a:text("alice")')]);
      await Promise.all([page.waitForURL(/\/files\/alice\/Documents\/$/), page.click('#files a:text("Documents/")')]);
      const rows = await page.locator('#files tbody tr').allInnerTexts();
      assert.ok(rows.some((r) => r.startsWith('sub/')), rows.join('|'));
      assert.ok(rows.some((r) => r.startsWith('report.txt') && r.includes('17 B') && /UTC/.test(r)), rows.join('|'));
      assert.ok(rows.some((r) => r.startsWith('Été #1 & co.txt')), rows.join('|'));
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#files a:text("Été #1 & co.txt")')]);
      const saved = await readFile((await download.path())!);
      assert.deepEqual(saved, files['Été #1 & co.txt']);
      assert.equal(download.suggestedFilename(), 'Été #1 & co.txt');
      await Promise.all([page.waitForURL(/\/sub\/$/), page.click('#files a:text("sub/")')]);
      assert.match(await page.locator('#files').innerText(), /deep\.bin\s+1\.0 MiB/);
    } finally {
      await browser.close();
    }
    const trail = await fleet.consoleTrail();
    assert.ok(trail.some((r) => r.actor === dana.name && r.target === 'pc-1/alice/Documents' && /^PROPFIND 207 request \S+ role data \(web page\)$/.test(r.reason ?? '')));
    assert.ok(trail.some((r) => r.actor === dana.name && r.target === 'pc-1/alice/Documents/Été #1 & co.txt' && /^GET 200 request /.test(r.reason ?? '')));
  });
});

describe('console /pcs with the two-person rule on', { timeout: 240_000 }, () => {
  let fleet: ConsoleFleet;

  before(async () => {
    fleet = await startConsoleFleet({ pcs: [{ pcId: 'pc-1', users: ['alice'] }], consoleConfig: ['access: { approvals: 1, maxHours: 8 }'] });
    const res = await fleet.agentRequest('pc-1', 'alice', 'PUT', '/Documents/secret.txt', { body: 'not yet' });
    assert.ok(res.status === 201 || res.status === 204);
  });
  after(async () => {
    await fleet?.stop();
  });

  it('refuses contents before an approval (audited) and lists names and sizes', async () => {
    const dana = fleet.admin('data');
    const get = await fleet.consoleRequest('GET', '/pcs/pc-1/alice/Documents/secret.txt', { as: dana });
    assert.equal(get.status, 403);
    assert.match(get.body.toString(), /needs an access request approved by another administrator/);
    const list = await fleet.consoleRequest('PROPFIND', '/pcs/pc-1/alice/Documents/', { as: dana, headers: { depth: '1' } });
    assert.equal(list.status, 207, list.body.toString().slice(0, 300));
    assert.match(list.body.toString(), /secret\.txt/);
    assert.match(list.body.toString(), /<D:getcontentlength>7<\/D:getcontentlength>/);
    const trail = await fleet.consoleTrail();
    assert.ok(trail.some((r) => r.actor === dana.name && r.target === 'pc-1/alice/Documents/secret.txt' && r.decision === 'deny' && /no approved access request/.test(r.reason ?? '')));
    const web = await fleet.webSession(dana);
    assert.equal((await web.get('/admin/pcs/pc-1/download/alice/Documents/secret.txt')).status, 403);
    const page = await web.get('/admin/pcs/pc-1/files/alice/Documents/');
    assert.equal(page.status, 200);
    assert.match(page.body.toString(), /secret\.txt/);
  });
});
