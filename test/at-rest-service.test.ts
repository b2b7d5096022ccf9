/**
 * No user data in the clear around a running service (issue 9, tests): a
 * real `mydoc serve` at log level debug gets files whose names (folders
 * too), contents and dead properties carry a marker; they are moved, copied,
 * locked, one is deleted, and some requests fail (a missing file, a missing
 * folder, a conflict). Backups run through the service, at its stop and
 * alone. Then the data folder (index, WAL, objects, keyrings, audit log,
 * take-out state ...), the NAS folder, the service's stdout and stderr and
 * the CLI's outputs are searched for the marker as UTF-8 and UTF-16LE: it
 * appears nowhere.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { listFiles, scanForMarker } from './helpers/data-dir.js';
import { davRequest, MYDOC_BIN, runCommand, startServer, type RunningServer } from './helpers/server.js';

const T = { timeout: 180_000 };

/** Texts (outputs) that hold the marker as UTF-8 text or as UTF-16LE bytes read as text. */
function textHits(texts: Record<string, string>, marker: string): string[] {
  const utf16 = Buffer.from(marker, 'utf16le').toString('latin1');
  return Object.entries(texts)
    .filter(([, text]) => text.includes(marker) || Buffer.from(text, 'utf8').toString('latin1').includes(utf16))
    .map(([name]) => name);
}

/** The largest object file of the data folder. */
async function largestObject(dataDir: string): Promise<string> {
  let best = { file: '', size: -1 };
  for (const file of (await listFiles(dataDir)).filter((f) => /\/objects\/[0-9a-f]{2}\/[0-9a-f]{32}$/.test(f))) {
    const { size } = await stat(file);
    if (size > best.size) best = { file, size };
  }
  return best.file;
}

async function ok(server: RunningServer, method: string, path: string, opts: Parameters<typeof davRequest>[3], expect: number[]): Promise<void> {
  const r = await davRequest(server, method, path, opts);
  assert.ok(expect.includes(r.status), `${method} ${path}: ${r.status} ${r.body.toString('utf8').slice(0, 300)}`);
}

test('a running service leaves no file name, content or property in the clear: data folder, NAS, logs, CLI output', T, async (t) => {
  // Letters, digits and '-' only: a URL or JSON escaping of it would still be the same text.
  const marker = `MydocE2E-${randomUUID()}`;
  const server = await startServer({ env: { MYDOC_LOG_LEVEL: 'debug' } });
  t.after(() => server.stop());
  const cli = (args: string[]) => runCommand(process.execPath, [MYDOC_BIN, ...args], { env: { ...process.env, MYDOC_CONFIG: '', XDG_STATE_HOME: join(server.dir, 'state') }, timeoutMs: 120_000 });
  const outputs: Record<string, string> = {};
  const dav = (path: string) => `${server.url}${path.slice(1)}`;
  const content = `${marker} line\n`.repeat(4000); // ~200 KB: several chunks
  const xmlProps = `<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" xmlns:M="urn:${marker}"><D:set><D:prop><M:${marker}>${marker} value</M:${marker}></D:prop></D:set></D:propertyupdate>`;

  await ok(server, 'MKCOL', `/Documents/${marker}-folder`, {}, [201]);
  await ok(server, 'PUT', `/Documents/${marker}-folder/${marker}.txt`, { body: content }, [201]);
  await ok(server, 'PUT', `/Documents/${marker}-folder/${marker}.utf16.txt`, { body: Buffer.from(content, 'utf16le') }, [201]);
  await ok(server, 'PUT', `/Desktop/${marker}-small.txt`, { body: marker }, [201]);
  await ok(server, 'PROPPATCH', `/Documents/${marker}-folder/${marker}.txt`, { body: xmlProps, headers: { 'content-type': 'application/xml' } }, [207]);
  await ok(server, 'PROPPATCH', `/Documents/${marker}-folder`, { body: xmlProps, headers: { 'content-type': 'application/xml' } }, [207]);
  await ok(server, 'COPY', `/Documents/${marker}-folder`, { headers: { destination: dav(`/Desktop/${marker}-copy`) } }, [201]);
  await ok(server, 'MOVE', `/Desktop/${marker}-small.txt`, { headers: { destination: dav(`/Profile/${marker}-moved.txt`) } }, [201]);
  await ok(server, 'DELETE', `/Desktop/${marker}-copy/${marker}.txt`, {}, [204]);
  // A lock whose owner names the marker, then an overwrite under it and an unlock.
  const lock = await davRequest(server, 'LOCK', `/Profile/${marker}-moved.txt`, {
    headers: { 'content-type': 'application/xml', timeout: 'Second-60' },
    body: `<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>${marker}-owner</D:owner></D:lockinfo>`,
  });
  assert.equal(lock.status, 200, lock.body.toString());
  const token = String(lock.headers['lock-token']);
  await ok(server, 'PUT', `/Profile/${marker}-moved.txt`, { body: `${marker} again`, headers: { if: `(${token})` } }, [204]);
  await ok(server, 'UNLOCK', `/Profile/${marker}-moved.txt`, { headers: { 'lock-token': token } }, [204]);
  // Requests that fail: each answer may name the path (to its user), the log may not.
  await ok(server, 'GET', `/Documents/${marker}-missing.txt`, {}, [404]);
  await ok(server, 'PUT', `/Documents/${marker}-nofolder/${marker}.txt`, { body: 'x' }, [409]);
  await ok(server, 'MKCOL', `/Documents/${marker}-folder`, {}, [405]);
  await ok(server, 'MOVE', `/Profile/${marker}-moved.txt`, { headers: { destination: dav(`/Documents/${marker}-folder/${marker}.txt`), overwrite: 'F' } }, [412]);
  await ok(server, 'PROPFIND', `/Documents/${marker}-folder`, { headers: { depth: '1' } }, [207]);
  // A damaged object: the answer breaks off mid-body; the error names the file to no log.
  const damaged = `/Documents/${marker}-folder/${marker}-damaged.bin`;
  await ok(server, 'PUT', damaged, { body: Buffer.alloc(700_000, 0x41) }, [201]);
  const largest = await largestObject(server.dataDir);
  const bytes = await readFile(largest);
  bytes[600_000] ^= 0xff;
  await writeFile(largest, bytes);
  const broken = await davRequest(server, 'GET', damaged).then((r) => r, (err: Error) => err);
  assert.ok(broken instanceof Error || broken.status >= 500 || broken.body.length < 700_000, 'the damaged file is not served whole');
  const back = await davRequest(server, 'GET', `/Documents/${marker}-folder/${marker}.txt`);
  assert.equal(back.body.toString('utf8'), content, 'the service stored what it was given (the scan has something to find)');

  const viaService = await cli(['backup', '--config', server.configFile]);
  assert.equal(viaService.status, 0, viaService.stderr);
  outputs['backup through the service'] = viaService.stdout + viaService.stderr;
  // While running: index and WAL, objects, keyrings, audit log, take-out state.
  assert.deepEqual(await scanForMarker(server.dataDir, marker), [], 'the data folder of the running service');
  const seen = await listFiles(server.dataDir);
  for (const name of ['index.db-wal', 'keyring.json', join('audit', 'audit.log'), 'backup-state.json']) assert.ok(seen.some((f) => f.endsWith(name)), `the scan saw ${name}`);

  process.kill(server.pid, 'SIGTERM'); // a shutdown backup, then exit
  assert.equal((await server.exited).code, 0, server.output());
  const alone = await cli(['backup', '--config', server.configFile]);
  assert.equal(alone.status, 0, alone.stderr);
  outputs['backup without the service'] = alone.stdout + alone.stderr;
  for (const args of [['backup', 'list'], ['backup', 'verify', '--read-data', '100']]) {
    const r = await cli([...args, '--config', server.configFile]);
    assert.equal(r.status, 0, r.stderr);
    outputs[args.join(' ')] = r.stdout + r.stderr;
  }
  outputs['service stdout and stderr'] = server.output();
  assert.match(server.output(), /"level":20,.*"msg":"request"/, 'the service logged at debug level (its request lines)');
  assert.match(server.output(), /"msg":"backup complete/, 'the service log has the backups');

  assert.deepEqual(await scanForMarker(server.dataDir, marker), [], 'the data folder after the stop');
  assert.deepEqual(await scanForMarker(join(server.dir, 'nas'), marker), [], 'the NAS folder');
  assert.ok((await listFiles(join(server.dir, 'nas'))).length > 10, 'the NAS folder holds the backups');
  assert.deepEqual(textHits(outputs, marker), [], 'logs and command outputs');

  // The scans can fail: a file and an output holding the marker are found.
  await writeFile(join(server.dataDir, 'probe'), Buffer.from(`x${marker}y`, 'utf16le'));
  assert.equal((await scanForMarker(server.dataDir, marker)).length, 1);
  assert.deepEqual(textHits({ probe: `{"msg":"${marker}"}` }, marker), ['probe']);
});

test('MYDOC_LOG_LEVEL: an unknown level is a usage error, in one line', { timeout: 30_000 }, async () => {
  const { main } = await import('../server/cli/main.js');
  let err = '';
  const status = await main(['serve', '--config', '/nonexistent.yaml'], { stdout: () => undefined, stderr: (x) => (err += x), stdin: async () => Buffer.alloc(0), stdinIsTty: false, stderrIsTty: false, env: { MYDOC_LOG_LEVEL: 'loud' } });
  assert.equal(status, 2);
  assert.equal(err, 'mydoc: MYDOC_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, not "loud"\n');
});
