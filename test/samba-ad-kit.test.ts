/**
 * The shipped Active Directory kit (deploy/active-directory/) against a real Samba AD DC that
 * test/helpers/samba-ad.ts provisioned with it: the schema on the DC is the shipped LDIF's; the
 * agent's directory code, bound as the account add-pc.sh made and with the password file it
 * wrote, enrols a user and logs users in; the secret is hidden from another PC's account and from
 * an ordinary user (read as each), who cannot write or create in the container either; the
 * account's rights stop at its own PC's container; remove-pc.sh revokes. The DC uses the fixed
 * ports 389/636: this file runs alone (see the harness's head comment).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Attribute, Change, Client, Control, InsufficientAccessError } from 'ldapts';
import { NetworkSecretUnavailableError } from '../crypto/errors.js';
import { LdapDirectory, type LdapDirectorySettings } from '../policy/directory/ldap/directory.js';
import { readSecretFile } from '../server/config/directory.js';
import { AD_KIT_DIR, KEY_OBJECT_CLASS, SECRET_ATTRIBUTE, adDirectorySettings, startSambaAd, type AdAccount, type SambaAd } from './helpers/samba-ad.js';

let ad: SambaAd;
before(async () => {
  ad = await startSambaAd();
});
after(async () => {
  await ad?.stop();
});

const settings = (overrides: Partial<LdapDirectorySettings> = {}): LdapDirectorySettings => adDirectorySettings(ad, overrides);

/** Runs `fn` with an LDAPS client bound by UPN as `who`, then unbinds. */
async function asAccount<T>(who: AdAccount, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ url: ad.ldapsUrl, tlsOptions: { ca: ad.caPem, servername: ad.tlsServerName }, timeout: 5_000, connectTimeout: 3_000 });
  try {
    await client.bind(who.userPrincipalName, who.password);
    return await fn(client);
  } finally {
    await client.unbind();
  }
}

/** A present attribute's value, or undefined: ldapts reports an asked-for, absent attribute as `[]`. */
function present(value: unknown): unknown {
  return Array.isArray(value) && value.length === 0 ? undefined : value;
}

/** The key object's cn and secret as `client` sees them, or null when the object is not visible at all. */
async function readKey(client: Client, dn: string): Promise<{ cn: unknown; secret: unknown } | null> {
  const { searchEntries } = await client.search(dn, { scope: 'base', attributes: ['cn', SECRET_ATTRIBUTE], explicitBufferAttributes: [SECRET_ATTRIBUTE] });
  return searchEntries[0] ? { cn: present(searchEntries[0].cn), secret: present(searchEntries[0][SECRET_ATTRIBUTE]) } : null;
}

/** One attribute's value in the shipped LDIF's record whose dn starts with `rdn`. */
function ldifValue(ldif: string, rdn: string, attribute: string): string {
  const record = ldif.split(/\n\s*\n/).find((r) => r.includes(`\ndn: ${rdn},`) || r.startsWith(`dn: ${rdn},`));
  const value = record && new RegExp(`^${attribute}: (.*)$`, 'm').exec(record)?.[1];
  assert.ok(value, `${attribute} of ${rdn} in mydoc-schema.ldif`);
  return value;
}

const absent = (err: unknown) => err instanceof NetworkSecretUnavailableError && err.code === 'ERR_NETWORK_SECRET_ABSENT';

test('the DC\'s schema is the shipped LDIF\'s: confidential, RODC-filtered, single-valued octet string, not in the GC, under the generated arc', async () => {
  const ldif = await readFile(join(AD_KIT_DIR, 'mydoc-schema.ldif'), 'utf8');
  assert.match(ad.oidArc, /^1\.2\.840\.113556\.1\.8000\.2554(\.\d+){7}$/, 'new-oid-arc.sh: Microsoft\'s arc and seven numbers from a GUID');
  await asAccount(ad.admin, async (client) => {
    const { searchEntries } = await client.search(`CN=Schema,CN=Configuration,${ad.baseDn}`, {
      scope: 'one',
      filter: `(|(lDAPDisplayName=${SECRET_ATTRIBUTE})(lDAPDisplayName=${KEY_OBJECT_CLASS}))`,
      attributes: ['lDAPDisplayName', 'attributeID', 'governsID', 'searchFlags', 'isSingleValued', 'attributeSyntax', 'oMSyntax', 'isMemberOfPartialAttributeSet', 'adminDescription', 'mustContain', 'mayContain', 'possSuperiors'],
    });
    const attr = searchEntries.find((e) => e.lDAPDisplayName === SECRET_ATTRIBUTE);
    const cls = searchEntries.find((e) => e.lDAPDisplayName === KEY_OBJECT_CLASS);
    assert.ok(attr && cls, 'both schema objects exist');
    assert.equal(attr.searchFlags, '640', 'CONFIDENTIAL 0x80 + RODC-filtered 0x200');
    assert.equal((Number(attr.searchFlags) & 0x80) !== 0 && (Number(attr.searchFlags) & 0x200) !== 0, true);
    assert.equal(attr.isSingleValued, 'TRUE');
    assert.equal(attr.attributeSyntax, '2.5.5.10');
    assert.equal(attr.oMSyntax, '4');
    assert.equal(attr.isMemberOfPartialAttributeSet, 'FALSE');
    assert.equal(attr.attributeID, `${ad.oidArc}.1.1`);
    assert.equal(attr.adminDescription, ldifValue(ldif, 'CN=mydoc-Network-Secret', 'adminDescription'));
    assert.equal(cls.governsID, `${ad.oidArc}.2.1`);
    assert.equal(cls.adminDescription, ldifValue(ldif, 'CN=mydoc-Pc-User-Key', 'adminDescription'));
    assert.equal(cls.mustContain, 'cn');
    assert.equal(cls.mayContain, SECRET_ATTRIBUTE);
    assert.deepEqual([cls.possSuperiors].flat().sort(), ['container', 'organizationalUnit']);
  });
});

test('with add-pc.sh\'s account and 0600 password file, the agent\'s directory enrols alice in pc1\'s container and logs in CORP\\user and user@upn', { timeout: 60_000 }, async () => {
  const file = ad.passwordFile('pc1');
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  const password = await readSecretFile(file, 'service account password file');
  assert.ok(password.length >= 40, 'a long random password');
  const dir = new LdapDirectory(settings({ servicePassword: password }));
  assert.deepEqual(await dir.authenticate(ad.users.alice.downLevelName, ad.users.alice.password), { ok: true, user: 'alice', admin: false });
  assert.deepEqual(await dir.authenticate(ad.users.bob.userPrincipalName, ad.users.bob.password), { ok: true, user: 'bob', admin: false });
  assert.deepEqual(await dir.authenticate(ad.users.carol.userPrincipalName, ad.users.carol.password), { ok: true, user: 'carol', admin: true });
  assert.deepEqual(await dir.authenticate(ad.users.alice.downLevelName, 'Wrong-password-1'), { ok: false, reason: 'wrong user name or password' });

  const secret = await dir.secrets.create('alice');
  assert.ok((await dir.secrets.fetch('alice')).equals(secret));
  const replaced = await dir.secrets.create('alice');
  assert.ok(!replaced.equals(secret) && (await dir.secrets.fetch('alice')).equals(replaced), 'svc-pc1 replaces the secret');
  // It is where the template says, and a domain admin reads it (as with LAPS and BitLocker keys).
  await asAccount(ad.admin, async (client) => assert.deepEqual(await readKey(client, ad.keyDn('alice')), { cn: 'alice', secret: replaced }));
});

test('pc2\'s account and an ordinary user see pc1\'s key object but never the secret, and cannot write, create or delete there', { timeout: 60_000 }, async () => {
  const dir = new LdapDirectory(settings());
  const secret = await dir.secrets.create('bob');
  const keyDn = ad.keyDn('bob');
  for (const who of [ad.otherService, ad.users.alice, ad.users.bob]) {
    await asAccount(who, async (client) => {
      assert.deepEqual(await readKey(client, keyDn), { cn: 'bob', secret: undefined }, `${who.userPrincipalName} reads cn, not the secret`);
      const bySearch = await client.search(ad.containerDn(ad.pcId), { scope: 'sub', filter: `(${SECRET_ATTRIBUTE}=*)`, attributes: [SECRET_ATTRIBUTE] });
      assert.equal(bySearch.searchEntries.length, 0, `${who.userPrincipalName} cannot even test for the secret`);
      await assert.rejects(client.modify(keyDn, new Change({ operation: 'replace', modification: new Attribute({ type: SECRET_ATTRIBUTE, values: [randomBytes(32)] }) })), InsufficientAccessError);
      await assert.rejects(client.add(ad.keyDn(`x-${who.userPrincipalName.split('@')[0]}`), { objectClass: KEY_OBJECT_CLASS, cn: `x-${who.userPrincipalName.split('@')[0]}` }), InsufficientAccessError);
      await assert.rejects(client.del(keyDn));
    });
  }
  // Through the agent's own code: pc2's account, pointed at pc1's keys, is told there is none.
  const pc2AsPc1 = new LdapDirectory(settings({ serviceDn: ad.otherService.dn, servicePassword: await readSecretFile(ad.passwordFile('pc2'), 'pc2 password') }));
  await assert.rejects(pc2AsPc1.secrets.fetch('bob'), absent);
  // The user herself, bound as the service, neither.
  const self = new LdapDirectory(settings({ serviceDn: ad.users.bob.dn, servicePassword: ad.users.bob.password }));
  await assert.rejects(self.secrets.fetch('bob'), absent);
  assert.ok((await dir.secrets.fetch('bob')).equals(secret), 'the secret is unchanged');
});

test('svc-pc1\'s rights stop at its own container: it cannot create, read or write keys in pc2\'s', { timeout: 60_000 }, async () => {
  const pc2 = new LdapDirectory(settings({ serviceDn: ad.otherService.dn, servicePassword: ad.otherService.password, pcId: ad.otherPcId }));
  const secret = await pc2.secrets.create('alice');
  const pc2Key = ad.keyDn('alice', ad.otherPcId);
  await asAccount(ad.service, async (client) => {
    assert.deepEqual(await readKey(client, pc2Key), { cn: 'alice', secret: undefined });
    await assert.rejects(client.modify(pc2Key, new Change({ operation: 'replace', modification: new Attribute({ type: SECRET_ATTRIBUTE, values: [randomBytes(32)] }) })), InsufficientAccessError);
    await assert.rejects(client.add(ad.keyDn('bob', ad.otherPcId), { objectClass: KEY_OBJECT_CLASS, cn: 'bob' }), InsufficientAccessError);
    // Nor any other class in its own container: the create right is for key objects only.
    await assert.rejects(client.add(`OU=extra,${ad.containerDn(ad.pcId)}`, { objectClass: 'organizationalUnit', ou: 'extra' }), InsufficientAccessError);
  });
  assert.ok((await pc2.secrets.fetch('alice')).equals(secret));
});

/** The deleted key objects under the Recycle Bin (show-deleted control), as a domain admin sees them. */
async function deletedKeys(client: Client): Promise<Array<{ cn: unknown; secret: unknown }>> {
  const { searchEntries } = await client.search(
    `CN=Deleted Objects,${ad.baseDn}`,
    { scope: 'sub', filter: `(objectClass=${KEY_OBJECT_CLASS})`, attributes: ['cn', SECRET_ATTRIBUTE], explicitBufferAttributes: [SECRET_ATTRIBUTE] },
    new Control('1.2.840.113556.1.4.417', { critical: true }),
  );
  return searchEntries.map((e) => ({ cn: e.cn, secret: present(e[SECRET_ATTRIBUTE]) }));
}

test('the agent revoking one user (secrets.delete) leaves no secret in the Recycle Bin\'s deleted object', { timeout: 60_000 }, async () => {
  const dir = new LdapDirectory(settings());
  await dir.secrets.create('carol');
  await dir.secrets.delete('carol');
  await assert.rejects(dir.secrets.fetch('carol'), absent);
  await asAccount(ad.admin, async (client) => {
    const carol = (await deletedKeys(client)).filter((k) => String(k.cn).startsWith('carol'));
    assert.equal(carol.length, 1, 'the deleted object is in the Recycle Bin');
    assert.equal(carol[0]!.secret, undefined);
  });
});

test('add-pc.sh for a new PC: a working 0600 password file that no output shows, an account for that PC only', { timeout: 60_000 }, async () => {
  const outDir = await mkdtemp(join(tmpdir(), 'mydoc-ad-kit-'));
  try {
    const r = await ad.kit('samba/add-pc.sh', ['--out-dir', outDir, 'pc3']);
    assert.equal(r.status, 0, r.stderr);
    const file = join(outDir, 'pc3.password');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const password = await readSecretFile(file, 'pc3 password');
    assert.match(password, /^[A-Za-z0-9_-]{40}$/);
    assert.ok(!r.stdout.includes(password) && !r.stderr.includes(password), 'the password is only in the file');
    const pc3 = new LdapDirectory(settings({ serviceDn: `CN=svc-pc3,OU=mydoc-services,${ad.baseDn}`, servicePassword: password, pcId: 'pc3' }));
    const secret = await pc3.secrets.create('dave');
    assert.ok((await pc3.secrets.fetch('dave')).equals(secret));
    const pc3AsPc1 = new LdapDirectory(settings({ serviceDn: `CN=svc-pc3,OU=mydoc-services,${ad.baseDn}`, servicePassword: password }));
    await assert.rejects(pc3AsPc1.secrets.fetch('alice'), absent, 'svc-pc3 does not read pc1\'s keys');
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
});

test('the kit refuses bad input with one clear line and touches nothing', { timeout: 60_000 }, async () => {
  const badId = await ad.kit('samba/add-pc.sh', ['pc 3']);
  assert.equal(badId.status, 1);
  assert.match(badId.stderr, /^add-pc\.sh: PC id "pc 3": use 1 to 16 of/m);
  const tooLong = await ad.kit('samba/add-pc.sh', ['a-very-long-pc-id-0042']);
  assert.match(tooLong.stderr, /fits AD's 20-character account names/);
  const again = await ad.kit('samba/add-pc.sh', ['pc1']);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /svc-pc1 already exists: nothing done for pc1/);
  const placeholder = await ad.kit('samba/extend-schema.sh', ['1.3.6.1.4.1.99999.1']);
  assert.equal(placeholder.status, 1);
  assert.match(placeholder.stderr, /placeholder arc/);
  const twice = await ad.kit('samba/extend-schema.sh', [ad.oidArc]);
  assert.equal(twice.status, 1, 'the schema cannot be extended twice');
  // pc1 still works.
  await new LdapDirectory(settings()).secrets.fetch('alice');
});

test('remove-pc.sh revokes: the container and its keys are gone (the agent says revoked), and by default the account is disabled', { timeout: 60_000 }, async () => {
  const dir = new LdapDirectory(settings());
  await dir.secrets.fetch('alice');
  const kept = await ad.kit('samba/remove-pc.sh', ['--keep-account', ad.pcId]);
  assert.equal(kept.status, 0, kept.stderr);
  await assert.rejects(dir.secrets.fetch('alice'), (err: unknown) => absent(err) && /the PC was revoked or the user is not enrolled/.test((err as Error).message));
  await asAccount(ad.admin, async (client) => {
    const { searchEntries } = await client.search(ad.keysDn, { scope: 'one', filter: '(objectClass=organizationalUnit)', attributes: ['ou'] });
    assert.deepEqual(searchEntries.map((e) => e.ou).sort(), [ad.otherPcId, 'pc3'], 'OU=pc1 is gone, the others are not');
    // The deleted key objects (show-deleted control; the Recycle Bin is on, so they keep their
    // attributes) hold no secret: remove-pc.sh cleared it first.
    const deleted = await deletedKeys(client);
    assert.ok(deleted.length >= 3, 'carol\'s, alice\'s and bob\'s deleted key objects are there');
    for (const key of deleted) assert.equal(key.secret, undefined, String(key.cn));
  });
  // Re-enrolment is not possible without a new container (add-pc.sh): the account is the PC's, not the keys'.
  await assert.rejects(dir.secrets.create('alice'));

  const revoked = await ad.kit('samba/remove-pc.sh', [ad.otherPcId]);
  assert.equal(revoked.status, 0, revoked.stderr);
  assert.match(revoked.stdout, /disabled svc-pc2/);
  const pc2 = new LdapDirectory(settings({ serviceDn: ad.otherService.dn, servicePassword: ad.otherService.password, pcId: ad.otherPcId }));
  await assert.rejects(pc2.secrets.fetch('alice'), (err: unknown) => err instanceof NetworkSecretUnavailableError && /refused the service account .*disabled/.test(err.message));
});
