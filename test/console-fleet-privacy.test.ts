/**
 * One server over every PC, end to end with real processes (a console and
 * two agents with their own vaults, test/helpers/console-fleet.ts), as the
 * issue's privacy story asks: an administrator lists /pcs/ (both PCs) and
 * each PC's users with curl, reads a file on each PC through the console
 * (both at once, on two links) and the bytes match; the console's trail and
 * the agent's own hash-chained audit log both name the administrator (never
 * the user) with one request id; the agent's log carries a hash of the path
 * and no file name anywhere in the agent's data folder is readable (a removed
 * disk leaks none); the user's notice file at the root of their own drive
 * and their page on the agent list the access, newest first, with the
 * administrator, the path and the request id; the notice file is not in what
 * the administrator sees. Last, the console restarts: the agents relink and
 * the same administrator reads again (the key they pinned is the same).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { NOTICES_FILE_NAME } from '../shares/vault/notices.js';
import { startConsoleFleet, type AuditRecord, type ConsoleFleet } from './helpers/console-fleet.js';
import { scanForMarker } from './helpers/data-dir.js';
import { MYDOC_BIN, runCommand } from './helpers/server.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
/** A name no other test data holds: it must not be readable anywhere on the agent's disk. */
const MARKER = `Confidential-merger-${randomBytes(6).toString('hex')}`;
const ALICE_FILE = `/Documents/${MARKER}.txt`;
const CAROL_FILE = '/Desktop/plan.bin';

const hrefs = (xml: string): string[] => [...xml.matchAll(/<D:href>([^<]*)<\/D:href>/g)].map((m) => m[1]!);

describe('one server over every PC: the administrator reads, both logs and the user\'s notices say so', { timeout: 300_000 }, () => {
  let fleet: ConsoleFleet;
  const alice = randomBytes(2 * 1024 * 1024 + 3);
  const carol = randomBytes(700_001);
  let requestIds: { alice: string; carol: string };

  before(async () => {
    fleet = await startConsoleFleet();
    const put = async (pcId: string, user: string, path: string, body: Buffer) => {
      const res = await fleet.agentRequest(pcId, user, 'PUT', path.split('/').map(encodeURIComponent).join('/'), { body });
      assert.ok(res.status === 201 || res.status === 204, `PUT ${path} on ${pcId}: ${res.status}`);
    };
    await put('pc-1', 'alice', ALICE_FILE, alice);
    await put('pc-2', 'carol', CAROL_FILE, carol);
  });
  after(async () => {
    await fleet?.stop();
  });

  it('lists /pcs/ with both PCs and each PC\'s users (curl PROPFIND)', async () => {
    const dana = fleet.admin('data');
    const top = await fleet.curl(dana, ['-X', 'PROPFIND', '-H', 'Depth: 1', '-w', '\n%{http_code}', `${fleet.url}/pcs/`]);
    assert.equal(top.status, 0, top.stderr);
    assert.match(top.stdout, /\n207$/);
    assert.deepEqual(hrefs(top.stdout).sort(), ['/pcs/', '/pcs/pc-1/', '/pcs/pc-2/']);
    const pc1 = await fleet.curl(dana, ['-X', 'PROPFIND', '-H', 'Depth: 1', `${fleet.url}/pcs/pc-1/`]);
    assert.deepEqual(hrefs(pc1.stdout).sort(), ['/pcs/pc-1/', '/pcs/pc-1/alice/', '/pcs/pc-1/bob/']);
    const pc2 = await fleet.curl(dana, ['-X', 'PROPFIND', '-H', 'Depth: 1', `${fleet.url}/pcs/pc-2/`]);
    assert.deepEqual(hrefs(pc2.stdout).sort(), ['/pcs/pc-2/', '/pcs/pc-2/carol/']);
    // A user of one PC is not a folder of the other.
    const wrong = await fleet.curl(dana, ['-X', 'PROPFIND', '-H', 'Depth: 0', '-o', '/dev/null', '-w', '%{http_code}', `${fleet.url}/pcs/pc-2/alice/`]);
    assert.equal(wrong.stdout, '404');
  });

  it('reads a file on each PC at once through the console; the bytes match', async () => {
    const dana = fleet.admin('data');
    const [one, two] = await Promise.all([
      fleet.consoleRequest('GET', `/pcs/pc-1/alice${ALICE_FILE.split('/').map(encodeURIComponent).join('/')}`, { as: dana }),
      fleet.consoleRequest('GET', `/pcs/pc-2/carol${CAROL_FILE}`, { as: dana }),
    ]);
    assert.equal(one.status, 200, one.body.toString().slice(0, 300));
    assert.equal(two.status, 200, two.body.toString().slice(0, 300));
    assert.equal(sha(one.body), sha(alice));
    assert.equal(sha(two.body), sha(carol));
    // What the administrator sees of alice's drive has no notice file (it is the user's own view only).
    const root = await fleet.consoleRequest('PROPFIND', '/pcs/pc-1/alice/', { as: dana, headers: { depth: '1' } });
    assert.equal(root.status, 207);
    assert.ok(!root.body.toString().includes(encodeURIComponent(NOTICES_FILE_NAME)), 'the notice file is not shown to the administrator');
    const notice = await fleet.consoleRequest('GET', `/pcs/pc-1/alice/${encodeURIComponent(NOTICES_FILE_NAME)}`, { as: dana });
    assert.equal(notice.status, 404);
  });

  it('both logs name the administrator with one request id; the agent\'s has a hash of the path, never the name', async () => {
    const dana = fleet.admin('data');
    const trail = await fleet.consoleTrail();
    const idOf = (target: string): string => {
      const line = trail.find((r) => r.action === 'data.access' && r.actor === dana.name && r.decision === 'allow' && r.target === target && /^GET 200 /.test(r.reason ?? ''));
      assert.ok(line, `a console trail line for ${target}: ${JSON.stringify(trail.filter((r) => r.action === 'data.access'))}`);
      const id = /^GET 200 request (\S+) role data$/.exec(line.reason ?? '')?.[1];
      assert.ok(id, line.reason);
      return id;
    };
    requestIds = { alice: idOf(`pc-1/alice${ALICE_FILE}`), carol: idOf(`pc-2/carol${CAROL_FILE}`) };
    assert.notEqual(requestIds.alice, requestIds.carol);

    const check = (records: AuditRecord[], pcId: string, user: string, id: string, path: string) => {
      const line = records.find((r) => r.action === 'admin.access' && (r.reason ?? '').includes(`request ${id} `));
      assert.ok(line, `the agent logged request ${id}: ${JSON.stringify(records.slice(-5))}`);
      assert.equal(line.actor, `${dana.name} (console administrator)`, 'the administrator, never the user');
      assert.equal(line.target, user);
      assert.equal(line.decision, 'allow');
      const m = /^GET 200 request (\S+) role data path sha256:([0-9a-f]{16})$/.exec(line.reason ?? '');
      assert.ok(m, line.reason);
      // The hash is of the request's path on the console (the trail's target under /pcs/): one can match the two, not read it.
      assert.equal(m[2], sha(`/pcs/${pcId}/${user}${path}`).slice(0, 16), `path hash of ${path}`);
      assert.ok(!records.some((r) => r.actor === user && (r.reason ?? '').includes(id)), 'no line of this request is recorded as the user');
    };
    check(await fleet.agentAudit('pc-1'), 'pc-1', 'alice', requestIds.alice, ALICE_FILE);
    check(await fleet.agentAudit('pc-2'), 'pc-2', 'carol', requestIds.carol, CAROL_FILE);
    // The other agent knows nothing of this request.
    assert.ok(!(await fleet.agentAudit('pc-2')).some((r) => (r.reason ?? '').includes(requestIds.alice)));

    // The file's name is nowhere readable on pc-1's disk: not in the audit log, nor the vault, nor any other file.
    assert.deepEqual(await scanForMarker(fleet.pc('pc-1').server.dir, MARKER), [], 'a plaintext file name on the agent\'s disk');
    // The agent's audit log still verifies (its hash chain is whole).
    const verify = await runCommand(process.execPath, [MYDOC_BIN, 'audit', 'verify', '--config', fleet.pc('pc-1').server.configFile], { env: { ...process.env, MYDOC_CONFIG: '' }, timeoutMs: 60_000 });
    assert.equal(verify.status, 0, verify.stderr);
  });

  it('the user\'s notice file and page list the access: who, when, what, the request id', async () => {
    const dana = fleet.admin('data');
    const file = await fleet.agentRequest('pc-1', 'alice', 'GET', `/${encodeURIComponent(NOTICES_FILE_NAME)}`);
    assert.equal(file.status, 200);
    const text = file.body.toString('utf8');
    const lines = text.split('\r\n').filter((l) => l.includes(`request ${requestIds.alice}`));
    assert.equal(lines.length, 1, text);
    const [when, who, what, id] = lines[0]!.split('\t');
    assert.match(when!, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    assert.ok(Math.abs(Date.parse(when!.replace(' UTC', 'Z').replace(' ', 'T')) - Date.now()) < 5 * 60_000, when);
    assert.match(who!, new RegExp(`^${dana.name} \\(administrator, (role )?data\\)$`));
    assert.equal(what, `read ${ALICE_FILE}`);
    assert.equal(id, `request ${requestIds.alice}`);
    // Every access is a line (the reads and the listings of this test), newest first.
    const times = text.split('\r\n').filter((l) => /\trequest /.test(l)).map((l) => l.split('\t')[0]!);
    assert.deepEqual([...times].sort().reverse(), times, 'newest first');
    // Carol's notices are hers: alice's file does not list carol's access, and carol's does.
    assert.ok(!text.includes(requestIds.carol));
    const carolFile = (await fleet.agentRequest('pc-2', 'carol', 'GET', `/${encodeURIComponent(NOTICES_FILE_NAME)}`)).body.toString('utf8');
    assert.ok(carolFile.includes(`read ${CAROL_FILE}\trequest ${requestIds.carol}`), carolFile);
    // bob, on the same PC, was not accessed: his file says so.
    const bobFile = (await fleet.agentRequest('pc-1', 'bob', 'GET', `/${encodeURIComponent(NOTICES_FILE_NAME)}`)).body.toString('utf8');
    assert.match(bobFile, /There have been none\./);

    const page = await fleet.agentRequest('pc-1', 'alice', 'GET', '/', { headers: { accept: 'text/html' } });
    assert.equal(page.status, 200);
    const html = page.body.toString();
    assert.match(html, /Access notices/);
    assert.ok(html.includes(dana.name), 'the page names the administrator');
    assert.ok(html.includes(MARKER), 'the page names the file read');
  });

  it('after a console restart the agents relink and the administrator reads again', async () => {
    await fleet.stopConsole();
    await fleet.startConsole();
    const dana = fleet.admin('data');
    const again = await fleet.consoleRequest('GET', `/pcs/pc-2/carol${CAROL_FILE}`, { as: dana });
    assert.equal(again.status, 200, again.body.toString().slice(0, 300));
    assert.equal(sha(again.body), sha(carol));
  });
});
