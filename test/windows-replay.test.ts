/**
 * Replays the request sequences of the Windows WebDAV client (Mini-Redirector)
 * from windows-webdav.md section A, with the headers it sends, against a real
 * `mydoc serve`, asserting every status and the end state.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { davRequest, randomPassword, startServer, type DavRequestOptions, type RunningServer } from './helpers/server.js';

let server: RunningServer;
before(async () => {
  server = await startServer({ users: [{ name: 'alice', password: randomPassword() }, { name: 'dave', password: randomPassword(), admin: true }] });
});
after(async () => {
  await server?.stop();
});

const WINDOWS = { 'user-agent': 'Microsoft-WebDAV-MiniRedir/10.0.19045', translate: 'f', connection: 'Keep-Alive' };
const win = (method: string, path: string, opts: DavRequestOptions = {}) => davRequest(server, method, path, { ...opts, headers: { ...WINDOWS, ...opts.headers } });
const text = (b: Buffer) => b.toString('utf8');

const LOCKINFO = (owner: string) =>
  `<?xml version="1.0" encoding="utf-8" ?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><D:href>${owner}</D:href></D:owner></D:lockinfo>`;

const WIN32_PATCH = (created: string, accessed: string, modified: string, attributes = '00000020') =>
  `<?xml version="1.0" encoding="utf-8" ?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>` +
  `<Z:Win32CreationTime>${created}</Z:Win32CreationTime><Z:Win32LastAccessTime>${accessed}</Z:Win32LastAccessTime>` +
  `<Z:Win32LastModifiedTime>${modified}</Z:Win32LastModifiedTime><Z:Win32FileAttributes>${attributes}</Z:Win32FileAttributes>` +
  `</D:prop></D:set></D:propertyupdate>`;

function lockToken(res: { headers: Record<string, unknown> }): string {
  const header = String(res.headers['lock-token'] ?? '');
  assert.match(header, /^<urn:uuid:[0-9a-f-]{36}>$/);
  return header.slice(1, -1);
}

function prop(xml: string, name: string): string | undefined {
  return new RegExp(`<[A-Za-z]+:${name}>([^<]*)</`).exec(xml)?.[1];
}

test('A.1 mapping: anonymous OPTIONS, one Basic challenge, PROPFIND Depth 0 and 1, probes get 404, no redirects', async () => {
  for (const path of ['/', '/Documents/', '/Documents']) {
    const options = await win('OPTIONS', path, { user: null });
    assert.equal(options.status, 200, path);
    assert.equal(options.headers['dav'], '1, 2');
    assert.equal(options.headers['ms-author-via'], 'DAV');
    for (const m of ['LOCK', 'UNLOCK', 'PROPFIND', 'PROPPATCH', 'MKCOL', 'MOVE', 'COPY', 'PUT', 'DELETE']) assert.match(String(options.headers['allow']), new RegExp(`\\b${m}\\b`));
    assert.equal(options.headers['x-msdavext'], undefined);
  }
  const challenge = await win('PROPFIND', '/', { user: null, headers: { depth: '0' } });
  assert.equal(challenge.status, 401);
  assert.equal(challenge.headers['www-authenticate'], 'Basic realm="mydoc", charset="UTF-8"', 'exactly one Basic challenge');
  assert.equal(challenge.headers['set-cookie'], undefined);

  const root = await win('PROPFIND', '/', { headers: { depth: '0' } });
  assert.equal(root.status, 207);
  const rootXml = text(root.body);
  assert.match(rootXml, /<D:href>\/<\/D:href>/);
  assert.match(rootXml, /<D:resourcetype><D:collection\/><\/D:resourcetype>/);
  assert.match(rootXml, /<Z:Win32FileAttributes>00000010<\/Z:Win32FileAttributes>/);
  assert.match(rootXml, /<D:quota-available-bytes>\d+<\/D:quota-available-bytes>/);
  assert.match(rootXml, /<D:supportedlock>/);

  const listing = await win('PROPFIND', '/', { headers: { depth: '1' } });
  assert.equal(listing.status, 207);
  for (const area of ['Documents', 'Desktop', 'Profile']) assert.match(text(listing.body), new RegExp(`<D:href>/${area}/</D:href>`));

  for (const probe of ['/desktop.ini', '/AutoRun.inf', '/Documents/desktop.ini']) {
    assert.equal((await win('PROPFIND', probe, { headers: { depth: '0' } })).status, 404, probe);
  }
  const noSlash = await win('PROPFIND', '/Documents', { headers: { depth: '0' } });
  assert.equal(noSlash.status, 207, 'no redirect for a folder without its trailing slash');
  assert.match(text(noSlash.body), /<D:href>\/Documents\/<\/D:href>/);
  assert.match(text(noSlash.body), /<D:getlastmodified>[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT<\/D:getlastmodified>/);
  assert.match(text(noSlash.body), /<D:creationdate>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ<\/D:creationdate>/);
  assert.equal((await win('PROPFIND', '/', { headers: { depth: 'infinity' } })).status, 403);
});

test('A.2 copying a file in: 0-byte PUT, LOCK, PROPPATCH, HEAD, PUT, PROPPATCH, UNLOCK keeps content, size and Win32 times', async () => {
  const path = '/Documents/Quarterly%20report.docx';
  assert.equal((await win('PROPFIND', path, { headers: { depth: '0' } })).status, 404);
  assert.equal((await win('PUT', path, { body: '' })).status, 201);

  const lock = await win('LOCK', path, { headers: { timeout: 'Second-3600', 'content-type': 'text/xml; charset="utf-8"' }, body: LOCKINFO('DESKTOP-PC\\alice') });
  assert.equal(lock.status, 200, text(lock.body));
  const token = lockToken(lock);
  assert.match(text(lock.body), /<D:owner><D:href>DESKTOP-PC\\alice<\/D:href><\/D:owner>|<D:owner xmlns:D="DAV:"><D:href>DESKTOP-PC\\alice<\/D:href><\/D:owner>/);
  assert.match(text(lock.body), /<D:timeout>Second-36\d\d<\/D:timeout>/);

  const created = 'Mon, 03 Jun 2019 08:15:30 GMT';
  const modified = 'Fri, 11 Oct 2019 16:45:10 GMT';
  const patch1 = await win('PROPPATCH', path, { headers: { if: `(<${token}>)` }, body: WIN32_PATCH(created, modified, modified) });
  assert.equal(patch1.status, 207);
  assert.doesNotMatch(text(patch1.body), /HTTP\/1.1 (4|5)\d\d/);

  const head = await win('HEAD', path);
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], '0');

  const content = Buffer.alloc(150_000, 'quarterly figures ');
  const denied = await win('PUT', path, { body: content });
  assert.equal(denied.status, 423, 'a write without the lock token is refused');
  const put = await win('PUT', path, { headers: { if: `(<${token}>)` }, body: content });
  assert.equal(put.status, 204, 'overwriting the 0-byte placeholder answers 204');

  const patch2 = await win('PROPPATCH', path, { headers: { if: `(<${token}>)` }, body: WIN32_PATCH(created, modified, modified) });
  assert.equal(patch2.status, 207);
  assert.doesNotMatch(text(patch2.body), /HTTP\/1.1 (4|5)\d\d/);
  assert.equal((await win('UNLOCK', path, { headers: { 'lock-token': `<${token}>` } })).status, 204);

  const got = await win('GET', path);
  assert.ok(got.body.equals(content));
  const props = text((await win('PROPFIND', path, { headers: { depth: '0' } })).body);
  assert.equal(prop(props, 'getcontentlength'), String(content.length));
  assert.equal(prop(props, 'Win32LastModifiedTime'), modified, 'the copied file keeps its own modification time');
  assert.equal(prop(props, 'getlastmodified'), modified);
  assert.equal(prop(props, 'Win32CreationTime'), created);
  assert.equal(prop(props, 'lockdiscovery'), undefined);
});

test('A.3 new folder and rename: MKCOL, MOVE with an absolute Destination and Overwrite F', async () => {
  assert.equal((await win('PROPFIND', '/Documents/New%20folder', { headers: { depth: '0' } })).status, 404);
  assert.equal((await win('MKCOL', '/Documents/New%20folder')).status, 201);
  const dest = `${server.url}Documents/Projects%20%232`;
  assert.equal((await win('MOVE', '/Documents/New%20folder', { headers: { destination: dest, overwrite: 'F' } })).status, 201);
  assert.equal((await win('PROPFIND', '/Documents/Projects%20%232/', { headers: { depth: '0' } })).status, 207);
  assert.equal((await win('MKCOL', '/Documents/Other')).status, 201);
  assert.equal((await win('MOVE', '/Documents/Other', { headers: { destination: dest, overwrite: 'F' } })).status, 412, 'Overwrite F onto an existing target');
  assert.equal((await win('PROPFIND', '/Documents/Other', { headers: { depth: '0' } })).status, 207, 'the source is untouched');
});

test('A.4 Office save: owner file, temp file, then MOVE temp over the document with only the temp file\'s token', async () => {
  const doc = '/Documents/Budget.xlsx';
  assert.equal((await win('PUT', doc, { body: 'version 1' })).status, 201);
  const docLock = await win('LOCK', doc, { headers: { timeout: 'Second-3600' }, body: LOCKINFO('alice') });
  assert.equal(docLock.status, 200);
  const docToken = lockToken(docLock);

  assert.equal((await win('PUT', '/Documents/~$Budget.xlsx', { body: 'alice owner file' })).status, 201);
  const tmp = '/Documents/5E3A1B2C.tmp';
  assert.equal((await win('PUT', tmp, { body: '' })).status, 201);
  const tmpLock1 = lockToken(await win('LOCK', tmp, { headers: { timeout: 'Second-3600' }, body: LOCKINFO('alice') }));
  assert.equal((await win('PUT', tmp, { headers: { if: `(<${tmpLock1}>)` }, body: 'version 2' })).status, 204);
  const patched = await win('PROPPATCH', tmp, { headers: { if: `(<${tmpLock1}>)` }, body: WIN32_PATCH('Tue, 01 Jan 2019 00:00:00 GMT', 'Tue, 01 Jan 2019 00:00:00 GMT', 'Tue, 01 Jan 2019 00:00:00 GMT') });
  assert.equal(patched.status, 207);
  assert.equal((await win('UNLOCK', tmp, { headers: { 'lock-token': `<${tmpLock1}>` } })).status, 204);
  assert.equal((await win('UNLOCK', doc, { headers: { 'lock-token': docToken } })).status, 204, 'token without <> accepted');

  const tmpLock2 = await win('LOCK', tmp, { headers: { timeout: 'Second-3600' }, body: LOCKINFO('alice') });
  assert.equal(tmpLock2.status, 200);
  const move = await win('MOVE', tmp, { headers: { destination: `${server.url}Documents/Budget.xlsx`, overwrite: 'T', if: `(<${lockToken(tmpLock2)}>)` } });
  assert.equal(move.status, 204, text(move.body));
  assert.equal(text((await win('GET', doc)).body), 'version 2');
  assert.equal((await win('GET', tmp)).status, 404);
  assert.equal((await win('DELETE', '/Documents/~$Budget.xlsx')).status, 204);
});

test('A.5 copying within the share is GET then PUT; LOCK on a missing URL creates an empty file', async () => {
  assert.equal((await win('PUT', '/Desktop/a.txt', { body: 'copy me' })).status, 201);
  const got = await win('GET', '/Desktop/a.txt');
  assert.equal((await win('PUT', '/Desktop/a%20-%20Copy.txt', { body: got.body })).status, 201);
  assert.equal(text((await win('GET', '/Desktop/a%20-%20Copy.txt')).body), 'copy me');

  const created = await win('LOCK', '/Desktop/new.txt', { headers: { timeout: 'Second-99999' }, body: LOCKINFO('alice') });
  assert.equal(created.status, 201);
  assert.match(text(created.body), /<D:timeout>Second-3600<\/D:timeout>/, 'timeouts capped at 3600 s');
  assert.equal((await win('HEAD', '/Desktop/new.txt')).headers['content-length'], '0');
  const refresh = await win('LOCK', '/Desktop/new.txt', { headers: { timeout: 'Second-600', if: `(<${lockToken(created)}>)` } });
  assert.equal(refresh.status, 200, 'LOCK with If and no body refreshes');
  assert.match(text(refresh.body), /<D:timeout>Second-600<\/D:timeout>/);
});

test('GET /metrics: administrators only, Prometheus text with requests, latency, bytes, locks, the gate and the version', async () => {
  assert.equal((await win('GET', '/metrics', { user: null })).status, 401);
  const user = await win('GET', '/metrics');
  assert.equal(user.status, 403, 'a user sees no one\'s counts');
  assert.match(text(user.body), /administrators only/);
  assert.doesNotMatch(text(user.body), /mydoc_/);
  const res = await win('GET', '/metrics', { user: 'dave' });
  assert.equal(res.status, 200);
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  const body = text(res.body);
  assert.match(body, /^mydoc_http_requests_total\{method="PROPFIND",status="207"\} [1-9]\d*$/m);
  assert.match(body, /^mydoc_http_requests_total\{method="PUT",status="201"\} [1-9]\d*$/m);
  assert.match(body, /^mydoc_http_request_duration_seconds_bucket\{method="GET",le="\+Inf"\} [1-9]\d*$/m);
  assert.match(body, /^mydoc_http_bytes_in_total [1-9]\d*$/m);
  assert.match(body, /^mydoc_http_bytes_out_total [1-9]\d*$/m);
  assert.match(body, /^mydoc_webdav_locks\{scope="exclusive"\} \d+$/m);
  assert.match(body, /^mydoc_gate_state\{state="online"\} 1$/m);
  assert.match(body, /^mydoc_sessions_open 1$/m);
  assert.match(body, /^mydoc_build_info\{version="\d+\.\d+\.\d+[^"]*"\} 1$/m);
});
