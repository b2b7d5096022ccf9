/**
 * A 207 Multi-Status body from a lazy sequence of XML pieces, so that one
 * response never holds the event loop or one huge string: the pieces are
 * joined as strings (cheap in V8) and encoded to UTF-8 once per chunk of
 * about 64 Ki characters, and the loop is given back after every chunk. A
 * body under 1 MiB (every listing Windows can use: it drops larger ones) is
 * sent whole with a Content-Length; from 1 MiB on, the rest is streamed
 * (chunked), each chunk produced only when the client reads.
 *
 * One Buffer per chunk instead of one per piece: a listing has a dozen
 * pieces per entry, and encoding each on its own cost about a fifth of a
 * 10,000-entry PROPFIND (allocation, copying, garbage).
 */
import { Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';

/** The part of a body sent with a Content-Length; beyond it the body is streamed. */
export const STREAM_FROM_BYTES = 1024 * 1024;
/** Pieces are encoded in chunks of at least this many characters (a chunk ends with the piece that reaches it); the event loop is given back after each. */
export const CHUNK_CHARS = 64 * 1024;

const XML_TYPE = 'application/xml; charset=utf-8';

export interface MultistatusResponse {
  status: 207;
  headers: Record<string, string | number>;
  body: Buffer | Readable;
}

/** The next chunk: the following pieces joined up to CHUNK_CHARS, encoded; `done` when the pieces ran out. */
function nextChunk(it: Iterator<string>): { chunk: Buffer; done: boolean } {
  let text = '';
  for (;;) {
    const next = it.next();
    if (next.done) return { chunk: Buffer.from(text, 'utf8'), done: true };
    text += next.value;
    if (text.length >= CHUNK_CHARS) return { chunk: Buffer.from(text, 'utf8'), done: false };
  }
}

export async function multistatus(pieces: Iterable<string>): Promise<MultistatusResponse> {
  const it = pieces[Symbol.iterator]();
  const head: Buffer[] = [];
  let size = 0;
  for (;;) {
    const { chunk, done } = nextChunk(it);
    head.push(chunk);
    size += chunk.length;
    if (done) return { status: 207, headers: { 'content-type': XML_TYPE, 'content-length': size }, body: Buffer.concat(head, size) };
    if (size >= STREAM_FROM_BYTES) break;
    await nextTurn();
  }
  async function* rest(): AsyncGenerator<Buffer> {
    yield Buffer.concat(head, size);
    for (;;) {
      await nextTurn();
      const { chunk, done } = nextChunk(it);
      if (chunk.length > 0) yield chunk;
      if (done) return;
    }
  }
  return { status: 207, headers: { 'content-type': XML_TYPE }, body: Readable.from(rest(), { objectMode: false }) };
}
