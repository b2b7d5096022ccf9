/**
 * In-process tests of the WebDAV handler (shares/webdav/handler.ts) over the
 * in-memory store: no HTTP server, no vault. Each test builds a handler on
 * a fresh store with a fixed clock and reads the whole answer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { DavHandler, type DavLimits } from '../shares/webdav/handler.js';
import { DavError, toDavError, WEBDAV_STATUS } from '../shares/webdav/errors.js';
import { LockManager } from '../shares/webdav/locks.js';
import { httpDate, isoDate } from '../shares/webdav/props.js';
import { readOnlyStore } from '../shares/webdav/read-only-store.js';
import { StoreError, type DavStore } from '../shares/webdav/store.js';
import { MemoryDavStore } from './helpers/memory-dav-store.js';

const NOW = Date.UTC(2024, 4, 6, 7, 8, 9);
const HOST = 'localhost:8443';
const LIMITS: DavLimits = { maxFileBytes: 1024, maxXmlBytes: 64 * 1024, quotaBytes: () => 1_000_000 };
const XML_PROPFIND_ALL = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>';

interface Answer {
  status: number;
  headers: Record<string, string | number>;
  text: string;
  cause: string | undefined;
}

function setup(store: DavStore = new MemoryDavStore(() => NOW)) {
  const handler = new DavHandler(store, new LockManager(() => NOW), LIMITS, () => NOW);
  const dav = async (method: string, url: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> => {
    const res = await handler.handle({
      method,
      url,
      headers: { host: HOST, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}), ...headers },
      body: body === undefined ? undefined : Readable.from([Buffer.from(body)]),
      principal: 'alice',
    });
    let text = '';
    if (res.body instanceof Readable) for await (const chunk of res.body) text += Buffer.from(chunk as Buffer).toString('utf8');
    else if (res.body !== undefined) text = res.body.toString();
    return { status: res.status, headers: res.headers, text, cause: res.cause };
  };
  return { store, dav };
}

const lockBody = (scope = 'exclusive') => `<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:${scope}/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>me</D:owner></D:lockinfo>`;

test('OPTIONS: DAV classes 1 and 2 and the methods', async () => {
  const { dav } = setup();
  const res = await dav('OPTIONS', '/');
  assert.equal(res.status, 200);
  assert.equal(res.headers.dav, '1, 2');
  assert.equal(res.headers.allow, 'OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH, LOCK, UNLOCK');
});

test('PUT creates (201) and replaces (204) a file; GET and HEAD return it with its ETag', async () => {
  const { dav } = setup();
  const created = await dav('PUT', '/a.txt', {}, 'hello');
  assert.equal(created.status, 201);
  const etag = created.headers.etag as string;
  assert.match(etag, /^"[^"]+"$/);
  const got = await dav('GET', '/a.txt');
  assert.equal(got.status, 200);
  assert.equal(got.text, 'hello');
  assert.equal(got.headers.etag, etag);
  assert.equal(got.headers['content-length'], 5);
  assert.equal(got.headers['last-modified'], new Date(NOW).toUTCString());
  const head = await dav('HEAD', '/a.txt');
  assert.equal(head.status, 200);
  assert.equal(head.text, '');
  assert.equal(head.headers['content-length'], 5);
  const replaced = await dav('PUT', '/a.txt', {}, 'bye');
  assert.equal(replaced.status, 204);
  assert.notEqual(replaced.headers.etag, etag);
  assert.equal((await dav('GET', '/a.txt')).text, 'bye');
});

test('GET of a folder lists its names, folders with a trailing slash', async () => {
  const { dav } = setup();
  await dav('MKCOL', '/docs');
  await dav('PUT', '/docs/b.txt', {}, 'b');
  await dav('MKCOL', '/docs/sub');
  const res = await dav('GET', '/docs/');
  assert.equal(res.status, 200);
  assert.equal(res.text, 'b.txt\nsub/\n');
});

test('Range: 206 with Content-Range, 416 when unsatisfiable, the whole file when If-Range does not match', async () => {
  const { dav } = setup();
  await dav('PUT', '/r', {}, '0123456789');
  const part = await dav('GET', '/r', { range: 'bytes=2-4' });
  assert.equal(part.status, 206);
  assert.equal(part.text, '234');
  assert.equal(part.headers['content-range'], 'bytes 2-4/10');
  const suffix = await dav('GET', '/r', { range: 'bytes=-3' });
  assert.equal(suffix.text, '789');
  const past = await dav('GET', '/r', { range: 'bytes=10-' });
  assert.equal(past.status, 416);
  assert.equal(past.headers['content-range'], 'bytes */10');
  assert.equal(past.text, 'range not satisfiable: the file has 10 bytes\n');
  const stale = await dav('GET', '/r', { range: 'bytes=2-4', 'if-range': '"other"' });
  assert.equal(stale.status, 200);
  assert.equal(stale.text, '0123456789');
});

test('RFC 9110 preconditions: If-None-Match gives 304, a failed If-Match 412, and a PUT with If-Match on nothing 412', async () => {
  const { dav } = setup();
  const { headers } = await dav('PUT', '/p', {}, 'x');
  const etag = headers.etag as string;
  assert.equal((await dav('GET', '/p', { 'if-none-match': etag })).status, 304);
  const failed = await dav('GET', '/p', { 'if-match': '"nope"' });
  assert.equal(failed.status, 412);
  assert.equal(failed.text, 'the precondition headers do not match the resource\n');
  assert.equal((await dav('PUT', '/p', { 'if-match': etag }, 'y')).status, 204);
  const none = await dav('PUT', '/q', { 'if-match': etag }, 'y');
  assert.equal(none.status, 412);
  assert.equal(none.text, 'If-Match: the file does not exist\n');
});

test('refusals are answered by code, with the status of WEBDAV_STATUS and a sentence', async () => {
  const { dav } = setup();
  await dav('MKCOL', '/d');
  const cases: [Promise<Answer>, number, string][] = [
    [dav('GET', '/missing'), 404, '/missing does not exist\n'],
    [dav('MKCOL', '/d'), 405, '/d already exists\n'],
    [dav('MKCOL', '/e', {}, 'body'), 415, 'MKCOL with a body is not supported\n'],
    [dav('PUT', '/d', {}, 'x'), 405, '/d is a folder\n'],
    [dav('PUT', '/', {}, 'x'), 405, 'cannot PUT the root\n'],
    [dav('PUT', '/big', {}, 'x'.repeat(2000)), 413, 'the file is larger than 1024 bytes, the most the Windows WebDAV client can handle (4 GiB)\n'],
    [dav('PUT', '/part', { 'content-range': 'bytes 0-0/1' }, 'x'), 400, 'partial PUT (Content-Range) is not supported\n'],
    [dav('PUT', '/no/parent', {}, 'x'), 409, 'folder /no does not exist\n'],
    [dav('PUT', '/a:b', {}, 'x'), 400, 'invalid name "a:b": control characters and \\ / : * ? " < > | are not allowed\n'],
    [dav('PUT', '/nul.txt', {}, 'x'), 400, 'invalid name "nul.txt": CON, PRN, AUX, NUL, COM1-COM9 and LPT1-LPT9 are device names on Windows, with any extension\n'],
    [dav('GET', '/a/../b'), 400, '"." and ".." are not allowed in a path\n'],
    [dav('PROPFIND', '/', { depth: '2' }), 400, 'Depth "2" is not allowed here (allowed: 0, 1)\n'],
    [dav('PROPFIND', '/', {}, '<not-xml'), 400, 'invalid XML body: malformed XML: 1:8: document must contain a root element.\n'],
    [dav('PROPFIND', '/', {}, '<x xmlns="urn:x"/>'), 400, 'the body must be a DAV:propfind element\n'],
    [dav('MOVE', '/d', { destination: '/e', overwrite: 'maybe' }), 400, 'Overwrite must be T or F, not "maybe"\n'],
    [dav('MOVE', '/d', { destination: 'https://elsewhere.example/e' }), 502, 'the Destination is on another server\n'],
    [dav('MOVE', '/d', { destination: '/' }), 403, 'the destination is the root\n'],
    [dav('COPY', '/d', { destination: '/D' }), 403, 'the source and the destination are the same\n'],
    [dav('MOVE', '/d', { destination: '/d/inner' }), 403, 'cannot move /d into itself\n'],
    [dav('LOCK', '/d', { timeout: 'Minute-5' }, lockBody()), 400, 'Timeout "Minute-5" is not valid (use Second-N or Infinite)\n'],
    [dav('LOCK', '/', {}, lockBody()), 403, 'the root cannot be locked\n'],
    [dav('LOCK', '/d'), 400, 'a LOCK without a body refreshes a lock and needs its token in an If header\n'],
    [dav('UNLOCK', '/d'), 400, 'UNLOCK needs a Lock-Token header\n'],
    [dav('PUT', '/f', { if: '(<urn:uuid:x' }, 'x'), 400, 'invalid If header: malformed If header: unbalanced "<" at offset 1\n'],
    [dav('PUT', '/f', { if: '(["nope"])' }, 'x'), 412, 'the If header conditions do not match the resource\n'],
    [dav('TRACE', '/'), 405, 'method TRACE is not supported\n'],
  ];
  for (const [answer, status, text] of cases) {
    const res = await answer;
    assert.deepEqual([res.status, res.text], [status, text]);
    assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
  }
});

test('RFC 4918 preconditions are answered with a DAV:error body naming the condition', async () => {
  const { dav } = setup();
  await dav('MKCOL', '/d');
  const infinite = await dav('PROPFIND', '/d', { depth: 'infinity' });
  assert.equal(infinite.status, 403);
  assert.equal(
    infinite.text,
    '<?xml version="1.0" encoding="utf-8"?>\n<D:error xmlns:D="DAV:"><D:propfind-finite-depth></D:propfind-finite-depth><D:responsedescription>PROPFIND with Depth infinity is not supported</D:responsedescription></D:error>',
  );
  const unlock = await dav('UNLOCK', '/d', { 'lock-token': '<urn:uuid:00000000-0000-4000-8000-000000000000>' });
  assert.equal(unlock.status, 409);
  assert.match(unlock.text, /<D:lock-token-matches-request-uri><\/D:lock-token-matches-request-uri><D:responsedescription>no lock with this token covers this resource</);
});

test('locks: a LOCK of a new name creates an empty file (201); a write without the token is 423; with it, it goes through; UNLOCK ends it', async () => {
  const { dav } = setup();
  const locked = await dav('LOCK', '/doc.docx', {}, lockBody());
  assert.equal(locked.status, 201);
  const token = (locked.headers['lock-token'] as string).slice(1, -1);
  assert.match(locked.text, /<D:lockdiscovery><D:activelock>.*<D:owner xmlns:D="DAV:">me<\/D:owner><D:timeout>Second-3600<\/D:timeout>/);
  assert.equal((await dav('GET', '/doc.docx')).text, '');
  const refused = await dav('PUT', '/doc.docx', {}, 'x');
  assert.equal(refused.status, 423);
  assert.equal(
    refused.text,
    '<?xml version="1.0" encoding="utf-8"?>\n<D:error xmlns:D="DAV:"><D:lock-token-submitted><D:href>/doc.docx</D:href></D:lock-token-submitted><D:responsedescription>the resource is locked and no matching lock token was submitted</D:responsedescription></D:error>',
  );
  const conflict = await dav('LOCK', '/doc.docx', {}, lockBody('shared'));
  assert.equal(conflict.status, 423);
  assert.match(conflict.text, /<D:no-conflicting-lock><D:href>\/doc.docx<\/D:href><\/D:no-conflicting-lock><D:responsedescription>the resource is already locked</);
  assert.equal((await dav('PUT', '/doc.docx', { if: `(<${token}>)` }, 'x')).status, 204);
  const refreshed = await dav('LOCK', '/doc.docx', { if: `(<${token}>)`, timeout: 'Second-60' });
  assert.equal(refreshed.status, 200);
  assert.match(refreshed.text, /<D:timeout>Second-60<\/D:timeout>/);
  assert.equal((await dav('UNLOCK', '/doc.docx', { 'lock-token': `<${token}>` })).status, 204);
  assert.equal((await dav('PUT', '/doc.docx', {}, 'y')).status, 204);
});

test('PROPFIND: Depth 1 lists the children with their properties; quota on folders; 404 for properties asked by name that are not there', async () => {
  const { dav } = setup();
  await dav('MKCOL', '/d');
  await dav('PUT', '/d/f.txt', {}, 'abc');
  const res = await dav('PROPFIND', '/d', { depth: '1' }, XML_PROPFIND_ALL);
  assert.equal(res.status, 207);
  assert.match(res.text, /<D:href>\/d\/<\/D:href>.*<D:quota-available-bytes>1000000<\/D:quota-available-bytes><D:quota-used-bytes>3<\/D:quota-used-bytes>/);
  assert.match(res.text, /<D:href>\/d\/f.txt<\/D:href><D:propstat><D:prop><D:resourcetype\/><D:getcontentlength>3<\/D:getcontentlength>/);
  const named = await dav('PROPFIND', '/d/f.txt', { depth: '0' }, '<D:propfind xmlns:D="DAV:"><D:prop><D:getcontentlength/><x:missing xmlns:x="urn:x"/></D:prop></D:propfind>');
  assert.match(named.text, /<D:prop><D:getcontentlength>3<\/D:getcontentlength><\/D:prop><D:status>HTTP\/1.1 200 OK<\/D:status>/);
  assert.match(named.text, /<D:prop><x:missing xmlns:x="urn:x"\/><\/D:prop><D:status>HTTP\/1.1 404 Not Found<\/D:status>/);
});

const WINDOWS_PROPFIND =
  '<?xml version="1.0" encoding="utf-8" ?><D:propfind xmlns:D="DAV:"><D:prop xmlns:Z="urn:schemas-microsoft-com:">' +
  '<D:resourcetype/><D:getcontentlength/><D:getlastmodified/><D:creationdate/>' +
  '<Z:Win32CreationTime/><Z:Win32LastAccessTime/><Z:Win32LastModifiedTime/><Z:Win32FileAttributes/></D:prop></D:propfind>';

const hrefsOf = (xml: string): string[] => [...xml.matchAll(/<D:href>([^<]*)<\/D:href>/g)].map((m) => m[1]!);

test('PROPFIND Depth 1: a member\'s href is the folder\'s and its own name percent-encoded once (folders end in "/"), XML-escaped, at the root, deeper and under an href base', async () => {
  const store = new MemoryDavStore(() => NOW);
  const names = ['a b.txt', '100%.txt', 'x#y', "it's & co.txt", '+plus', 'é😀.txt'];
  const folders = ['Été #1', 'sub dir'];
  for (const base of [[], ['Été #1']]) {
    if (base.length > 0) store.mkdir(base);
    for (const f of folders) if (!(base.length === 0 && f === 'Été #1')) store.mkdir([...base, f]);
    for (const n of names) await store.write([...base, n], Readable.from([Buffer.from('x')]));
  }
  const escape = (href: string) => href.replace(/&/g, '&amp;').replace(/'/g, '&apos;');
  const expected = (hrefBase: string, base: string[]) => {
    const folder = hrefBase + '/' + base.map((n) => encodeURIComponent(n) + '/').join('');
    const members = store.list(base).map((e) => folder + encodeURIComponent(e.name) + (e.isDir ? '/' : ''));
    return [folder, ...members].map(escape).sort();
  };
  for (const hrefBase of ['', '/shared/alice%40pc-1/Inbox']) {
    const handler = new DavHandler(store, new LockManager(() => NOW), LIMITS, () => NOW, hrefBase);
    for (const base of [[], ['Été #1']]) {
      const url = '/' + base.map((n) => encodeURIComponent(n) + '/').join('');
      for (const body of [undefined, WINDOWS_PROPFIND]) {
        const res = await handler.handle({
          method: 'PROPFIND',
          url,
          headers: { host: HOST, depth: '1', ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }) },
          body: body === undefined ? undefined : Readable.from([Buffer.from(body)]),
          principal: 'alice',
        });
        assert.equal(res.status, 207);
        const xml = Buffer.isBuffer(res.body) ? res.body.toString('utf8') : '';
        assert.deepEqual(hrefsOf(xml).sort(), expected(hrefBase, base), `${hrefBase || '(origin root)'} ${url}`);
        assert.ok(xml.includes('<D:href>' + hrefBase + url + 'it&apos;s%20%26%20co.txt</D:href>'), 'the apostrophe escaped, "&" percent-encoded');
      }
    }
  }
});

test('PROPFIND Depth 1: a listing member carries nothing beyond what was asked and the markup RFC 4918 needs (allprop under 400 bytes, Windows\' list at its floor)', async () => {
  const { dav } = setup();
  await dav('MKCOL', '/many');
  await dav('PUT', '/many/document-00001.docx', {}, '');
  const href = '/many/document-00001.docx';
  const member = (xml: string) => /<D:response><D:href>\/many\/document-00001\.docx<\/D:href>.*?<\/D:response>/.exec(xml)?.[0] ?? '';
  const t = httpDate(NOW);
  const windows = member((await dav('PROPFIND', '/many/', { depth: '1' }, WINDOWS_PROPFIND)).text);
  assert.equal(
    windows,
    `<D:response><D:href>${href}</D:href><D:propstat><D:prop><D:resourcetype/><D:getcontentlength>0</D:getcontentlength>` +
      `<D:getlastmodified>${t}</D:getlastmodified><D:creationdate>${isoDate(NOW)}</D:creationdate>` +
      `<Z:Win32CreationTime>${t}</Z:Win32CreationTime><Z:Win32LastAccessTime>${t}</Z:Win32LastAccessTime><Z:Win32LastModifiedTime>${t}</Z:Win32LastModifiedTime>` +
      `<Z:Win32FileAttributes>00000020</Z:Win32FileAttributes></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>`,
  );
  assert.equal(Buffer.byteLength(windows), 583 + href.length, 'the eight values, their D:/Z: elements, one propstat and the href');
  const allprop = member((await dav('PROPFIND', '/many/', { depth: '1' })).text);
  const etag = /<D:getetag>"([^"]*)"<\/D:getetag>/.exec(allprop)?.[1];
  assert.ok(etag !== undefined, 'allprop members carry their ETag');
  // As the vault answers the bench's files: "/Documents/many/document-NNNNN.docx" (10 bytes longer) with a 16-digit ETag.
  const asInTheBench = Buffer.byteLength(allprop) + 10 - etag.length + 16;
  assert.ok(asInTheBench < 400, `an allprop member takes ${asInTheBench} bytes`);
});

test('PROPPATCH sets dead and Win32 properties all or nothing', async () => {
  const { dav, store } = setup();
  await dav('PUT', '/f', {}, 'x');
  const patch = (props: string) => `<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>${props}</D:prop></D:set></D:propertyupdate>`;
  const ok = await dav('PROPPATCH', '/f', {}, patch('<Z:Win32FileAttributes>00000021</Z:Win32FileAttributes><x:color xmlns:x="urn:x">red</x:color>'));
  assert.equal(ok.status, 207);
  assert.match(ok.text, /<D:prop><Z:Win32FileAttributes\/><x:color xmlns:x="urn:x"\/><\/D:prop><D:status>HTTP\/1.1 200 OK<\/D:status>/);
  assert.equal(store.stat(['f'])!.attributes, 0x21);
  assert.deepEqual((store as MemoryDavStore).getProps(['f']), [{ ns: 'urn:x', name: 'color', value: '<x:color xmlns:x="urn:x">red</x:color>' }]);
  const bad = await dav('PROPPATCH', '/f', {}, patch('<Z:Win32CreationTime>not a date</Z:Win32CreationTime><x:size xmlns:x="urn:x">big</x:size><D:getetag>x</D:getetag>'));
  assert.match(bad.text, /<Z:Win32CreationTime\/><\/D:prop><D:status>HTTP\/1.1 409 Conflict<\/D:status><D:responsedescription>a Win32 time must be a date/);
  assert.match(bad.text, /<x:size xmlns:x="urn:x"\/><\/D:prop><D:status>HTTP\/1.1 424 Failed Dependency<\/D:status>/);
  assert.match(bad.text, /<D:getetag\/><\/D:prop><D:status>HTTP\/1.1 403 Forbidden<\/D:status><D:responsedescription>live DAV: properties cannot be set or removed/);
  assert.equal((store as MemoryDavStore).getProps(['f']).length, 1, 'nothing applied');
});

test('COPY and MOVE: 201 for a new destination, 204 over an old one, 412 over one with Overwrite F; Depth 0 copies a folder without its members', async () => {
  const { dav } = setup();
  await dav('MKCOL', '/d');
  await dav('PUT', '/d/f', {}, 'x');
  assert.equal((await dav('COPY', '/d', { destination: `https://${HOST}/e` })).status, 201);
  assert.equal((await dav('GET', '/e/f')).text, 'x');
  assert.equal((await dav('COPY', '/d', { destination: '/z', depth: '0' })).status, 201);
  assert.equal((await dav('GET', '/z/')).text, '');
  const refused = await dav('MOVE', '/d/f', { destination: '/e/f', overwrite: 'F' });
  assert.deepEqual([refused.status, refused.text], [412, '/e/f exists and Overwrite is F\n']);
  assert.equal((await dav('MOVE', '/d/f', { destination: '/e/f' })).status, 204);
  assert.equal((await dav('GET', '/d/f')).status, 404);
  assert.equal((await dav('MOVE', '/e/f', { destination: '/e/F' })).status, 201, 'a rename to another case');
  assert.equal((await dav('GET', '/e/')).text, 'F\n');
});

test('DELETE removes a tree (204) and the locks in it', async () => {
  const { dav } = setup();
  await dav('MKCOL', '/d');
  await dav('PUT', '/d/f', {}, 'x');
  const token = ((await dav('LOCK', '/d/f', {}, lockBody())).headers['lock-token'] as string).slice(1, -1);
  assert.equal((await dav('DELETE', '/d')).status, 423, 'a lock below needs its token');
  assert.equal((await dav('DELETE', '/d', { if: `</d/f> (<${token}>)` })).status, 204);
  assert.equal((await dav('GET', '/d')).status, 404);
  assert.equal((await dav('PUT', '/f', {}, 'x')).status, 201);
});

test('an error without a WebDAV code is a 500 that says only "internal error", with its cause code for the log', async () => {
  const memory = new MemoryDavStore(() => NOW);
  const failing: DavStore = { ...bindCore(memory), write: async () => Promise.reject(Object.assign(new Error('/secret/path: no space'), { cause: Object.assign(new Error('x'), { code: 'ENOSPC' }) })) };
  const { dav } = setup(failing);
  const res = await dav('PUT', '/f', {}, 'x');
  assert.deepEqual([res.status, res.text, res.cause], [500, 'internal error\n', 'ENOSPC']);
  const closing = setup({
    ...bindCore(memory),
    list: () => {
      throw new StoreError('ERR_VAULT_CLOSED', 'the vault is closed');
    },
  });
  const closed = await closing.dav('GET', '/');
  assert.deepEqual([closed.status, closed.text, closed.cause], [503, 'the vault is closed\n', 'ERR_VAULT_CLOSED'], 'a coded store error keeps its status and sentence');
});

test('a store error is answered with its code\'s status and message', () => {
  for (const [code, status] of [['ERR_NOT_FOUND', 404], ['ERR_EXISTS', 405], ['ERR_READ_ONLY', 403], ['ERR_NO_SPACE', 507], ['ERR_VAULT_BUSY', 503], ['ERR_PARENT_MISSING', 409]] as const) {
    const err = toDavError(new StoreError(code, 'why'));
    assert.deepEqual([err.code, err.status, err.message], [code, status, 'why']);
    assert.equal(WEBDAV_STATUS[code], status);
  }
  assert.equal(new DavError('ERR_DAV_DESTINATION_OTHER_SERVER', 'x').status, 502);
  assert.equal(toDavError(Object.assign(new Error('secret'), { code: 'ENOENT' })).message, 'internal error');
});

/** The core of a store, without its optional capabilities. */
function bindCore(s: DavStore): DavStore {
  return {
    stat: (p) => s.stat(p),
    list: (p) => s.list(p),
    read: (p, r) => s.read(p, r),
    write: (p, src, o) => s.write(p, src, o),
    mkdir: (p, t) => s.mkdir(p, t),
    delete: (p) => s.delete(p),
    move: (f, t, o) => s.move(f, t, o),
    copy: (f, t, o) => s.copy(f, t, o),
  };
}

test('a store with only the core: no quota properties, dead and Win32 properties refused with 403, COPY Depth 0 still works', async () => {
  const { dav } = setup(bindCore(new MemoryDavStore(() => NOW)));
  await dav('MKCOL', '/d');
  const all = await dav('PROPFIND', '/d', { depth: '0' }, XML_PROPFIND_ALL);
  assert.equal(all.status, 207);
  assert.doesNotMatch(all.text, /quota/);
  const named = await dav('PROPFIND', '/d', { depth: '0' }, '<D:propfind xmlns:D="DAV:"><D:prop><D:quota-used-bytes/></D:prop></D:propfind>');
  assert.match(named.text, /<D:quota-used-bytes\/><\/D:prop><D:status>HTTP\/1.1 404 Not Found/);
  const patch = (prop: string) =>
    dav('PROPPATCH', '/d', {}, `<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>${prop}</D:prop></D:set></D:propertyupdate>`);
  const dead = await patch('<x:a xmlns:x="urn:x">1</x:a>');
  assert.match(dead.text, /<x:a xmlns:x="urn:x"\/><\/D:prop><D:status>HTTP\/1.1 403 Forbidden<\/D:status><D:responsedescription>this share keeps no dead properties/);
  const win32 = await patch('<Z:Win32FileAttributes>00000012</Z:Win32FileAttributes>');
  assert.match(win32.text, /<Z:Win32FileAttributes\/><\/D:prop><D:status>HTTP\/1.1 403 Forbidden<\/D:status><D:responsedescription>this share cannot set Win32 properties/);
  assert.equal((await dav('COPY', '/d', { destination: '/e', depth: '0' })).status, 201);
});

test('through the read-only wrapper: reads and listings work, every change is 403 and changes nothing', async () => {
  const memory = new MemoryDavStore(() => NOW);
  await memory.write(['f.txt'], ['content']);
  memory.mkdir(['d']);
  memory.patchProps(['f.txt'], [{ ns: 'urn:x', name: 'color', value: '<x:color xmlns:x="urn:x">red</x:color>' }]);
  const { dav } = setup(readOnlyStore(memory));
  assert.equal((await dav('GET', '/f.txt')).text, 'content');
  const listing = await dav('PROPFIND', '/', { depth: '1' }, XML_PROPFIND_ALL);
  assert.equal(listing.status, 207);
  assert.match(listing.text, /<x:color xmlns:x="urn:x">red<\/x:color>/);
  assert.match(listing.text, /<D:quota-used-bytes>7<\/D:quota-used-bytes>/);
  const changes: [string, string, Record<string, string>, string | undefined][] = [
    ['PUT', '/f.txt', {}, 'new'],
    ['PUT', '/g.txt', {}, 'new'],
    ['MKCOL', '/e', {}, undefined],
    ['DELETE', '/f.txt', {}, undefined],
    ['MOVE', '/f.txt', { destination: '/g.txt' }, undefined],
    ['COPY', '/f.txt', { destination: '/g.txt' }, undefined],
    ['COPY', '/d', { destination: '/e', depth: '0' }, undefined],
    ['PROPPATCH', '/f.txt', {}, '<D:propertyupdate xmlns:D="DAV:"><D:remove><D:prop><x:color xmlns:x="urn:x"/></D:prop></D:remove></D:propertyupdate>'],
    ['PROPPATCH', '/f.txt', {}, '<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop><Z:Win32FileAttributes>00000001</Z:Win32FileAttributes></D:prop></D:set></D:propertyupdate>'],
    ['LOCK', '/new.txt', {}, lockBody()],
  ];
  for (const [method, url, headers, body] of changes) {
    const res = await dav(method, url, headers, body);
    assert.deepEqual([res.status, res.text], [403, 'this share is read-only\n'], `${method} ${url}`);
  }
  assert.deepEqual(memory.list([]).map((e) => e.name), ['d', 'f.txt']);
  assert.equal(memory.stat(['f.txt'])!.attributes, 0x20);
  assert.equal(memory.getProps(['f.txt']).length, 1);
  assert.equal((await dav('GET', '/f.txt')).text, 'content');
});
