import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MYDOC_BIN, davRequest, startServer } from './helpers/server.js';

const LOCKINFO = '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>OFFICE-PC\\alice</D:owner></D:lockinfo>';

function mydoc(args: string[]) {
  return spawnSync(process.execPath, [MYDOC_BIN, ...args], { encoding: 'utf8' });
}

test('an administrator lists and clears a stale lock through the admin socket', async () => {
  const server = await startServer();
  try {
    const lock = await davRequest(server, 'LOCK', '/Documents/stale.docx', { headers: { timeout: 'Second-3600' }, body: LOCKINFO });
    assert.equal(lock.status, 201);
    const token = String(lock.headers['lock-token']).slice(1, -1);
    assert.equal((await davRequest(server, 'PUT', '/Documents/stale.docx', { body: 'x' })).status, 423);
    assert.equal((await stat(join(server.dataDir, 'run', 'admin.sock'))).mode & 0o777, 0o600);

    const list = mydoc(['locks', 'list', '--config', server.configFile]);
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`${token}  alice  exclusive  depth infinity  expires in 3\\d\\d\\d s  /Documents/stale.docx  owner OFFICE-PC\\\\alice`));

    const usage = mydoc(['locks', 'clear', '--config', server.configFile]);
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /--token TOKEN or --all/);
    const clear = mydoc(['locks', 'clear', '--token', token, '--config', server.configFile]);
    assert.equal(clear.status, 0, clear.stderr);
    assert.match(clear.stdout, /cleared 1 lock/);
    assert.equal((await davRequest(server, 'PUT', '/Documents/stale.docx', { body: 'x' })).status, 204);
    assert.match(mydoc(['locks', 'list', '--config', server.configFile]).stdout, /no locks/);
  } finally {
    await server.stop();
  }
});
