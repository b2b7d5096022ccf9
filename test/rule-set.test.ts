/**
 * The agent's verified share rule set (policy/grants/rule-set.ts) on an
 * injected clock: a rule counts only until its expiry on the agent's
 * clock; a set replaces the one before at once; a grant must agree with
 * its rule (owner, folder as root and prefix, grantee user or group, no
 * more access); rules of another key or PC are refused by index.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Grant } from '../policy/grants/grant.js';
import { VerifiedShareRules } from '../policy/grants/rule-set.js';
import { signShareRule, type ShareRule } from '../policy/grants/share-rule.js';
import { generateIssuerKeyPair, loadIssuerPrivateKey, parseIssuerPublicKey } from '../policy/takeout/issuer-keys.js';
import { tempDir } from './helpers/keys.js';

const T0 = 1_900_000_000;

async function keys() {
  const { dir, cleanup } = await tempDir('mydoc-rules-');
  try {
    const make = async (name: string) => {
      const pair = await generateIssuerKeyPair('ES256');
      await writeFile(join(dir, name), pair.privatePem);
      return { priv: await loadIssuerPrivateKey(join(dir, name), name), pub: await parseIssuerPublicKey(pair.publicPem, name) };
    };
    return { mine: await make('mine.pem'), other: await make('other.pem') };
  } finally {
    await cleanup();
  }
}

const rule = (over: Partial<ShareRule> = {}): ShareRule => ({ id: 'r1', pcId: 'pc-1', user: 'alice', folder: ['Documents', 'Team'], grantee: { kind: 'group', name: 'CN=Staff,DC=corp' }, access: 'read', createdBy: 'sam', issuedAt: T0, expires: T0 + 100, ...over });
const grant = (over: Partial<Grant> = {}): Grant => ({ id: 'g', pcId: 'pc-1', actor: 'CORP\\Bob', kind: 'share', role: 'share', user: 'Alice', access: 'read', method: 'GET', base: '/shared/alice@pc-1/Team', root: ['documents', 'team'], prefix: ['Documents', 'Team'], ruleId: 'r1', groups: ['cn=staff,dc=corp'], issuedAt: T0, expires: T0 + 60, ...over });

test('a rule holds until its expiry on the agent clock, and a new set replaces the old at once', async () => {
  const { mine, other } = await keys();
  let now = T0 * 1000;
  const rules = new VerifiedShareRules('pc-1', () => mine.pub, () => now);
  const answer = await rules.replace([await signShareRule(rule(), mine.priv), await signShareRule(rule({ id: 'r2' }), other.priv), await signShareRule(rule({ id: 'r3', pcId: 'pc-2' }), mine.priv), 42]);
  assert.deepEqual(answer, { accepted: ['r1'], refused: [{ index: 1, code: 'ERR_GRANT_SIGNATURE' }, { index: 2, code: 'ERR_GRANT_OTHER_PC' }, { index: 3, code: 'ERR_GRANT_MALFORMED' }] });
  assert.equal(rules.match(grant()).id, 'r1', 'names compared as the vault does, groups case-insensitively, the user normalised');
  now = (T0 + 99) * 1000;
  assert.ok(rules.find('r1'));
  now = (T0 + 100) * 1000;
  assert.equal(rules.find('r1'), undefined, 'expired on the agent clock');
  assert.throws(() => rules.match(grant()), { code: 'ERR_GRANT_NO_RULE' });
  now = T0 * 1000;
  await rules.replace([]);
  assert.equal(rules.find('r1'), undefined, 'gone with the next set');
});

test('a share grant must agree with its rule', async () => {
  const { mine } = await keys();
  const rules = new VerifiedShareRules('pc-1', () => mine.pub, () => T0 * 1000);
  await rules.replace([await signShareRule(rule(), mine.priv), await signShareRule(rule({ id: 'u1', grantee: { kind: 'user', name: 'bob@corp.example' }, access: 'readwrite' }), mine.priv)]);
  for (const [why, g, code] of [
    ['another owner', grant({ user: 'carol' }), 'ERR_GRANT_NO_RULE'],
    ['a wider root', grant({ root: ['Documents'] }), 'ERR_GRANT_NO_RULE'],
    ['another prefix', grant({ prefix: ['Documents', 'Team', 'Sub'] }), 'ERR_GRANT_NO_RULE'],
    ['not in the group', grant({ groups: ['CN=Other,DC=corp'] }), 'ERR_GRANT_NO_RULE'],
    ['more access than the rule', grant({ access: 'readwrite' }), 'ERR_GRANT_ACCESS'],
    ['an unknown rule', grant({ ruleId: 'nope' }), 'ERR_GRANT_NO_RULE'],
    ['a user rule for someone else', grant({ ruleId: 'u1', actor: 'mallory' }), 'ERR_GRANT_NO_RULE'],
    ['an admin grant', grant({ kind: 'admin' }), 'ERR_GRANT_NO_RULE'],
  ] as const) {
    assert.throws(() => rules.match(g), { code }, why);
  }
  assert.equal(rules.match(grant({ ruleId: 'u1', actor: 'bob', groups: [], access: 'readwrite' })).id, 'u1', 'a user grantee by normalised name');
});

test('before a console key is pinned every rule is refused', async () => {
  const { mine } = await keys();
  const rules = new VerifiedShareRules('pc-1', () => undefined, () => T0 * 1000);
  assert.deepEqual(await rules.replace([await signShareRule(rule(), mine.priv)]), { accepted: [], refused: [{ index: 0, code: 'ERR_GRANT_NO_CONSOLE_KEY' }] });
});
