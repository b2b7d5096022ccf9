/**
 * The Samba AD DC test harness (test/helpers/samba-ad.ts) against itself, through ldapts: LDAPS
 * and StartTLS binds with the DC's CA verified, AD's bind error codes, nested groups with
 * LDAP_MATCHING_RULE_IN_CHAIN, and the confidential K_dir attribute. The DC uses the fixed
 * ports 389/636, so the tests run one after another and no other AD test file may run alongside.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Attribute, Change, Client, InvalidCredentialsError, StrongAuthRequiredError } from 'ldapts';
import { KEY_OBJECT_CLASS, SECRET_ATTRIBUTE, startSambaAd, type AdAccount, type SambaAd } from './helpers/samba-ad.js';

let ad: SambaAd;

before(async () => {
  const started = performance.now();
  ad = await startSambaAd();
  process.stderr.write(`samba-ad: DC ready in ${((performance.now() - started) / 1000).toFixed(2)} s\n`);
});

after(async () => {
  await ad?.stop();
});

function ldapsClient(): Client {
  return new Client({ url: ad.ldapsUrl, tlsOptions: { ca: ad.caPem, servername: ad.tlsServerName }, timeout: 5_000, connectTimeout: 3_000 });
}

/** Runs `fn` with an LDAPS client bound by UPN as `who`, then unbinds. */
async function asAccount<T>(who: AdAccount, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = ldapsClient();
  try {
    await client.bind(who.userPrincipalName, who.password);
    return await fn(client);
  } finally {
    await client.unbind();
  }
}

/** The bind error for `name`/`password` over LDAPS (asserting it is code 49). */
async function bindError(name: string, password: string): Promise<string> {
  const client = ldapsClient();
  try {
    await client.bind(name, password);
  } catch (error) {
    assert.ok(error instanceof InvalidCredentialsError, String(error));
    assert.equal(error.code, 49);
    return error.message;
  } finally {
    await client.unbind();
  }
  assert.fail(`bind as ${name} succeeded`);
}

/** A present attribute's value, or undefined: ldapts reports an asked-for, absent attribute as `[]`. */
function present(value: unknown): unknown {
  return Array.isArray(value) && value.length === 0 ? undefined : value;
}

test('LDAPS bind by UPN with the CA verified for the DC name; the bare IP does not verify', async () => {
  await asAccount(ad.users.alice, async (client) => {
    const { searchEntries } = await client.search(ad.users.alice.dn, { scope: 'base', attributes: ['sAMAccountName'] });
    assert.equal(searchEntries[0]?.sAMAccountName, 'alice');
  });
  const noName = new Client({ url: ad.ldapsUrl, tlsOptions: { ca: ad.caPem }, connectTimeout: 3_000 });
  await assert.rejects(noName.bind(ad.users.alice.userPrincipalName, ad.users.alice.password), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  await noName.unbind();
});

test('StartTLS bind as CORP\\alice; a simple bind without TLS is refused with code 8', async () => {
  const client = new Client({ url: ad.ldapUrl, timeout: 5_000, connectTimeout: 3_000 });
  try {
    await client.startTLS({ ca: ad.caPem, servername: ad.tlsServerName });
    await client.bind(ad.users.alice.downLevelName, ad.users.alice.password);
    const { searchEntries } = await client.search(ad.baseDn, { scope: 'sub', filter: '(sAMAccountName=alice)', attributes: ['userPrincipalName'] });
    assert.equal(searchEntries[0]?.userPrincipalName, ad.users.alice.userPrincipalName);
  } finally {
    await client.unbind();
  }
  const plain = new Client({ url: ad.ldapUrl, connectTimeout: 3_000 });
  await assert.rejects(plain.bind(ad.users.alice.downLevelName, ad.users.alice.password), StrongAuthRequiredError);
  await plain.unbind();
});

test('bind errors: wrong password 52e, unknown user 52e, disabled 533, must change password 773', async () => {
  assert.match(await bindError(ad.users.alice.userPrincipalName, 'wrong-Password-1'), /data 52e,/);
  assert.match(await bindError(`nobody@${ad.dnsDomain}`, 'wrong-Password-1'), /data 52e,/);
  assert.match(await bindError(ad.users.dora.userPrincipalName, ad.users.dora.password), /data 533,/);
  assert.match(await bindError(ad.users.erin.userPrincipalName, ad.users.erin.password), /data 773,/);
});

test('nested membership of mydoc-admins through LDAP_MATCHING_RULE_IN_CHAIN', async () => {
  await asAccount(ad.users.alice, async (client) => {
    const inChain = await client.search(ad.baseDn, {
      scope: 'sub',
      filter: `(&(objectCategory=person)(memberOf:1.2.840.113556.1.4.1941:=${ad.groupDns.admins}))`,
      attributes: ['sAMAccountName'],
    });
    assert.deepEqual(inChain.searchEntries.map((e) => e.sAMAccountName).sort(), ['carol', 'dave']);
    const direct = await client.search(ad.baseDn, { scope: 'sub', filter: `(&(objectCategory=person)(memberOf=${ad.groupDns.admins}))`, attributes: ['sAMAccountName'] });
    assert.deepEqual(direct.searchEntries.map((e) => e.sAMAccountName), ['dave']);
  });
});

test('the confidential secret: svc-pc1 writes and reads it; svc-pc2 (another PC\'s account) and alice see the key object but not the secret', async () => {
  const keyDn = ad.keyDn('alice');
  const secret = randomBytes(32);
  const read = async (client: Client) => {
    const { searchEntries } = await client.search(keyDn, { scope: 'base', attributes: ['cn', SECRET_ATTRIBUTE], explicitBufferAttributes: [SECRET_ATTRIBUTE] });
    assert.equal(searchEntries.length, 1);
    return { cn: present(searchEntries[0]!.cn), secret: present(searchEntries[0]![SECRET_ATTRIBUTE]) };
  };
  const replaceSecret = (client: Client, value: Buffer) =>
    client.modify(keyDn, new Change({ operation: 'replace', modification: new Attribute({ type: SECRET_ATTRIBUTE, values: [value] }) }));

  await asAccount(ad.service, async (client) => {
    await client.add(keyDn, { objectClass: KEY_OBJECT_CLASS, cn: 'alice' });
    await replaceSecret(client, secret);
    assert.deepEqual(await read(client), { cn: 'alice', secret });
  });
  for (const who of [ad.otherService, ad.users.alice]) {
    await asAccount(who, async (client) => {
      assert.deepEqual(await read(client), { cn: 'alice', secret: undefined }, `${who.userPrincipalName} reads cn, not the secret`);
      const byFilter = await client.search(keyDn, { scope: 'base', filter: `(${SECRET_ATTRIBUTE}=*)` });
      assert.equal(byFilter.searchEntries.length, 0, `${who.userPrincipalName} cannot test for the secret`);
      await assert.rejects(replaceSecret(client, randomBytes(32)), /no write property access/);
      await assert.rejects(client.del(keyDn));
    });
  }
  await asAccount(ad.service, async (client) => {
    assert.deepEqual((await read(client)).secret, secret, 'the secret is unchanged');
    await client.del(keyDn);
  });
});
