/**
 * The Range header of a GET (RFC 9110 14.2): one byte range, suffix
 * (`-N`) and open (`N-`) forms included. Anything else (several ranges,
 * another unit, a malformed value) is ignored and the whole file is sent,
 * as RFC 9110 allows.
 */

/** One byte range of `size` (end exclusive), 'unsatisfiable', or undefined for "whole file". */
export function parseRange(value: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(value);
  if (!m) return undefined; // several ranges or another unit: the whole file (RFC 9110 allows ignoring Range)
  const [, a, b] = m as unknown as [string, string, string];
  if (a === '' && b === '') return undefined;
  if (a === '') {
    const n = Number(b);
    // An empty file has no last N bytes: answering 206 would need the impossible `bytes 0--1/0`.
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size };
  }
  const start = Number(a);
  const end = b === '' ? size : Math.min(Number(b) + 1, size);
  if (b !== '' && Number(b) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}
