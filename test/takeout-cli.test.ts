/**
 * The administrator's commands against a real agent over HTTPS on
 * 127.0.0.1 (the in-process app, listening): `mydoc keys issuer`,
 * `mydoc takeout approve` and `mydoc takeout revoke`; and the `takeout`
 * configuration section.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { main } from '../server/cli/main.js';
import { parseConfig } from '../server/config/config.js';
import { tempDir } from './helpers/keys.js';
import { PASSWORDS, startTakeoutFixture } from './helpers/takeout.js';

async function run(args: string[], stdin = '') {
  let stdout = '';
  let stderr = '';
  const status = await main(args, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), stdin: async () => Buffer.from(stdin), stdinIsTty: false, env: {} });
  return { status, stdout, stderr };
}

test('mydoc keys issuer writes a pair the agent accepts; never overwrites', { timeout: 60_000 }, async () => {
  const { dir, cleanup } = await tempDir();
  try {
    for (const alg of ['ES256', 'EdDSA']) {
      const out = join(dir, `${alg}.pem`);
      const r = await run(['keys', 'issuer', '--out', out, '--public-out', join(dir, `${alg}.pub.pem`), '--alg', alg]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`issuer key pair \\(${alg}\\), kid [A-Za-z0-9_-]{43}`));
      assert.equal((await stat(out)).mode & 0o777, 0o600);
      const again = await run(['keys', 'issuer', '--out', out, '--public-out', join(dir, 'other.pem')]);
      assert.equal(again.status, 1);
      assert.match(again.stderr, /already exists; refusing to overwrite it/);
    }
    assert.equal((await run(['keys', 'issuer', '--out', join(dir, 'x'), '--public-out', join(dir, 'y'), '--alg', 'HS256'])).status, 2);
  } finally {
    await cleanup();
  }
});

test('mydoc takeout approve and revoke over HTTPS, trusting the agent\'s CA', { timeout: 60_000 }, async () => {
  const f = await startTakeoutFixture();
  try {
    await f.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = f.app.server.address() as { port: number };
    const agent = `https://127.0.0.1:${port}/`;
    const id = (await f.request('POST', '/api/takeout/requests', { body: { days: 3, reason: 'trip' } })).json<{ id: string }>().id;
    const base = ['--agent', agent, '--ca', f.config.tls.caFile, '--user', 'dave', '--password-stdin'];
    const approveArgs = (days: string) => ['takeout', 'approve', ...base, '--id', id, '--days', days, '--issuer-key', f.issuerPrivateFile];

    const tooLong = await run(approveArgs('15'), PASSWORDS.dave);
    assert.equal(tooLong.status, 1);
    assert.match(tooLong.stderr, /^mydoc: days must be an integer from 1 to 14/);
    const notAdmin = await run(['takeout', 'approve', '--agent', agent, '--ca', f.config.tls.caFile, '--user', 'alice', '--password-stdin', '--id', id, '--days', '3', '--issuer-key', f.issuerPrivateFile], PASSWORDS.alice);
    assert.match(notAdmin.stderr, /the agent answered 403: administrators only/);
    const untrusted = await run(['takeout', 'approve', '--agent', agent, '--user', 'dave', '--password-stdin', '--id', id, '--days', '3', '--issuer-key', f.issuerPrivateFile], PASSWORDS.dave);
    assert.match(untrusted.stderr, /cannot reach the agent .*certificate/i, 'without --ca the self-signed agent is not trusted');
    assert.equal((await run(['takeout', 'approve', '--agent', `http://127.0.0.1:${port}/`, '--user', 'dave', '--password-stdin', '--id', id, '--days', '3', '--issuer-key', f.issuerPrivateFile])).status, 2);

    const ok = await run(approveArgs('3'), PASSWORDS.dave);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`approved: take-out key ${id} for "alice" on PC "pc-test"`));
    f.clock.now = Date.now(); // the command signed with the real clock; the agent's injected clock catches up
    const status = (await f.request('GET', '/api/takeout/status')).json<{ key: { jti: string; remainingSeconds: number; valid: boolean } }>();
    assert.equal(status.key.jti, id);
    assert.equal(status.key.valid, true);
    assert.ok(Math.abs(status.key.remainingSeconds - 3 * 86_400) < 120);

    const revoked = await run(['takeout', 'revoke', ...base, '--jti', id], PASSWORDS.dave);
    assert.equal(revoked.status, 0, revoked.stderr);
    assert.match(revoked.stdout, /revoked .* \(take-out of "alice"\)/);
    assert.equal((await f.request('GET', '/api/takeout/status')).json<{ key: { refusal: string } }>().key.refusal, 'ERR_TAKEOUT_REVOKED');

    // Ids are base64url and may start with "-": the documented `--id ID` and `--jti JTI` take them (and `--id=ID`).
    const dashId = '-SfAn' + 'x'.repeat(17);
    for (const form of [['--jti', dashId], [`--jti=${dashId}`]]) {
      const r = await run(['takeout', 'revoke', ...base, ...form], PASSWORDS.dave);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^revoked ${dashId} \\(not on that PC`));
    }
    for (const form of [['--id', dashId], [`--id=${dashId}`]]) {
      const r = await run(['takeout', 'approve', ...base, ...form, '--days', '3', '--issuer-key', f.issuerPrivateFile], PASSWORDS.dave);
      assert.equal(r.status, 1, 'not a usage error: the agent was asked');
      assert.match(r.stderr, /^mydoc: the agent answered 404/);
    }
    assert.equal((await f.audit()).filter((r) => r.action === 'takeout.revoke' && r.target === dashId).length, 2, 'the agent got the id whole');
  } finally {
    await f.close();
  }
});

test('config: takeout.maxDays and takeout.issuerPublicKeys are checked, errors name the key', { timeout: 60_000 }, () => {
  const base = 'pcId: pc\ndataDir: data\ndirectory:\n  kind: local\nbackup:\n  target:\n    kind: path\n    path: nas\n';
  const config = parseConfig(base, '/etc/mydoc/config.yaml');
  assert.deepEqual(config.takeout, { maxDays: 14, issuerPublicKeys: [] });
  const set = parseConfig(`${base}takeout:\n  maxDays: 90\n  issuerPublicKeys: [issuer.pem, /abs/other.pem]\n`, '/etc/mydoc/config.yaml');
  assert.deepEqual(set.takeout, { maxDays: 90, issuerPublicKeys: ['/etc/mydoc/issuer.pem', '/abs/other.pem'] });
  for (const [text, message] of [
    ['takeout:\n  maxDays: 91\n', /^config: takeout\.maxDays: must be an integer from 1 to 90 \(got 91\)$/],
    ['takeout:\n  maxDays: 1.5\n', /^config: takeout\.maxDays: /],
    ['takeout:\n  issuerPublicKeys: issuer.pem\n', /^config: takeout\.issuerPublicKeys: must be a list/],
    ['takeout:\n  issuerPublicKeys: ["", x]\n', /^config: takeout\.issuerPublicKeys\.0: must be a non-empty string/],
    ['takeout:\n  maxdays: 3\n', /^config: takeout\.maxdays: unknown key/],
  ] as const) {
    assert.throws(() => parseConfig(base + text, '/etc/mydoc/config.yaml'), { message }, text);
  }
});
