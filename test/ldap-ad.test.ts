/**
 * The LDAP directory against a real Samba Active Directory DC (its ports are
 * fixed, so the AD test files never run alongside each other):
 * UPN and DOMAIN\user logins over LDAPS and StartTLS with the DC's CA, the
 * `data 52e`/`533`/`773` messages, the nested admin group, and the
 * confidential key attribute.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { NetworkSecretUnavailableError } from '../crypto/errors.js';
import { LdapDirectory, type LdapDirectorySettings } from '../policy/directory/ldap/directory.js';
import { adDirectorySettings, startSambaAd, type SambaAd } from './helpers/samba-ad.js';

let ad: SambaAd;
before(async () => {
  ad = await startSambaAd();
});
after(async () => {
  await ad?.stop();
});

const settings = (overrides: Partial<LdapDirectorySettings> = {}): LdapDirectorySettings => adDirectorySettings(ad, overrides);

test('UPN and DOMAIN\\user logins over LDAPS and over StartTLS, verified with the DC\'s CA', { timeout: 60_000 }, async () => {
  for (const url of [ad.ldapsUrl, ad.ldapUrl]) {
    const dir = new LdapDirectory(settings({ urls: [url] }));
    for (const login of [ad.users.alice.userPrincipalName, ad.users.alice.downLevelName, 'alice']) {
      assert.deepEqual(await dir.authenticate(login, ad.users.alice.password), { ok: true, user: 'alice', admin: false }, `${url} ${login}`);
    }
    assert.equal(await dir.probe(url, AbortSignal.timeout(2000)), true);
  }
  // Without the DC's CA, or checked against the wrong name, nothing connects, and the error says which certificate check failed.
  for (const url of [ad.ldapsUrl, ad.ldapUrl]) {
    const noCa = new LdapDirectory(settings({ urls: [url], caPem: undefined }));
    await assert.rejects(noCa.authenticate('alice', ad.users.alice.password), /TLS certificate was refused \(.*TLS certificate refused \(unknown CA: /, url);
    const wrongName = new LdapDirectory(settings({ urls: [url], tlsServerName: 'evil.example' }));
    await assert.rejects(wrongName.authenticate('alice', ad.users.alice.password), /TLS certificate was refused \(.*TLS certificate refused \(name mismatch: .*evil\.example/, url);
  }
});

test('AD bind failures become clear sentences: 52e wrong password, 533 disabled, 773 must change', { timeout: 60_000 }, async () => {
  const dir = new LdapDirectory(settings());
  assert.deepEqual(await dir.authenticate(ad.users.alice.userPrincipalName, 'Wrong-password-1'), { ok: false, reason: 'wrong user name or password' });
  assert.deepEqual(await dir.authenticate('dora', ad.users.dora.password), { ok: false, reason: 'the account is disabled' });
  assert.deepEqual(await dir.authenticate('erin', ad.users.erin.password), { ok: false, reason: 'the password must be changed before logging on' });
  for (const login of ['*', ')(sAMAccountName=*', 'alice)(|(objectClass=*)', '*@corp.example']) {
    assert.equal((await dir.authenticate(login, ad.users.alice.password)).ok, false, login);
  }
});

test('the admins group: direct and nested membership (in-chain matching rule)', { timeout: 60_000 }, async () => {
  const dir = new LdapDirectory(settings());
  assert.deepEqual(await dir.authenticate('dave', ad.users.dave.password), { ok: true, user: 'dave', admin: true });
  assert.deepEqual(await dir.authenticate(ad.users.carol.downLevelName, ad.users.carol.password), { ok: true, user: 'carol', admin: true });
  assert.deepEqual(await dir.authenticate('bob', ad.users.bob.password), { ok: true, user: 'bob', admin: false });
});

test('the confidential key attribute: only this PC\'s service account reads K_dir', { timeout: 60_000 }, async () => {
  const dir = new LdapDirectory(settings());
  const secret = await dir.secrets.create('alice');
  assert.ok((await dir.secrets.fetch('alice')).equals(secret));
  // Bound and searched, the others get the directory's own answer: no K_dir (not a failed bind).
  const absent = (err: unknown) => err instanceof NetworkSecretUnavailableError && err.code === 'ERR_NETWORK_SECRET_ABSENT' && /holds no network secret for "alice"/.test(err.message);
  const other = new LdapDirectory(settings({ serviceDn: ad.otherService.dn, servicePassword: ad.otherService.password }));
  await assert.rejects(other.secrets.fetch('alice'), absent, 'another service account');
  const self = new LdapDirectory(settings({ serviceDn: ad.users.alice.dn, servicePassword: ad.users.alice.password }));
  await assert.rejects(self.secrets.fetch('alice'), absent, 'the user herself');
  const wrong = new LdapDirectory(settings({ serviceDn: ad.otherService.dn, servicePassword: 'Not-the-password-1' }));
  await assert.rejects(wrong.secrets.fetch('alice'), (err: unknown) => err instanceof NetworkSecretUnavailableError && err.code === 'ERR_NETWORK_SECRET_UNAVAILABLE' && /refused the service account/.test(err.message), 'a wrong password fails otherwise');
  await dir.secrets.delete('alice');
  await assert.rejects(dir.secrets.fetch('alice'), (err: unknown) => absent(err) && /revoked or the user is not enrolled/.test((err as Error).message));
});
