/**
 * The local password store (policy/directory/local/users-file.ts) on its own: scrypt
 * hashes in a 0600 JSON file, case-insensitive names, roles, the password
 * and name rules, and clear errors for a damaged file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalUsersFile, validatePassword, validateUserName } from '../policy/directory/local/users-file.js';
import { tempDir } from './helpers/keys.js';

test('add and verify: the right password gives the role; a wrong one, or an unknown user, gives nothing', { timeout: 60_000 }, async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const file = join(dir, 'users.json');
    const users = new LocalUsersFile(file);
    assert.equal(await users.has('alice'), false, 'a missing file is an empty directory');
    await users.add('alice', 'correct horse');
    await users.add('Dave', 'battery staple', { admin: true });
    assert.deepEqual(await users.verify('alice', 'correct horse'), { admin: false });
    assert.deepEqual(await users.verify('ALICE', 'correct horse'), { admin: false }, 'names are case-insensitive');
    assert.deepEqual(await users.verify('dave', 'battery staple'), { admin: true });
    assert.equal(await users.verify('alice', 'correct horsE'), undefined);
    assert.equal(await users.verify('alice', ''), undefined);
    assert.equal(await users.verify('dave', 'correct horse'), undefined, 'another user\'s password');
    assert.equal(await users.verify('nobody', 'correct horse'), undefined);
    await assert.rejects(users.add('aLiCe', 'another password'), { code: 'ERR_USER_EXISTS' });

    const text = await readFile(file, 'utf8');
    assert.doesNotMatch(text, /correct horse|battery staple/, 'no password on disk');
    const stored = JSON.parse(text) as { users: Record<string, { hash: string }> };
    assert.deepEqual(Object.keys(stored.users).sort(), ['alice', 'dave']);
    assert.match(stored.users.alice!.hash, /^scrypt\$32768\$8\$1\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}$/);
    assert.notEqual(stored.users.alice!.hash.split('$')[4], stored.users.dave!.hash.split('$')[4], 'a salt per user');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
  } finally {
    await cleanup();
  }
});

test('passwords are compared in NFC: a composed and a decomposed "é" are the same password', { timeout: 60_000 }, async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const users = new LocalUsersFile(join(dir, 'users.json'));
    await users.add('eve', 'caf\u00e9-au-lait');
    assert.deepEqual(await users.verify('eve', 'cafe\u0301-au-lait'), { admin: false });
  } finally {
    await cleanup();
  }
});

test('name and password rules; a damaged file is a clear error, never an empty directory', { timeout: 60_000 }, async () => {
  for (const bad of ['', '-alice', 'al/ice', 'a b', 'x'.repeat(65), '../x', 'alice\n']) assert.throws(() => validateUserName(bad), { code: 'ERR_USER_NAME' }, JSON.stringify(bad));
  assert.equal(validateUserName('a.b_c-1'), 'a.b_c-1');
  assert.throws(() => validatePassword('1234567'), { code: 'ERR_PASSWORD_POLICY' });
  assert.equal(validatePassword('12345678'), '12345678');
  const { dir, cleanup } = await tempDir();
  try {
    const file = join(dir, 'users.json');
    const users = new LocalUsersFile(file);
    await assert.rejects(users.add('alice', 'short'), { code: 'ERR_PASSWORD_POLICY' });
    for (const damaged of ['{not json', '{"format":"other","version":1,"users":{}}', '{"format":"mydoc-local-users","version":2,"users":{}}']) {
      await writeFile(file, damaged);
      await assert.rejects(users.verify('alice', 'correct horse'), { code: 'ERR_DIRECTORY_FILE', message: /is malformed/ }, damaged);
      await assert.rejects(users.add('alice', 'correct horse'), { code: 'ERR_DIRECTORY_FILE' }, 'nothing is written over a damaged file');
      assert.equal(await readFile(file, 'utf8'), damaged);
    }
  } finally {
    await cleanup();
  }
});
