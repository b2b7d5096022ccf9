/**
 * The agent's side of the console's WebDAV, against a real agent (`mydoc
 * serve`) linked to a test link server (the console's real link server,
 * in process) that signs grants and share rules with its own issuer key
 * pair. The agent pins that key from the first welcome; every grant is
 * then checked at the agent: another PC, another user, expired, another
 * key, a replayed id, another method, outside the prefix, "..", "%2F",
 * a list grant's GET, an administrator's write, an unknown user. Reads
 * and listings answer with the console's hrefs; every request is one
 * audit line (path hashed, never named) and a notice to the owner.
 * Shares: rules not signed by the pinned key or for another PC are
 * refused, a rule's expiry (agent clock) and a replaced set end access at
 * once, a readwrite grantee's PUT lands in the owner's vault, a group
 * grantee gets in through the grant's groups, and a key that changes in a
 * later welcome is not taken.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { GRANT_SECONDS, signGrant, type Grant } from '../policy/grants/grant.js';
import { signShareRule, type ShareRule } from '../policy/grants/share-rule.js';
import { generateIssuerKeyPair, loadIssuerPrivateKey, type IssuerPrivateKey } from '../policy/takeout/issuer-keys.js';
import type { LinkHub } from '../server/console/link/hub.js';
import { startLinkServer } from '../server/console/link/server.js';
import { createTlsMaterial } from '../server/http/tls.js';
import { GRANT_HEADER, LINK_PATHS } from '../server/link/protocol.js';
import { dataFolder } from '../shares/data-folder.js';
import { NOTICES_FILE_NAME } from '../shares/vault/notices.js';
import { tempDir } from './helpers/keys.js';
import { captureLogger, FakeRegistry, until } from './helpers/link-fakes.js';
import { davRequest, freePort, randomPassword, startServer, type RunningServer } from './helpers/server.js';

const PC = 'pc-1';
const TOKEN = 'mydoc-enrol-test-linkdav-0123456789';
const now = () => Math.floor(Date.now() / 1000);

interface Answer {
  status: number;
  headers: Record<string, unknown>;
  body: Buffer;
}

async function collect(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('the agent serves /link/dav only as its grant allows', { timeout: 180_000 }, () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let hub: LinkHub;
  let server: RunningServer;
  let key: IssuerPrivateKey;
  let publicPem: string;
  let otherKey: IssuerPrivateKey;
  let otherPublicPem: string;
  let port: number;
  let consoleTls: { cert: string; key: string };
  const registry = new FakeRegistry();
  const report = randomBytes(200_000);

  const adminGrant = (over: Partial<Grant> = {}): Grant => {
    const issuedAt = now();
    return { id: randomUUID(), pcId: PC, actor: 'dana', kind: 'admin', role: 'data', user: 'alice', access: 'read', method: 'GET', base: '/pcs/pc-1/alice', root: [], prefix: ['Documents'], issuedAt, expires: issuedAt + GRANT_SECONDS, ...over };
  };
  const shareGrant = (over: Partial<Grant> = {}): Grant =>
    adminGrant({ kind: 'share', role: 'share', actor: 'bob', groups: [], ruleId: 'rule-read', access: 'read', base: '/shared/alice@pc-1/Shared', root: ['Documents', 'Shared'], prefix: ['Documents', 'Shared'], ...over });
  const rule = (over: Partial<ShareRule> = {}): ShareRule => ({ id: 'rule-read', pcId: PC, user: 'alice', folder: ['Documents', 'Shared'], grantee: { kind: 'user', name: 'bob' }, access: 'read', createdBy: 'sam', issuedAt: now(), expires: now() + 3600, ...over });

  async function send(method: string, path: string, token: string | undefined, opts: { headers?: Record<string, string>; body?: Buffer } = {}): Promise<Answer> {
    const { Readable } = await import('node:stream');
    const headers = { ':method': method, ':path': LINK_PATHS.dav + path, ':authority': 'console.test:8443', ...(token ? { [GRANT_HEADER]: token } : {}), ...opts.headers };
    const answer = await hub.stream(PC, headers, opts.body ? Readable.from([opts.body]) : undefined, { timeoutMs: 20_000 });
    return { status: answer.status, headers: answer.headers as Record<string, unknown>, body: await collect(answer.body) };
  }
  const ask = async (method: string, path: string, grant: Grant, opts: { headers?: Record<string, string>; body?: Buffer; signer?: IssuerPrivateKey } = {}) => send(method, path, await signGrant(grant, opts.signer ?? key), opts);
  const code = (a: Answer) => (JSON.parse(a.body.toString()) as { error: { code: string } }).error.code;
  const auditLines = async () =>
    (await readFile(dataFolder(server.dataDir).auditLog, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { actor: string; action: string; target?: string; decision: string; reason?: string });
  const notices = async (user = 'alice') => (await davRequest(server, 'GET', `/${encodeURIComponent(NOTICES_FILE_NAME)}`, { user })).body.toString();
  const setRules = async (tokens: string[]) => hub.request(PC, LINK_PATHS.shareRules, { rules: tokens });

  before(async () => {
    ({ dir, cleanup } = await tempDir('mydoc-linkdav-'));
    const pair = await generateIssuerKeyPair('ES256');
    const other = await generateIssuerKeyPair('ES256');
    await writeFile(join(dir, 'issuer.pem'), pair.privatePem);
    await writeFile(join(dir, 'other.pem'), other.privatePem);
    key = await loadIssuerPrivateKey(join(dir, 'issuer.pem'), 'test issuer');
    otherKey = await loadIssuerPrivateKey(join(dir, 'other.pem'), 'other issuer');
    publicPem = pair.publicPem;
    otherPublicPem = other.publicPem;
    const material = await createTlsMaterial({ hostNames: [], ipAddresses: [], commonName: 'console' });
    consoleTls = { cert: material.certPem, key: material.keyPem };
    port = await freePort();
    registry.tokens.set(PC, TOKEN);
    hub = await startLinkServer({ host: '127.0.0.1', port, tls: consoleTls, heartbeatSeconds: 1, consoleKey: publicPem, registry, logger: captureLogger().logger });
    server = await startServer({
      pcId: PC,
      users: [
        { name: 'alice', password: randomPassword() },
        { name: 'bob', password: randomPassword() },
      ],
      files: { 'console-ca.pem': material.caCertPem },
      extraConfig: ['console:', `  url: "https://127.0.0.1:${port}"`, '  caFile: console-ca.pem', `  enrolmentToken: "${TOKEN}"`],
    });
    await until(() => hub.isConnected(PC), 'the agent linked', 20_000);
    for (const [method, path, body] of [
      ['PUT', '/Documents/report.txt', report],
      ['MKCOL', '/Documents/Shared/', undefined],
      ['PUT', '/Documents/Shared/a.txt', Buffer.from('shared text\n')],
      ['PUT', '/Documents/Private.txt', Buffer.from('private\n')],
    ] as const) {
      const res = await davRequest(server, method, path, body ? { body } : {});
      assert.ok(res.status === 201 || res.status === 204, `${method} ${path}: ${res.status}`);
    }
  });

  after(async () => {
    await server?.stop();
    await hub?.close();
    await cleanup?.();
  });

  it('pins the console key from the first welcome (0600)', async () => {
    const file = dataFolder(server.dataDir).consoleKey;
    assert.equal(await readFile(file, 'utf8'), publicPem);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
  });

  it('an administrator reads a file: the bytes, one audit line with the path hashed, a notice to the owner', async () => {
    const grant = adminGrant({ prefix: ['Documents', 'report.txt'] });
    const res = await ask('GET', '/pcs/pc-1/alice/Documents/report.txt', grant);
    assert.equal(res.status, 200, res.body.toString().slice(0, 200));
    assert.deepEqual(res.body, report);
    const ranged = await ask('GET', '/pcs/pc-1/alice/Documents/report.txt', adminGrant({ prefix: ['Documents', 'report.txt'] }), { headers: { range: 'bytes=5-9' } });
    assert.equal(ranged.status, 206);
    assert.deepEqual(ranged.body, report.subarray(5, 10));
    const line = (await auditLines()).find((l) => l.reason?.includes(`request ${grant.id}`));
    assert.ok(line);
    assert.equal(line.actor, 'dana (console administrator)');
    assert.equal(line.action, 'admin.access');
    assert.equal(line.target, 'alice');
    assert.equal(line.decision, 'allow');
    assert.match(line.reason!, new RegExp(`^GET 200 request ${grant.id} role data path sha256:[0-9a-f]{16}$`));
    assert.doesNotMatch(await readFile(dataFolder(server.dataDir).auditLog, 'utf8'), /report\.txt/);
    const text = await notices();
    assert.match(text, /dana/);
    assert.match(text, /\/Documents\/report\.txt/);
    assert.ok(text.includes(grant.id));
  });

  it('a PROPFIND answers with the console\'s hrefs, a list grant suffices for it', async () => {
    const res = await ask('PROPFIND', '/pcs/pc-1/alice/Documents/', adminGrant({ method: 'PROPFIND', access: 'list' }), { headers: { depth: '1' } });
    assert.equal(res.status, 207, res.body.toString().slice(0, 300));
    const hrefs = [...res.body.toString().matchAll(/<D:href>([^<]*)<\/D:href>/g)].map((m) => m[1]);
    assert.ok(hrefs.includes('/pcs/pc-1/alice/Documents/'), hrefs.join(' '));
    assert.ok(hrefs.includes('/pcs/pc-1/alice/Documents/report.txt'));
    assert.ok(hrefs.includes('/pcs/pc-1/alice/Documents/Shared/'));
    assert.ok(hrefs.every((h) => h!.startsWith('/pcs/pc-1/alice/')));
  });

  const refusals: { name: string; status: number; code: string; run: () => Promise<Answer> }[] = [
    { name: 'no grant', status: 400, code: 'ERR_GRANT_MALFORMED', run: () => send('GET', '/pcs/pc-1/alice/Documents/report.txt', undefined) },
    { name: 'a grant for another PC', status: 403, code: 'ERR_GRANT_OTHER_PC', run: () => ask('GET', '/pcs/pc-1/alice/Documents/report.txt', adminGrant({ pcId: 'pc-2' })) },
    { name: 'a grant whose base is another PC', status: 403, code: 'ERR_GRANT_OTHER_PC', run: () => ask('GET', '/pcs/pc-2/alice/Documents/report.txt', adminGrant({ base: '/pcs/pc-2/alice' })) },
    { name: 'a grant for another user', status: 403, code: 'ERR_GRANT_OTHER_USER', run: () => ask('GET', '/pcs/pc-1/alice/Documents/report.txt', adminGrant({ user: 'bob', base: '/pcs/pc-1/bob' })) },
    { name: 'a grant whose base names another user than its user', status: 403, code: 'ERR_GRANT_OTHER_USER', run: () => ask('GET', '/pcs/pc-1/alice/Documents/report.txt', adminGrant({ user: 'bob' })) },
    { name: 'an expired grant', status: 403, code: 'ERR_GRANT_EXPIRED', run: () => ask('GET', '/pcs/pc-1/alice/Documents/report.txt', adminGrant({ issuedAt: now() - 200, expires: now() - 100 })) },
    { name: 'a grant signed by another key', status: 403, code: 'ERR_GRANT_SIGNATURE', run: () => ask('GET', '/pcs/pc-1/alice/Documents/report.txt', adminGrant(), { signer: otherKey }) },
    { name: 'another method than the grant\'s', status: 403, code: 'ERR_GRANT_SCOPE', run: () => ask('DELETE', '/pcs/pc-1/alice/Documents/report.txt', adminGrant()) },
    { name: 'a path outside the prefix', status: 403, code: 'ERR_GRANT_SCOPE', run: () => ask('GET', '/pcs/pc-1/alice/Documents/Private.txt', adminGrant({ prefix: ['Documents', 'Shared'] })) },
    { name: 'a ".." segment', status: 400, code: 'ERR_DAV_PATH_INVALID', run: () => ask('GET', '/pcs/pc-1/alice/Documents/Shared/../Private.txt', adminGrant({ prefix: ['Documents', 'Shared'] })) },
    { name: 'an encoded slash', status: 400, code: 'ERR_DAV_PATH_INVALID', run: () => ask('GET', '/pcs/pc-1/alice/Documents/Shared%2F..%2FPrivate.txt', adminGrant({ prefix: ['Documents', 'Shared'] })) },
    { name: 'a GET with a list grant', status: 403, code: 'ERR_GRANT_ACCESS', run: () => ask('GET', '/pcs/pc-1/alice/Documents/report.txt', adminGrant({ access: 'list' })) },
    { name: 'an administrator\'s PUT', status: 403, code: 'ERR_GRANT_ACCESS', run: () => ask('PUT', '/pcs/pc-1/alice/Documents/x.txt', adminGrant({ method: 'PUT' }), { body: Buffer.from('no') }) },
    { name: 'an administrator\'s readwrite grant', status: 403, code: 'ERR_GRANT_ACCESS', run: () => ask('DELETE', '/pcs/pc-1/alice/Documents/report.txt', adminGrant({ method: 'DELETE', access: 'readwrite' })) },
    { name: 'a user without a vault here', status: 404, code: 'ERR_LINK_DAV_NO_USER', run: () => ask('GET', '/pcs/pc-1/zed/Documents/a', adminGrant({ user: 'zed', base: '/pcs/pc-1/zed' })) },
  ];
  for (const r of refusals) {
    it(`refuses ${r.name} (${r.status} ${r.code}), audited`, async () => {
      const before = (await auditLines()).length;
      const res = await r.run();
      assert.equal(res.status, r.status, res.body.toString());
      assert.equal(code(res), r.code);
      const lines = (await auditLines()).slice(before);
      assert.equal(lines.length, 1, JSON.stringify(lines));
      assert.equal(lines[0]!.decision, 'deny');
      assert.match(lines[0]!.reason!, new RegExp(` ${r.status} `));
      assert.ok(lines[0]!.actor === 'dana (console administrator)' || lines[0]!.actor === 'console (grant not verified)', lines[0]!.actor);
    });
  }

  it('refuses a replayed grant id, and the file stays unchanged by the refused PUT', async () => {
    const token = await signGrant(adminGrant({ prefix: ['Documents', 'report.txt'] }), key);
    assert.equal((await send('GET', '/pcs/pc-1/alice/Documents/report.txt', token)).status, 200);
    const again = await send('GET', '/pcs/pc-1/alice/Documents/report.txt', token);
    assert.equal(again.status, 403);
    assert.equal(code(again), 'ERR_GRANT_REPLAYED');
    assert.equal((await davRequest(server, 'GET', '/Documents/x.txt')).status, 404);
    assert.deepEqual((await davRequest(server, 'GET', '/Documents/report.txt')).body, report);
  });

  it('refuses share rules not signed by the pinned key or for another PC, and a grant on them', async () => {
    const res = await setRules([await signShareRule(rule(), otherKey), await signShareRule(rule({ id: 'rule-other-pc', pcId: 'pc-2' }), key), 'not a jwt']);
    assert.equal(res.status, 200);
    const body = res.body as { accepted: string[]; refused: { index: number; code: string }[] };
    assert.deepEqual(body.accepted, []);
    assert.deepEqual(body.refused, [
      { index: 0, code: 'ERR_GRANT_SIGNATURE' },
      { index: 1, code: 'ERR_GRANT_OTHER_PC' },
      { index: 2, code: 'ERR_GRANT_MALFORMED' },
    ]);
    const get = await ask('GET', '/shared/alice@pc-1/Shared/a.txt', shareGrant());
    assert.equal(get.status, 403);
    assert.equal(code(get), 'ERR_GRANT_NO_RULE');
    assert.equal((await hub.request(PC, LINK_PATHS.shareRules, { rules: [1] })).status, 400);
  });

  it('a read grantee reads and lists under /shared hrefs but cannot write; no more access than the rule', async () => {
    const set = await setRules([await signShareRule(rule(), key)]);
    assert.deepEqual((set.body as { accepted: string[] }).accepted, ['rule-read']);
    const get = await ask('GET', '/shared/alice@pc-1/Shared/a.txt', shareGrant());
    assert.equal(get.status, 200, get.body.toString());
    assert.equal(get.body.toString(), 'shared text\n');
    const list = await ask('PROPFIND', '/shared/alice@pc-1/Shared/', shareGrant({ method: 'PROPFIND' }), { headers: { depth: '1' } });
    assert.equal(list.status, 207);
    const hrefs = [...list.body.toString().matchAll(/<D:href>([^<]*)<\/D:href>/g)].map((m) => m[1]);
    assert.deepEqual(hrefs.sort(), ['/shared/alice@pc-1/Shared/', '/shared/alice@pc-1/Shared/a.txt']);
    const put = await ask('PUT', '/shared/alice@pc-1/Shared/b.txt', shareGrant({ method: 'PUT' }), { body: Buffer.from('no') });
    assert.equal(put.status, 403);
    assert.equal(code(put), 'ERR_GRANT_ACCESS');
    const widened = await ask('PUT', '/shared/alice@pc-1/Shared/b.txt', shareGrant({ method: 'PUT', access: 'readwrite' }), { body: Buffer.from('no') });
    assert.equal(code(widened), 'ERR_GRANT_ACCESS');
    const otherFolder = await ask('GET', '/shared/alice@pc-1/Documents/Private.txt', shareGrant({ base: '/shared/alice@pc-1/Documents', root: ['Documents'], prefix: ['Documents'] }));
    assert.equal(code(otherFolder), 'ERR_GRANT_NO_RULE');
    const otherGrantee = await ask('GET', '/shared/alice@pc-1/Shared/a.txt', shareGrant({ actor: 'mallory' }));
    assert.equal(code(otherGrantee), 'ERR_GRANT_NO_RULE');
    const line = (await auditLines()).find((l) => l.action === 'share.access' && l.decision === 'allow');
    assert.equal(line?.actor, 'bob (share grantee)');
    assert.match(line!.reason!, /^GET 200 request \S+ rule rule-read path sha256:[0-9a-f]{16}$/);
    assert.match(await notices(), /bob/);
  });

  it('a readwrite group grantee writes into the owner\'s vault; a Destination outside the share is another server', async () => {
    await setRules([await signShareRule(rule(), key), await signShareRule(rule({ id: 'rule-rw', grantee: { kind: 'group', name: 'grp' }, access: 'readwrite' }), key)]);
    const g = { actor: 'carol', groups: ['staff', 'GRP'], ruleId: 'rule-rw', access: 'readwrite' as const };
    const put = await ask('PUT', '/shared/alice@pc-1/Shared/new.txt', shareGrant({ ...g, method: 'PUT' }), { body: Buffer.from('from carol\n') });
    assert.equal(put.status, 201, put.body.toString());
    const mine = await davRequest(server, 'GET', '/Documents/Shared/new.txt');
    assert.equal(mine.status, 200);
    assert.equal(mine.body.toString(), 'from carol\n');
    const out = await ask('MOVE', '/shared/alice@pc-1/Shared/new.txt', shareGrant({ ...g, method: 'MOVE' }), { headers: { destination: 'https://console.test:8443/pcs/pc-1/alice/Documents/stolen.txt' } });
    assert.equal(out.status, 502);
    const inside = await ask('MOVE', '/shared/alice@pc-1/Shared/new.txt', shareGrant({ ...g, method: 'MOVE' }), { headers: { destination: 'https://console.test:8443/shared/alice@pc-1/Shared/moved.txt' } });
    assert.equal(inside.status, 201);
    assert.equal((await davRequest(server, 'GET', '/Documents/Shared/moved.txt')).body.toString(), 'from carol\n');
    const noGroup = await ask('PUT', '/shared/alice@pc-1/Shared/x.txt', shareGrant({ ...g, groups: ['staff'], method: 'PUT' }), { body: Buffer.from('x') });
    assert.equal(code(noGroup), 'ERR_GRANT_NO_RULE');
  });

  it('a replaced rule set ends access at once; an expired rule ends it on the agent\'s clock', async () => {
    await setRules([await signShareRule(rule({ expires: now() + 2 }), key)]);
    assert.equal((await ask('GET', '/shared/alice@pc-1/Shared/a.txt', shareGrant())).status, 200);
    await new Promise((r) => setTimeout(r, 2500));
    const expired = await ask('GET', '/shared/alice@pc-1/Shared/a.txt', shareGrant());
    assert.equal(code(expired), 'ERR_GRANT_NO_RULE');
    await setRules([await signShareRule(rule(), key)]);
    assert.equal((await ask('GET', '/shared/alice@pc-1/Shared/a.txt', shareGrant())).status, 200);
    await setRules([]);
    assert.equal(code(await ask('GET', '/shared/alice@pc-1/Shared/a.txt', shareGrant())), 'ERR_GRANT_NO_RULE');
  });

  it('a console with another key in a later welcome is not taken: the pin stays, its grants are refused', async () => {
    await hub.close();
    registry.online.clear();
    hub = await startLinkServer({ host: '127.0.0.1', port, tls: consoleTls, heartbeatSeconds: 1, consoleKey: otherPublicPem, registry, logger: captureLogger().logger });
    await until(() => hub.isConnected(PC), 'the agent linked again', 40_000);
    await until(() => /different console key/.test(server.output()), 'the agent logging the other key', 10_000);
    assert.equal(await readFile(dataFolder(server.dataDir).consoleKey, 'utf8'), publicPem);
    const res = await ask('GET', '/pcs/pc-1/alice/Documents/report.txt', adminGrant({ prefix: ['Documents', 'report.txt'] }), { signer: otherKey });
    assert.equal(code(res), 'ERR_GRANT_SIGNATURE');
    assert.equal((await ask('GET', '/pcs/pc-1/alice/Documents/report.txt', adminGrant({ prefix: ['Documents', 'report.txt'] }))).status, 200);
  });
});
