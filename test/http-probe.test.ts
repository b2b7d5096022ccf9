/**
 * The HTTP and WebDAV findings of the hostile probe (issue 9), each
 * reproduced as the probe sent it against a real `mydoc serve`: names
 * Windows reserves, cross-site API requests, oversized dead properties,
 * out-of-range Win32 times, /metrics and /healthz disclosure, internal names
 * in answers, transfer codings, If-Modified-Since on PUT, a Destination
 * parsed twice, and 100 Continue for a body that will be refused.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { gzipSync } from 'node:zlib';
import { tempDir } from './helpers/keys.js';
import { basicAuth, davRequest, mydoc, randomPassword, startServer, type RunningServer } from './helpers/server.js';

const T = { timeout: 60_000 };
let server: RunningServer;
let issuer: { dir: string; cleanup: () => Promise<void> };

before(async () => {
  issuer = await tempDir('mydoc-issuer-');
  await mydoc(['keys', 'issuer', '--out', join(issuer.dir, 'issuer.pem'), '--public-out', join(issuer.dir, 'issuer.pub.pem')]);
  server = await startServer({
    users: [
      { name: 'alice', password: randomPassword() },
      { name: 'bob', password: randomPassword() },
      // carol logs in only in the test of a vault that does not unlock.
      { name: 'carol', password: randomPassword() },
      { name: 'dave', password: randomPassword(), admin: true },
    ],
    files: { 'issuer.pub.pem': await readFile(join(issuer.dir, 'issuer.pub.pem'), 'utf8') },
    extraConfig: ['takeout:', '  maxDays: 14', '  issuerPublicKeys: [issuer.pub.pem]'],
  });
});
after(async () => {
  await server?.stop();
  await issuer?.cleanup();
});

const text = (b: Buffer) => b.toString('utf8');
const auth = (user = 'alice') => basicAuth(user, server.users.find((u) => u.name === user)!.password);

interface RawExchange {
  /** Every byte the server sent, as latin1 text. */
  text: string;
  /** Status codes in the order they came (a 100 first, when one was sent). */
  statuses: number[];
}

/**
 * Sends `head` (request line and headers, without the blank line) exactly as given. With
 * `afterContinue`, the body is sent only once a 100 Continue arrives; otherwise `body`
 * (if any) right after the head. Resolves when the server closes the connection.
 */
function raw(head: string, opts: { body?: Buffer; afterContinue?: Buffer } = {}): Promise<RawExchange> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: server.port, ca: server.caPem, servername: 'localhost' }, () => {
      socket.write(`${head}\r\n\r\n`);
      if (opts.body) socket.write(opts.body);
    });
    let data = '';
    let continued = false;
    socket.on('data', (d: Buffer) => {
      data += d.toString('latin1');
      if (opts.afterContinue && !continued && /^HTTP\/1\.1 100 /.test(data) && data.includes('\r\n\r\n')) {
        continued = true;
        socket.write(opts.afterContinue);
      }
    });
    const done = () => resolve({ text: data, statuses: [...data.matchAll(/(?:^|\r\n)HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1])) });
    socket.on('end', done);
    socket.on('error', (err: NodeJS.ErrnoException) => (data ? done() : reject(err)));
    socket.setTimeout(20_000, () => socket.destroy(new Error(`no answer to ${head.split('\r\n')[0]}`)));
  });
}

const hostHeader = () => `Host: 127.0.0.1:${server.port}`;

// ---- 1. names Windows reserves -------------------------------------------------------

test('1. device names (any case, any extension, superscripts) and bidi overrides cannot be created: 400 with a sentence', T, async () => {
  const reserved = ['CON', 'con.txt', 'NUL.tar.gz', 'Prn.doc', 'aux', 'COM1', 'com9.log', 'LPT1.txt', 'COM%C2%B9', 'lpt%C2%B3.txt', 'CON%20.txt'];
  for (const name of reserved) {
    const put = await davRequest(server, 'PUT', `/Documents/${name}`, { body: 'x' });
    assert.equal(put.status, 400, `PUT ${name}: ${text(put.body)}`);
    assert.match(text(put.body), /device names on Windows/);
  }
  assert.equal((await davRequest(server, 'MKCOL', '/Documents/LPT9')).status, 400, 'MKCOL');
  const lock = '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>';
  assert.equal((await davRequest(server, 'LOCK', '/Documents/nul.txt', { body: lock })).status, 400, 'LOCK creating a file');
  assert.equal((await davRequest(server, 'PUT', '/Documents/fine.txt', { body: 'fine' })).status, 201);
  for (const method of ['MOVE', 'COPY']) {
    const res = await davRequest(server, method, '/Documents/fine.txt', { headers: { destination: `${server.url}Documents/aux.doc` } });
    assert.equal(res.status, 400, `${method} onto a device name`);
  }
  for (const cp of ['%E2%80%AE', '%E2%80%AA', '%E2%81%A6', '%E2%81%A9']) {
    const res = await davRequest(server, 'PUT', `/Documents/invoice${cp}fdp.exe`, { body: 'x' });
    assert.equal(res.status, 400, `PUT with ${cp}`);
    assert.match(text(res.body), /bidirectional/);
  }
  const listing = text((await davRequest(server, 'PROPFIND', '/Documents/', { headers: { depth: '1' } })).body);
  assert.deepEqual([...listing.matchAll(/<D:href>\/Documents\/([^<]+)<\/D:href>/g)].map((m) => m[1]), ['fine.txt'], 'nothing else was created');
  assert.equal((await davRequest(server, 'PUT', '/Documents/CONSOLE.txt', { body: 'x' })).status, 201, 'a name that only starts like one is fine');
  assert.equal((await davRequest(server, 'DELETE', '/Documents/CONSOLE.txt')).status, 204);
});

// ---- 2. cross-site request forgery ---------------------------------------------------

test('2. a state-changing API request must be same-origin JSON: text/plain is 415, another site 403 with a sentence', T, async () => {
  const body = JSON.stringify({ days: 2, reason: 'customer visit' });
  const post = (headers: Record<string, string>) => davRequest(server, 'POST', '/api/takeout/requests', { headers, body });
  const error = (res: { body: Buffer }) => (JSON.parse(text(res.body)) as { error: { code: string; message: string } }).error;

  // The probe: a form or fetch from a page the user visits.
  const plain = await post({ 'content-type': 'text/plain' });
  assert.equal(plain.status, 415, text(plain.body));
  assert.equal(error(plain).code, 'ERR_API_CONTENT_TYPE');
  assert.match(error(plain).message, /application\/json/);
  const crossSite: Record<string, string>[] = [
    { origin: 'https://evil.example' },
    { origin: `https://127.0.0.1:${server.port + 1}` },
    { origin: `http://127.0.0.1:${server.port}` },
    { origin: 'null' },
    { 'sec-fetch-site': 'cross-site' },
    { 'sec-fetch-site': 'same-site' },
    { origin: `https://127.0.0.1:${server.port}`, 'sec-fetch-site': 'cross-site' },
  ];
  for (const headers of crossSite) {
    const res = await post({ 'content-type': 'application/json', ...headers });
    assert.equal(res.status, 403, JSON.stringify(headers));
    assert.equal(error(res).code, 'ERR_API_CROSS_SITE');
    assert.match(error(res).message, /sent by another site/);
  }
  for (const method of ['DELETE', 'PUT', 'PATCH']) {
    assert.equal((await davRequest(server, method, '/api/takeout/requests', { headers: { origin: 'https://evil.example', 'content-type': 'application/json' }, body })).status, 403, method);
  }
  assert.equal((await post({ 'content-type': 'application/json', 'sec-fetch-site': 'same-origin', origin: `https://127.0.0.1:${server.port}` })).status, 201, 'the same origin');
  assert.equal((await post({ 'content-type': 'application/json; charset=utf-8' })).status, 201, 'a client that sends no Origin (curl, the CLI)');
  assert.equal((await davRequest(server, 'GET', '/api/takeout/status', { headers: { origin: 'https://evil.example' } })).status, 200, 'reading is not state-changing');
});

// ---- 4. dead properties -------------------------------------------------------------

const PROPPATCH = (props: string) => `<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>${props}</D:prop></D:set></D:propertyupdate>`;
const deadProp = (name: string, bytes: number) => `<x:${name} xmlns:x="urn:probe">${'v'.repeat(bytes)}</x:${name}>`;

test('4. a dead property over 64 KiB, or over 1 MiB in all on a resource, is refused with 507 and a sentence', T, async () => {
  assert.equal((await davRequest(server, 'PUT', '/Documents/props.txt', { body: 'p' })).status, 201);
  const big = await davRequest(server, 'PROPPATCH', '/Documents/props.txt', { body: PROPPATCH(deadProp('big', 200_000) + deadProp('small', 10)) });
  assert.equal(big.status, 207, 'PROPPATCH answers 207 (Windows needs it)');
  assert.match(text(big.body), /<x:big xmlns:x="urn:probe"\/><\/D:prop><D:status>HTTP\/1\.1 507 Insufficient Storage<\/D:status><D:responsedescription>a property value may hold at most 65536 bytes</);
  assert.match(text(big.body), /<x:small xmlns:x="urn:probe"\/><\/D:prop><D:status>HTTP\/1\.1 424 Failed Dependency/, 'all or nothing');
  assert.equal((await davRequest(server, 'PROPPATCH', '/Documents/props.txt', { body: PROPPATCH(deadProp('limit', 65_536 - 44)) })).status, 207);

  // 60,000-byte values: 17 fit in 1 MiB, the 18th does not.
  const statuses: string[] = [];
  for (let i = 0; i < 18; i++) {
    const res = await davRequest(server, 'PROPPATCH', '/Documents/props.txt', { body: PROPPATCH(deadProp(`p${i}`, 60_000)) });
    statuses.push(/HTTP\/1\.1 (\d{3})/.exec(text(res.body))![1]!);
    if (i === 17) assert.match(text(res.body), /the properties of a resource may hold at most 1048576 bytes in all; these would make \d+/);
  }
  assert.deepEqual(statuses, [...Array(16).fill('200'), '507', '507'], 'the limit counts the 64 KiB property set before');
  const all = await davRequest(server, 'PROPFIND', '/Documents/props.txt', { headers: { depth: '0' } });
  assert.equal(all.status, 207);
  assert.equal((text(all.body).match(/<x:p\d+ xmlns:x="urn:probe">/g) ?? []).length, 16);
  assert.doesNotMatch(text(all.body), /<x:big/);
  // Removing makes room again.
  const remove = `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:remove><D:prop><x:p0 xmlns:x="urn:probe"/></D:prop></D:remove><D:set><D:prop>${deadProp('p16', 60_000)}</D:prop></D:set></D:propertyupdate>`;
  assert.match(text((await davRequest(server, 'PROPPATCH', '/Documents/props.txt', { body: remove })).body), /HTTP\/1\.1 200 OK/);
});

test('4. a listing of many resources with large dead properties is streamed, whole, and other users are served meanwhile', T, async () => {
  assert.equal((await davRequest(server, 'MKCOL', '/Documents/heavy')).status, 201);
  for (let f = 0; f < 4; f++) {
    assert.equal((await davRequest(server, 'PUT', `/Documents/heavy/f${f}.txt`, { body: 'x' })).status, 201);
    for (let i = 0; i < 16; i++) {
      const res = await davRequest(server, 'PROPPATCH', `/Documents/heavy/f${f}.txt`, { body: PROPPATCH(deadProp(`p${i}`, 60_000)) });
      assert.match(text(res.body), /HTTP\/1\.1 200 OK/);
    }
  }
  const [listing, other] = await Promise.all([
    davRequest(server, 'PROPFIND', '/Documents/heavy/', { headers: { depth: '1' } }),
    davRequest(server, 'PROPFIND', '/', { user: 'bob', headers: { depth: '0' } }),
  ]);
  assert.equal(other.status, 207);
  assert.equal(listing.status, 207);
  assert.equal(listing.headers['transfer-encoding'], 'chunked', 'a body over 1 MiB is streamed');
  assert.equal(listing.headers['content-length'], undefined);
  const xml = text(listing.body);
  assert.ok(listing.body.length > 4 * 16 * 60_000, `${listing.body.length} bytes`);
  assert.equal((xml.match(/<x:p\d+ xmlns:x="urn:probe">/g) ?? []).length, 4 * 16);
  assert.ok(xml.endsWith('</D:multistatus>'), 'complete');
});

// ---- 6. Win32 times ----------------------------------------------------------------

test('6. Win32 times outside 1601-01-01 .. 9999-12-31 are refused with 409 and nothing is stored', T, async () => {
  assert.equal((await davRequest(server, 'PUT', '/Documents/times.txt', { body: 't' })).status, 201);
  const patch = (local: string, value: string) =>
    davRequest(server, 'PROPPATCH', '/Documents/times.txt', {
      body: `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop><Z:${local}>${value}</Z:${local}><Z:Win32FileAttributes>00000021</Z:Win32FileAttributes></D:prop></D:set></D:propertyupdate>`,
    });
  const before = text((await davRequest(server, 'PROPFIND', '/Documents/times.txt', { headers: { depth: '0' } })).body);
  for (const [local, value] of [
    ['Win32LastModifiedTime', '+275760-09-13T00:00:00.000Z'],
    ['Win32CreationTime', '+010000-01-01T00:00:00Z'],
    ['Win32LastAccessTime', 'Sun, 31 Dec 1600 23:59:59 GMT'],
    ['Win32LastModifiedTime', 'Fri, 01 Jan 0100 00:00:00 GMT'],
  ] as const) {
    const res = await patch(local, value);
    assert.equal(res.status, 207);
    assert.match(text(res.body), new RegExp(`<Z:${local}/></D:prop><D:status>HTTP/1\\.1 409 Conflict</D:status><D:responsedescription>a Win32 time must be a date from 1601-01-01T00:00:00Z to 9999-12-31T23:59:59Z<`), `${local} ${value}`);
    assert.match(text(res.body), /<Z:Win32FileAttributes\/><\/D:prop><D:status>HTTP\/1\.1 424 /);
  }
  assert.equal(text((await davRequest(server, 'PROPFIND', '/Documents/times.txt', { headers: { depth: '0' } })).body), before, 'nothing changed');
  assert.match(text((await patch('Win32LastModifiedTime', 'Fri, 31 Dec 9999 23:59:59 GMT')).body), /HTTP\/1\.1 200 OK/);
  assert.match(text((await patch('Win32CreationTime', 'Mon, 01 Jan 1601 00:00:00 GMT')).body), /HTTP\/1\.1 200 OK/);
  const after = text((await davRequest(server, 'PROPFIND', '/Documents/times.txt', { headers: { depth: '0' } })).body);
  assert.match(after, /<D:getlastmodified>Fri, 31 Dec 9999 23:59:59 GMT<\/D:getlastmodified>/);
  assert.match(after, /<D:creationdate>1601-01-01T00:00:00Z<\/D:creationdate>/);
  assert.equal((await davRequest(server, 'HEAD', '/Documents/times.txt')).headers['last-modified'], 'Fri, 31 Dec 9999 23:59:59 GMT');
});

// ---- 9. /metrics ----------------------------------------------------------------------

test('9. /metrics is for administrators only', T, async () => {
  const user = await davRequest(server, 'GET', '/metrics');
  assert.equal(user.status, 403);
  assert.match(text(user.body), /administrators only/);
  assert.doesNotMatch(text(user.body), /mydoc_/);
  assert.equal((await davRequest(server, 'GET', '/metrics', { user: null })).status, 401);
  const admin = await davRequest(server, 'GET', '/metrics', { user: 'dave' });
  assert.equal(admin.status, 200);
  assert.match(text(admin.body), /^mydoc_sessions_open \d+$/m);
});

// ---- 10. internal names and paths --------------------------------------------------

test('10. /healthz without login says only ok; no version, no take-out state', T, async () => {
  for (const user of [null, undefined]) {
    const res = await davRequest(server, 'GET', '/healthz', { user });
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(text(res.body)), { state: 'ok' });
  }
});

test('10. methods the share does not implement get 501 (405 on /healthz), and no answer names the internal route', T, async () => {
  const cases: [string, string, number][] = [
    ['TRACE', '/', 501],
    ['TRACE', '/Documents/x', 501],
    ['PATCH', '/Documents/x', 501],
    ['POST', '/Documents/x', 501],
    ['SEARCH', '/', 501],
    ['REPORT', '/Documents/', 501],
    ['MKCALENDAR', '/Documents/', 501],
    ['POST', '/healthz', 405],
    ['TRACE', '/metrics', 405],
    ['PATCH', '/api/takeout/status', 415],
    ['DELETE', '/api/takeout/status', 404],
    ['GET', '/api/nothing', 404],
  ];
  for (const [method, path, status] of cases) {
    const type = path.startsWith('/api/') && status === 404 ? '\r\nContent-Type: application/json' : '';
    const res = await raw(`${method} ${path} HTTP/1.1\r\n${hostHeader()}\r\nAuthorization: ${auth()}${type}\r\nContent-Length: 0\r\nConnection: close`);
    assert.equal(res.statuses[0], status, `${method} ${path}: ${res.text.slice(0, 300)}`);
    assert.doesNotMatch(res.text, /mydoc-dav|Route [A-Z]+:/i, `${method} ${path}`);
    if (status === 501) assert.match(res.text, /\r\nallow: OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH, LOCK, UNLOCK\r\n/i);
  }
});

test('10. a vault that cannot be unlocked says why without the server path of the secret file', T, async () => {
  const secretFile = join(server.dataDir, 'local-directory', 'INSECURE-network-secrets.json');
  const secrets = JSON.parse(await readFile(secretFile, 'utf8')) as Record<string, string>;
  const { carol: _carol, ...rest } = secrets;
  await writeFile(secretFile, JSON.stringify(rest));
  try {
    const res = await davRequest(server, 'GET', '/Documents/', { user: 'carol' });
    assert.equal(res.status, 503);
    assert.match(text(res.body), /^your documents cannot be unlocked now: no network secret for user "carol" in the insecure local secret file\n$/);
    assert.ok(!text(res.body).includes(server.dir) && !text(res.body).includes('INSECURE-network-secrets.json'), text(res.body));
    await writeFile(secretFile, '{ not json');
    const broken = await davRequest(server, 'GET', '/Documents/', { user: 'carol' });
    assert.equal(broken.status, 503);
    assert.ok(!text(broken.body).includes(server.dir), text(broken.body));
  } finally {
    await writeFile(secretFile, JSON.stringify(secrets));
  }
  assert.equal((await davRequest(server, 'GET', '/Documents/', { user: 'carol' })).status, 200, 'back with the secret');
});

// ---- 11. transfer codings, If-Modified-Since on PUT --------------------------------

test('11. a PUT in a transfer coding other than chunked is refused with 501 and nothing is stored', T, async () => {
  const gz = gzipSync(Buffer.from('hello, encoded'));
  const chunked = Buffer.concat([Buffer.from(`${gz.length.toString(16)}\r\n`), gz, Buffer.from('\r\n0\r\n\r\n')]);
  for (const te of ['gzip, chunked', 'deflate, chunked', 'x-custom, chunked']) {
    const res = await raw(`PUT /Documents/te.txt HTTP/1.1\r\n${hostHeader()}\r\nAuthorization: ${auth()}\r\nTransfer-Encoding: ${te}\r\nConnection: close`, { body: chunked });
    assert.equal(res.statuses[0], 501, `${te}: ${res.text.slice(0, 200)}`);
    assert.match(res.text, /only the chunked transfer coding is supported/);
  }
  assert.equal((await davRequest(server, 'GET', '/Documents/te.txt')).status, 404, 'nothing stored');
  const plain = Buffer.from('plain');
  const ok = await raw(`PUT /Documents/te.txt HTTP/1.1\r\n${hostHeader()}\r\nAuthorization: ${auth()}\r\nTransfer-Encoding: chunked\r\nConnection: close`, {
    body: Buffer.concat([Buffer.from(`${plain.length.toString(16)}\r\n`), plain, Buffer.from('\r\n0\r\n\r\n')]),
  });
  assert.equal(ok.statuses[0], 201, 'chunked alone is fine');
  assert.equal(text((await davRequest(server, 'GET', '/Documents/te.txt')).body), 'plain');
});

test('11. If-Modified-Since is ignored on PUT (RFC 9110 13.1.3); the other preconditions still hold', T, async () => {
  assert.equal((await davRequest(server, 'PUT', '/Documents/ims.txt', { body: 'one' })).status, 201);
  const future = new Date(Date.now() + 86_400_000).toUTCString();
  assert.equal((await davRequest(server, 'PUT', '/Documents/ims.txt', { headers: { 'if-modified-since': future }, body: 'two' })).status, 204);
  assert.equal(text((await davRequest(server, 'GET', '/Documents/ims.txt')).body), 'two');
  assert.equal((await davRequest(server, 'GET', '/Documents/ims.txt', { headers: { 'if-modified-since': future } })).status, 304, 'GET still honours it');
  assert.equal((await davRequest(server, 'PUT', '/Documents/ims.txt', { headers: { 'if-none-match': '*' }, body: 'three' })).status, 412);
  assert.equal((await davRequest(server, 'PUT', '/Documents/ims.txt', { headers: { 'if-unmodified-since': 'Mon, 01 Jan 2001 00:00:00 GMT' }, body: 'three' })).status, 412);
  assert.equal(text((await davRequest(server, 'GET', '/Documents/ims.txt')).body), 'two');
});

// ---- 12. Destination -----------------------------------------------------------------

test('12. the probe\'s Destination "https://host\\@evil/Documents/x" is refused, and other authorities get 502', T, async () => {
  assert.equal((await davRequest(server, 'PUT', '/Documents/d.txt', { body: 'd' })).status, 201);
  const probe = await davRequest(server, 'MOVE', '/Documents/d.txt', { headers: { destination: `https://127.0.0.1:${server.port}\\@evil/Documents/x` } });
  assert.equal(probe.status, 400, text(probe.body));
  assert.match(text(probe.body), /backslash/);
  for (const destination of [`https://127.0.0.1:${server.port}@evil/Documents/x`, `https://alice@127.0.0.1:${server.port}/Documents/x`, `https://127.0.0.1:${server.port + 1}/Documents/x`, `http://127.0.0.1:${server.port}/Documents/x`]) {
    const res = await davRequest(server, 'MOVE', '/Documents/d.txt', { headers: { destination } });
    assert.equal(res.status, 502, destination);
    assert.match(text(res.body), /another server/);
  }
  assert.equal((await davRequest(server, 'GET', '/Documents/x')).status, 404, 'nothing moved');
  assert.equal((await davRequest(server, 'MOVE', '/Documents/d.txt', { headers: { destination: `https://127.0.0.1:${server.port}/Documents/x` } })).status, 201, 'this server');
  assert.equal(text((await davRequest(server, 'GET', '/Documents/x')).body), 'd');
});

// ---- 13. Expect: 100-continue -----------------------------------------------------

test('13. Expect: 100-continue gets the final status at once when the headers decide it, 100 only otherwise', T, async () => {
  const put = (headers: string[]) => `PUT /Documents/expect.bin HTTP/1.1\r\n${hostHeader()}\r\n${headers.join('\r\n')}\r\nExpect: 100-continue`;
  const refused: [string, string[], number, RegExp][] = [
    ['too large', [`Authorization: ${auth()}`, 'Content-Length: 4294967296'], 413, /larger than 4294967295 bytes/],
    ['no credentials', ['Content-Length: 10'], 401, /authentication required/],
    ['a transfer coding', [`Authorization: ${auth()}`, 'Transfer-Encoding: gzip, chunked'], 501, /chunked/],
  ];
  for (const [what, headers, status, message] of refused) {
    const res = await raw(put(headers));
    assert.deepEqual(res.statuses, [status], `${what}: ${res.text.slice(0, 300)}`);
    assert.match(res.text, message);
    assert.match(res.text, /\r\nconnection: close\r\n/i);
  }
  const post = await raw(`POST /api/takeout/requests HTTP/1.1\r\n${hostHeader()}\r\nAuthorization: ${auth()}\r\nContent-Type: text/plain\r\nContent-Length: 40\r\nExpect: 100-continue`);
  assert.deepEqual(post.statuses, [415], 'an API request refused on its headers');
  const trace = await raw(`PATCH /Documents/x HTTP/1.1\r\n${hostHeader()}\r\nAuthorization: ${auth()}\r\nContent-Length: 10\r\nExpect: 100-continue`);
  assert.deepEqual(trace.statuses, [501], 'a method not implemented');

  const body = Buffer.from('continued body');
  const ok = await raw(put([`Authorization: ${auth()}`, `Content-Length: ${body.length}`, 'Connection: close']), { afterContinue: body });
  assert.deepEqual(ok.statuses, [100, 201], ok.text.slice(0, 300));
  assert.equal(text((await davRequest(server, 'GET', '/Documents/expect.bin')).body), 'continued body');
  const wrong = await raw(put([`Authorization: ${basicAuth('alice', 'wrong-password')}`, `Content-Length: ${body.length}`, 'Connection: close']), { afterContinue: body });
  assert.equal(wrong.statuses.at(-1), 401, 'a wrong password is still refused (it needs the password check)');
});
