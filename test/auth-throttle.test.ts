// Login throttling: wrong guesses slow the guesser, never the owner's right
// password; password checks are bounded in all and per client address; a
// flood is refused, not queued for ever; logged user names are capped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Authenticator, TooManyLoginAttempts, type Credentials } from '../server/http/basic-auth.js';
import type { AuthResult } from '../policy/directory/directory.js';
import { basicAuth, randomPassword, startServer, type RunningServer } from './helpers/server.js';

const creds = (user: string, password: string): Credentials => ({ login: user, user, password });

/** A directory whose checks are counted; `right` is everyone's password. */
function countingDirectory(checkMs = 5) {
  const stats = { running: 0, most: 0, calls: 0 };
  return {
    stats,
    directory: {
      authenticate: async (user: string, password: string): Promise<AuthResult> => {
        stats.calls++;
        stats.most = Math.max(stats.most, ++stats.running);
        await sleep(checkMs);
        stats.running--;
        return password === 'right' ? { ok: true, user, admin: false } : { ok: false, reason: 'wrong user name or password' };
      },
    },
  };
}

test('the hold-back schedule: 5 wrong answers free, then 250 ms doubling to 8 s; a success resets the name', { timeout: 10_000 }, async () => {
  const { directory } = countingDirectory(0);
  const slept: number[] = [];
  let clock = 0;
  const auth = new Authenticator(directory, () => clock, async (ms) => {
    slept.push(ms);
    clock += ms;
  });
  for (let i = 0; i < 12; i++) assert.equal((await auth.verify(creds('eve', `guess-${i}`), '10.0.0.9')).ok, false);
  assert.deepEqual(slept, [250, 500, 1000, 2000, 4000, 8000, 8000]);
  slept.length = 0;
  assert.equal((await auth.verify(creds('eve', 'right'), '10.0.0.1')).ok, true, 'no lockout');
  assert.deepEqual(slept, [], 'the right password is answered without a hold-back');
  assert.equal(auth.delayFor('eve', '10.0.0.1'), 0, 'success resets the name');
  assert.equal(auth.delayFor('mallory', '10.0.0.1'), 0, 'another name from another address is not slowed');
  assert.equal(auth.delayFor('mallory', '10.0.0.9'), 8000, 'the guessing address is slowed for any name');
  clock += 16 * 60 * 1000;
  assert.equal(auth.delayFor('mallory', '10.0.0.9'), 0, 'forgotten after 15 quiet minutes');
});

test('parallel guesses: 2 checks at a time in all, 2 attempts per address, 32 waiting; the owner elsewhere is never queued', { timeout: 20_000 }, async () => {
  const { directory, stats } = countingDirectory();
  const held: (() => void)[] = [];
  let holding = false;
  // Once holding, hold-backs last until released, so the guesses stay in progress.
  const auth = new Authenticator(directory, Date.now, () => (holding ? new Promise<void>((r) => held.push(r)) : Promise.resolve()));
  for (let i = 0; i < 6; i++) assert.equal((await auth.verify(creds('carol', `warm-${i}`), '10.0.0.66')).ok, false);
  holding = true;

  const guesses = Array.from({ length: 40 }, (_, i) => auth.verify(creds('carol', `guess-${i}`), '10.0.0.66').then(
    (r) => (r.ok ? 'ok' : 'wrong'),
    (e: unknown) => (e instanceof TooManyLoginAttempts ? 'refused' : 'error'),
  ));
  const started = Date.now();
  const owner = await auth.verify(creds('carol', 'right'), '10.0.0.1');
  assert.equal(owner.ok, true);
  assert.ok(Date.now() - started < 1000, `the owner's right password from their own address is answered at once (${Date.now() - started} ms)`);
  const otherUsers = await Promise.all(Array.from({ length: 20 }, (_, i) => auth.verify(creds(`new-name-${i}`, 'x'), `10.1.0.${i}`)));
  assert.ok(otherUsers.every((r) => !r.ok));
  assert.ok(stats.most <= 2, `at most 2 password checks at once (saw ${stats.most})`);

  // 2 in progress (held back), 32 waiting, 6 refused at once.
  const refusedNow = await Promise.race([Promise.all(guesses.slice(34)), new Promise((r) => setTimeout(() => r('pending'), 500))]);
  assert.deepEqual(refusedNow, Array(6).fill('refused'));
  const checksBefore = stats.calls;
  await sleep(100);
  assert.equal(stats.calls, checksBefore, 'no further guess of that address is checked while its 2 attempts are held back');
  let settled = false;
  const all = Promise.all(guesses).finally(() => (settled = true));
  while (!settled) {
    held.splice(0).forEach((r) => r());
    await sleep(5);
  }
  const outcome = await all;
  assert.equal(outcome.filter((o) => o === 'wrong').length, 34);
  assert.ok(stats.most <= 2);
});

test('identical attempts in flight share one check (Windows sends several at once); a login over 256 characters is never checked', { timeout: 10_000 }, async () => {
  const { directory, stats } = countingDirectory(50);
  const auth = new Authenticator(directory);
  const results = await Promise.all(Array.from({ length: 8 }, () => auth.verify(creds('dave', 'right'), '10.0.0.5')));
  assert.ok(results.every((r) => r.ok));
  assert.equal(stats.calls, 1);
  const long = 'x'.repeat(257);
  assert.equal((await auth.verify(creds(long, 'right'), '10.0.0.5')).ok, false);
  assert.equal(stats.calls, 1, 'the directory was not asked');
});

/** One request from a chosen loopback address (the attackers use 127.0.0.2 and up). */
function requestFrom(server: RunningServer, localAddress: string, user: string, password: string): Promise<{ status: number; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: server.port, method: 'PROPFIND', path: '/Documents/', localAddress, ca: server.caPem, agent: false, headers: { authorization: basicAuth(user, password), depth: '0' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: Date.now() - started }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test('the service: guesses at carol and a flood of new names neither queue carol\'s right login nor fill the logs', { timeout: 90_000 }, async () => {
  const carol = { name: 'carol', password: randomPassword() };
  const alice = { name: 'alice', password: randomPassword() };
  const dave = { name: 'dave', password: randomPassword() };
  const server = await startServer({ users: [alice, carol, dave] });
  try {
    assert.equal((await requestFrom(server, '127.0.0.1', 'alice', alice.password)).status, 207);
    for (let i = 0; i < 5; i++) assert.equal((await requestFrom(server, '127.0.0.2', 'carol', `wrong-${i}`)).status, 401);
    const parallel = Array.from({ length: 6 }, (_, i) => requestFrom(server, '127.0.0.2', 'carol', `parallel-${i}`));
    await sleep(100);
    const right = await requestFrom(server, '127.0.0.1', 'carol', carol.password);
    assert.equal(right.status, 207);
    assert.ok(right.ms < 3000, `carol's right login took ${right.ms} ms (24.5 s before the fix)`);
    const guessed = await Promise.all(parallel);
    assert.ok(guessed.every((g) => g.status === 401));
    assert.ok(Math.max(...guessed.map((g) => g.ms)) >= 1000, 'the guesses themselves were held back');

    // A 9 KB user name, then 40 connections guessing new names from one address.
    assert.equal((await requestFrom(server, '127.0.0.3', 'n'.repeat(9000), 'guess')).status, 401);
    const statuses: number[] = [];
    const flood = Array.from({ length: 40 }, (_, i) =>
      requestFrom(server, '127.0.0.3', `nobody-${i}`, 'guess').then(
        (r) => statuses.push(r.status),
        () => undefined, // cut when the server stops
      ),
    );
    const deadline = Date.now() + 20_000;
    while (statuses.filter((s) => s === 429).length < 6 && Date.now() < deadline) await sleep(50);
    assert.ok(statuses.every((s) => s === 401 || s === 429), statuses.join(' '));
    assert.equal(statuses.filter((s) => s === 429).length, 6, 'beyond 2 in progress and 32 waiting, the address is refused at once');
    const cached = await requestFrom(server, '127.0.0.1', 'alice', alice.password);
    assert.equal(cached.status, 207, 'a logged-in user is served during the flood');
    assert.ok(cached.ms < 2000, `in ${cached.ms} ms`);
    const newLogin = await requestFrom(server, '127.0.0.4', 'dave', dave.password);
    assert.equal(newLogin.status, 207, 'a first login (scrypt, vault opened) from another address during the flood');
    assert.ok(newLogin.ms < 3000, `in ${newLogin.ms} ms`);

    process.stdout.write(`# carol's right login behind 11 guesses: ${right.ms} ms; during a 40-connection flood: a cached GET ${cached.ms} ms, a first login ${newLogin.ms} ms\n`);
    const output = server.output();
    assert.ok(!output.includes('n'.repeat(300)), 'the 9 KB user name is not logged whole');
    assert.match(output, /n{256}… \(9000 characters\)/);
    const audit = await readFile(join(server.dataDir, 'audit', 'audit.log'), 'utf8');
    assert.ok(!audit.includes('n'.repeat(300)), 'nor written whole to the audit log');
    await server.stop();
    await Promise.all(flood);
    assert.match(audit, /n{256}… \(9000 characters\)/, 'the audit log records the refused login, cut');
  } finally {
    await server.stop();
  }
});
