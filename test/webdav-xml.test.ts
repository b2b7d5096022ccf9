import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeXml, parseXml, XmlError, type XmlElement } from '../shares/webdav/xml.js';

const LIMIT = { maxBytes: 1024 * 1024 };
const parse = (xml: string | Buffer): XmlElement | undefined => parseXml(typeof xml === 'string' ? Buffer.from(xml, 'utf8') : xml, LIMIT);
const parseRoot = (xml: string): XmlElement => {
  const root = parse(xml);
  assert.ok(root);
  return root;
};
const xmlError = (code: string, message?: RegExp) => (err: unknown) =>
  err instanceof XmlError && err.code === code && (message === undefined || message.test(err.message));

const PROPPATCH = `<?xml version="1.0" encoding="utf-8" ?>
<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>
<Z:Win32CreationTime>Tue, 01 Jan 2019 00:00:00 GMT</Z:Win32CreationTime>
<Z:Win32FileAttributes>00000020</Z:Win32FileAttributes>
</D:prop></D:set></D:propertyupdate>`;

test('parseXml resolves namespaces and collects children and direct text', () => {
  const root = parseRoot(PROPPATCH);
  assert.equal(root.ns, 'DAV:');
  assert.equal(root.local, 'propertyupdate');
  const prop = root.children[0]!.children[0]!;
  assert.equal(prop.local, 'prop');
  assert.deepEqual(
    prop.children.map((c) => [c.ns, c.local, c.text]),
    [
      ['urn:schemas-microsoft-com:', 'Win32CreationTime', 'Tue, 01 Jan 2019 00:00:00 GMT'],
      ['urn:schemas-microsoft-com:', 'Win32FileAttributes', '00000020'],
    ],
  );
});

test('raw declares on the element every prefix it uses from its ancestors', () => {
  const prop = parseRoot(PROPPATCH).children[0]!.children[0]!;
  assert.equal(prop.children[0]!.raw, '<Z:Win32CreationTime xmlns:Z="urn:schemas-microsoft-com:">Tue, 01 Jan 2019 00:00:00 GMT</Z:Win32CreationTime>');
});

test('raw of a lock owner keeps nested elements, prefixes and escaped text', () => {
  const root = parseRoot(
    '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>' +
      '<D:owner><D:href>HOST\\user &amp; co &lt;x&gt;</D:href></D:owner></D:lockinfo>',
  );
  const owner = root.children[1]!;
  assert.equal(owner.raw, '<D:owner xmlns:D="DAV:"><D:href>HOST\\user &amp; co &lt;x&gt;</D:href></D:owner>');
  assert.equal(owner.children[0]!.text, 'HOST\\user & co <x>');
});

test('raw declares an inherited default namespace, and not an unused prefix', () => {
  const root = parseRoot('<propertyupdate xmlns="DAV:" xmlns:u="urn:unused"><set><prop><author>Ann</author></prop></set></propertyupdate>');
  assert.equal(root.children[0]!.children[0]!.children[0]!.raw, '<author xmlns="DAV:">Ann</author>');
});

test('raw keeps declarations made inside the element and the attributes as written', () => {
  const root = parseRoot('<D:prop xmlns:D="DAV:" xmlns:a="urn:a"><x:v xmlns:x="urn:x" a:k="1 &quot;2&quot;" plain="t&#9;ab">text<![CDATA[<&>]]></x:v></D:prop>');
  const v = root.children[0]!;
  assert.equal(v.raw, '<x:v xmlns:a="urn:a" xmlns:x="urn:x" a:k="1 &quot;2&quot;" plain="t&#9;ab">text&lt;&amp;&gt;</x:v>');
  assert.deepEqual(v.attrs, { '{urn:a}k': '1 "2"', plain: 't\tab' });
  assert.equal(v.text, 'text<&>');
});

test('raw is a self-contained fragment: it parses back to the same element', () => {
  const original = parseRoot('<r xmlns:p="urn:p" xmlns="urn:d"><p:a xml:lang="en" p:q="&lt;"><b>one</b> two <p:c/></p:a></r>').children[0]!;
  const again = parseRoot(original.raw);
  assert.deepEqual(
    [again.ns, again.local, again.attrs, again.text, again.children.map((c) => [c.ns, c.local, c.text])],
    [original.ns, original.local, original.attrs, original.text, original.children.map((c) => [c.ns, c.local, c.text])],
  );
  assert.deepEqual(again.attrs, { '{http://www.w3.org/XML/1998/namespace}lang': 'en', '{urn:p}q': '<' });
  assert.deepEqual(again.children.map((c) => c.ns), ['urn:d', 'urn:p']);
});

test('an element without namespace stays without one, even inside a default namespace', () => {
  const root = parseRoot('<D:prop xmlns:D="DAV:"><plain>x<D:sub/></plain></D:prop>');
  assert.equal(root.children[0]!.ns, '');
  assert.equal(root.children[0]!.raw, '<plain xmlns="" xmlns:D="DAV:">x<D:sub/></plain>');
  const embedded = parseRoot(`<outer xmlns="urn:default">${root.children[0]!.raw}</outer>`).children[0]!;
  assert.deepEqual([embedded.ns, embedded.children[0]!.ns], ['', 'DAV:']);
});

test('an empty or whitespace-only body is undefined', () => {
  assert.equal(parse(Buffer.alloc(0)), undefined);
  assert.equal(parse(' \r\n\t '), undefined);
  assert.equal(parse('\ufeff'), undefined);
});

test('UTF-8 is decoded (BOM accepted) and invalid UTF-8 is refused', () => {
  assert.equal(parseRoot('\ufeff<a>Grüße 📄</a>').text, 'Grüße 📄');
  assert.throws(() => parse(Buffer.from([0x3c, 0x61, 0x3e, 0xc3, 0x28, 0x3c, 0x2f, 0x61, 0x3e])), xmlError('ERR_XML', /UTF-8/));
});

test('a body larger than maxBytes is refused before parsing', () => {
  const body = Buffer.from('<a>0123456789</a>');
  assert.ok(parseXml(body, { maxBytes: body.length }));
  assert.throws(() => parseXml(body, { maxBytes: body.length - 1 }), xmlError('ERR_XML_TOO_LARGE'));
});

test('malformed XML is refused', () => {
  for (const bad of [
    '<a>',
    '<a></b>',
    '<a/><b/>',
    'text <a/>',
    '<a/> text',
    '<p:a/>',
    '<a x="1" x="2"/>',
    '<a>&#0;</a>',
    '<a>]]></a>',
    '<a',
    'not xml at all',
  ]) {
    assert.throws(() => parse(bad), xmlError('ERR_XML'), bad);
  }
});

test('any DOCTYPE is refused: no DTD, no external entity, no billion laughs', () => {
  const laughs =
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>';
  const external = '<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>';
  const plain = '<!DOCTYPE D:propfind><D:propfind xmlns:D="DAV:"/>';
  for (const bad of [laughs, external, plain]) assert.throws(() => parse(bad), xmlError('ERR_XML', /DOCTYPE/));
});

test('undefined entities are refused; predefined ones and character references work', () => {
  assert.throws(() => parse('<a>&nbsp;</a>'), xmlError('ERR_XML'));
  assert.equal(parseRoot('<a>&amp;&lt;&gt;&quot;&apos;&#233;&#x1F4C4;</a>').text, `&<>"'é📄`);
});

test('at most 10,000 elements', () => {
  const body = (n: number) => `<r>${'<e/>'.repeat(n - 1)}</r>`;
  assert.equal(parseRoot(body(10_000)).children.length, 9_999);
  assert.throws(() => parse(body(10_001)), xmlError('ERR_XML', /10000 elements/));
});

test('at most 64 levels of nesting', () => {
  const body = (depth: number) => '<e>'.repeat(depth) + '</e>'.repeat(depth);
  let element: XmlElement | undefined = parseRoot(body(64));
  let levels = 0;
  for (; element !== undefined; element = element.children[0]) levels += 1;
  assert.equal(levels, 64);
  assert.throws(() => parse(body(65)), xmlError('ERR_XML', /64 levels/));
});

test('comments and processing instructions are ignored', () => {
  const root = parseRoot('<!-- c --><?pi x?><a><!-- inner -->x<?pi y?>y</a>');
  assert.equal(root.text, 'xy');
  assert.equal(root.raw, '<a xmlns="">xy</a>');
});

test('escapeXml escapes the five XML specials only', () => {
  assert.equal(escapeXml(`a&b<c>d"e'f g\n`), 'a&amp;b&lt;c&gt;d&quot;e&apos;f g\n');
  assert.equal(escapeXml('plain'), 'plain');
});
