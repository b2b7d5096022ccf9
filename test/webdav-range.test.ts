/**
 * Unit tests of the Range header parser (shares/webdav/range.ts): one byte
 * range of a file of `size` bytes, end exclusive; anything it does not
 * take means "the whole file".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRange } from '../shares/webdav/range.js';

const SIZE = 1000;

test('no Range header: the whole file', () => {
  assert.equal(parseRange(undefined, SIZE), undefined);
});

test('a closed range, end inclusive in the header, exclusive in the result', () => {
  assert.deepEqual(parseRange('bytes=0-0', SIZE), { start: 0, end: 1 });
  assert.deepEqual(parseRange('bytes=0-499', SIZE), { start: 0, end: 500 });
  assert.deepEqual(parseRange('bytes=500-999', SIZE), { start: 500, end: 1000 });
  assert.deepEqual(parseRange('bytes=999-999', SIZE), { start: 999, end: 1000 }, 'the last byte');
});

test('an end beyond the file is cut to its size', () => {
  assert.deepEqual(parseRange('bytes=900-5000', SIZE), { start: 900, end: 1000 });
});

test('an open range (N-) runs to the end of the file', () => {
  assert.deepEqual(parseRange('bytes=0-', SIZE), { start: 0, end: 1000 });
  assert.deepEqual(parseRange('bytes=400-', SIZE), { start: 400, end: 1000 });
  assert.deepEqual(parseRange('bytes=999-', SIZE), { start: 999, end: 1000 });
});

test('a suffix range (-N) is the last N bytes, the whole file when N is larger', () => {
  assert.deepEqual(parseRange('bytes=-1', SIZE), { start: 999, end: 1000 });
  assert.deepEqual(parseRange('bytes=-500', SIZE), { start: 500, end: 1000 });
  assert.deepEqual(parseRange('bytes=-1000', SIZE), { start: 0, end: 1000 });
  assert.deepEqual(parseRange('bytes=-5000', SIZE), { start: 0, end: 1000 });
});

test('unsatisfiable: a start at or past the end, a suffix of zero bytes, any range of an empty file', () => {
  assert.equal(parseRange('bytes=1000-', SIZE), 'unsatisfiable');
  assert.equal(parseRange('bytes=1000-1500', SIZE), 'unsatisfiable');
  assert.equal(parseRange('bytes=5000-6000', SIZE), 'unsatisfiable');
  assert.equal(parseRange('bytes=-0', SIZE), 'unsatisfiable');
  assert.equal(parseRange('bytes=0-', 0), 'unsatisfiable');
  assert.equal(parseRange('bytes=0-0', 0), 'unsatisfiable');
  assert.equal(parseRange('bytes=-5', 0), 'unsatisfiable', 'not 206 with the impossible "bytes 0--1/0"');
  assert.equal(parseRange('bytes=-1', 0), 'unsatisfiable');
});

test('several ranges are not served as multipart: the whole file', () => {
  assert.equal(parseRange('bytes=0-1,5-6', SIZE), undefined);
  assert.equal(parseRange('bytes=0-1, -5', SIZE), undefined);
  assert.equal(parseRange('bytes=-5,0-1', SIZE), undefined);
});

test('malformed or other units: ignored (the whole file), as RFC 9110 allows', () => {
  for (const value of ['', 'bytes', 'bytes=', 'bytes=-', 'bytes=a-b', 'bytes=1-2-3', 'bytes=+1-2', 'bytes=-1-2', 'bytes=1.5-2', 'items=0-1', 'bytes 0-1', '0-1']) {
    assert.equal(parseRange(value, SIZE), undefined, JSON.stringify(value));
  }
});

test('a range whose end is before its start is ignored (RFC 9110 14.1.1: invalid)', () => {
  assert.equal(parseRange('bytes=500-499', SIZE), undefined);
  assert.equal(parseRange('bytes=5000-10', SIZE), undefined, 'even when the start is past the end');
});

test('the unit is case-insensitive and whitespace around the parts is allowed', () => {
  assert.deepEqual(parseRange('Bytes=0-9', SIZE), { start: 0, end: 10 });
  assert.deepEqual(parseRange('BYTES = 10 - 19 ', SIZE), { start: 10, end: 20 });
  assert.deepEqual(parseRange('  bytes=-10', SIZE), { start: 990, end: 1000 });
});

test('numbers too large for exact arithmetic: an end is cut to the size, a start is past the end, a suffix is the whole file', () => {
  const huge = '9'.repeat(30); // 1e30: no integer overflow, but far past any file
  assert.deepEqual(parseRange(`bytes=0-${huge}`, SIZE), { start: 0, end: 1000 });
  assert.equal(parseRange(`bytes=${huge}-`, SIZE), 'unsatisfiable');
  assert.deepEqual(parseRange(`bytes=-${huge}`, SIZE), { start: 0, end: 1000 });
  assert.deepEqual(parseRange('bytes=4294967295-', 2 ** 32), { start: 4294967295, end: 4294967296 }, 'the last byte of a 4 GiB file');
  assert.deepEqual(parseRange(`bytes=${Number.MAX_SAFE_INTEGER}-${Number.MAX_SAFE_INTEGER}`, SIZE), 'unsatisfiable');
});
