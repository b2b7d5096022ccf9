/**
 * Known users end to end, with real processes (a console and a real agent,
 * test/helpers/console-fleet.ts): the agent reports only users whose vault
 * is open and keeps no plaintext user names on its disk, so the console
 * remembers every user a PC has reported. After the agent restarts (no
 * session open, its status names nobody), /pcs/<pcId>/ still lists both
 * users, the PC page links both as known but not signed in, a listing
 * below a user reaches the closed vault (the agent opens it for the
 * grant), and under the two-person rule an access request for a user not
 * signed in is accepted, approved, and the file is read through the console
 * with the bytes the user wrote. A user the PC never reported is neither
 * listed nor requestable.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { startConsoleFleet, type ConsoleFleet, type WebSession } from './helpers/console-fleet.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const hrefs = (xml: string): string[] => [...xml.matchAll(/<D:href>([^<]*)<\/D:href>/g)].map((m) => m[1]!);

describe('known users: a PC\'s users stay reachable when their vault is closed', { timeout: 240_000 }, () => {
  let fleet: ConsoleFleet;
  let web: WebSession;
  const bobFile = randomBytes(200_000);

  before(async () => {
    fleet = await startConsoleFleet({ pcs: [{ pcId: 'pc-1', users: ['alice', 'bob'] }], consoleConfig: ['access: { approvals: 1 }'] });
    const put = await fleet.agentRequest('pc-1', 'bob', 'PUT', '/Documents/plan.bin', { body: bobFile });
    assert.ok(put.status === 201 || put.status === 204, `PUT: ${put.status}`);
    web = await fleet.webSession(fleet.admins.root!);
    // Both users signed in now (each used their drive): the page says so.
    const page = (await web.get('/admin/pcs/pc-1')).body.toString();
    assert.match(page, /data-user="alice" data-signed-in="yes"/);
    assert.match(page, /data-user="bob" data-signed-in="yes"/);

    await fleet.restartAgent('pc-1');
    // The new process has no session open: wait until the console has its status naming nobody (online again).
    const deadline = Date.now() + 30_000;
    for (;;) {
      const text = (await web.get('/admin/pcs/pc-1')).body.toString();
      if (/<span class="on">online<\/span>/.test(text) && !text.includes('data-signed-in="yes"')) break;
      if (Date.now() > deadline) throw new Error(`the restarted agent's status did not reach the console:\n${text.slice(0, 3000)}`);
      await sleep(200);
    }
  });
  after(async () => {
    await fleet?.stop();
  });

  it('/pcs/<pcId>/ lists every user the PC has reported, though none is signed in; never another name', async () => {
    const dana = fleet.admin('data');
    const res = await fleet.consoleRequest('PROPFIND', '/pcs/pc-1/', { as: dana, headers: { depth: '1' } });
    assert.equal(res.status, 207, res.body.toString().slice(0, 300));
    assert.deepEqual(hrefs(res.body.toString()).sort(), ['/pcs/pc-1/', '/pcs/pc-1/alice/', '/pcs/pc-1/bob/']);
    // A viewer lists the virtual levels too (names only).
    const viewer = await fleet.consoleRequest('PROPFIND', '/pcs/pc-1/', { as: fleet.admin('viewer'), headers: { depth: '1' } });
    assert.deepEqual(hrefs(viewer.body.toString()).sort(), ['/pcs/pc-1/', '/pcs/pc-1/alice/', '/pcs/pc-1/bob/']);
  });

  it('the PC page links the Files of both users, marked known and not signed in', async () => {
    const page = (await web.get('/admin/pcs/pc-1')).body.toString();
    const files = /<dd class="files">([\s\S]*?)<\/dd>/.exec(page)?.[1] ?? '';
    for (const u of ['alice', 'bob']) {
      assert.ok(files.includes(`href="/admin/pcs/pc-1/files/${u}/"`), `a Files link for ${u}: ${files}`);
      assert.match(files, new RegExp(`data-user="${u}" data-signed-in="no"><a [^>]*>${u}</a> <span class="muted">\\(known, not signed in\\)`));
    }
    // The access request form offers both.
    const form = /<form[^>]*id="access-request"[\s\S]*?<\/form>/.exec(page)?.[0] ?? '';
    assert.match(form, /<option value="alice">/);
    assert.match(form, /<option value="bob">/);
    // The web file browser lists the closed vault (names and sizes need no approval).
    const browsed = await web.get('/admin/pcs/pc-1/files/bob/Documents/');
    assert.equal(browsed.status, 200, browsed.body.toString().slice(0, 500));
    assert.match(browsed.body.toString(), /plan\.bin/);
  });

  it('a closed vault is listed and, after an approved access request, read through the console: the bytes match', async () => {
    const dana = fleet.admin('data');
    const listing = await fleet.consoleRequest('PROPFIND', '/pcs/pc-1/bob/Documents/', { as: dana, headers: { depth: '1' } });
    assert.equal(listing.status, 207, listing.body.toString().slice(0, 300));
    assert.ok(hrefs(listing.body.toString()).includes('/pcs/pc-1/bob/Documents/plan.bin'), listing.body.toString());
    const early = await fleet.consoleRequest('GET', '/pcs/pc-1/bob/Documents/plan.bin', { as: dana });
    assert.equal(early.status, 403, 'contents need an approved request');

    const json = { 'content-type': 'application/json' };
    const asked = await fleet.consoleRequest('POST', '/api/access/requests', { as: dana, headers: json, body: JSON.stringify({ pcId: 'pc-1', user: 'bob', reason: 'lost laptop, case 7', hours: 1 }) });
    assert.equal(asked.status, 201, asked.body.toString());
    const id = (JSON.parse(asked.body.toString()) as { id: string }).id;
    const approved = await fleet.consoleRequest('POST', `/api/access/requests/${id}/approval`, { as: fleet.admin('approver'), headers: json, body: '{}' });
    assert.equal(approved.status, 200, approved.body.toString());

    const read = await fleet.consoleRequest('GET', '/pcs/pc-1/bob/Documents/plan.bin', { as: dana });
    assert.equal(read.status, 200, read.body.toString().slice(0, 300));
    assert.equal(sha(read.body), sha(bobFile));
    const trail = await fleet.consoleTrail();
    assert.ok(trail.some((r) => r.action === 'data.access' && r.actor === dana.name && r.target === 'pc-1/bob/Documents/plan.bin' && r.decision === 'allow' && /^GET 200 /.test(r.reason ?? '')));
  });

  it('a user the PC never reported is neither requestable (a clear refusal) nor listed', async () => {
    const dana = fleet.admin('data');
    const refused = await fleet.consoleRequest('POST', '/api/access/requests', {
      as: dana,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ pcId: 'pc-1', user: 'mallory', reason: 'curious', hours: 1 }),
    });
    assert.equal(refused.status, 404, refused.body.toString());
    assert.match(refused.body.toString(), /PC pc-1 has never reported a user mallory/);
    const res = await fleet.consoleRequest('PROPFIND', '/pcs/pc-1/', { as: dana, headers: { depth: '1' } });
    assert.equal(hrefs(res.body.toString()).some((h) => h.includes('mallory')), false);
  });
});
