/**
 * A 207 Multi-Status body from a lazy sequence of XML pieces, so that one
 * response never holds the event loop or one huge string: the pieces are
 * encoded as they come, and the loop is given back every 64 KiB. A body
 * under 1 MiB (every listing Windows can use: it drops larger ones) is sent
 * whole with a Content-Length; from 1 MiB on, the rest is streamed (chunked),
 * each piece produced only when the client reads.
 */
import { Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';

/** The part of a body sent with a Content-Length; beyond it the body is streamed. */
export const STREAM_FROM_BYTES = 1024 * 1024;
/** The event loop is given back at least this often while pieces are encoded. */
export const YIELD_EVERY_BYTES = 64 * 1024;

const XML_TYPE = 'application/xml; charset=utf-8';

export interface MultistatusResponse {
  status: 207;
  headers: Record<string, string | number>;
  body: Buffer | Readable;
}

export async function multistatus(pieces: Iterable<string>): Promise<MultistatusResponse> {
  const it = pieces[Symbol.iterator]();
  const head: Buffer[] = [];
  let size = 0;
  let sinceYield = 0;
  for (;;) {
    const next = it.next();
    if (next.done) return { status: 207, headers: { 'content-type': XML_TYPE, 'content-length': size }, body: Buffer.concat(head, size) };
    const chunk = Buffer.from(next.value, 'utf8');
    head.push(chunk);
    size += chunk.length;
    sinceYield += chunk.length;
    if (size >= STREAM_FROM_BYTES) break;
    if (sinceYield >= YIELD_EVERY_BYTES) {
      sinceYield = 0;
      await nextTurn();
    }
  }
  async function* rest(): AsyncGenerator<Buffer> {
    yield Buffer.concat(head, size);
    let pending: Buffer[] = [];
    let pendingSize = 0;
    for (let next = it.next(); !next.done; next = it.next()) {
      const chunk = Buffer.from(next.value, 'utf8');
      pending.push(chunk);
      pendingSize += chunk.length;
      if (pendingSize >= YIELD_EVERY_BYTES) {
        yield Buffer.concat(pending, pendingSize);
        pending = [];
        pendingSize = 0;
        await nextTurn();
      }
    }
    if (pendingSize > 0) yield Buffer.concat(pending, pendingSize);
  }
  return { status: 207, headers: { 'content-type': XML_TYPE }, body: Readable.from(rest(), { objectMode: false }) };
}
