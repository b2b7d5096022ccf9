/**
 * The OpenLDAP test harness (test/helpers/slapd.ts) against itself, through ldapts: binds, the
 * K_dir access control, memberOf as the overlay fills it, and a stop/start on the same port
 * with the data intact.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Attribute, Change, Client, InvalidCredentialsError, NoSuchObjectError } from 'ldapts';
import { KEY_OBJECT_CLASS, SECRET_ATTRIBUTE, startSlapd, type Slapd } from './helpers/slapd.js';

let slapd: Slapd;

before(async () => {
  slapd = await startSlapd({
    extraLdif: `dn: cn=auditors,ou=groups,dc=corp,dc=example\nchangetype: add\nobjectClass: groupOfNames\ncn: auditors\nmember: uid=bob,ou=people,dc=corp,dc=example\n`,
  });
});

after(async () => {
  await slapd?.stop();
});

/** Runs `fn` with a client bound as `dn` (anonymous when dn is null), then unbinds. */
async function asUser<T>(dn: string | null, password: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ url: slapd.url, timeout: 5_000, connectTimeout: 2_000 });
  try {
    if (dn !== null) await client.bind(dn, password);
    return await fn(client);
  } finally {
    await client.unbind();
  }
}

/**
 * The secret of a key entry, or undefined when the attribute is absent. ldapts reports an
 * attribute that was asked for but not returned as `[]` (and a single value as the value itself).
 */
async function readSecret(client: Client, dn: string): Promise<Buffer | undefined> {
  const { searchEntries } = await client.search(dn, { scope: 'base', attributes: [SECRET_ATTRIBUTE, 'cn'], explicitBufferAttributes: [SECRET_ATTRIBUTE] });
  assert.equal(searchEntries.length, 1, `the key entry ${dn} is visible`);
  const value = searchEntries[0]![SECRET_ATTRIBUTE];
  if (Array.isArray(value) && value.length === 0) return undefined;
  assert.ok(Buffer.isBuffer(value), 'the secret is one octet string');
  return value;
}

test('anonymous reads the rootDSE, and nothing of the tree', async () => {
  await asUser(null, '', async (client) => {
    const root = await client.search('', { scope: 'base', attributes: ['namingContexts'] });
    assert.equal(root.searchEntries[0]?.namingContexts, slapd.baseDn);
    // Without even `disclose` on the suffix entry, slapd answers noSuchObject (32).
    await assert.rejects(client.search(slapd.baseDn, { scope: 'sub', filter: '(uid=alice)' }), NoSuchObjectError);
  });
});

test('alice binds with her password and reads the directory; a wrong password is code 49', async () => {
  const alice = slapd.users.alice;
  await asUser(alice.dn, alice.password, async (client) => {
    const { searchEntries } = await client.search(`ou=people,${slapd.baseDn}`, { scope: 'one', filter: '(objectClass=inetOrgPerson)', attributes: ['uid', 'userPassword'] });
    assert.deepEqual(searchEntries.map((e) => e.uid).sort(), ['alice', 'bob', 'carol', 'dave']);
    for (const e of searchEntries) {
      const visible = !(Array.isArray(e.userPassword) && e.userPassword.length === 0);
      assert.equal(visible, e.uid === 'alice', `userPassword of ${String(e.uid)}: readable only by its owner`);
    }
  });
  await assert.rejects(asUser(alice.dn, 'wrong-password', async () => undefined), (error: unknown) => {
    assert.ok(error instanceof InvalidCredentialsError);
    assert.equal(error.code, 49);
    return true;
  });
});

test('only svc-pc1 writes and reads mydocNetworkSecret; for others it is absent', async () => {
  const keyDn = slapd.keyDn('alice');
  const secret = randomBytes(32);
  const replacement = randomBytes(32);
  await asUser(slapd.serviceDn, slapd.servicePassword, async (client) => {
    await client.add(keyDn, { objectClass: KEY_OBJECT_CLASS, cn: 'alice' });
    await client.modify(keyDn, new Change({ operation: 'replace', modification: new Attribute({ type: SECRET_ATTRIBUTE, values: [secret] }) }));
    assert.deepEqual(await readSecret(client, keyDn), secret);
  });
  for (const [who, dn, password] of [
    ['svc-other', slapd.otherServiceDn, slapd.otherServicePassword],
    ['alice', slapd.users.alice.dn, slapd.users.alice.password],
  ] as const) {
    await asUser(dn, password, async (client) => {
      assert.equal(await readSecret(client, keyDn), undefined, `${who} does not see the secret`);
      const byFilter = await client.search(keyDn, { scope: 'base', filter: `(${SECRET_ATTRIBUTE}=*)` });
      assert.equal(byFilter.searchEntries.length, 0, `${who} cannot even test for the secret`);
      await assert.rejects(
        client.modify(keyDn, new Change({ operation: 'replace', modification: new Attribute({ type: SECRET_ATTRIBUTE, values: [replacement] }) })),
        /insufficient/i,
        `${who} cannot overwrite the secret`,
      );
      await assert.rejects(client.del(keyDn), /insufficient/i, `${who} cannot delete the key entry`);
    });
  }
  await asUser(slapd.serviceDn, slapd.servicePassword, async (client) => {
    assert.deepEqual(await readSecret(client, keyDn), secret, 'the secret is unchanged');
    const tempDn = slapd.keyDn('bob');
    await client.add(tempDn, { objectClass: KEY_OBJECT_CLASS, cn: 'bob' });
    await client.del(tempDn);
  });
});

test('memberOf is filled by the overlay and is not transitive', async () => {
  const memberOf = async (dn: string): Promise<string[]> =>
    asUser(slapd.users.alice.dn, slapd.users.alice.password, async (client) => {
      const { searchEntries } = await client.search(dn, { scope: 'base', attributes: ['memberOf'] });
      const value = searchEntries[0]?.memberOf ?? [];
      return (Array.isArray(value) ? value : [value]).map(String).sort();
    });
  const { helpdesk, admins } = slapd.groupDns;
  assert.deepEqual(await memberOf(slapd.users.carol.dn), [helpdesk]);
  assert.deepEqual(await memberOf(slapd.users.dave.dn), [admins]);
  assert.deepEqual(await memberOf(helpdesk), [admins]);
  assert.deepEqual(await memberOf(slapd.users.alice.dn), []);
  assert.deepEqual(await memberOf(slapd.users.bob.dn), [`cn=auditors,ou=groups,${slapd.baseDn}`], 'extraLdif went through the overlay');
});

test('stop and start again: same port, same data; closed port is ECONNREFUSED meanwhile', async () => {
  const firstPid = slapd.pid;
  await slapd.ldapmodify(`dn: ${slapd.users.bob.dn}\nchangetype: modify\nreplace: mail\nmail: bob@elsewhere.example\n`);
  await slapd.stop({ keepData: true });
  const closed = new Client({ url: slapd.url, connectTimeout: 2_000 });
  await assert.rejects(closed.bind(slapd.users.alice.dn, slapd.users.alice.password), /ECONNREFUSED/);
  await closed.unbind();

  const started = performance.now();
  await slapd.start();
  const restartMs = performance.now() - started;
  assert.notEqual(slapd.pid, firstPid);
  await asUser(slapd.users.alice.dn, slapd.users.alice.password, async (client) => {
    const { searchEntries } = await client.search(slapd.users.bob.dn, { scope: 'base', attributes: ['mail'] });
    assert.equal(searchEntries[0]?.mail, 'bob@elsewhere.example');
  });
  await asUser(slapd.serviceDn, slapd.servicePassword, async (client) => {
    assert.equal((await readSecret(client, slapd.keyDn('alice')))?.length, 32, 'the key entry survived');
  });
  assert.ok(restartMs < 5_000, `restart took ${restartMs.toFixed(0)} ms`);
});
