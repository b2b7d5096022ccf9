/**
 * /link/dav's sessions and gate (server/agent/link-dav.ts) over a real
 * HTTP/2 connection and a real enrolled vault: a session the link opened
 * closes again once the link has left it idle, one the user uses stays
 * open; while the gate is not online nothing is opened (503); a refusal
 * after the grant verified is a notice in the owner's vault too.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import http2, { type ClientHttp2Session, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InsecureLocalFileSecretSource } from '../crypto/network-secret.js';
import { AuditLog } from '../policy/audit/log.js';
import type { Directory } from '../policy/directory/directory.js';
import type { GateState } from '../policy/gate.js';
import { GRANT_SECONDS, signGrant, type Grant } from '../policy/grants/grant.js';
import { VerifiedShareRules } from '../policy/grants/rule-set.js';
import { Sessions } from '../policy/sessions.js';
import { generateIssuerKeyPair, loadIssuerPrivateKey, parseIssuerPublicKey, type IssuerPrivateKey } from '../policy/takeout/issuer-keys.js';
import { SessionLocks } from '../server/agent/session-locks.js';
import { LinkDav } from '../server/agent/link-dav.js';
import { GRANT_HEADER, LINK_PATHS } from '../server/link/protocol.js';
import { enrolTestUser } from './helpers/data-dir.js';
import { tempDir } from './helpers/keys.js';
import { captureLogger } from './helpers/link-fakes.js';

const PC = 'pc-1';
const IDLE_MS = 300;

describe('/link/dav sessions and the gate', { timeout: 60_000 }, () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let sessions: Sessions;
  let audit: AuditLog;
  let server: Http2Server;
  let client: ClientHttp2Session;
  let key: IssuerPrivateKey;
  let gate: GateState = 'online';

  const grant = (over: Partial<Grant> = {}): Grant => {
    const issuedAt = Math.floor(Date.now() / 1000);
    return { id: randomUUID(), pcId: PC, actor: 'dana', kind: 'admin', role: 'data', user: 'alice', access: 'list', method: 'PROPFIND', base: '/pcs/pc-1/alice', root: [], prefix: [], issuedAt, expires: issuedAt + GRANT_SECONDS, ...over };
  };
  async function ask(g: Grant, path = '/pcs/pc-1/alice/'): Promise<{ status: number; body: string }> {
    const token = await signGrant(g, key);
    return new Promise((resolve, reject) => {
      const req = client.request({ ':method': g.method, ':path': LINK_PATHS.dav + path, [GRANT_HEADER]: token, depth: '0' });
      let status = 0;
      const chunks: Buffer[] = [];
      req.on('response', (h) => (status = Number(h[':status'])));
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString() }));
      req.on('error', reject);
      req.end();
    });
  }
  const openUsers = async () => (await sessions.all()).map((s) => s.user);

  before(async () => {
    ({ dir, cleanup } = await tempDir('mydoc-linkdav-sessions-'));
    const enrolled = await enrolTestUser(dir, 'alice', PC);
    const directory = { kind: 'local', secrets: new InsecureLocalFileSecretSource(enrolled.secretFile), servers: [] } as unknown as Directory;
    sessions = new Sessions(dir, PC, directory);
    audit = await AuditLog.open(join(dir, 'audit.log'));
    const pair = await generateIssuerKeyPair('EdDSA');
    await writeFile(join(dir, 'issuer.pem'), pair.privatePem);
    key = await loadIssuerPrivateKey(join(dir, 'issuer.pem'), 'test issuer');
    const pinned = await parseIssuerPublicKey(pair.publicPem, 'test key');
    const dav = new LinkDav({
      pcId: PC,
      dataDir: dir,
      consoleKey: { current: () => pinned },
      rules: new VerifiedShareRules(PC, () => pinned, Date.now),
      sessions,
      locks: new SessionLocks(),
      gate: { state: () => gate },
      audit,
      limits: { maxFileBytes: 1 << 20, maxXmlBytes: 1 << 20, quotaBytes: () => 1 << 30 },
      clock: Date.now,
      logger: captureLogger().logger,
      idleMs: IDLE_MS,
    });
    server = http2.createServer();
    server.on('stream', (stream, headers) => void dav.serve(stream, headers));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });

  after(async () => {
    client?.close();
    await new Promise((r) => server?.close(r));
    await sessions?.lockAll();
    await audit?.close();
    await cleanup?.();
  });

  it('closes a session the link opened once the link leaves it idle', async () => {
    assert.deepEqual(await openUsers(), []);
    assert.equal((await ask(grant())).status, 207);
    assert.deepEqual(await openUsers(), ['alice']);
    await new Promise((r) => setTimeout(r, IDLE_MS / 2));
    assert.equal((await ask(grant())).status, 207, 'a second request restarts the idle time');
    await new Promise((r) => setTimeout(r, IDLE_MS * 0.75));
    assert.deepEqual(await openUsers(), ['alice']);
    await new Promise((r) => setTimeout(r, IDLE_MS));
    assert.deepEqual(await openUsers(), [], 'closed after the idle time');
  });

  it('keeps a session the user uses too', async () => {
    await sessions.get('alice');
    assert.equal((await ask(grant())).status, 207);
    await new Promise((r) => setTimeout(r, IDLE_MS * 2));
    assert.deepEqual(await openUsers(), ['alice']);
    await sessions.lockAll();
  });

  it('opens nothing while the gate is not online (503)', async () => {
    gate = 'locked';
    try {
      const res = await ask(grant());
      assert.equal(res.status, 503);
      assert.match(res.body, /ERR_LINK_DAV_OFFLINE/);
      assert.deepEqual(await openUsers(), []);
    } finally {
      gate = 'online';
    }
  });

  it('tells the owner of a refused request once its grant verified', async () => {
    const g = grant({ method: 'GET', access: 'list' });
    const res = await ask(g, '/pcs/pc-1/alice/Documents/secret.txt');
    assert.equal(res.status, 403);
    const notices = (await sessions.get('alice')).vault.notices(10);
    const mine = notices.find((n) => n.requestId === g.id);
    assert.ok(mine, JSON.stringify(notices));
    assert.equal(mine.decision, 'deny');
    assert.equal(mine.actor, 'dana');
    assert.equal(mine.path, '/Documents/secret.txt');
    assert.equal(mine.method, 'GET');
  });
});
