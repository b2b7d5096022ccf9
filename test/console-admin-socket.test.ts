/**
 * The running console's admin socket (server/console/admin-socket.ts) with
 * in-process operations: a path it cannot decode is the caller's mistake.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { startConsoleAdminSocket } from '../server/console/admin-socket.js';
import { consoleFolder } from '../server/console/data-folder.js';

function post(socketPath: string, path: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('error', reject).end(body);
  });
}

test('a malformed percent sequence in the PC id is answered 400 with a clear message, not 500', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'mydoc-admin-socket-'));
  const errors: string[] = [];
  const added: string[] = [];
  const server = await startConsoleAdminSocket(
    dataDir,
    {
      addPc: async (pcId) => {
        added.push(pcId);
        return { pcId, token: 't' } as never;
      },
      removePc: async () => {},
    },
    { error: (_o, msg) => errors.push(msg) },
  );
  try {
    const socket = consoleFolder(dataDir).adminSocket;
    const bad = await post(socket, '/pcs/pc%E0%A4%A', '{"actor":"admin"}');
    assert.equal(bad.status, 400);
    const error = (JSON.parse(bad.body) as { error: { code: string; message: string } }).error;
    assert.equal(error.code, 'ERR_CONSOLE_PC_ID');
    assert.match(error.message, /percent-encoding/);
    assert.deepEqual(errors, [], 'a caller mistake is not logged as a failure');
    // A well-formed escape still reaches the operation.
    const good = await post(socket, '/pcs/pc%2D1', '{"actor":"admin"}');
    assert.equal(good.status, 200);
    assert.deepEqual(added, ['pc-1']);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dataDir, { recursive: true, force: true });
  }
});
