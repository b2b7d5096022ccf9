/**
 * ShareRules' push (server/console/sharing/share-rules.ts) on a real SQLite
 * store with a hub that answers slowly: pushes to one PC never overlap and
 * arrive in the order of the changes, so a set read before a revocation can
 * never land after the set without the revoked rule; a PC that is not
 * connected is not asked; every pushed rule verifies with the issuer's
 * public key for its PC and carries the rule's expiry.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import type { FastifyBaseLogger } from 'fastify';
import { verifyShareRule } from '../policy/grants/share-rule.js';
import { generateIssuerKeyPair, loadIssuerPrivateKey, parseIssuerPublicKey, type IssuerPublicKey } from '../policy/takeout/issuer-keys.js';
import { ShareRules } from '../server/console/sharing/share-rules.js';
import { openConsoleStore } from '../server/console/store/open.js';
import type { ConsoleStore } from '../server/console/store/store.js';
import type { ShareRuleSet } from '../server/link/protocol.js';
import { tempDir } from './helpers/keys.js';

const NOW = Date.parse('2026-12-02T12:00:00Z');
const sam = { name: 'sam', roles: new Set(['viewer', 'sharing'] as const) };

describe('ShareRules.push', () => {
  let store: ConsoleStore;
  let publicKey: IssuerPublicKey;
  let rules: ShareRules;
  let cleanup: () => Promise<void>;
  const sent: string[][] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let connected = true;
  let delayMs = 0;
  let now = NOW;

  before(async () => {
    const tmp = await tempDir('mydoc-share-rules-');
    cleanup = tmp.cleanup;
    const logger = pino({ level: 'silent' }) as unknown as FastifyBaseLogger;
    store = await openConsoleStore({ kind: 'sqlite', file: join(tmp.dir, 'console.db') }, logger);
    await store.addPc('pc-1', NOW);
    // As the registry records them: bob was reported once, his session is closed now.
    await store.addKnownUsers('pc-1', ['alice', 'bob'], NOW);
    await store.saveStatus('pc-1', { gate: 'online', takeoutUntil: null, users: ['alice'], lastBackupAt: null, agentVersion: 't' } as never, NOW);
    const pair = await generateIssuerKeyPair('EdDSA');
    await writeFile(join(tmp.dir, 'issuer.pem'), pair.privatePem, { mode: 0o600 });
    publicKey = await parseIssuerPublicKey(pair.publicPem, 'test');
    const hub = {
      isConnected: () => connected,
      request: async (_pcId: string, _path: string, body: unknown) => {
        inFlight += 1;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((r) => setTimeout(r, delayMs));
        const set = await Promise.all((body as ShareRuleSet).rules.map((t) => verifyShareRule(t, { key: publicKey, pcId: 'pc-1', now: new Date(NOW) })));
        sent.push(set.map((r) => r.id));
        inFlight -= 1;
        return { status: 200, body: { accepted: set.map((r) => r.id), refused: [] } };
      },
    };
    rules = new ShareRules({
      store, hub, issuerKey: await loadIssuerPrivateKey(join(tmp.dir, 'issuer.pem'), 'test'), audit: { append: async () => ({}) as never },
      sharing: { defaultDays: 30, maxDays: 90 }, clock: () => now, logger,
    });
  });
  after(async () => {
    await store?.close();
    await cleanup?.();
  });

  it('a rule\'s owner is any user the PC has ever reported (signed in now or not); another name is ERR_SHARE_UNKNOWN', async () => {
    const closed = await rules.create(sam, { pcId: 'pc-1', user: 'bob', folder: 'Documents', grantee: { kind: 'user', name: 'gina' }, access: 'read' });
    assert.equal(closed.user, 'bob');
    await rules.revoke(sam, closed.id);
    await assert.rejects(rules.create(sam, { pcId: 'pc-1', user: 'mallory', folder: 'Documents', grantee: { kind: 'user', name: 'gina' }, access: 'read' }), {
      code: 'ERR_SHARE_UNKNOWN',
      message: 'PC pc-1 has never reported a user mallory',
    });
  });

  it('pushes to one PC one after the other, in the order of the changes', async () => {
    const a = await rules.create(sam, { pcId: 'pc-1', user: 'alice', folder: 'Documents/A', grantee: { kind: 'user', name: 'gina' }, access: 'read' });
    assert.deepEqual(sent.at(-1), [a.id]);
    delayMs = 150;
    // A slow push of the set with `a`, then a revocation whose push must come after it.
    const slow = rules.push('pc-1');
    await new Promise((r) => setTimeout(r, 20));
    await rules.revoke(sam, a.id);
    await slow;
    assert.deepEqual(sent.slice(-2), [[a.id], []], 'the set without the revoked rule is the last one');
    assert.equal(maxInFlight, 1, 'never two pushes to one PC at once');
    delayMs = 0;
  });

  it('signs each rule for its PC with its expiry (default days), verifiable with the issuer public key', async () => {
    const b = await rules.create(sam, { pcId: 'pc-1', user: 'alice', folder: ['Documents', 'B'], grantee: { kind: 'group', name: 'team' }, access: 'readwrite' });
    assert.equal(b.expiresAt, NOW + 30 * 86_400_000);
    assert.deepEqual(sent.at(-1), [b.id]);
    await assert.rejects(rules.create(sam, { pcId: 'pc-1', user: 'alice', folder: 'X', grantee: { kind: 'user', name: 'g' }, access: 'read', days: 91 }), { code: 'ERR_SHARE_INPUT' });
  });

  it('an expired rule (console clock) is neither pushed nor reached by its grantee', async () => {
    const c = await rules.create(sam, { pcId: 'pc-1', user: 'alice', folder: 'Documents/C', grantee: { kind: 'user', name: 'CORP\\Gina' }, access: 'read', days: 1 });
    assert.ok(sent.at(-1)!.includes(c.id));
    assert.deepEqual((await rules.forGrantee('gina', new Set())).map((r) => r.id), [c.id], 'the user name is compared normalized');
    assert.deepEqual((await rules.forGrantee('nora', new Set(['TEAM']))).map((r) => r.grantee.name), ['team'], 'group names compare case-insensitively');
    now = NOW + 86_400_000;
    await rules.push('pc-1');
    assert.ok(!sent.at(-1)!.includes(c.id));
    assert.deepEqual(await rules.forGrantee('gina', new Set()), []);
    now = NOW;
  });

  it('asks no PC that is not connected (it gets its set at its next connect)', async () => {
    connected = false;
    const count = sent.length;
    assert.equal(await rules.push('pc-1'), undefined);
    assert.equal(sent.length, count);
    connected = true;
  });
});
