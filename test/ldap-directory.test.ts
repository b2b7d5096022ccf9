/**
 * The LDAP directory against a real OpenLDAP slapd (StartTLS with its CA):
 * login forms, wrong passwords, filter injection, nested admin groups, the
 * network secret's ACL, revocation and the reachability probe.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NetworkSecretUnavailableError } from '../crypto/errors.js';
import { LdapDirectory, type LdapDirectorySettings } from '../policy/directory/ldap/directory.js';
import { accountFilter } from '../policy/directory/ldap/accounts.js';
import { DirectoryUnreachableError } from '../policy/directory/errors.js';
import { connect } from '../policy/directory/ldap/connection.js';
import { filterValue, dnValue, fillDnTemplate } from '../policy/directory/ldap/escape.js';
import { loadConfig } from '../server/config/config.js';
import { buildDirectory } from '../server/config/directory.js';
import { pauseProcess } from './helpers/daemon.js';
import { tempDir } from './helpers/keys.js';
import { slapdDirectorySettings, slapdServerOptions, startSlapd, type Slapd } from './helpers/slapd.js';

let slapd: Slapd;
before(async () => {
  slapd = await startSlapd();
});
after(async () => {
  await slapd?.stop();
});

const settings = (overrides: Partial<LdapDirectorySettings> = {}) => slapdDirectorySettings(slapd, slapd.pcId, overrides);

test('RFC 4515/4514 escaping', { timeout: 60_000 }, () => {
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

test('login as user, DOMAIN\\user and user@suffix; wrong and empty passwords refused', { timeout: 60_000 }, async () => {
  const dir = new LdapDirectory(settings());
  const password = slapd.users.alice.password;
  for (const login of ['alice', 'CORP\\alice', 'alice@corp.example', 'ALICE']) {
    assert.deepEqual(await dir.authenticate(login, password), { ok: true, user: 'alice', admin: false }, login);
  }
  assert.deepEqual(await dir.authenticate('alice', 'not-the-password'), { ok: false, reason: 'wrong user name or password' });
  assert.deepEqual(await dir.authenticate('alice', ''), { ok: false, reason: 'a password is required' });
  assert.deepEqual(await dir.authenticate('nobody', password), { ok: false, reason: 'wrong user name or password' });
});

test('filter injection never widens the search nor logs anyone in', { timeout: 60_000 }, async () => {
  const dir = new LdapDirectory(settings());
  const passwords = [slapd.users.alice.password, slapd.users.bob.password, 'x', ''];
  for (const login of ['*', ')(uid=*', 'alice)(uid=*', '*)(|(uid=*', 'al*', 'alice\u0000', '\u0000', 'a*e', '(uid=alice)', 'alice)(|(objectClass=*)']) {
    for (const password of passwords) {
      const result = await dir.authenticate(login, password);
      assert.equal(result.ok, false, `${JSON.stringify(login)} must not log in`);
    }
  }
});

test('administrators: direct and nested membership of the admins group', { timeout: 60_000 }, async () => {
  const dir = new LdapDirectory(settings());
  assert.equal((await dir.authenticate('dave', slapd.users.dave.password)).ok && (await dir.authenticate('dave', slapd.users.dave.password) as { admin: boolean }).admin, true);
  const carol = await dir.authenticate('carol', slapd.users.carol.password);
  assert.deepEqual(carol, { ok: true, user: 'carol', admin: true }, 'nested through helpdesk');
  assert.deepEqual(await dir.authenticate('bob', slapd.users.bob.password), { ok: true, user: 'bob', admin: false });
});

test('the network secret: created and read by this PC\'s service account only; deleting it revokes', { timeout: 60_000 }, async () => {
  const dir = new LdapDirectory(settings());
  const secret = await dir.secrets.create('alice');
  assert.equal(secret.length, 32);
  assert.ok((await dir.secrets.fetch('alice')).equals(secret));
  assert.ok((await dir.secrets.create('alice')).length === 32, 'replacing works');

  // Another service account, and the user herself, bind and search, and the ACL hides K_dir from them:
  // the directory's own refusal (ERR_NETWORK_SECRET_ABSENT), not a failed bind.
  const absent = (err: unknown) => err instanceof NetworkSecretUnavailableError && err.code === 'ERR_NETWORK_SECRET_ABSENT' && /holds no network secret for "alice"/.test(err.message);
  const other = new LdapDirectory(settings({ serviceDn: slapd.otherServiceDn, servicePassword: slapd.otherServicePassword }));
  await assert.rejects(other.secrets.fetch('alice'), absent, 'another service account');
  const self = new LdapDirectory(settings({ serviceDn: slapd.users.alice.dn, servicePassword: slapd.users.alice.password }));
  await assert.rejects(self.secrets.fetch('alice'), absent, 'the user herself');
  // A broken fixture (a wrong password) fails otherwise, so the cases above did reach the ACL.
  const wrong = new LdapDirectory(settings({ serviceDn: slapd.otherServiceDn, servicePassword: 'not-the-password' }));
  await assert.rejects(wrong.secrets.fetch('alice'), (err: unknown) => err instanceof NetworkSecretUnavailableError && err.code === 'ERR_NETWORK_SECRET_UNAVAILABLE' && /refused the service account/.test(err.message));

  await dir.secrets.delete('alice');
  await assert.rejects(dir.secrets.fetch('alice'), (err: unknown) => absent(err) && /revoked or the user is not enrolled/.test((err as Error).message));
});

test('TLS: the directory certificate is verified, and a refused one is named as such; the probe follows the server', { timeout: 60_000 }, async () => {
  const unknownCa = /TLS certificate was refused \(ldap:\/\/127\.0\.0\.1:\d+: TLS certificate refused \(unknown CA: /;
  await assert.rejects(connect(settings({ caPem: undefined })), (err: unknown) => err instanceof DirectoryUnreachableError && unknownCa.test(err.message));
  const wrongCa = new LdapDirectory(settings({ caPem: undefined }));
  await assert.rejects(wrongCa.authenticate('alice', slapd.users.alice.password), unknownCa);
  await assert.rejects(wrongCa.secrets.fetch('alice'), (err: unknown) => err instanceof NetworkSecretUnavailableError && /unknown CA/.test(err.message));
  // The certificate names 127.0.0.1 and localhost, not evil.example.
  const wrongName = new LdapDirectory(settings({ tlsServerName: 'evil.example' }));
  await assert.rejects(wrongName.authenticate('alice', slapd.users.alice.password), /TLS certificate refused \(name mismatch: .*evil\.example/);
  // A server that is down is told apart from a refused certificate.
  await assert.rejects(connect(settings({ urls: ['ldap://127.0.0.1:1'] })), (err: unknown) => /no directory server answered/.test((err as Error).message) && !/certificate/.test((err as Error).message));

  const dir = new LdapDirectory(settings({ urls: ['ldap://127.0.0.1:1', slapd.url] }));
  assert.equal((await dir.authenticate('alice', slapd.users.alice.password)).ok, true, 'failover to the second server');
  assert.equal(await dir.probe(slapd.url, AbortSignal.timeout(2000)), true);
  assert.equal(await dir.probe('ldap://127.0.0.1:1', AbortSignal.timeout(2000)), false);
  await slapd.stop({ keepData: true });
  assert.equal(await dir.probe(slapd.url, AbortSignal.timeout(2000)), false);
  await slapd.start();
  assert.equal(await dir.probe(slapd.url, AbortSignal.timeout(2000)), true);
});

test('directory.ldap.timeoutSeconds bounds directory operations against a hung server; the probe timeout does not', { timeout: 60_000 }, async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const probe = { intervalSeconds: 5, failuresToLock: 2, timeoutSeconds: 0.3 };
    const opts = slapdServerOptions(slapd, probe);
    for (const [name, content] of Object.entries(opts.files)) await writeFile(join(dir, name), content);
    const directoryLines = opts.directory.flatMap((l) => (l === 'probe:' ? ['  timeoutSeconds: 1.5', l] : [l]));
    const file = join(dir, 'mydoc.yaml');
    await writeFile(file, ['pcId: pc1', 'dataDir: data', 'directory:', ...directoryLines.map((l) => `  ${l}`), 'backup:', '  target:', '    kind: path', '    path: nas', ''].join('\n'));
    const directory = await buildDirectory(await loadConfig(file));
    const password = slapd.users.alice.password;
    assert.equal((await directory.authenticate('alice', password)).ok, true);
    await pauseProcess(slapd.pid); // the kernel still accepts connections; slapd never answers
    try {
      const started = Date.now();
      await assert.rejects(directory.authenticate('alice', password), (err: unknown) => err instanceof DirectoryUnreachableError && /no answer within 1\.5 s/.test(err.message));
      const took = Date.now() - started;
      assert.ok(took >= 1_450 && took < 3_000, `the login failed after ${took} ms: ldap.timeoutSeconds is 1.5 s (the probe's is 0.3 s)`);
      await assert.rejects(directory.secrets.fetch('alice'), (err: unknown) => err instanceof NetworkSecretUnavailableError && /unreachable.*no answer within 1\.5 s/.test(err.message));
    } finally {
      process.kill(slapd.pid, 'SIGCONT');
    }
    assert.equal((await directory.authenticate('alice', password)).ok, true, 'answers again');
  } finally {
    await cleanup();
  }
});
