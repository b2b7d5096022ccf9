import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateIf, IfHeaderError, parseIfHeader, submittedTokens, type IfResourceState } from '../shares/webdav/if-header.js';

const T1 = 'urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2';
const T2 = 'urn:uuid:58f202ac-22cf-11d1-b12d-002035b29092';

test('an untagged list with one state token', () => {
  assert.deepEqual(parseIfHeader(`(<${T1}>)`), [{ conditions: [{ not: false, token: T1 }] }]);
});

test('a list with a token and an entity tag, and Not', () => {
  assert.deepEqual(parseIfHeader(`(<${T1}> ["I am an ETag"]) (Not <DAV:no-lock> [W/"weak"])`), [
    { conditions: [{ not: false, token: T1 }, { not: false, etag: '"I am an ETag"' }] },
    { conditions: [{ not: true, token: 'DAV:no-lock' }, { not: false, etag: 'W/"weak"' }] },
  ]);
});

test('tagged lists keep the resource tag as written', () => {
  assert.deepEqual(parseIfHeader(`<http://example.com/a%20b> (<${T1}>) (["e1"]) </other/doc.docx> (Not <${T2}>)`), [
    { resource: 'http://example.com/a%20b', conditions: [{ not: false, token: T1 }] },
    { resource: 'http://example.com/a%20b', conditions: [{ not: false, etag: '"e1"' }] },
    { resource: '/other/doc.docx', conditions: [{ not: true, token: T2 }] },
  ]);
});

test('whitespace is accepted anywhere between productions, and Not in any case', () => {
  const expected = [{ conditions: [{ not: true, token: T1 }, { not: false, etag: '"x"' }] }];
  for (const header of [`(Not <${T1}>["x"])`, ` \t( not\t<${T1}>\r\n [ "x" ] ) `, `(NOT<${T1}> ["x"])`, `(Not < ${T1} > ["x"])`]) {
    assert.deepEqual(parseIfHeader(header), expected, header);
  }
});

test('malformed headers throw IfHeaderError', () => {
  const malformed = [
    '',
    '   ',
    '(',
    '()',
    '( )',
    '<http://x>',
    '<http://x> (<urn:a>) <http://y>',
    '(<a>',
    `(<${T1}>`,
    '(foo)',
    '["x"]',
    `(<${T1}>) ["x"]`,
    '(<>)',
    '(<not-absolute>)',
    '(<urn:a)',
    '([x])',
    '(["x")',
    '(["x)',
    '(Not)',
    '(Nothing)',
    `(<${T1}>) <http://x> (<${T2}>)`,
    `<http://x> (<${T1}>) (<${T2}>) garbage`,
  ];
  for (const header of malformed) {
    assert.throws(
      () => parseIfHeader(header),
      (err: unknown) => err instanceof IfHeaderError && err.code === 'ERR_IF_HEADER',
      JSON.stringify(header),
    );
  }
});

function resolver(states: Record<string, IfResourceState>, calls: (string | undefined)[] = []) {
  return (resource: string | undefined): IfResourceState => {
    calls.push(resource);
    return states[resource ?? '<request>'];
  };
}

const REQUEST = { '<request>': { etag: '"e1"', lockTokens: [T1] } };

test('a token condition holds when the token is a current lock token', () => {
  assert.equal(evaluateIf(parseIfHeader(`(<${T1}>)`), resolver(REQUEST)), true);
  assert.equal(evaluateIf(parseIfHeader(`(<${T2}>)`), resolver(REQUEST)), false);
  assert.equal(evaluateIf(parseIfHeader(`(Not <${T2}>)`), resolver(REQUEST)), true);
  assert.equal(evaluateIf(parseIfHeader(`(Not <${T1}>)`), resolver(REQUEST)), false);
});

test('all conditions of a list must hold (etag and token)', () => {
  assert.equal(evaluateIf(parseIfHeader(`(<${T1}> ["e1"])`), resolver(REQUEST)), true);
  assert.equal(evaluateIf(parseIfHeader(`(<${T1}> ["e2"])`), resolver(REQUEST)), false);
  assert.equal(evaluateIf(parseIfHeader(`(<${T1}> [W/"e1"])`), resolver(REQUEST)), false);
  assert.equal(evaluateIf(parseIfHeader(`(<${T1}> Not ["e2"])`), resolver(REQUEST)), true);
});

test('two lists are alternatives (OR)', () => {
  assert.equal(evaluateIf(parseIfHeader(`(<${T2}>) (["e1"])`), resolver(REQUEST)), true);
  assert.equal(evaluateIf(parseIfHeader(`(<${T1}>) (["nope"])`), resolver(REQUEST)), true);
  assert.equal(evaluateIf(parseIfHeader(`(<${T2}>) (["nope"])`), resolver(REQUEST)), false);
});

test('DAV:no-lock never matches, so only its negation holds', () => {
  assert.equal(evaluateIf(parseIfHeader('(<DAV:no-lock>)'), resolver(REQUEST)), false);
  assert.equal(evaluateIf(parseIfHeader('(Not <DAV:no-lock>)'), resolver(REQUEST)), true);
  assert.equal(evaluateIf(parseIfHeader(`(<${T2}>) (Not <DAV:no-lock> ["e1"])`), resolver(REQUEST)), true);
});

test('tagged lists are evaluated against their own resource, each resolved once', () => {
  const calls: (string | undefined)[] = [];
  const states = { ...REQUEST, '/doc': { etag: '"d"', lockTokens: [T2] } };
  const lists = parseIfHeader(`</doc> (<${T1}>) (<${T2}>) </doc> (["d"])`);
  assert.equal(evaluateIf(lists, resolver(states, calls)), true);
  assert.deepEqual(calls, ['/doc']);
  assert.equal(evaluateIf(parseIfHeader(`</doc> (<${T1}>)`), resolver(states)), false);
});

test('conditions on an unknown resource are false unless negated', () => {
  assert.equal(evaluateIf(parseIfHeader(`</missing> (<${T1}>)`), resolver(REQUEST)), false);
  assert.equal(evaluateIf(parseIfHeader('</missing> (["e1"])'), resolver(REQUEST)), false);
  assert.equal(evaluateIf(parseIfHeader(`</missing> (Not <${T1}>)`), resolver(REQUEST)), true);
});

test('an etag condition is false when the resource has no etag', () => {
  const noEtag = { '<request>': { etag: undefined, lockTokens: [] } };
  assert.equal(evaluateIf(parseIfHeader('(["e1"])'), resolver(noEtag)), false);
  assert.equal(evaluateIf(parseIfHeader('(Not ["e1"])'), resolver(noEtag)), true);
});

test('submittedTokens lists every state token once, tagged or not, without <>', () => {
  const lists = parseIfHeader(`</a> (<${T1}> ["e"]) </b> (Not <DAV:no-lock>) (<${T2}>) </c> (<${T1}>)`);
  assert.deepEqual(submittedTokens(lists), [T1, 'DAV:no-lock', T2]);
  assert.deepEqual(submittedTokens(parseIfHeader('(["e"])')), []);
});
