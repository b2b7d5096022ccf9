/**
 * What a WebDAV request says: its headers (Depth, Overwrite, Timeout, and
 * any header as one string) and its small XML body, read with a cap. The
 * Destination header is decoded by paths.ts, the If header by if-header.ts.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { DavError } from './errors.js';

export interface DavRequest {
  method: string;
  /** The raw request target (path and query), exactly as received. */
  url: string;
  headers: IncomingHttpHeaders;
  /** The request body, for methods that have one. */
  body: Readable | undefined;
  /** The authenticated user, recorded as the lock principal. */
  principal: string;
}

/** The longest lock timeout granted, in seconds (and what Infinite means). */
export const MAX_TIMEOUT = 3600;

/** A header's value; repeated headers are joined with ", " (RFC 9110 5.3). */
export function header(req: DavRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** Reads a whole (small) body with a cap; over the cap is a 413. */
export async function readBody(body: Readable | undefined, max: number): Promise<Buffer> {
  if (!body) return Buffer.alloc(0);
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > max) {
      body.resume();
      throw new DavError('ERR_DAV_BODY_TOO_LARGE', `the request body is larger than ${max} bytes`);
    }
    parts.push(chunk as Buffer);
  }
  return Buffer.concat(parts, size);
}

/** The Depth header (RFC 4918 10.2), lower-cased; `fallback` when absent; 400 unless one of `allowed`. */
export function parseDepth(req: DavRequest, allowed: readonly string[], fallback: string): string {
  const raw = header(req, 'depth');
  const depth = raw === undefined ? fallback : raw.trim().toLowerCase();
  if (!allowed.includes(depth)) throw new DavError('ERR_DAV_DEPTH_INVALID', `Depth "${raw}" is not allowed here (allowed: ${allowed.join(', ')})`);
  return depth;
}

/** The Overwrite header (RFC 4918 10.6): T (the default) or F. */
export function parseOverwrite(req: DavRequest): boolean {
  const raw = header(req, 'overwrite');
  if (raw === undefined) return true;
  const v = raw.trim().toUpperCase();
  if (v !== 'T' && v !== 'F') throw new DavError('ERR_DAV_OVERWRITE_INVALID', `Overwrite must be T or F, not "${raw}"`);
  return v === 'T';
}

/** The Timeout header (RFC 4918 10.7): the first usable choice, in seconds, within 1..MAX_TIMEOUT. */
export function parseTimeout(req: DavRequest): number {
  const raw = header(req, 'timeout');
  if (raw === undefined) return MAX_TIMEOUT;
  for (const part of raw.split(',')) {
    const t = part.trim();
    if (/^infinite$/i.test(t)) return MAX_TIMEOUT;
    const m = /^second-(\d{1,12})$/i.exec(t);
    if (m) return Math.min(Math.max(Number(m[1]), 1), MAX_TIMEOUT);
  }
  throw new DavError('ERR_DAV_TIMEOUT_INVALID', `Timeout "${raw}" is not valid (use Second-N or Infinite)`);
}

/** The Lock-Token header of an UNLOCK (RFC 4918 10.5), without its "<>". */
export function parseLockToken(req: DavRequest): string {
  const raw = header(req, 'lock-token');
  if (!raw || raw.trim() === '') throw new DavError('ERR_DAV_LOCK_TOKEN_MISSING', 'UNLOCK needs a Lock-Token header');
  return raw.trim().replace(/^<(.*)>$/, '$1');
}
