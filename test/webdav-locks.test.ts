import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LockConflictError, LockedError, LockLimitError, LockManager, LockNotFoundError, MAX_LOCKS, type LockRequest } from '../shares/webdav/locks.js';

const START = 1_700_000_000_000;

function setup(maxTimeoutSeconds?: number) {
  const clock = { now: START };
  const manager = new LockManager(() => clock.now, maxTimeoutSeconds);
  const lock = (path: string[], options: Partial<LockRequest> = {}) =>
    manager.lock({
      path,
      rootHref: `/${path.join('/')}`,
      scope: 'exclusive',
      depth: 'infinity',
      ownerXml: '',
      timeoutSeconds: 3600,
      principal: 'ann',
      ...options,
    });
  return { clock, manager, lock };
}

const conflict = (rootHref: string) => (err: unknown) =>
  err instanceof LockConflictError && err.code === 'ERR_LOCKED' && err.rootHref === rootHref && err.condition === 'no-conflicting-lock';
const locked = (rootHref: string) => (err: unknown) =>
  err instanceof LockedError && err.code === 'ERR_LOCKED' && err.rootHref === rootHref && err.condition === 'lock-token-submitted';
const notFound = (err: unknown) => err instanceof LockNotFoundError && err.code === 'ERR_LOCK_NOT_FOUND';

test('a lock records the request, with a urn:uuid token and its expiry', () => {
  const { lock } = setup();
  const ownerXml = '<D:owner xmlns:D="DAV:">HOST\\ann</D:owner>';
  const l = lock(['DOCS', 'A.TXT'], { depth: 0, ownerXml, timeoutSeconds: 600, rootHref: '/Docs/a.txt' });
  assert.match(l.token, /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.deepEqual({ ...l, token: '' }, {
    token: '',
    root: ['DOCS', 'A.TXT'],
    rootHref: '/Docs/a.txt',
    scope: 'exclusive',
    depth: 0,
    ownerXml,
    timeoutSeconds: 600,
    expiresAt: START + 600_000,
    principal: 'ann',
  });
});

test('exclusive conflicts with exclusive on the same resource', () => {
  const { lock } = setup();
  lock(['A'], { depth: 0 });
  assert.throws(() => lock(['A'], { depth: 0 }), conflict('/A'));
});

test('shared locks coexist; shared and exclusive conflict both ways', () => {
  const { lock } = setup();
  lock(['A'], { scope: 'shared' });
  lock(['A'], { scope: 'shared' });
  assert.throws(() => lock(['A']), conflict('/A'));
  lock(['B']);
  assert.throws(() => lock(['B'], { scope: 'shared' }), conflict('/B'));
});

test('a depth-infinity folder lock covers a deep child', () => {
  const { manager, lock } = setup();
  const folder = lock(['F']);
  assert.deepEqual(manager.locksCovering(['F', 'G', 'H', 'X.TXT']).map((l) => l.token), [folder.token]);
  assert.throws(() => lock(['F', 'G', 'H', 'X.TXT'], { depth: 0 }), conflict('/F'));
  assert.throws(() => lock(['F', 'G', 'H', 'X.TXT'], { depth: 0, scope: 'shared' }), conflict('/F'));
  assert.deepEqual(manager.locksCovering(['FG']), []);
});

test('a depth-0 folder lock does not cover its children', () => {
  const { manager, lock } = setup();
  const folder = lock(['F'], { depth: 0 });
  assert.deepEqual(manager.locksCovering(['F', 'X.TXT']), []);
  assert.deepEqual(manager.locksCovering(['F']).map((l) => l.token), [folder.token]);
  lock(['F', 'X.TXT'], { depth: 0 });
});

test('a depth-infinity lock conflicts with an exclusive lock below it, a depth-0 lock does not', () => {
  const { lock } = setup();
  lock(['F', 'G', 'X.TXT'], { depth: 0, rootHref: '/f/g/x.txt' });
  assert.throws(() => lock(['F']), conflict('/f/g/x.txt'));
  assert.throws(() => lock(['F'], { scope: 'shared' }), conflict('/f/g/x.txt'));
  lock(['F'], { depth: 0 });
});

test('the root folder can be locked and covers everything', () => {
  const { manager, lock } = setup();
  const root = lock([]);
  assert.deepEqual(manager.locksCovering(['A', 'B']).map((l) => l.token), [root.token]);
  assert.throws(() => lock(['A']), conflict('/'));
});

test('refresh restarts the timeout', () => {
  const { clock, manager, lock } = setup();
  const l = lock(['A'], { timeoutSeconds: 60 });
  clock.now += 50_000;
  const refreshed = manager.refresh(l.token, ['A'], 120);
  assert.equal(refreshed.expiresAt, START + 50_000 + 120_000);
  assert.equal(refreshed.timeoutSeconds, 120);
  clock.now = START + 60_000;
  assert.equal(manager.locksCovering(['A']).length, 1);
});

test('refresh of an unknown token, or from outside the lock scope, is LockNotFoundError', () => {
  const { manager, lock } = setup();
  const l = lock(['A'], { depth: 0 });
  assert.throws(() => manager.refresh('urn:uuid:00000000-0000-4000-8000-000000000000', ['A'], 60), notFound);
  assert.throws(() => manager.refresh(l.token, ['B'], 60), notFound);
  assert.throws(() => manager.refresh(l.token, ['A', 'CHILD'], 60), notFound);
});

test('a lock expires exactly at expiresAt and frees the path', () => {
  const { clock, manager, lock } = setup();
  const l = lock(['A'], { timeoutSeconds: 10 });
  clock.now = l.expiresAt - 1;
  assert.throws(() => lock(['A']), conflict('/A'));
  assert.equal(manager.list().length, 1);
  clock.now = l.expiresAt;
  assert.deepEqual(manager.list(), []);
  assert.deepEqual(manager.locksCovering(['A']), []);
  assert.throws(() => manager.refresh(l.token, ['A'], 10), notFound);
  lock(['A']);
});

test('timeouts are capped at 3600 s; zero, negative and infinite mean the cap', () => {
  const { lock } = setup();
  assert.equal(lock(['A'], { timeoutSeconds: 7200 }).timeoutSeconds, 3600);
  assert.equal(lock(['B'], { timeoutSeconds: 0 }).timeoutSeconds, 3600);
  assert.equal(lock(['C'], { timeoutSeconds: -5 }).timeoutSeconds, 3600);
  assert.equal(lock(['D'], { timeoutSeconds: Infinity }).timeoutSeconds, 3600);
  const e = lock(['E'], { timeoutSeconds: 3600 });
  assert.equal(e.expiresAt, START + 3_600_000);
  const small = setup(60);
  assert.equal(small.lock(['A'], { timeoutSeconds: 3600 }).timeoutSeconds, 60);
});

test('unlock accepts the token with or without <>, from anywhere in the lock scope', () => {
  const { manager, lock } = setup();
  const a = lock(['A']);
  manager.unlock(`<${a.token}>`, ['A']);
  assert.deepEqual(manager.list(), []);
  const f = lock(['F']);
  manager.unlock(f.token, ['F', 'SUB', 'X.TXT']);
  assert.deepEqual(manager.list(), []);
});

test('unlock of a wrong token, or outside the scope, is LockNotFoundError and keeps the lock', () => {
  const { manager, lock } = setup();
  const a = lock(['A'], { depth: 0 });
  const b = lock(['B']);
  assert.throws(() => manager.unlock('urn:uuid:00000000-0000-4000-8000-000000000000', ['A']), notFound);
  assert.throws(() => manager.unlock(b.token, ['A']), notFound);
  assert.throws(() => manager.unlock(a.token, ['A', 'X']), notFound);
  assert.equal(manager.list().length, 2);
});

test('checkWrite requires the token of an exclusive lock covering the path', () => {
  const { manager, lock } = setup();
  const f = lock(['F'], { rootHref: '/f/' });
  assert.throws(() => manager.checkWrite(['F', 'X.TXT'], []), locked('/f/'));
  assert.throws(() => manager.checkWrite(['F', 'X.TXT'], ['urn:uuid:other']), locked('/f/'));
  manager.checkWrite(['F', 'X.TXT'], [f.token]);
  manager.checkWrite(['F'], [`<${f.token}>`]);
  manager.checkWrite(['OTHER'], []);
});

test('checkWrite with shared locks needs one of their tokens', () => {
  const { manager, lock } = setup();
  const s1 = lock(['A'], { scope: 'shared' });
  lock(['A'], { scope: 'shared' });
  assert.throws(() => manager.checkWrite(['A'], []), locked('/A'));
  manager.checkWrite(['A'], [s1.token]);
});

test('checkWrite with includeDescendants also needs the tokens of locks below', () => {
  const { manager, lock } = setup();
  const x = lock(['F', 'X.TXT'], { depth: 0, rootHref: '/f/x.txt' });
  const y = lock(['F', 'SUB', 'Y.TXT'], { depth: 0, rootHref: '/f/sub/y.txt' });
  manager.checkWrite(['F'], []);
  assert.throws(() => manager.checkWrite(['F'], [], { includeDescendants: true }), locked('/f/x.txt'));
  assert.throws(() => manager.checkWrite(['F'], [x.token], { includeDescendants: true }), locked('/f/sub/y.txt'));
  manager.checkWrite(['F'], [x.token, y.token], { includeDescendants: true });
  manager.checkWrite(['G'], [], { includeDescendants: true });
});

test('moved drops the locks at and below the source and the destination', () => {
  const { manager, lock } = setup();
  lock(['SRC'], { depth: 0 });
  lock(['SRC', 'A'], { depth: 0 });
  lock(['DST', 'B'], { depth: 0 });
  const kept = lock(['SRCX'], { depth: 0 });
  manager.moved(['SRC'], ['DST']);
  assert.deepEqual(manager.list().map((l) => l.token), [kept.token]);
});

test('removed drops the locks at and below the path', () => {
  const { manager, lock } = setup();
  lock(['F'], { depth: 0 });
  lock(['F', 'A', 'B'], { depth: 0 });
  const parent = lock([], { depth: 0 });
  manager.removed(['F']);
  assert.deepEqual(manager.list().map((l) => l.token), [parent.token]);
});

test('list and clear serve the administrator', () => {
  const { manager, lock } = setup();
  const a = lock(['A']);
  lock(['B']);
  lock(['C']);
  assert.equal(manager.list().length, 3);
  assert.equal(manager.clear(`<${a.token}>`), 1);
  assert.equal(manager.clear(a.token), 0);
  assert.equal(manager.clear(), 2);
  assert.deepEqual(manager.list(), []);
});

test('returned locks are copies', () => {
  const { manager, lock } = setup();
  const path = ['A'];
  const l = lock(path, { depth: 0 });
  path.push('MUTATED');
  l.root.push('MUTATED');
  l.expiresAt = 0;
  const [listed] = manager.list();
  assert.deepEqual(listed!.root, ['A']);
  assert.equal(listed!.expiresAt, START + 3_600_000);
});

test('a user cannot pile up more than MAX_LOCKS live locks (shared locks never conflict)', () => {
  const manager = new LockManager(() => 0);
  for (let i = 0; i < MAX_LOCKS; i++) manager.lock({ path: ['F'], rootHref: '/F', scope: 'shared', depth: 0, ownerXml: '', timeoutSeconds: 60, principal: 'a' });
  assert.throws(() => manager.lock({ path: ['F'], rootHref: '/F', scope: 'shared', depth: 0, ownerXml: '', timeoutSeconds: 60, principal: 'a' }), LockLimitError);
  assert.equal(manager.clear(), MAX_LOCKS);
  manager.lock({ path: ['F'], rootHref: '/F', scope: 'shared', depth: 0, ownerXml: '', timeoutSeconds: 60, principal: 'a' });
});
