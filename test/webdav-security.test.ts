/**
 * Hostile input against a real `mydoc serve`: each is answered with a 4xx and
 * a message, the server stays up, and nothing outside the user's own vault
 * is read or written. Also: authentication and its throttling.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { connect } from 'node:tls';
import { readFile } from 'node:fs/promises';
import { userDir } from '../shares/vault/user-vaults.js';
import { snapshot } from './helpers/data-dir.js';
import { patternBytes } from './helpers/keys.js';
import { davRequest, startServer, type RunningServer } from './helpers/server.js';

let server: RunningServer;
before(async () => {
  server = await startServer({
    users: [
      { name: 'alice', password: 'alice-password-1' },
      { name: 'bob', password: 'bob-password-22' },
    ],
  });
});
after(async () => {
  await server?.stop();
});

const bobSnapshot = () => snapshot(userDir(server.dataDir, 'pc-test', 'bob')).catch(() => new Map());

async function pcId(): Promise<string> {
  return /pcId:\s*"?([^"\n]+)"?/.exec(await readFile(server.configFile, 'utf8'))![1]!;
}

/** Sends a request line exactly as given (Node's client would normalise some of these). */
function rawRequest(requestLine: string, headers: string[] = [], body = ''): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const auth = `Authorization: Basic ${Buffer.from('alice:alice-password-1').toString('base64')}`;
    const socket = connect({ host: '127.0.0.1', port: server.port, ca: server.caPem, servername: 'localhost' }, () => {
      socket.write(`${requestLine}\r\nHost: 127.0.0.1:${server.port}\r\n${auth}\r\nConnection: close\r\n${headers.map((h) => h + '\r\n').join('')}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    });
    let data = '';
    socket.on('data', (d: Buffer) => (data += d.toString('utf8')));
    socket.on('end', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0), text: data }));
    socket.on('error', reject);
  });
}

test('path attacks are refused with 400 and a message', async () => {
  const attacks = [
    '/Documents/../Profile/x',
    '/Documents/%2e%2e/x',
    '/Documents/%2E%2E%2Fkeyring.json',
    '/Documents/a%2Fb',
    '/Documents/a%5Cb',
    '/Documents/a\\b',
    '/Documents/a%00b',
    '/Documents/%C0%AE%C0%AE/x',
    '/Documents/%E0%80%AF',
    '/Documents/x#frag',
  ];
  const before = await bobSnapshot();
  for (const path of attacks) {
    for (const method of ['GET', 'PUT', 'PROPFIND', 'DELETE', 'MKCOL']) {
      const res = await rawRequest(`${method} ${path} HTTP/1.1`, method === 'PROPFIND' ? ['Depth: 0'] : [], method === 'PUT' ? 'data' : '');
      assert.equal(res.status, 400, `${method} ${path}: ${res.text.slice(0, 200)}`);
      assert.match(res.text, /\r\n\r\n.+/s, 'a message in the body');
    }
  }
  assert.deepEqual(await bobSnapshot(), before);
  const listing = await davRequest(server, 'PROPFIND', '/Documents/', { headers: { depth: '1' } });
  assert.doesNotMatch(listing.body.toString(), /<D:href>\/Documents\/[^<]/, 'nothing was created in the vault');
});

test('a "%" that is not an escape is taken literally', async () => {
  assert.equal((await rawRequest('PUT /Documents/100%25%20sure%zz.txt HTTP/1.1', [], 'x')).status, 201);
  const listing = await davRequest(server, 'PROPFIND', '/Documents/', { headers: { depth: '1' } });
  assert.match(listing.body.toString(), /<D:href>\/Documents\/100%25%20sure%25zz\.txt<\/D:href>/, 'hrefs encoded exactly once');
  assert.equal((await davRequest(server, 'DELETE', '/Documents/100%25%20sure%25zz.txt')).status, 204);
});

test('another user\'s files are invisible: each user sees only their own vault', async () => {
  assert.equal((await davRequest(server, 'PUT', '/Documents/alice-only.txt', { body: 'private' })).status, 201);
  const asBob = { user: 'bob', password: 'bob-password-22' };
  assert.equal((await davRequest(server, 'GET', '/Documents/alice-only.txt', asBob)).status, 404);
  assert.doesNotMatch((await davRequest(server, 'PROPFIND', '/Documents/', { ...asBob, headers: { depth: '1' } })).body.toString(), /alice-only/);
  assert.equal((await davRequest(server, 'GET', '/alice/Documents/alice-only.txt', asBob)).status, 404);
  assert.equal((await davRequest(server, 'DELETE', '/Documents/alice-only.txt', asBob)).status, 404);
  assert.equal((await davRequest(server, 'GET', '/Documents/alice-only.txt')).body.toString(), 'private');
});

test('hostile XML: DTD, external entity, billion laughs, oversized body', async () => {
  const bodies = {
    dtd: '<?xml version="1.0"?><!DOCTYPE propfind [<!ELEMENT propfind ANY>]><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>',
    external: '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><D:propfind xmlns:D="DAV:"><D:prop><D:e>&e;</D:e></D:prop></D:propfind>',
    laughs:
      '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]><D:propfind xmlns:D="DAV:"><D:prop>&d;</D:prop></D:propfind>',
    undefinedEntity: '<D:propfind xmlns:D="DAV:"><D:prop>&boom;</D:prop></D:propfind>',
    malformed: '<D:propfind xmlns:D="DAV:"><D:prop>',
  };
  for (const [name, body] of Object.entries(bodies)) {
    for (const method of ['PROPFIND', 'PROPPATCH', 'LOCK']) {
      const res = await davRequest(server, method, '/Documents/', { headers: { depth: '0' }, body });
      assert.equal(res.status, 400, `${method} ${name}`);
      assert.match(res.body.toString(), /XML/, `${method} ${name}: message`);
      assert.doesNotMatch(res.body.toString(), /root:/, 'no file content leaked');
    }
  }
  const big = `<D:propfind xmlns:D="DAV:"><D:prop>${'<D:getetag/>'.repeat(100_000)}</D:prop></D:propfind>`;
  assert.equal((await davRequest(server, 'PROPFIND', '/Documents/', { headers: { depth: '0' }, body: big })).status, 413);
});

test('bogus Depth, Overwrite, Timeout, If and Destination headers get 400', async () => {
  await davRequest(server, 'PUT', '/Documents/h.txt', { body: 'h' });
  const cases: [string, string, Record<string, string>][] = [
    ['PROPFIND', '/Documents/', { depth: '2' }],
    ['PROPFIND', '/Documents/', { depth: 'banana' }],
    ['COPY', '/Documents/h.txt', { destination: `${server.url}Documents/h2.txt`, overwrite: 'maybe' }],
    ['LOCK', '/Documents/h.txt', { timeout: 'Forever-ish' }],
    ['PUT', '/Documents/h.txt', { if: '(<urn:uuid:1> ' }],
    ['PUT', '/Documents/h.txt', { if: 'garbage' }],
    ['MOVE', '/Documents/h.txt', { destination: 'not a url at all' }],
    ['MOVE', '/Documents/h.txt', { destination: 'ftp://127.0.0.1/Documents/x' }],
    ['MOVE', '/Documents/h.txt', {}],
    ['MOVE', '/Documents/h.txt', { destination: `${server.url}Documents/%2e%2e/x` }],
  ];
  for (const [method, path, headers] of cases) {
    const body = method === 'LOCK' ? '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>' : method === 'PUT' ? 'x' : undefined;
    const res = await davRequest(server, method, path, { headers, ...(body === undefined ? {} : { body }) });
    assert.equal(res.status, 400, `${method} ${JSON.stringify(headers)}: ${res.body}`);
    assert.ok(res.body.length > 0, 'a message');
  }
  assert.equal((await davRequest(server, 'GET', '/Documents/h.txt')).body.toString(), 'h', 'nothing changed');
});

test('a Content-Length of 10^12 is refused at once with 413 and the server stays up', async () => {
  const status = await new Promise<number>((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: server.port, method: 'PUT', path: '/Documents/huge.bin', ca: server.caPem, headers: { authorization: `Basic ${Buffer.from('alice:alice-password-1').toString('base64')}`, 'content-length': '1000000000000' } }, (r) => {
      r.resume();
      resolve(r.statusCode ?? 0);
    });
    req.on('error', reject);
    req.write(Buffer.alloc(65536));
  });
  assert.equal(status, 413);
  assert.equal((await davRequest(server, 'GET', '/Documents/huge.bin')).status, 404);
  assert.equal((await davRequest(server, 'OPTIONS', '/', { user: null })).status, 200, 'still up');
});

test('range reads over HTTPS match the plaintext across chunk boundaries', async () => {
  const data = patternBytes(3 * 65536 + 1234, 11);
  assert.equal((await davRequest(server, 'PUT', '/Documents/ranges.bin', { body: data })).status, 201);
  const ranges: [string, number, number][] = [
    ['bytes=0-0', 0, 1],
    ['bytes=65530-65545', 65530, 65546],
    ['bytes=65536-131071', 65536, 131072],
    ['bytes=100-196000', 100, 196001],
    ['bytes=-700', data.length - 700, data.length],
    ['bytes=131000-', 131000, data.length],
  ];
  for (const [range, start, end] of ranges) {
    const res = await davRequest(server, 'GET', '/Documents/ranges.bin', { headers: { range } });
    assert.equal(res.status, 206, range);
    assert.equal(res.headers['content-range'], `bytes ${start}-${end - 1}/${data.length}`);
    assert.ok(res.body.equals(data.subarray(start, end)), range);
  }
  const etag = String((await davRequest(server, 'HEAD', '/Documents/ranges.bin')).headers.etag);
  assert.equal((await davRequest(server, 'GET', '/Documents/ranges.bin', { headers: { range: 'bytes=0-9', 'if-range': etag } })).status, 206);
  const stale = await davRequest(server, 'GET', '/Documents/ranges.bin', { headers: { range: 'bytes=0-9', 'if-range': '"stale"' } });
  assert.equal(stale.status, 200, 'If-Range mismatch: the whole file');
  assert.ok(stale.body.equals(data));
  assert.equal((await davRequest(server, 'GET', '/Documents/ranges.bin', { headers: { range: `bytes=${data.length}-` } })).status, 416);
  assert.equal((await davRequest(server, 'GET', '/Documents/ranges.bin', { headers: { 'if-none-match': etag } })).status, 304);
  assert.equal((await davRequest(server, 'PUT', '/Documents/ranges.bin', { headers: { 'if-match': '"other"' }, body: 'x' })).status, 412);
});

test('wrong passwords: 401 each; a run of wrong passwords is slowed for that user only; the right password still works', async () => {
  for (const [user, password] of [
    ['alice', 'wrong'],
    ['nobody', 'whatever1'],
    ['', 'x'],
  ]) {
    const res = await davRequest(server, 'PROPFIND', '/', { user: user!, password: password!, headers: { depth: '0' } });
    assert.equal(res.status, 401);
    assert.equal(res.headers['www-authenticate'], 'Basic realm="mydoc", charset="UTF-8"');
  }
  const asBob = { user: 'bob', password: 'bob-password-22' };
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t = Date.now();
    assert.equal((await davRequest(server, 'GET', '/Documents/', { user: 'bob', password: `guess-${i}` })).status, 401);
    times.push(Date.now() - t);
  }
  assert.ok(times[5]! >= 240 && times[6]! >= 490, `6th and 7th wrong attempts delayed (${times.join(', ')} ms)`);
  const t = Date.now();
  assert.equal((await davRequest(server, 'GET', '/Documents/', { headers: {} })).status, 200, 'alice is not slowed');
  assert.ok(Date.now() - t < 1000);
  assert.equal((await davRequest(server, 'GET', '/Documents/', asBob)).status, 200, 'no lockout: bob still gets in');
  for (const name of ['WORKGROUP\\bob', 'bob@corp.example']) {
    assert.equal((await davRequest(server, 'GET', '/Documents/', { user: name, password: 'bob-password-22' })).status, 200, name);
  }
  assert.equal((await pcId()).length > 0, true);
});

