/**
 * Unit tests of the WebDAV properties (shares/webdav/props.ts), the
 * streamed multistatus (multistatus.ts) and the names a request may create
 * (shares/names.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { VaultError } from '../shares/vault/errors.js';
import { checkNewName, normalizeName } from '../shares/names.js';
import type { Entry } from '../shares/vault/vault.js';
import type { Lock } from '../shares/webdav/locks.js';
import { multistatus, STREAM_FROM_BYTES } from '../shares/webdav/multistatus.js';
import {
  DAV,
  MAX_TIME_MS,
  MIN_TIME_MS,
  MS,
  allprop,
  deadPropsBytes,
  emptyProp,
  etagOf,
  hex8,
  httpDate,
  isProtected,
  isWin32,
  isoDate,
  liveProp,
  namedProps,
  parseTime,
  propNames,
  propstat,
  type PropContext,
} from '../shares/webdav/props.js';

const T = { timeout: 10_000 };
const MODIFIED = Date.UTC(2024, 1, 29, 13, 14, 15, 678);

function entry(over: Partial<Entry> = {}): Entry {
  return { path: '/Documents/r.txt', name: 'r.txt', isDir: false, size: 1234, objectId: 'o', created: Date.UTC(2020, 0, 2, 3, 4, 5), modified: MODIFIED, accessed: Date.UTC(2024, 2, 1), attributes: 0x20, etag: 'abc123', ...over };
}

function context(e: Entry, dead: { ns: string; name: string; value: string }[] = [], locks: Lock[] = []): PropContext {
  return { entry: e, now: MODIFIED, locks: () => locks, quota: () => ({ used: 10, available: 20 }), dead: () => dead };
}

const folder = entry({ path: '/Documents', name: 'Documents', isDir: true, size: 0, objectId: undefined, attributes: 0x10 });

test('dates: RFC 1123 for getlastmodified and Win32 times, ISO 8601 with Z for creationdate, per second', T, () => {
  assert.equal(httpDate(MODIFIED), 'Thu, 29 Feb 2024 13:14:15 GMT');
  assert.equal(httpDate(MODIFIED + 300), 'Thu, 29 Feb 2024 13:14:15 GMT', 'the same second');
  assert.equal(httpDate(MODIFIED + 400), 'Thu, 29 Feb 2024 13:14:16 GMT');
  assert.equal(isoDate(MODIFIED), '2024-02-29T13:14:15Z');
  assert.equal(httpDate(MIN_TIME_MS), 'Mon, 01 Jan 1601 00:00:00 GMT');
  assert.equal(httpDate(MAX_TIME_MS), 'Fri, 31 Dec 9999 23:59:59 GMT');
  assert.equal(isoDate(MAX_TIME_MS), '9999-12-31T23:59:59Z');
  assert.equal(hex8(0x20), '00000020');
  assert.equal(hex8(0xffffffff), 'FFFFFFFF');
});

test('parseTime accepts 1601-01-01 to 9999-12-31 (FILETIME and four-digit years), nothing else', T, () => {
  assert.equal(parseTime('Mon, 01 Jan 1601 00:00:00 GMT'), MIN_TIME_MS);
  assert.equal(parseTime('Fri, 31 Dec 9999 23:59:59 GMT'), MAX_TIME_MS);
  assert.equal(parseTime('2024-02-29T13:14:15Z'), Date.UTC(2024, 1, 29, 13, 14, 15));
  for (const bad of ['Sun, 31 Dec 1600 23:59:59 GMT', '+010000-01-01T00:00:00Z', '+030828-09-14T02:48:05Z', '+275760-09-13T00:00:00.000Z', '-000001-01-01T00:00:00Z', '0000-01-01T00:00:00Z', 'yesterday', '']) {
    assert.equal(parseTime(bad), undefined, bad);
  }
});

test('liveProp renders the DAV: and Win32 properties; folders have no size, type or ETag but a quota', T, () => {
  const file = context(entry());
  assert.equal(liveProp({ ns: DAV, local: 'getcontentlength' }, file), '<D:getcontentlength>1234</D:getcontentlength>');
  assert.equal(liveProp({ ns: DAV, local: 'getetag' }, file), `<D:getetag>${etagOf(entry())}</D:getetag>`);
  assert.equal(etagOf(entry()), '"abc123"');
  assert.equal(liveProp({ ns: DAV, local: 'getlastmodified' }, file), '<D:getlastmodified>Thu, 29 Feb 2024 13:14:15 GMT</D:getlastmodified>');
  assert.equal(liveProp({ ns: DAV, local: 'creationdate' }, file), '<D:creationdate>2020-01-02T03:04:05Z</D:creationdate>');
  assert.equal(liveProp({ ns: DAV, local: 'resourcetype' }, file), '<D:resourcetype/>');
  assert.equal(liveProp({ ns: DAV, local: 'displayname' }, context(entry({ name: 'a<b>&.txt' }))), '<D:displayname>a&lt;b&gt;&amp;.txt</D:displayname>');
  assert.equal(liveProp({ ns: DAV, local: 'quota-available-bytes' }, file), undefined);
  assert.equal(liveProp({ ns: MS, local: 'Win32LastModifiedTime' }, file), '<Z:Win32LastModifiedTime>Thu, 29 Feb 2024 13:14:15 GMT</Z:Win32LastModifiedTime>');
  assert.equal(liveProp({ ns: MS, local: 'Win32FileAttributes' }, file), '<Z:Win32FileAttributes>00000020</Z:Win32FileAttributes>');
  assert.equal(liveProp({ ns: 'urn:x', local: 'getetag' }, file), undefined, 'only in its own namespace');
  const dir = context(folder);
  for (const local of ['getcontentlength', 'getcontenttype', 'getetag']) assert.equal(liveProp({ ns: DAV, local }, dir), undefined, local);
  assert.equal(liveProp({ ns: DAV, local: 'resourcetype' }, dir), '<D:resourcetype><D:collection/></D:resourcetype>');
  assert.equal(liveProp({ ns: DAV, local: 'quota-available-bytes' }, dir), '<D:quota-available-bytes>20</D:quota-available-bytes>');
  assert.equal(liveProp({ ns: DAV, local: 'quota-used-bytes' }, dir), '<D:quota-used-bytes>10</D:quota-used-bytes>');
  assert.equal(liveProp({ ns: DAV, local: 'lockdiscovery' }, dir), '<D:lockdiscovery/>');
});

test('isProtected and isWin32 name the properties PROPPATCH does not store as dead', T, () => {
  assert.ok(isProtected({ ns: DAV, local: 'getetag' }));
  assert.ok(!isProtected({ ns: DAV, local: 'author' }));
  assert.ok(!isProtected({ ns: 'urn:x', local: 'getetag' }));
  assert.ok(isWin32({ ns: MS, local: 'Win32CreationTime' }));
  assert.ok(!isWin32({ ns: MS, local: 'Win32Other' }));
  assert.ok(!isWin32({ ns: DAV, local: 'Win32CreationTime' }));
});

test('allprop: full for the resource itself, compact for listing members; dead values as pieces of their own', T, () => {
  const dead = [{ ns: 'urn:x', name: 'a', value: '<x:a xmlns:x="urn:x">1</x:a>' }, { ns: 'urn:x', name: 'b', value: '<x:b xmlns:x="urn:x">2</x:b>' }];
  const full = allprop(context(folder, dead), true);
  assert.deepEqual(full.slice(1), dead.map((d) => d.value));
  assert.match(full[0]!, /<D:supportedlock>/);
  assert.match(full[0]!, /<Z:Win32CreationTime>/);
  assert.match(full[0]!, /<D:quota-available-bytes>20</);
  const compact = allprop(context(entry()), false);
  assert.equal(compact.length, 1);
  assert.doesNotMatch(compact[0]!, /supportedlock|Win32|quota/, 'a listing entry carries only what Explorer needs');
  assert.match(compact[0]!, /<D:getcontentlength>1234<.*<D:getetag>"abc123"</);
  assert.match(allprop(context(entry({ attributes: 0x21 })), false)[0]!, /<Z:Win32FileAttributes>00000021</, 'attributes other than the default');
});

test('propNames and namedProps: 200 for what the resource has, 404 for the rest', T, () => {
  const dead = [{ ns: 'urn:x', name: 'a', value: '<x:a xmlns:x="urn:x">1</x:a>' }];
  const names = propNames(context(entry(), dead));
  assert.ok(names.some((n) => n.ns === DAV && n.local === 'getetag'));
  assert.ok(!propNames(context(folder)).some((n) => n.local === 'getetag'));
  assert.ok(names.some((n) => n.ns === 'urn:x' && n.local === 'a'));
  const xml = namedProps([{ ns: DAV, local: 'getcontentlength' }, { ns: 'urn:x', local: 'a' }, { ns: 'urn:x', local: 'missing' }, { ns: '', local: 'bare' }], context(entry(), dead)).join('');
  assert.equal(
    xml,
    '<D:propstat><D:prop><D:getcontentlength>1234</D:getcontentlength><x:a xmlns:x="urn:x">1</x:a></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>' +
      '<D:propstat><D:prop><x:missing xmlns:x="urn:x"/><bare xmlns=""/></D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>',
  );
  assert.equal(namedProps([], context(entry())).join(''), '<D:propstat><D:prop></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>');
});

test('emptyProp and propstat escape what they are given; 507 has its reason phrase', T, () => {
  assert.equal(emptyProp({ ns: 'urn:"x"&<y>', local: 'p' }), '<x:p xmlns:x="urn:&quot;x&quot;&amp;&lt;y&gt;"/>');
  assert.equal(emptyProp({ ns: MS, local: 'Win32FileAttributes' }), '<Z:Win32FileAttributes/>');
  assert.equal(
    propstat(['<x:a/>'], 507, 'at most <64 KiB> & no more').join(''),
    '<D:propstat><D:prop><x:a/></D:prop><D:status>HTTP/1.1 507 Insufficient Storage</D:status><D:responsedescription>at most &lt;64 KiB&gt; &amp; no more</D:responsedescription></D:propstat>',
  );
});

test('deadPropsBytes counts UTF-8 bytes of namespace, name and value', T, () => {
  assert.equal(deadPropsBytes([]), 0);
  assert.equal(deadPropsBytes([{ ns: 'urn:x', name: 'a', value: 'é' }, { ns: '', name: 'bb', value: '😀' }]), 5 + 1 + 2 + 0 + 2 + 4);
});

async function drain(body: Buffer | Readable): Promise<Buffer> {
  if (Buffer.isBuffer(body)) return body;
  const parts: Buffer[] = [];
  for await (const chunk of body) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

test('multistatus: a small body has a Content-Length; a large one is streamed, whole and in order', T, async () => {
  const small = await multistatus(['<a>', 'é', '</a>']);
  assert.equal(small.status, 207);
  assert.ok(Buffer.isBuffer(small.body));
  assert.equal(small.headers['content-length'], Buffer.byteLength('<a>é</a>'));
  assert.equal(small.body.toString(), '<a>é</a>');

  const piece = 'x'.repeat(1000) + 'é';
  const count = Math.ceil((3 * STREAM_FROM_BYTES) / 1000);
  const pieces = Array.from({ length: count }, (_, i) => `${i}:${piece}`);
  const large = await multistatus(pieces);
  assert.ok(large.body instanceof Readable, 'streamed');
  assert.equal(large.headers['content-length'], undefined);
  assert.equal((await drain(large.body)).toString(), pieces.join(''));
});

test('multistatus gives the event loop back while it encodes and streams a large body', T, async () => {
  let produced = 0;
  function* pieces(): Generator<string> {
    for (let i = 0; i < 64 * 1024; i++) {
      produced++;
      yield 'y'.repeat(512);
    }
  }
  // Another request's work, one step per turn of the event loop.
  let ticks = 0;
  let running = true;
  const tick = () => {
    ticks++;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  try {
    const res = await multistatus(pieces());
    const ticksWhileBuffering = ticks;
    assert.ok(produced < 64 * 1024, 'the rest is produced only as the stream is read');
    assert.equal((await drain(res.body)).length, 64 * 1024 * 512);
    assert.ok(ticksWhileBuffering >= 8, `other work ran while the first MiB was encoded (${ticksWhileBuffering} turns)`);
    assert.ok(ticks >= 256, `other work ran while 32 MiB were streamed (${ticks} turns)`);
  } finally {
    running = false;
  }
});

const invalidName = (message: RegExp) => (err: unknown) => err instanceof VaultError && err.code === 'ERR_NAME_INVALID' && message.test(err.message);

test('checkNewName refuses Windows device names with any extension, in any case, superscripts included', T, () => {
  const reserved = ['CON', 'con', 'Con.txt', 'NUL', 'nul.tar.gz', 'PRN.doc', 'aux', 'COM1', 'com9.log', 'LPT1', 'lpt9', 'COM\u00b9', 'com\u00b2.txt', 'LPT\u00b3', 'CON .txt', 'NUL  .x'];
  for (const name of reserved) assert.throws(() => checkNewName(name), invalidName(/device names on Windows/), name);
  const fine = ['CONSOLE', 'con_1', 'NULL.txt', 'COM10', 'COM0', 'LPT0', 'xCON', 'my.CON', 'auxiliary.txt', 'COM\u2074', 'report.pdf'];
  for (const name of fine) assert.equal(checkNewName(name), name, name);
  assert.equal(normalizeName('CON.txt'), 'CON.txt', 'an existing file with such a name can still be named (read, renamed, deleted)');
});

test('checkNewName refuses bidirectional overrides and isolates (U+202E and its kin)', T, () => {
  for (const cp of [0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069]) {
    const name = `invoice${String.fromCodePoint(cp)}fdp.exe`;
    assert.throws(() => checkNewName(name), invalidName(/bidirectional/), cp.toString(16));
  }
  assert.equal(checkNewName('\u05e9\u05dc\u05d5\u05dd\u200f.txt'), '\u05e9\u05dc\u05d5\u05dd\u200f.txt', 'right-to-left text and marks are fine');
  assert.throws(() => checkNewName('a:b'), invalidName(/not allowed/), 'and everything normalizeName refuses');
});
