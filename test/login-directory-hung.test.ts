// A login while the directory has stopped answering but the gate has not
// locked yet (between two probe rounds) is a 503 sentence, never a 500.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { davRequest, startServer } from './helpers/server.js';
import { slapdServerOptions, startSlapd } from './helpers/slapd.js';

test('a login while the directory hangs before the gate locks: 503 with a sentence; it works again once the directory answers', { timeout: 90_000 }, async () => {
  const slapd = await startSlapd();
  try {
    // Probe rounds a minute apart: the gate stays online while slapd is frozen.
    const options = slapdServerOptions(slapd, { intervalSeconds: 60, failuresToLock: 2, timeoutSeconds: 1 });
    const at = options.directory.indexOf('probe:');
    options.directory.splice(at, 0, '  timeoutSeconds: 1');
    const server = await startServer({ pcId: 'pc-hung', users: [{ name: 'alice', password: slapd.users.alice.password }], ...options });
    try {
      process.kill(slapd.pid, 'SIGSTOP'); // connections are accepted, never answered
      let res;
      try {
        res = await davRequest(server, 'PROPFIND', '/Documents/', { headers: { depth: '0' } });
      } finally {
        process.kill(slapd.pid, 'SIGCONT');
      }
      assert.equal(res.status, 503, res.body.toString());
      assert.match(res.body.toString(), /the company directory does not answer, so your password cannot be checked now/);
      assert.equal(res.headers['retry-after'], '5');
      assert.doesNotMatch(server.output(), /request failed/, 'not logged as an internal error');
      const again = await davRequest(server, 'PROPFIND', '/Documents/', { headers: { depth: '0' } });
      assert.equal(again.status, 207);
    } finally {
      await server.stop();
    }
  } finally {
    await slapd.stop();
  }
});
