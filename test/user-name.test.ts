/**
 * The one rule for typed logins (policy/directory/user-name.ts): a leading
 * `DOMAIN\` ends at the first backslash, `@domain` is dropped for the
 * canonical name, and the LDAP account filter reads the login the same way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accountFilter } from '../policy/directory/ldap/accounts.js';
import { normalizeUserName, withoutDomain, withoutUpnSuffix } from '../policy/directory/user-name.js';

test('DOMAIN\\user, user@domain and user give the same canonical name (NFC, lower case)', () => {
  for (const login of ['alice', 'Alice', ' alice ', 'CORP\\alice', 'corp\\ALICE', 'alice@corp.example', 'CORP\\Alice@corp.example']) {
    assert.equal(normalizeUserName(login), 'alice', login);
  }
  assert.equal(normalizeUserName('Re\u0301my'), 'r\u00e9my', 'NFC');
  assert.equal(normalizeUserName(''), '');
  assert.equal(normalizeUserName('CORP\\'), '');
  assert.equal(normalizeUserName('@corp.example'), '');
});

test('the domain ends at the first backslash: the rest is the account name, kept whole', () => {
  assert.equal(withoutDomain('CORP\\alice'), 'alice');
  assert.equal(withoutDomain('  CORP\\alice  '), 'alice');
  assert.equal(withoutDomain('alice@corp.example'), 'alice@corp.example');
  assert.equal(withoutDomain('A\\B\\alice'), 'B\\alice', 'not shortened to its last part');
  assert.equal(normalizeUserName('A\\B\\alice'), 'b\\alice');
  assert.equal(withoutUpnSuffix('alice@corp.example'), 'alice');
  assert.equal(withoutUpnSuffix('alice'), 'alice');
});

test('the LDAP account filter reads a login by the same rule', () => {
  assert.deepEqual(accountFilter('ad', 'CORP\\alice')?.name, 'alice');
  assert.deepEqual(accountFilter('ad', 'CORP\\alice@corp.example')?.name, 'alice@corp.example', 'AD looks a UPN up whole');
  assert.deepEqual(accountFilter('openldap', 'CORP\\alice@corp.example')?.name, 'alice');
  assert.match(accountFilter('ad', 'A\\B\\alice')!.filter, /sAMAccountName=B\\5calice\)/);
  assert.equal(accountFilter('ad', 'CORP\\'), undefined);
  assert.equal(accountFilter('openldap', '@corp.example'), undefined);
});
