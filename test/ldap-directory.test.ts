/**
 * The LDAP directory against a real OpenLDAP slapd (StartTLS with its CA):
 * login forms, wrong passwords, filter injection, nested admin groups, the
 * network secret's ACL, revocation and the reachability probe.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { NetworkSecretUnavailableError } from '../crypto/errors.js';
import { LdapDirectoryService, type LdapDirectorySettings } from '../policy/directory.js';
import { accountFilter } from '../policy/ldap-directory.js';
import { connect } from '../policy/ldap-connection.js';
import { filterValue, dnValue, fillDnTemplate } from '../policy/ldap-escape.js';
import { slapdDirectorySettings, startSlapd, type Slapd } from './helpers/slapd.js';

let slapd: Slapd;
before(async () => {
  slapd = await startSlapd();
});
after(async () => {
  await slapd?.stop();
});

const settings = (overrides: Partial<LdapDirectorySettings> = {}) => slapdDirectorySettings(slapd, slapd.pcId, overrides);

test('RFC 4515/4514 escaping', () => {
  assert.equal(filterValue('*'), '\\2a');
  assert.equal(filterValue(')(uid=*'), '\\29\\28uid=\\2a');
  assert.equal(filterValue('a\\b\u0000'), 'a\\5cb\\00');
  assert.equal(filterValue('é'), '\\c3\\a9');
  assert.equal(dnValue('a,b+c="d"'), 'a\\,b\\+c\\=\\"d\\"');
  assert.equal(dnValue(' lead'), '\\ lead');
  assert.equal(fillDnTemplate('cn={user},ou={pcId},dc=x', { user: 'x,ou=admins', pcId: 'pc1' }), 'cn=x\\,ou\\=admins,ou=pc1,dc=x');
  assert.match(accountFilter('ad', 'CORP\\alice')!.filter, /sAMAccountName=alice\)/);
  assert.match(accountFilter('ad', 'alice@corp.example')!.filter, /userPrincipalName=alice@corp.example\)/);
  assert.match(accountFilter('openldap', 'alice@corp.example')!.filter, /\(uid=alice\)/);
});

test('login as user, DOMAIN\\user and user@suffix; wrong and empty passwords refused', async () => {
  const dir = new LdapDirectoryService(settings());
  const password = slapd.users.alice.password;
  for (const login of ['alice', 'CORP\\alice', 'alice@corp.example', 'ALICE']) {
    assert.deepEqual(await dir.authenticate(login, password), { ok: true, user: 'alice', admin: false }, login);
  }
  assert.deepEqual(await dir.authenticate('alice', 'not-the-password'), { ok: false, reason: 'wrong user name or password' });
  assert.deepEqual(await dir.authenticate('alice', ''), { ok: false, reason: 'a password is required' });
  assert.deepEqual(await dir.authenticate('nobody', password), { ok: false, reason: 'wrong user name or password' });
});

test('filter injection never widens the search nor logs anyone in', async () => {
  const dir = new LdapDirectoryService(settings());
  const passwords = [slapd.users.alice.password, slapd.users.bob.password, 'x', ''];
  for (const login of ['*', ')(uid=*', 'alice)(uid=*', '*)(|(uid=*', 'al*', 'alice\u0000', '\u0000', 'a*e', '(uid=alice)', 'alice)(|(objectClass=*)']) {
    for (const password of passwords) {
      const result = await dir.authenticate(login, password);
      assert.equal(result.ok, false, `${JSON.stringify(login)} must not log in`);
    }
  }
});

test('administrators: direct and nested membership of the admins group', async () => {
  const dir = new LdapDirectoryService(settings());
  assert.equal((await dir.authenticate('dave', slapd.users.dave.password)).ok && (await dir.authenticate('dave', slapd.users.dave.password) as { admin: boolean }).admin, true);
  const carol = await dir.authenticate('carol', slapd.users.carol.password);
  assert.deepEqual(carol, { ok: true, user: 'carol', admin: true }, 'nested through helpdesk');
  assert.deepEqual(await dir.authenticate('bob', slapd.users.bob.password), { ok: true, user: 'bob', admin: false });
});

test('the network secret: created and read by this PC\'s service account only; deleting it revokes', async () => {
  const dir = new LdapDirectoryService(settings());
  const secret = await dir.secrets.create('alice');
  assert.equal(secret.length, 32);
  assert.ok((await dir.secrets.fetch('alice')).equals(secret));
  assert.ok((await dir.secrets.create('alice')).length === 32, 'replacing works');

  // Another service account, and the user herself, cannot read it.
  const other = new LdapDirectoryService(settings({ serviceDn: slapd.otherServiceDn, servicePassword: slapd.otherServicePassword }));
  await assert.rejects(other.secrets.fetch('alice'), NetworkSecretUnavailableError);
  const self = new LdapDirectoryService(settings({ serviceDn: slapd.users.alice.dn, servicePassword: slapd.users.alice.password }));
  await assert.rejects(self.secrets.fetch('alice'), NetworkSecretUnavailableError);

  await dir.secrets.delete('alice');
  await assert.rejects(dir.secrets.fetch('alice'), (err: unknown) => err instanceof NetworkSecretUnavailableError && /revoked or the user is not enrolled/.test(err.message));
});

test('TLS: the directory certificate is verified; the probe follows the server', async () => {
  const wrongCa = new LdapDirectoryService(settings({ caPem: undefined }));
  await assert.rejects(connect(settings({ caPem: undefined })), /no directory server answered/);
  assert.equal((await wrongCa.authenticate('alice', slapd.users.alice.password).catch(() => ({ ok: false }))).ok, false);

  const dir = new LdapDirectoryService(settings({ urls: ['ldap://127.0.0.1:1', slapd.url] }));
  assert.equal((await dir.authenticate('alice', slapd.users.alice.password)).ok, true, 'failover to the second server');
  assert.equal(await dir.probe(slapd.url), true);
  assert.equal(await dir.probe('ldap://127.0.0.1:1'), false);
  await slapd.stop({ keepData: true });
  assert.equal(await dir.probe(slapd.url), false);
  await slapd.start();
  assert.equal(await dir.probe(slapd.url), true);
});
