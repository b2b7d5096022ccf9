/**
 * The fleet harness itself (test/helpers/console-fleet.ts), with real
 * processes: a console and two agents, each registered with `console pc add`,
 * enrolled with its token and linked; the administrators' page lists both
 * PCs online with the users each reported; the agents' own shares still
 * serve their users; curl trusts only the console's CA.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startConsoleFleet, type ConsoleFleet } from './helpers/console-fleet.js';
import { davRequest } from './helpers/server.js';

describe('the console fleet harness', { timeout: 180_000 }, () => {
  let fleet: ConsoleFleet;

  before(async () => {
    fleet = await startConsoleFleet();
  });
  after(async () => {
    await fleet?.stop();
  });

  it('enrols and links both PCs; the page lists them online with their users', async () => {
    const trail = await fleet.consoleTrail();
    for (const pcId of ['pc-1', 'pc-2']) {
      assert.ok(trail.some((r) => r.action === 'pc.enrol' && r.target === pcId && r.decision === 'allow'), `${pcId} enrolled in the trail`);
    }
    const session = await fleet.webSession(fleet.admin('viewer'));
    const list = (await session.get('/admin/pcs')).body.toString();
    assert.match(list, /pc-1/);
    assert.match(list, /pc-2/);
    const pc1 = (await session.get('/admin/pcs/pc-1')).body.toString();
    assert.match(pc1, /alice/);
    assert.match(pc1, /bob/);
    assert.doesNotMatch(pc1, /carol/);
    assert.match((await session.get('/admin/pcs/pc-2')).body.toString(), /carol/);
    // A wrong password is refused by the login.
    await assert.rejects(fleet.webSession({ name: 'vic', password: 'not the password' }), /login of vic failed: 401/);
  });

  it('each agent still serves its own users; a user of one PC is unknown on the other', async () => {
    const put = await fleet.agentRequest('pc-1', 'alice', 'PUT', '/Documents/hello.txt', { body: 'hello from pc-1' });
    assert.ok(put.status === 201 || put.status === 204, `PUT ${put.status}`);
    const got = await fleet.agentRequest('pc-1', 'alice', 'GET', '/Documents/hello.txt');
    assert.equal(got.body.toString(), 'hello from pc-1');
    const pc2 = fleet.pc('pc-2');
    const foreign = await davRequest(pc2.server, 'GET', '/Documents/', { user: 'alice', password: fleet.pc('pc-1').user('alice').password });
    assert.equal(foreign.status, 401);
  });

  it('curl reaches the console trusting only its CA, and not with another CA', async () => {
    const health = await fleet.curl(null, [`${fleet.url}/healthz`]);
    assert.equal(health.status, 0, health.stderr);
    assert.match(health.stdout, /"ok":true/);
    const untrusted = await fleet.curl(null, ['--cacert', fleet.pc('pc-1').server.caFile, `${fleet.url}/healthz`]);
    assert.notEqual(untrusted.status, 0, 'curl trusted a certificate outside the console CA');
  });
});
