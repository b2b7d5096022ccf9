/**
 * Unit tests of the WebDAV path decoder (shares/webdav/paths.ts): request
 * paths decoded exactly once, hrefs encoded exactly once, and Destination
 * headers read by one parser for both authority and path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DavError } from '../shares/webdav/errors.js';
import { decodeDestination, decodePath, encodeHref, originOf } from '../shares/webdav/paths.js';

const T = { timeout: 10_000 };
const HOST = '127.0.0.1:18543';
const davError = (status: number, message?: RegExp) => (err: unknown) => err instanceof DavError && err.status === status && (message === undefined || message.test(err.message));

test('decodePath splits on "/" first, then decodes each segment exactly once', T, () => {
  assert.deepEqual(decodePath('/'), []);
  assert.deepEqual(decodePath('/Documents/a%20b.txt'), ['Documents', 'a b.txt']);
  assert.deepEqual(decodePath('/Documents//x/'), ['Documents', 'x'], 'empty segments are dropped');
  assert.deepEqual(decodePath('/Documents/%2541'), ['Documents', '%41'], 'decoded once, not twice');
  assert.deepEqual(decodePath('/Documents/%C3%A9t%C3%A9'), ['Documents', 'été']);
  assert.deepEqual(decodePath('/Documents/%F0%9F%98%80'), ['Documents', '😀']);
  assert.deepEqual(decodePath('/Documents/été'), ['Documents', 'été'], 'raw UTF-8 (as a latin1 header string would not be) passes as is');
  assert.deepEqual(decodePath('/Documents/x.txt?versions=1'), ['Documents', 'x.txt'], 'the query is ignored');
  assert.deepEqual(decodePath('https://127.0.0.1:18543/Documents/x'), ['Documents', 'x'], 'absolute form');
});

test('decodePath takes a "%" that is not an escape literally', T, () => {
  assert.deepEqual(decodePath('/Documents/100%'), ['Documents', '100%']);
  assert.deepEqual(decodePath('/Documents/100%zz%4'), ['Documents', '100%zz%4']);
  assert.deepEqual(decodePath('/Documents/100%25%20sure'), ['Documents', '100% sure']);
});

test('decodePath refuses what could step out of a folder or mean another name, with 400', T, () => {
  const refused: [string, RegExp][] = [
    ['/Documents/../Profile', /"\." and "\.\."/],
    ['/Documents/./x', /"\." and "\.\."/],
    ['/Documents/%2e%2e/x', /"\." and "\.\."/],
    ['/Documents/%2E/x', /"\." and "\.\."/],
    ['/Documents/a%2Fb', /slashes/],
    ['/Documents/a%2fb', /slashes/],
    ['/Documents/a%5Cb', /backslashes/],
    ['/Documents/a\\b', /backslashes/],
    ['/Documents/a%00b', /NUL/],
    ['/Documents/%C0%AE%C0%AE', /UTF-8/],
    ['/Documents/%E0%80%AF', /UTF-8/],
    ['/Documents/%FF', /UTF-8/],
    ['/Documents/%ED%A0%80', /UTF-8/],
    ['/Documents/x#frag', /fragment/],
    ['Documents/x', /start with "\/"/],
    ['*', /start with "\/"/],
  ];
  for (const [path, message] of refused) assert.throws(() => decodePath(path), davError(400, message), path);
});

test('encodeHref encodes each name exactly once; folders end in "/"', T, () => {
  assert.equal(encodeHref([], true), '/');
  assert.equal(encodeHref(['Documents'], true), '/Documents/');
  assert.equal(encodeHref(['Documents', 'a b#c?d%e+f.txt'], false), '/Documents/a%20b%23c%3Fd%25e%2Bf.txt');
  assert.equal(encodeHref(['Documents', 'été 😀'], false), '/Documents/%C3%A9t%C3%A9%20%F0%9F%98%80');
  for (const name of ['a b', '100%', '%41', 'x#y', 'q?r', 'plus+', 'été', '😀', "it's", '[1]', 'a&b;c=d']) {
    assert.deepEqual(decodePath(encodeHref(['Documents', name], false)), ['Documents', name], `round trip of ${name}`);
  }
});

test('decodeDestination: an https URL on this server, or an absolute path', T, () => {
  assert.deepEqual(decodeDestination(`https://${HOST}/Documents/x.txt`, HOST), ['Documents', 'x.txt']);
  assert.deepEqual(decodeDestination('/Documents/x.txt', HOST), ['Documents', 'x.txt']);
  assert.deepEqual(decodeDestination(`https://${HOST}/Documents/a%20b%2541`, HOST), ['Documents', 'a b%41'], 'decoded once');
  assert.deepEqual(decodeDestination(`https://${HOST}/Documents/a b`, HOST), ['Documents', 'a b'], 'a raw space');
  assert.deepEqual(decodeDestination(`https://${HOST}/Documents/100%zz`, HOST), ['Documents', '100%zz'], 'a literal %');
  assert.deepEqual(decodeDestination(`https://${HOST}/Documents/x?y=1`, HOST), ['Documents', 'x'], 'the query is ignored');
  assert.deepEqual(decodeDestination(`HTTPS://LOCALHOST:8443/Documents/x`, 'localhost:8443'), ['Documents', 'x'], 'scheme and host case');
  assert.deepEqual(decodeDestination('https://127.0.0.1/Documents/x', '127.0.0.1:443'), ['Documents', 'x'], 'the default port');
  assert.deepEqual(decodeDestination('https://[::1]:8443/Documents/x', '[::1]:8443'), ['Documents', 'x'], 'IPv6');
});

test('decodeDestination: one parser for authority and path; another authority is 502', T, () => {
  const elsewhere = [
    `https://127.0.0.1:18544/Documents/x`,
    `https://evil/Documents/x`,
    `http://${HOST}/Documents/x`,
    `https://alice@${HOST}/Documents/x`,
    `https://alice:pw@${HOST}/Documents/x`,
    `https://${HOST}@evil/Documents/x`,
    `https://${HOST}%5C@evil/Documents/x`,
  ];
  for (const value of elsewhere) assert.throws(() => decodeDestination(value, HOST), davError(502, /another server/), value);
  assert.throws(() => decodeDestination(`https://${HOST}/Documents/x`, 'junk/host'), davError(502), 'a Host that is no host[:port] matches nothing');
  assert.throws(() => decodeDestination(`https://${HOST}/Documents/x`, undefined), davError(502), 'no Host: nothing is this server');
});

test('decodeDestination: the probe\'s "\\@evil" Destination is refused, never read as /Documents/x', T, () => {
  assert.throws(() => decodeDestination(`https://${HOST}\\@evil/Documents/x`, HOST), davError(400, /backslash/));
  assert.throws(() => decodeDestination('/\\evil/Documents/x', HOST), davError(400, /backslash/));
  assert.throws(() => decodeDestination(`https://${HOST}/Documents/a\\b`, HOST), davError(400, /backslash/));
});

test('decodeDestination: malformed values are 400 with a sentence', T, () => {
  const refused: [string | undefined, RegExp][] = [
    [undefined, /required/],
    ['', /required/],
    ['not a url at all', /not a URL/],
    ['Documents/x', /not a URL/],
    ['//evil/Documents/x', /not a URL/],
    ['ftp://127.0.0.1/Documents/x', /not an http\(s\) URL/],
    ['https://', /not a URL/],
    [`https://${HOST}%40evil/Documents/x`, /not a URL/],
    [`https://${HOST}/Documents/../Profile/x`, /"\." and "\.\."/],
    [`https://${HOST}/Documents/%2e%2E/x`, /"\." and "\.\."/],
    [`https://${HOST}/Documents/./x`, /"\." and "\.\."/],
    ['/Documents/..', /"\." and "\.\."/],
    [`https://${HOST}/Documents/x#y`, /fragment/],
    [`https://${HOST}/Documents/x#`, /fragment/],
    [`https://${HOST}/Documents/a%2Fb`, /slashes/],
    [`https://${HOST}/Documents/a%00b`, /NUL/],
    [`https://${HOST}/Documents/%C0%AE`, /UTF-8/],
  ];
  for (const [value, message] of refused) assert.throws(() => decodeDestination(value, HOST), davError(400, message), String(value));
});

test('originOf serialises a Host header as an https origin, and refuses anything else', T, () => {
  assert.equal(originOf('127.0.0.1:18543'), 'https://127.0.0.1:18543');
  assert.equal(originOf('LocalHost:443'), 'https://localhost');
  assert.equal(originOf('[::1]:8443'), 'https://[::1]:8443');
  for (const bad of ['', 'a/b', 'a@b', 'a b', 'host:port', 'x\\y', '127.0.0.1:99999']) assert.equal(originOf(bad), undefined, bad);
});
