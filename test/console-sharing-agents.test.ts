/**
 * Sharing end to end with real processes (test/helpers/console-fleet.ts): a
 * real console (`mydoc console serve`, local directory with the grantees and
 * a nested group team > team-inner > nora) and a real agent (`mydoc serve`,
 * alice's vault), enrolled and linked. Rules are created and revoked on the
 * console's page /admin/sharing by an administrator with the sharing role;
 * grantees use https://console/shared/<owner>/<folder>/ with their own
 * directory account; the owner checks the result on her own drive (the
 * agent's WebDAV).
 *
 * What must hold: a `read` grantee reads (the bytes match, hrefs under
 * /shared) and every write is 403 with nothing changed on the drive; a
 * `readwrite` grantee's PUT/MKCOL land on the owner's drive with the same
 * bytes; a member of a nested group gets access and a non-member does not;
 * an expired rule is refused by the agent on its own clock, and then no
 * longer offered by the console; a revoked rule is refused at the very next
 * request, and the revocation answers only after the agent took the set
 * without it (the console's log of the push: one rule fewer, all accepted); every share request that went down the link is in the console's
 * trail and in the agent's audit log with one request id (the agent's line
 * names the grantee, never as the user, with a path hash only), and in the
 * owner's `Access notices.txt`; a rule (and a grant) signed by a key other
 * than the console's pinned one is refused by the agent; no file or folder
 * name of a share is in the agent's audit log or either process's log; a
 * share of a PC that went offline answers 503 at once.
 *
 * Clocks: the processes take no clock, so the agent runs with an injected
 * clock through a preload (test/helpers/clock-skew.ts: its Date.now, which
 * its systemClock reads, is AGENT_SKEW_MS ahead of the console's). The
 * console's page only sets whole days, so the expiry test moves one rule's
 * expiry in the console's store (SQLite, while it runs) to EXPIRES_IN_MS from
 * now and has the console push the set again (creating another rule pushes
 * every live rule of the PC). Then, after a real wait (about 9 s), the agent
 * (ahead) finds the rule expired while the console still forwards it: that
 * refusal is the agent's own, on its clock, as while the console is down;
 * after about 20 s more the console stops offering it too.
 *
 * The agent refusing a rule not signed by its console: the console's issuer
 * key pair is replaced and the console restarted; the agent keeps the key it
 * pinned at enrolment, refuses every rule of the set pushed on the reconnect
 * (ERR_GRANT_SIGNATURE, reported back and logged by the console) and every
 * grant. (Link level: test/agent-link-dav.test.ts, rule set signed by
 * another key.)
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3-multiple-ciphers';
import { generateIssuerKeyPair } from '../policy/takeout/issuer-keys.js';
import { consoleFolder } from '../server/console/data-folder.js';
import { NOTICES_FILE_NAME } from '../shares/vault/notices.js';
import { startConsoleFleet, type Account, type AuditRecord, type ConsoleFleet, type WebSession } from './helpers/console-fleet.js';

/** How far the agent's clock runs ahead of the console's (less than a grant's 60 s life, so grants still verify). */
const AGENT_SKEW_MS = 20_000;
/** The expiring rule's expiry, from the moment it is set in the console's store. */
const EXPIRES_IN_MS = AGENT_SKEW_MS + 8_000;
const PC = 'pc-1';
const OWNER = 'alice';
const SHARED = `/shared/${OWNER}@${PC}`;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const hrefs = (xml: string): string[] => [...xml.matchAll(/<D:href>([^<]*)<\/D:href>/g)].map((m) => m[1]!);
/** The forwarded share line of the console's trail: `<METHOD> <status> request <id> rule <ruleId>[ <code>]`. */
const FORWARDED = /^(\S+) (\d{3}) request (\S+) rule (\S+)(?: (ERR_[A-Z_]+))?$/;

describe('sharing through a real console and a real agent', { timeout: 420_000 }, () => {
  let fleet: ConsoleFleet;
  let sam: WebSession;
  const people = (name: string): Account => fleet.people[name]!;
  const drive: Record<string, Buffer> = {
    '/Documents/Projects/plan.txt': Buffer.from('the plan, version 1\n'),
    '/Documents/Team/notes.txt': randomBytes(70_000),
    '/Documents/Soon/soon.txt': Buffer.from('soon gone\n'),
    '/Documents/Later/later.txt': Buffer.from('still here\n'),
    '/Documents/Rev/rev.txt': Buffer.from('revoked soon\n'),
  };

  const owner = (method: string, path: string, body?: Buffer) => fleet.agentRequest(PC, OWNER, method, path, body ? { body } : {});

  /** Creates a rule on the console's page; answers its id (from the trail's share.create line). */
  async function share(folder: string, granteeKind: 'user' | 'group', granteeName: string, access: 'read' | 'readwrite'): Promise<string> {
    const res = await sam.post('/admin/sharing', { pcId: PC, user: OWNER, folder, granteeKind, granteeName, access, days: '30' });
    assert.equal(res.status, 303, res.body.toString());
    const line = (await fleet.consoleTrail()).filter((r) => r.action === 'share.create' && r.target === `${PC}/${OWNER}/${folder}` && r.decision === 'allow').at(-1);
    const id = /^rule (\S+):/.exec(line?.reason ?? '')?.[1];
    assert.ok(id, `no share.create line for ${folder}`);
    return id;
  }

  /** The console trail's share.access line of the latest request of `grantee` to `target`, parsed. */
  async function lastAccess(grantee: string, target: string): Promise<{ record: AuditRecord; method: string; status: number; id: string; rule: string; code?: string }> {
    const record = (await fleet.consoleTrail()).filter((r) => r.action === 'share.access' && r.actor === grantee && r.target === target).at(-1);
    assert.ok(record, `no share.access line of ${grantee} for ${target}`);
    const m = FORWARDED.exec(record.reason ?? '');
    assert.ok(m, `not a forwarded request: ${record.reason}`);
    return { record, method: m[1]!, status: Number(m[2]), id: m[3]!, rule: m[4]!, ...(m[5] && { code: m[5] }) };
  }

  async function agentLine(id: string): Promise<AuditRecord> {
    const line = (await fleet.agentAudit(PC)).find((r) => (r.reason ?? '').includes(`request ${id} `));
    assert.ok(line, `no line of request ${id} in the agent's audit log`);
    return line;
  }

  async function notices(): Promise<string[]> {
    const res = await owner('GET', `/${encodeURIComponent(NOTICES_FILE_NAME)}`);
    assert.equal(res.status, 200);
    return res.body.toString().split(/\r?\n/);
  }

  /** The console's log lines of share rule sets its PC took: how many rules were sent and accepted. */
  const pushesLogged = (): { rules: number; accepted: number }[] =>
    fleet
      .consoleOutput()
      .split('\n')
      .filter((l) => l.includes('sharing: share rules sent'))
      .map((l) => JSON.parse(l) as { rules: number; accepted: number });

  before(async () => {
    const skewPreload = new URL('./helpers/clock-skew.js', import.meta.url).href;
    fleet = await startConsoleFleet({
      pcs: [{ pcId: PC, users: [OWNER] }],
      people: [{ name: 'gina' }, { name: 'rita' }, { name: 'nora', groups: ['team-inner'] }, { name: 'otto' }, { name: 'eve' }, { name: 'vera' }],
      groups: { team: { groups: ['team-inner'] } },
      logLevel: 'info',
      agentEnv: { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${skewPreload}`.trim(), MYDOC_TEST_CLOCK_SKEW_MS: String(AGENT_SKEW_MS) },
    });
    for (const folder of ['Projects', 'Team', 'Soon', 'Later', 'Rev', 'Inbox']) assert.equal((await owner('MKCOL', `/Documents/${folder}/`)).status, 201);
    for (const [path, body] of Object.entries(drive)) assert.equal((await owner('PUT', path, body)).status, 201, path);
    sam = await fleet.webSession(fleet.admin('sharing'));
  });
  after(async () => {
    await fleet?.stop();
  });

  it('a read grantee lists and reads (bytes match, hrefs under /shared) and cannot write (403, nothing changed)', async () => {
    const rule = await share('Documents/Projects', 'user', 'gina', 'read');
    const gina = people('gina');
    const top = await fleet.consoleRequest('PROPFIND', '/shared/', { as: gina, headers: { depth: '1' } });
    assert.equal(top.status, 207, top.body.toString());
    assert.deepEqual(hrefs(top.body.toString()), ['/shared/', `/shared/${OWNER}%40${PC}/`]);
    const list = await fleet.consoleRequest('PROPFIND', `${SHARED}/Projects/`, { as: gina, headers: { depth: '1' } });
    assert.equal(list.status, 207, list.body.toString());
    assert.deepEqual(hrefs(list.body.toString()).sort(), [`/shared/${OWNER}%40${PC}/Projects/`, `/shared/${OWNER}%40${PC}/Projects/plan.txt`]);

    const got = await fleet.consoleRequest('GET', `${SHARED}/Projects/plan.txt`, { as: gina });
    assert.equal(got.status, 200, got.body.toString());
    assert.deepEqual(got.body, drive['/Documents/Projects/plan.txt']);
    const read = await lastAccess('gina', `${PC}/${OWNER}/Documents/Projects/plan.txt`);
    assert.deepEqual([read.method, read.status, read.rule, read.record.decision], ['GET', 200, rule, 'allow']);

    for (const [method, path, headers] of [
      ['PUT', 'plan.txt', {}],
      ['PUT', 'new.txt', {}],
      ['DELETE', 'plan.txt', {}],
      ['MKCOL', 'sub/', {}],
      ['PROPPATCH', 'plan.txt', {}],
      ['MOVE', 'plan.txt', { destination: `${fleet.url}${SHARED}/Projects/moved.txt` }],
      ['COPY', 'plan.txt', { destination: `${fleet.url}${SHARED}/Projects/copy.txt` }],
      ['LOCK', 'plan.txt', { 'content-type': 'application/xml' }],
    ] as const) {
      const res = await fleet.consoleRequest(method, `${SHARED}/Projects/${path}`, { as: gina, body: 'overwritten', headers });
      assert.equal(res.status, 403, `${method} ${path}: ${res.body.toString()}`);
      assert.match(res.body.toString(), /read-only/);
    }
    const after = await fleet.agentRequest(PC, OWNER, 'PROPFIND', '/Documents/Projects/', { headers: { depth: '1' } });
    assert.deepEqual(hrefs(after.body.toString()).sort(), ['/Documents/Projects/', '/Documents/Projects/plan.txt']);
    assert.deepEqual((await owner('GET', '/Documents/Projects/plan.txt')).body, drive['/Documents/Projects/plan.txt']);
    assert.ok((await fleet.consoleTrail()).some((r) => r.action === 'share.access' && r.actor === 'gina' && r.decision === 'deny' && /^PUT 403 request \S+ rule \S+ read-only$/.test(r.reason ?? '')));
  });

  it('a readwrite grantee writes (PUT, MKCOL, overwrite) and the owner sees the same bytes on her own drive', async () => {
    await share('Documents/Inbox', 'user', 'rita', 'readwrite');
    const rita = people('rita');
    const upload = randomBytes(3 * 1024 * 1024 + 5);
    const put = await fleet.consoleRequest('PUT', `${SHARED}/Inbox/upload.bin`, { as: rita, body: upload });
    assert.equal(put.status, 201, put.body.toString());
    assert.equal((await fleet.consoleRequest('MKCOL', `${SHARED}/Inbox/sub/`, { as: rita })).status, 201);
    const second = Buffer.from('second file, in a folder the grantee made\n');
    assert.equal((await fleet.consoleRequest('PUT', `${SHARED}/Inbox/sub/x.txt`, { as: rita, body: second })).status, 201);

    const mine = await owner('GET', '/Documents/Inbox/upload.bin');
    assert.equal(mine.status, 200);
    assert.equal(sha(mine.body), sha(upload));
    assert.deepEqual((await owner('GET', '/Documents/Inbox/sub/x.txt')).body, second);

    const again = randomBytes(4096);
    assert.equal((await fleet.consoleRequest('PUT', `${SHARED}/Inbox/upload.bin`, { as: rita, body: again })).status, 204);
    assert.equal(sha((await owner('GET', '/Documents/Inbox/upload.bin')).body), sha(again));
    // The grantee reads back what the owner has.
    const back = await fleet.consoleRequest('GET', `${SHARED}/Inbox/upload.bin`, { as: rita });
    assert.equal(sha(back.body), sha(again));

    // The grantee stays inside the shared folder: not above it, not the folder itself.
    for (const path of ['/Inbox/../Projects/evil.txt', '/Inbox/%2E%2E/Projects/evil.txt', '/Inbox/..%2FProjects%2Fevil.txt', '/Inbox/sub/../../Projects/evil.txt']) {
      const res = await fleet.consoleRequest('PUT', `${SHARED}${path}`, { as: rita, body: 'escaped' });
      assert.ok([400, 403, 404].includes(res.status), `PUT ${path}: ${res.status} ${res.body.toString()}`);
    }
    assert.equal((await owner('GET', '/Documents/Projects/evil.txt')).status, 404, 'nothing written outside the share');
    const dropRoot = await fleet.consoleRequest('DELETE', `${SHARED}/Inbox/`, { as: rita });
    assert.ok([403, 405].includes(dropRoot.status), `DELETE of the shared folder itself: ${dropRoot.status} ${dropRoot.body.toString()}`);
    const moveRoot = await fleet.consoleRequest('MOVE', `${SHARED}/Inbox/`, { as: rita, headers: { destination: `${fleet.url}${SHARED}/Inbox/sub/moved/` } });
    assert.ok([403, 405, 409].includes(moveRoot.status), `MOVE of the shared folder itself: ${moveRoot.status} ${moveRoot.body.toString()}`);
    assert.equal((await owner('GET', '/Documents/Inbox/sub/x.txt')).status, 200, 'the shared folder is still there');

    const wrote = await lastAccess('rita', `${PC}/${OWNER}/Documents/Inbox/sub/x.txt`);
    assert.deepEqual([wrote.method, wrote.status], ['PUT', 201]);
    const line = await agentLine(wrote.id);
    assert.equal(line.actor, 'rita (share grantee)');
    assert.equal(line.action, 'share.access');
    assert.equal(line.target, OWNER);
    assert.equal(line.decision, 'allow');
  });

  it('a member of a nested group (team > team-inner > nora) gets access; someone outside it does not', async () => {
    const rule = await share('Documents/Team', 'group', 'team', 'read');
    const nora = people('nora');
    const got = await fleet.consoleRequest('GET', `${SHARED}/Team/notes.txt`, { as: nora });
    assert.equal(got.status, 200, got.body.toString());
    assert.equal(sha(got.body), sha(drive['/Documents/Team/notes.txt']!));
    const read = await lastAccess('nora', `${PC}/${OWNER}/Documents/Team/notes.txt`);
    assert.equal(read.rule, rule);
    const line = await agentLine(read.id);
    assert.equal(line.actor, 'nora (share grantee)');
    assert.match(line.reason ?? '', new RegExp(`^GET 200 request ${read.id} rule ${rule} path sha256:[0-9a-f]{16}$`));

    const otto = people('otto');
    assert.equal((await fleet.consoleRequest('GET', `${SHARED}/Team/notes.txt`, { as: otto })).status, 404);
    assert.deepEqual(hrefs((await fleet.consoleRequest('PROPFIND', '/shared/', { as: otto, headers: { depth: '1' } })).body.toString()), ['/shared/']);
  });

  it('expiry ends access: the agent refuses on its own clock, then the console stops offering the rule', async () => {
    const eve = people('eve');
    const soon = await share('Documents/Soon', 'user', 'eve', 'read');
    // The page sets whole days: move this rule's expiry close in the console's store, then have the set pushed again.
    const setAt = Date.now();
    const expiresAt = setAt + EXPIRES_IN_MS;
    const db = new Database(consoleFolder(fleet.consoleDataDir).sqliteFile);
    try {
      db.pragma('busy_timeout = 10000');
      assert.equal(db.prepare('UPDATE share_rule SET expires_at = ? WHERE id = ?').run(expiresAt, soon).changes, 1);
    } finally {
      db.close();
    }
    await share('Documents/Later', 'user', 'eve', 'read'); // pushes every live rule of the PC, Soon with its new expiry

    const url = `${SHARED}/Soon/soon.txt`;
    const first = await fleet.consoleRequest('GET', url, { as: eve });
    assert.ok(Date.now() < expiresAt - AGENT_SKEW_MS - 1000, 'the first read ran before the agent\'s expiry (a slow machine: make EXPIRES_IN_MS longer)');
    assert.equal(first.status, 200, first.body.toString());
    assert.deepEqual(first.body, drive['/Documents/Soon/soon.txt']);

    // The agent's clock has passed the rule's expiry; the console's has not: it still forwards, and the agent refuses.
    await sleep(expiresAt - AGENT_SKEW_MS + 1500 - Date.now());
    assert.ok(Date.now() < expiresAt - 2000, 'still before the console\'s expiry');
    const byAgent = await fleet.consoleRequest('GET', url, { as: eve });
    assert.equal(byAgent.status, 403, byAgent.body.toString());
    const refused = await lastAccess('eve', `${PC}/${OWNER}/Documents/Soon/soon.txt`);
    assert.deepEqual([refused.status, refused.rule, refused.code, refused.record.decision], [403, soon, 'ERR_GRANT_NO_RULE', 'deny']);
    const line = await agentLine(refused.id);
    assert.equal(line.actor, 'eve (share grantee)');
    assert.equal(line.decision, 'deny');
    assert.match(line.reason ?? '', new RegExp(`^GET 403 request ${refused.id} rule ${soon} ERR_GRANT_NO_RULE path sha256:`));
    // Her other rule still serves her.
    assert.equal((await fleet.consoleRequest('GET', `${SHARED}/Later/later.txt`, { as: eve })).status, 200);

    // Past the console's clock too: the rule is no longer offered at all.
    await sleep(expiresAt + 1000 - Date.now());
    assert.equal((await fleet.consoleRequest('GET', url, { as: eve })).status, 404);
    const listed = await fleet.consoleRequest('PROPFIND', `${SHARED}/`, { as: eve, headers: { depth: '1' } });
    assert.deepEqual(hrefs(listed.body.toString()), [`/shared/${OWNER}%40${PC}/`, `/shared/${OWNER}%40${PC}/Later/`]);
  });

  it('a rule revoked on the console stops access at the very next request', async () => {
    const rule = await share('Documents/Rev', 'user', 'vera', 'read');
    const vera = people('vera');
    assert.equal((await fleet.consoleRequest('GET', `${SHARED}/Rev/rev.txt`, { as: vera })).status, 200);
    const sent = pushesLogged();
    const before = sent.at(-1)!;
    const revoked = await sam.post(`/admin/sharing/${rule}/revoke`, {});
    assert.equal(revoked.status, 303, revoked.body.toString());
    // The revocation answered after the agent took the set without the rule (it replaces the one before).
    let pushed = pushesLogged().slice(sent.length);
    for (const deadline = Date.now() + 5000; pushed.length === 0 && Date.now() < deadline; pushed = pushesLogged().slice(sent.length)) await sleep(50); // the log is written asynchronously
    assert.equal(pushed.length, 1, 'one push for the revocation');
    assert.deepEqual([pushed[0]!.rules, pushed[0]!.accepted], [before.rules - 1, before.rules - 1]);
    const next = await fleet.consoleRequest('GET', `${SHARED}/Rev/rev.txt`, { as: vera });
    assert.equal(next.status, 404, next.body.toString());
    assert.deepEqual(hrefs((await fleet.consoleRequest('PROPFIND', '/shared/', { as: vera, headers: { depth: '1' } })).body.toString()), ['/shared/']);
    assert.ok((await fleet.consoleTrail()).some((r) => r.action === 'share.revoke' && r.actor === fleet.admin('sharing').name && r.reason === `rule ${rule}`));
  });

  it('every share request that went down the link is in both audit logs (one request id) and in the owner\'s notices', async () => {
    const trail = (await fleet.consoleTrail()).filter((r) => r.action === 'share.access' && FORWARDED.test(r.reason ?? ''));
    assert.ok(trail.length >= 12, `${trail.length} forwarded share requests`);
    const agent = await fleet.agentAudit(PC);
    const lines = await notices();
    for (const r of trail) {
      const [, method, status, id, rule, code] = FORWARDED.exec(r.reason ?? '')!;
      const mine = agent.filter((a) => (a.reason ?? '').includes(`request ${id} `));
      assert.equal(mine.length, 1, `request ${id} once in the agent's log`);
      assert.equal(mine[0]!.actor, `${r.actor} (share grantee)`);
      assert.equal(mine[0]!.action, 'share.access');
      assert.equal(mine[0]!.target, OWNER);
      assert.equal(mine[0]!.decision, r.decision, `${id}: the same decision on both sides`);
      assert.ok((mine[0]!.reason ?? '').startsWith(`${method} ${status} request ${id} rule ${rule}${code ? ` ${code}` : ''} path sha256:`), mine[0]!.reason);
      const path = r.target!.slice(`${PC}/${OWNER}`.length);
      const notice = lines.find((l) => l.endsWith(`\trequest ${id}`));
      assert.ok(notice, `request ${id} (${r.actor}: ${r.reason}) in the owner's notices:\n${lines.join('\n')}`);
      assert.ok(notice.includes(`${r.actor} (share grantee, share rule ${rule})`), notice);
      assert.ok(notice.includes(` ${path.replace(/\/$/, '')}`), `${notice} names ${path}`);
      if (r.decision === 'deny') assert.match(notice, /\(refused\)/);
    }
    // Neither the agent's plaintext audit log nor either process log holds a file or folder name of the shares.
    const names = /plan\.txt|upload\.bin|x\.txt|notes\.txt|soon\.txt|later\.txt|rev\.txt|Projects|Inbox|Team\/|Soon|Later|Rev\//;
    assert.doesNotMatch(JSON.stringify(agent), names);
    assert.match(fleet.consoleOutput(), /sharing: share rules sent/, 'the console\'s log (info) was captured');
    assert.doesNotMatch(fleet.consoleOutput(), names);
    assert.doesNotMatch(fleet.pc(PC).server.output(), names);
  });

  it('the agent refuses a rule (and a grant) not signed by the console it pinned', async () => {
    const rita = people('rita');
    assert.equal((await fleet.consoleRequest('GET', `${SHARED}/Inbox/sub/x.txt`, { as: rita })).status, 200);
    await fleet.stopConsole();
    const paths = consoleFolder(fleet.consoleDataDir);
    const other = await generateIssuerKeyPair('ES256');
    await writeFile(paths.issuerPrivateKey, other.privatePem, { mode: 0o600 });
    await writeFile(paths.issuerPublicKey, other.publicPem, { mode: 0o600 });
    await fleet.startConsole();
    // The set pushed on the reconnect is signed with the other key: every rule refused, reported back and logged.
    const deadline = Date.now() + 20_000;
    while (!/the PC refused some share rules/.test(fleet.consoleOutput())) {
      assert.ok(Date.now() < deadline, `the console did not log the refused rules:\n${fleet.consoleOutput().slice(-3000)}`);
      await sleep(100);
    }
    const logged = fleet.consoleOutput().split('\n').find((l) => l.includes('the PC refused some share rules'))!;
    const refused = (JSON.parse(logged) as { refused: { index: number; code: string }[] }).refused;
    assert.ok(refused.length >= 4, logged);
    assert.ok(refused.every((r) => r.code === 'ERR_GRANT_SIGNATURE'), logged);
    assert.match(fleet.pc(PC).server.output(), /different console key than the one pinned/);

    const res = await fleet.consoleRequest('GET', `${SHARED}/Inbox/sub/x.txt`, { as: rita });
    assert.equal(res.status, 403, res.body.toString());
    const agent = await fleet.agentAudit(PC);
    assert.ok(agent.at(-1)!.decision === 'deny' && /^GET 403 ERR_GRANT_SIGNATURE path sha256:/.test(agent.at(-1)!.reason ?? ''), JSON.stringify(agent.at(-1)));
  });

  it('a share of a PC that is offline answers 503 at once, saying when the PC was last seen', async () => {
    await fleet.stopAgent(PC);
    const res = await fleet.consoleRequest('GET', `${SHARED}/Inbox/sub/x.txt`, { as: people('rita') });
    assert.equal(res.status, 503, res.body.toString());
    assert.match(res.body.toString(), new RegExp(`PC ${PC} is not connected to the console; it was last seen at `));
    assert.ok(res.ms < 3000, `answered in ${res.ms} ms`);
    const line = await lastAccess('rita', `${PC}/${OWNER}/Documents/Inbox/sub/x.txt`);
    assert.deepEqual([line.status, line.record.decision], [503, 'deny']);
  });
});
