/**
 * The bodies the WebDAV handler answers with, besides the streamed
 * multistatus of PROPFIND (multistatus.ts): plain-text sentences, RFC 4918
 * DAV:error bodies for preconditions, the lockdiscovery of LOCK and the
 * multistatus of PROPPATCH. Error bodies are sentences, never stack traces
 * or server paths.
 */
import type { Readable } from 'node:stream';
import type { DavError } from './errors.js';
import type { Lock } from './locks.js';
import type { DavEntry } from './store.js';
import { MULTISTATUS_CLOSE, MULTISTATUS_OPEN, emptyProp, lockDiscoveryXml, propstat, type PropName } from './props.js';
import { escapeXml } from './xml.js';

export interface DavResponse {
  status: number;
  headers: Record<string, string | number>;
  body?: string | Buffer | Readable;
  /** For the log, when the request failed on the server's side: the system's code of the cause (e.g. ENOSPC), never a path or name. */
  cause?: string;
}

const XML_TYPE = 'application/xml; charset=utf-8';

function xmlResponse(status: number, xml: string, extra: Record<string, string> = {}): DavResponse {
  const body = Buffer.from(xml, 'utf8');
  return { status, headers: { 'content-type': XML_TYPE, 'content-length': body.length, ...extra }, body };
}

/** A plain-text answer: the sentence and a newline. */
function textResponse(status: number, message: string): DavResponse {
  const body = Buffer.from(`${message}\n`, 'utf8');
  return { status, headers: { 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length }, body };
}

/** A failure: its sentence, inside a DAV:error element when it names an RFC 4918 condition. */
export function errorResponse(err: DavError): DavResponse {
  if (err.condition) {
    const hrefs = err.hrefs.map((h) => `<D:href>${escapeXml(h)}</D:href>`).join('');
    const xml = `<?xml version="1.0" encoding="utf-8"?>\n<D:error xmlns:D="DAV:"><D:${err.condition}>${hrefs}</D:${err.condition}><D:responsedescription>${escapeXml(err.message)}</D:responsedescription></D:error>`;
    return xmlResponse(err.status, xml);
  }
  return textResponse(err.status, err.message);
}

/** A GET of a folder: its names, one a line, folders with a trailing "/" (no body for a HEAD). */
export function listingResponse(entries: readonly DavEntry[], head: boolean): DavResponse {
  const listing = entries.map((e) => e.name + (e.isDir ? '/' : '')).join('\n');
  const body = Buffer.from(listing + (listing ? '\n' : ''), 'utf8');
  return { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length }, body: head ? undefined : body };
}

/** 416 (RFC 9110 15.5.17), with the size of the file. */
export function rangeNotSatisfiableResponse(size: number): DavResponse {
  return { status: 416, headers: { 'content-range': `bytes */${size}`, 'content-type': 'text/plain; charset=utf-8' }, body: `range not satisfiable: the file has ${size} bytes\n` };
}

/** A LOCK's answer (RFC 4918 9.10.1): the lock's lockdiscovery. */
export function lockResponse(lock: Lock, now: number, status: number, extra: Record<string, string> = {}): DavResponse {
  const xml = `<?xml version="1.0" encoding="utf-8"?>\n<D:prop xmlns:D="DAV:">${lockDiscoveryXml([lock], now)}</D:prop>`;
  return xmlResponse(status, xml, extra);
}

/** A PROPPATCH's answer: one response for `href`, a propstat per status, each with its sentence when it has one. */
export function propPatchResponse(href: string, results: readonly { name: PropName; status: number }[], why: ReadonlyMap<number, string>): DavResponse {
  const byStatus = new Map<number, string[]>();
  for (const r of results) byStatus.set(r.status, [...(byStatus.get(r.status) ?? []), emptyProp(r.name)]);
  const inner = [...byStatus].flatMap(([status, props]) => propstat(props, status, why.get(status)));
  return xmlResponse(207, `${MULTISTATUS_OPEN}<D:response><D:href>${escapeXml(href)}</D:href>${inner.join('')}</D:response>${MULTISTATUS_CLOSE}`);
}
