/**
 * The console's /pcs WebDAV at the console level, with real processes (a
 * console and two agents, test/helpers/console-fleet.ts): the virtual levels
 * (PCs, their users) by PROPFIND through curl and by GET; the login (one
 * challenge, wrong passwords); and every refusal the console decides itself,
 * each with its status and a line in the console's trail: a viewer below the
 * user level, any write by an administrator (MOVE/COPY across PCs too),
 * encoded slashes and dot segments, an unknown PC, and an offline PC (503 at
 * once, with when it was last seen). The file browser refuses a viewer too.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startConsoleFleet, type ConsoleFleet } from './helpers/console-fleet.js';

const PROPFIND_ALL = '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>';

function hrefs(xml: string): string[] {
  return [...xml.matchAll(/<D:href>([^<]*)<\/D:href>/g)].map((m) => m[1]!);
}

describe('console /pcs at the console level', { timeout: 240_000 }, () => {
  let fleet: ConsoleFleet;

  before(async () => {
    // Debug: the process log is checked for paths below.
    fleet = await startConsoleFleet({ logLevel: 'debug' });
  });
  after(async () => {
    await fleet?.stop();
  });

  it('lists the PCs and their users (curl PROPFIND Depth 0/1, GET, OPTIONS) for any administrator', async () => {
    const viewer = fleet.admin('viewer');
    const root = await fleet.curl(viewer, ['-sS', '-X', 'PROPFIND', '-H', 'Depth: 1', '-H', 'Content-Type: application/xml', '--data', PROPFIND_ALL, '-w', '\n%{http_code}', `${fleet.url}/pcs/`]);
    assert.equal(root.status, 0, root.stderr);
    const [body, code] = [root.stdout.slice(0, root.stdout.lastIndexOf('\n')), root.stdout.slice(root.stdout.lastIndexOf('\n') + 1)];
    assert.equal(code, '207');
    assert.deepEqual(hrefs(body), ['/pcs/', '/pcs/pc-1/', '/pcs/pc-2/']);
    assert.match(body, /<D:resourcetype><D:collection\/><\/D:resourcetype>/);

    const depth0 = await fleet.consoleRequest('PROPFIND', '/pcs', { as: viewer, headers: { depth: '0' } });
    assert.equal(depth0.status, 207);
    assert.deepEqual(hrefs(depth0.body.toString()), ['/pcs/']);

    const users = await fleet.consoleRequest('PROPFIND', '/pcs/pc-1/', { as: viewer, headers: { depth: '1' } });
    assert.equal(users.status, 207);
    assert.deepEqual(hrefs(users.body.toString()), ['/pcs/pc-1/', '/pcs/pc-1/alice/', '/pcs/pc-1/bob/']);
    const named = await fleet.consoleRequest('PROPFIND', '/pcs/pc-2/', {
      as: viewer,
      headers: { depth: '1', 'content-type': 'application/xml' },
      body: '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:displayname/><D:getcontentlength/></D:prop></D:propfind>',
    });
    assert.equal(named.status, 207);
    assert.match(named.body.toString(), /<D:displayname>carol<\/D:displayname>/);
    assert.match(named.body.toString(), /HTTP\/1.1 404/, 'a folder has no getcontentlength: a 404 propstat');

    const get = await fleet.consoleRequest('GET', '/pcs/', { as: viewer });
    assert.equal(get.status, 200);
    assert.equal(get.body.toString(), 'pc-1/\npc-2/\n');
    const infinity = await fleet.consoleRequest('PROPFIND', '/pcs/', { as: viewer, headers: { depth: 'infinity' } });
    assert.equal(infinity.status, 403);
    assert.match(infinity.body.toString(), /propfind-finite-depth/);

    for (const path of ['/pcs/', '/']) {
      const options = await fleet.consoleRequest('OPTIONS', path, { as: null });
      assert.equal(options.status, 200, path);
      assert.equal(options.headers.dav, '1, 2', path);
    }
  });

  it('asks for a login with exactly one challenge; a wrong password is refused', async () => {
    const none = await fleet.consoleRequest('PROPFIND', '/pcs/', { as: null, headers: { depth: '1' } });
    assert.equal(none.status, 401);
    assert.equal(typeof none.headers['www-authenticate'], 'string', 'exactly one WWW-Authenticate header');
    assert.match(none.headers['www-authenticate'] as string, /^Basic realm=/);
    const wrong = await fleet.consoleRequest('GET', '/pcs/', { as: { name: 'dana', password: 'wrong' } });
    assert.equal(wrong.status, 401);
    const person = await fleet.consoleRequest('GET', '/pcs/pc-1/alice/', { as: { name: 'alice', password: fleet.pc('pc-1').user('alice').password } });
    assert.equal(person.status, 401, 'a PC user is not a console administrator');

    // A verified login is remembered for a minute (one directory check, one trail line), never for another password.
    const ada = fleet.admin('approver');
    const logins = async () => (await fleet.consoleTrail()).filter((r) => r.action === 'console.login' && r.actor === ada.name && r.decision === 'allow').length;
    const before = await logins();
    for (let i = 0; i < 5; i++) assert.equal((await fleet.consoleRequest('GET', '/pcs/', { as: ada })).status, 200);
    assert.equal((await logins()) - before, 1, 'five requests, one checked login');
    const guessed = await fleet.consoleRequest('GET', '/pcs/', { as: { name: ada.name, password: `${ada.password}x` } });
    assert.equal(guessed.status, 401, 'a remembered login does not let another password in');
    assert.equal((await fleet.consoleRequest('GET', '/pcs/', { as: { name: ada.name.toUpperCase(), password: 'wrong' } })).status, 401);
  });

  it('refuses a viewer below the user level, and the trail names the viewer', async () => {
    const viewer = fleet.admin('viewer');
    for (const [method, path] of [
      ['GET', '/pcs/pc-1/alice/Documents/x.txt'],
      ['PROPFIND', '/pcs/pc-1/alice/'],
    ] as const) {
      const res = await fleet.consoleRequest(method, path, { as: viewer, headers: { depth: '1' } });
      assert.equal(res.status, 403, `${method} ${path}`);
      assert.match(res.body.toString(), /needs the data role/);
    }
    const trail = await fleet.consoleTrail();
    const lines = trail.filter((r) => r.action === 'data.access' && r.actor === viewer.name);
    assert.ok(lines.some((r) => r.target === 'pc-1/alice/Documents/x.txt' && r.decision === 'deny' && /^GET 403 request \S+ role viewer$/.test(r.reason ?? '')), JSON.stringify(lines));
    assert.ok(lines.some((r) => r.target === 'pc-1/alice' && r.decision === 'deny' && /^PROPFIND 403 /.test(r.reason ?? '')));
  });

  it('refuses every write by an administrator, MOVE and COPY across PCs too, with an audit line each', async () => {
    const dana = fleet.admin('data');
    const dest = `${fleet.url}/pcs/pc-2/carol/Documents/y.txt`;
    const cases: [string, string, Record<string, string>, string?][] = [
      ['PUT', '/pcs/pc-1/alice/Documents/new.txt', {}, 'new content'],
      ['DELETE', '/pcs/pc-1/alice/Documents/x.txt', {}],
      ['MKCOL', '/pcs/pc-1/alice/Documents/new/', {}],
      ['PROPPATCH', '/pcs/pc-1/alice/Documents/', { 'content-type': 'application/xml' }, '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x xmlns="urn:x">1</x></D:prop></D:set></D:propertyupdate>'],
      ['LOCK', '/pcs/pc-1/alice/Documents/x.txt', { 'content-type': 'application/xml' }, '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>'],
      ['UNLOCK', '/pcs/pc-1/alice/Documents/x.txt', { 'lock-token': '<urn:uuid:0>' }],
      ['MOVE', '/pcs/pc-1/alice/Documents/x.txt', { destination: dest }],
      ['COPY', '/pcs/pc-1/alice/Documents/x.txt', { destination: dest }],
      ['PUT', '/pcs/new.txt', {}, 'into the virtual level'],
      ['MKCOL', '/pcs/pc-3/', {}],
    ];
    for (const [method, path, headers, body] of cases) {
      const res = await fleet.consoleRequest(method, path, { as: dana, headers, ...(body !== undefined ? { body } : {}) });
      assert.equal(res.status, 403, `${method} ${path}: ${res.body.toString()}`);
      assert.equal(res.body.toString(), "administrators read; they do not write into users' areas\n");
    }
    const trail = (await fleet.consoleTrail()).filter((r) => r.action === 'data.access' && r.actor === dana.name && r.decision === 'deny');
    for (const method of ['PUT', 'DELETE', 'MKCOL', 'PROPPATCH', 'LOCK', 'UNLOCK', 'MOVE', 'COPY']) {
      assert.ok(trail.some((r) => new RegExp(`^${method} 403 request \\S+ write refused$`).test(r.reason ?? '')), `${method} audited`);
    }
    // Nothing reached the agent's vault.
    const listing = await fleet.agentRequest('pc-1', 'alice', 'PROPFIND', '/Documents/', { headers: { depth: '1' } });
    assert.doesNotMatch(listing.body.toString(), /new\.txt|new\//);
  });

  it('refuses encoded slashes, dot segments and bad encodings before anything goes down; an unknown PC is 404', async () => {
    const dana = fleet.admin('data');
    // curl --path-as-is: the path goes out exactly as written (a URL parser would resolve the dot segments first).
    for (const path of ['/pcs/pc-1/alice/..%2F..%2Fbob/x', '/pcs/pc-1/alice/%2e%2e/bob/', '/pcs/pc-1/alice/../bob/', '/pcs/pc-1/alice%2Fbob/', '/pcs/pc-1/alice/a%00b', '/pcs/pc-1/alice/%C0%AE%C0%AE/', '/pcs/pc-1/alice/a%5Cb']) {
      const res = await fleet.curl(dana, ['-sS', '--path-as-is', '-o', '/dev/null', '-w', '%{http_code}', `${fleet.url}${path}`]);
      assert.equal(res.stdout, '400', `${path}: ${res.stdout} ${res.stderr}`);
    }
    const unknown = await fleet.consoleRequest('PROPFIND', '/pcs/pc-9/', { as: dana, headers: { depth: '1' } });
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.toString(), /there is no PC pc-9/);
    const internal = await fleet.consoleRequest('GET', '/.console-dav/pcs', { as: dana });
    assert.equal(internal.status, 404, 'the internal route is no path of its own');
  });

  it('the file browser refuses a viewer (audited) and the PC page links it for the data role only', async () => {
    const viewer = await fleet.webSession(fleet.admin('viewer'));
    const refused = await viewer.get('/admin/pcs/pc-1/files/alice/');
    assert.equal(refused.status, 403);
    assert.match(refused.body.toString(), /needs the data role/);
    assert.doesNotMatch((await viewer.get('/admin/pcs/pc-1')).body.toString(), /\/files\/alice\//);
    const data = await fleet.webSession(fleet.admin('data'));
    const page = (await data.get('/admin/pcs/pc-1')).body.toString();
    assert.match(page, /href="\/admin\/pcs\/pc-1\/files\/alice\/"/);
    assert.match(page, /href="\/admin\/pcs\/pc-1\/files\/bob\/"/);
    const trail = await fleet.consoleTrail();
    assert.ok(trail.some((r) => r.action === 'data.access' && r.actor === fleet.admin('viewer').name && r.target === 'pc-1/alice' && /\(web page\)$/.test(r.reason ?? '')));
  });

  it('answers 503 at once for an offline PC, saying when it was last seen', async () => {
    const dana = fleet.admin('data');
    await fleet.stopAgent('pc-2');
    const started = Date.now();
    const res = await fleet.consoleRequest('PROPFIND', '/pcs/pc-2/carol/', { as: dana, headers: { depth: '1' } });
    assert.equal(res.status, 503, res.body.toString());
    assert.ok(Date.now() - started < 2000, `answered in ${Date.now() - started} ms`);
    assert.match(res.body.toString(), /^PC pc-2 is not connected to the console; it was last seen at \d{4}-\d\d-\d\d \d\d:\d\d UTC\n$/);
    const trail = await fleet.consoleTrail();
    assert.ok(trail.some((r) => r.action === 'data.access' && r.actor === dana.name && r.target === 'pc-2/carol' && r.decision === 'deny' && /^PROPFIND 503 request \S+ role data ERR_LINK_OFFLINE$/.test(r.reason ?? '')));
    // The virtual level still lists it (from the store).
    const users = await fleet.consoleRequest('PROPFIND', '/pcs/pc-2/', { as: dana, headers: { depth: '1' } });
    assert.equal(users.status, 207);
  });

  it('writes no path or file name of users\' data to the process log (debug level)', async () => {
    await fleet.consoleRequest('GET', '/pcs/pc-1/alice/Documents/quarterly-secret-plan.txt', { as: fleet.admin('data') });
    await fleet.consoleRequest('GET', '/pcs/pc-1/alice/Documents/quarterly-secret-plan.txt', { as: fleet.admin('viewer') });
    const web = await fleet.webSession(fleet.admin('data'));
    await web.get('/admin/pcs/pc-1/files/alice/Documents/quarterly-secret-plan/');
    await web.get('/admin/pcs/pc-1/download/alice/Documents/quarterly-secret-plan.txt');
    const log = fleet.consoleOutput();
    assert.match(log, /"level":20/, 'the console logs at debug level');
    assert.match(log, /\/admin\/pcs\/pc-1\/files\/…/, 'the file browser\'s requests are logged, cut at the PC');
    assert.doesNotMatch(log, /quarterly-secret-plan|Documents|x\.txt/);
  });
});
