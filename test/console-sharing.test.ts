/**
 * Sharing on the console's side, with a real console process
 * (test/helpers/console-fleet.ts: its own local directory with grantees and
 * a nested group) and a PC whose agent end is scripted
 * (test/helpers/scripted-agent.ts: enrolled, linked; it verifies every share
 * rule set and every grant with the console key it was welcomed with).
 *
 * What must hold: a rule created on /admin/sharing (role sharing, CSRF) is
 * signed and pushed to its PC at once, with the default expiry; a revoked
 * one leaves the pushed set at once and /shared stops serving it; /shared
 * shows a grantee only what is shared with them or their (nested) groups;
 * a read grantee's write is refused on the console (no grant goes down); a
 * readwrite member of a nested group gets a share grant with the rule, its
 * groups and the folder as root and prefix; MOVE out of the share is
 * refused; a wrong password is 401 with one challenge; everything that
 * reaches a share or is refused is in the console's trail, and no folder or
 * file name is in its process log.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startConsoleFleet, type ConsoleFleet, type WebSession } from './helpers/console-fleet.js';
import { tempDir } from './helpers/keys.js';
import { dialScriptedAgent, type ScriptedAgent } from './helpers/scripted-agent.js';

const DAY_S = 86_400;

function hrefs(xml: string): string[] {
  return [...xml.matchAll(/<D:href>([^<]*)<\/D:href>/g)].map((m) => decodeURIComponent(m[1]!));
}

async function until<T>(what: string, probe: () => T | undefined, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('sharing: rules pushed to the PC, /shared for grantees (real console, scripted agent end)', { timeout: 240_000 }, () => {
  let fleet: ConsoleFleet;
  let agent: ScriptedAgent;
  let sam: WebSession;
  let cleanup: () => Promise<void>;

  before(async () => {
    fleet = await startConsoleFleet({
      pcs: [],
      people: [{ name: 'gina' }, { name: 'nora', groups: ['team-inner'] }, { name: 'otto' }],
      groups: { team: { groups: ['team-inner'] } },
      logLevel: 'debug',
    });
    const added = await fleet.mydocConsole(['pc', 'add', 'pc-fake']);
    const token = /enrolmentToken: (\S+)\n/.exec(added.stdout)?.[1];
    assert.ok(token, added.stdout + added.stderr);
    const tmp = await tempDir('mydoc-sharing-');
    cleanup = tmp.cleanup;
    agent = await dialScriptedAgent({ host: '127.0.0.1', port: fleet.linkPort, caPem: fleet.caPem, pcId: 'pc-fake', token, users: ['alice'], dir: tmp.dir });
    agent.dav = (stream, headers) => {
      stream.resume();
      stream.respond({ ':status': headers[':method'] === 'PUT' ? 201 : 200, 'content-type': 'text/plain' });
      stream.end(headers[':method'] === 'GET' ? 'shared bytes\n' : undefined);
    };
    await agent.welcomed;
    // The connect pushes the (empty) set; the PC's users arrive with its first status.
    await until('the rule set pushed on connect', () => (agent.ruleSets.length > 0 ? true : undefined));
    assert.deepEqual(agent.ruleSets[0], []);
    sam = await fleet.webSession(fleet.admin('sharing'));
    const deadline = Date.now() + 20_000;
    for (;;) {
      const page = await fleet.consoleRequest('PROPFIND', '/pcs/pc-fake/', { as: fleet.admin('viewer'), headers: { depth: '1' } });
      if (page.body.toString().includes('/pcs/pc-fake/alice/')) break;
      assert.ok(Date.now() < deadline, 'the scripted PC reported its user');
      await new Promise((r) => setTimeout(r, 200));
    }
  });
  after(async () => {
    agent?.close();
    await fleet?.stop();
    await cleanup?.();
  });

  const create = (fields: Record<string, string>) => sam.post('/admin/sharing', { pcId: 'pc-fake', user: 'alice', access: 'read', days: '30', ...fields });

  it('a created rule is signed and pushed to its PC at once; the page lists it', async () => {
    const sets = agent.ruleSets.length;
    const res = await create({ folder: 'Documents/Projects', granteeKind: 'user', granteeName: 'gina' });
    assert.equal(res.status, 303, res.body.toString());
    const set = await until('the new set', () => (agent.ruleSets.length > sets ? agent.ruleSets.at(-1) : undefined));
    assert.equal(set.length, 1);
    const rule = set[0]!;
    assert.deepEqual({ pcId: rule.pcId, user: rule.user, folder: rule.folder, grantee: rule.grantee, access: rule.access, createdBy: rule.createdBy }, { pcId: 'pc-fake', user: 'alice', folder: ['Documents', 'Projects'], grantee: { kind: 'user', name: 'gina' }, access: 'read', createdBy: 'sam' });
    assert.ok(Math.abs(rule.expires - (Date.now() / 1000 + 30 * DAY_S)) < 120, 'expires in 30 days');
    const page = await sam.get('/admin/sharing');
    assert.equal(page.status, 200);
    assert.match(page.body.toString(), new RegExp(`data-rule="${rule.id}"`));
    assert.ok((await fleet.consoleTrail()).some((r) => r.action === 'share.create' && r.actor === 'sam' && r.target === 'pc-fake/alice/Documents/Projects' && r.decision === 'allow'));
  });

  it('refuses a rule without the sharing role, past sharing.maxDays, with a bad folder or an unknown user', async () => {
    const dana = await fleet.webSession(fleet.admin('data'));
    const noRole = await dana.post('/admin/sharing', { pcId: 'pc-fake', user: 'alice', folder: 'Documents', granteeKind: 'user', granteeName: 'gina', access: 'read', days: '3' });
    assert.equal(noRole.status, 403);
    assert.equal((await create({ folder: 'Documents', granteeKind: 'user', granteeName: 'gina', days: '91' })).status, 400);
    assert.equal((await create({ folder: 'Documents/../Desktop', granteeKind: 'user', granteeName: 'gina' })).status, 400);
    assert.equal((await create({ folder: 'Documents', granteeKind: 'user', granteeName: 'gina', access: 'write' })).status, 400);
    assert.equal((await create({ folder: 'Documents', granteeKind: 'robot', granteeName: 'gina' })).status, 400);
    assert.equal((await create({ folder: 'Documents', granteeKind: 'user', granteeName: 'gina', user: 'mallory' })).status, 404);
  });

  it('the sharing page escapes names (a hostile folder or grantee name is text, never markup)', async () => {
    const hostile = '<img src=x onerror="alert(1)">';
    assert.equal((await create({ folder: `Documents/${hostile}`, granteeKind: 'group', granteeName: `${hostile}-group`, days: '1' })).status, 303);
    const page = (await sam.get('/admin/sharing')).body.toString();
    assert.ok(!page.includes(hostile), 'the raw name is not in the page');
    assert.ok(page.includes('&lt;img src=x onerror=&quot;alert(1)&quot;&gt;'), 'it is there escaped');
    const rule = agent.ruleSets.at(-1)!.find((r) => r.grantee.name === `${hostile}-group`)!;
    assert.equal((await sam.post(`/admin/sharing/${rule.id}/revoke`, {})).status, 303);
  });

  it('/shared shows a grantee only what is shared with them; a read grantee reads and cannot write', async () => {
    const gina = fleet.people.gina!;
    const top = await fleet.consoleRequest('PROPFIND', '/shared/', { as: gina, headers: { depth: '1' } });
    assert.equal(top.status, 207, top.body.toString());
    assert.deepEqual(hrefs(top.body.toString()), ['/shared/', '/shared/alice@pc-fake/']);
    const owner = await fleet.consoleRequest('PROPFIND', '/shared/alice@pc-fake/', { as: gina, headers: { depth: '1' } });
    assert.deepEqual(hrefs(owner.body.toString()), ['/shared/alice@pc-fake/', '/shared/alice@pc-fake/Projects/']);

    const before = agent.grants.length;
    const got = await fleet.consoleRequest('GET', '/shared/alice@pc-fake/Projects/plan.txt', { as: gina });
    assert.equal(got.status, 200);
    assert.equal(got.body.toString(), 'shared bytes\n');
    const g = agent.grants.at(-1)!;
    assert.equal(agent.grants.length, before + 1);
    assert.deepEqual(
      { kind: g.kind, role: g.role, actor: g.actor, user: g.user, access: g.access, method: g.method, base: g.base, root: g.root, prefix: g.prefix, groups: g.groups, rule: g.ruleId === agent.ruleSets.at(-1)![0]!.id },
      { kind: 'share', role: 'share', actor: 'gina', user: 'alice', access: 'read', method: 'GET', base: '/shared/alice%40pc-fake/Projects', root: ['Documents', 'Projects'], prefix: ['Documents', 'Projects'], groups: [], rule: true },
    );

    for (const method of ['PUT', 'DELETE', 'MKCOL', 'PROPPATCH', 'MOVE']) {
      const res = await fleet.consoleRequest(method, '/shared/alice@pc-fake/Projects/plan.txt', { as: gina, body: 'x', headers: { destination: '/shared/alice@pc-fake/Projects/b.txt' } });
      assert.equal(res.status, 403, `${method}: ${res.body.toString()}`);
    }
    assert.equal(agent.grants.length, before + 1, 'no write went down the link');
    const trail = await fleet.consoleTrail();
    assert.ok(trail.some((r) => r.action === 'share.access' && r.actor === 'gina' && r.target === 'pc-fake/alice/Documents/Projects/plan.txt' && r.decision === 'allow' && /^GET 200 request \S+ rule \S+$/.test(r.reason ?? '')));
    assert.ok(trail.some((r) => r.action === 'share.access' && r.actor === 'gina' && r.decision === 'deny' && /^PUT 403 request /.test(r.reason ?? '')));

    // Someone nothing is shared with sees nothing, and a name is 404 whether it exists or not.
    const otto = fleet.people.otto!;
    assert.deepEqual(hrefs((await fleet.consoleRequest('PROPFIND', '/shared/', { as: otto, headers: { depth: '1' } })).body.toString()), ['/shared/']);
    assert.equal((await fleet.consoleRequest('GET', '/shared/alice@pc-fake/Projects/plan.txt', { as: otto })).status, 404);
    assert.equal((await fleet.consoleRequest('PROPFIND', '/shared/alice@pc-fake/', { as: otto })).status, 404);
  });

  it('a member of a nested group gets a readwrite share; MOVE stays inside it', async () => {
    const sets = agent.ruleSets.length;
    assert.equal((await create({ folder: 'Documents/Team', granteeKind: 'group', granteeName: 'team', access: 'readwrite' })).status, 303);
    await until('the set with both rules', () => (agent.ruleSets.length > sets && agent.ruleSets.at(-1)!.length === 2 ? true : undefined));
    const nora = fleet.people.nora!;
    const owner = await fleet.consoleRequest('PROPFIND', '/shared/alice@pc-fake/', { as: nora, headers: { depth: '1' } });
    assert.deepEqual(hrefs(owner.body.toString()), ['/shared/alice@pc-fake/', '/shared/alice@pc-fake/Team/']);
    const put = await fleet.consoleRequest('PUT', '/shared/alice@pc-fake/Team/new.txt', { as: nora, body: 'from nora' });
    assert.equal(put.status, 201, put.body.toString());
    const g = agent.grants.at(-1)!;
    assert.deepEqual({ actor: g.actor, access: g.access, method: g.method, groups: g.groups, root: g.root }, { actor: 'nora', access: 'readwrite', method: 'PUT', groups: ['team'], root: ['Documents', 'Team'] });
    const out = await fleet.consoleRequest('MOVE', '/shared/alice@pc-fake/Team/new.txt', { as: nora, headers: { destination: `${fleet.url}/shared/alice@pc-fake/Projects/new.txt` } });
    assert.equal(out.status, 403, out.body.toString());
    const inside = await fleet.consoleRequest('MOVE', '/shared/alice@pc-fake/Team/new.txt', { as: nora, headers: { destination: `${fleet.url}/shared/alice@pc-fake/Team/renamed.txt` } });
    assert.equal(inside.status, 200);
    assert.equal(agent.grants.at(-1)!.method, 'MOVE');
    // gina is not in the group.
    assert.equal((await fleet.consoleRequest('GET', '/shared/alice@pc-fake/Team/new.txt', { as: fleet.people.gina! })).status, 404);
  });

  it('a revoked rule leaves the pushed set and /shared at once', async () => {
    const rule = agent.ruleSets.at(-1)!.find((r) => r.grantee.name === 'gina')!;
    const sets = agent.ruleSets.length;
    const res = await sam.post(`/admin/sharing/${rule.id}/revoke`, {});
    assert.equal(res.status, 303, res.body.toString());
    const set = await until('the set without it', () => (agent.ruleSets.length > sets ? agent.ruleSets.at(-1) : undefined));
    assert.deepEqual(set.map((r) => r.grantee.name), ['team']);
    assert.equal((await fleet.consoleRequest('GET', '/shared/alice@pc-fake/Projects/plan.txt', { as: fleet.people.gina! })).status, 404);
    assert.equal((await sam.post(`/admin/sharing/${rule.id}/revoke`, {})).status, 409, 'revoked once');
    assert.ok((await fleet.consoleTrail()).some((r) => r.action === 'share.revoke' && r.actor === 'sam' && r.reason === `rule ${rule.id}`));
  });

  it('a wrong or missing password is 401 with one challenge; OPTIONS needs none', async () => {
    const wrong = await fleet.consoleRequest('PROPFIND', '/shared/', { as: { name: 'gina', password: 'nope' } });
    assert.equal(wrong.status, 401);
    assert.match(String(wrong.headers['www-authenticate']), /^Basic realm="mydoc shared folders"/);
    assert.equal((await fleet.consoleRequest('GET', '/shared/', { as: null })).status, 401);
    const options = await fleet.consoleRequest('OPTIONS', '/shared/', { as: null });
    assert.equal(options.status, 200);
    assert.match(String(options.headers.dav), /1, 2/);
    assert.equal((await fleet.consoleRequest('GET', '/shared/a%2Fb/', { as: fleet.people.gina! })).status, 400);
  });

  it('no folder or file name of users\' data reaches the console\'s process log (debug level)', () => {
    const log = fleet.consoleOutput();
    assert.match(log, /sharing: share rules sent/, 'the log was captured');
    assert.doesNotMatch(log, /plan\.txt|Projects|Team\/|new\.txt|renamed/);
  });
});
