/**
 * The server's WebDAV lock tables per session (server/agent/session-locks.ts):
 * one table per open session, released when the session ends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { UserSession } from '../policy/sessions.js';
import type { Vault } from '../shares/vault/vault.js';
import type { LockRequest } from '../shares/webdav/locks.js';
import { SessionLocks } from '../server/agent/session-locks.js';

function session(user: string): { session: UserSession; end: () => void } {
  const end = new AbortController();
  return { session: { user, mode: 'network', vault: {} as Vault, ended: end.signal }, end: () => end.abort() };
}

const lockRequest: LockRequest = { path: ['a.txt'], rootHref: '/a.txt', scope: 'exclusive', depth: 0, ownerXml: '', timeoutSeconds: 60, principal: 'alice' };

test('one table per session, kept while it is open and dropped when it ends', () => {
  const locks = new SessionLocks(() => 0);
  const alice = session('alice');
  const bob = session('bob');
  const table = locks.of(alice.session);
  assert.equal(locks.of(alice.session), table, 'the same table on every request');
  table.lock(lockRequest);
  locks.of(bob.session);
  assert.deepEqual(locks.all().map((t) => [t.user, t.locks.list().length]), [['alice', 1], ['bob', 0]]);
  alice.end();
  assert.deepEqual(locks.all().map((t) => t.user), ['bob'], 'released with the session');
  const again = session('alice');
  assert.equal(locks.of(again.session).list().length, 0, 'a reopened session starts without locks');
});

test('a session that has ended already gets a table that is not kept', () => {
  const locks = new SessionLocks(() => 0);
  const carol = session('carol');
  carol.end();
  locks.of(carol.session).lock(lockRequest);
  assert.deepEqual(locks.all(), []);
});
