/**
 * The virtual collections of the console's WebDAV: folders that exist only
 * on the console (/pcs/ lists the PCs, /pcs/<pcId>/ the users of a PC;
 * /shared/ and /shared/<owner>/ likewise). Their PROPFIND answers are
 * rendered with the same property helpers and multistatus writer as the
 * agent's share (shares/webdav/props.ts, multistatus.ts), so a client sees
 * one server; a GET of one answers its names, one a line.
 *
 * Security considerations: only names are shown (PC ids, user names, owner
 * and folder names), each escaped in XML and percent-encoded once in hrefs;
 * the caller decides who may see which names. The PROPFIND body is read
 * with a cap (MAX_PROPFIND_BYTES).
 */
import type { Readable } from 'node:stream';
import { multistatus, type MultistatusResponse } from '../../../shares/webdav/multistatus.js';
import { encodeHref } from '../../../shares/webdav/paths.js';
import { MULTISTATUS_CLOSE, MULTISTATUS_OPEN, allprop, emptyProp, namedProps, propNames, propstat, type PropContext } from '../../../shares/webdav/props.js';
import { parsePropfind } from '../../../shares/webdav/request-bodies.js';
import { readBody } from '../../../shares/webdav/request.js';
import { ATTR_DIRECTORY, type DavEntry } from '../../../shares/webdav/store.js';
import { DavError } from '../../../shares/webdav/errors.js';
import { escapeXml, parseXml } from '../../../shares/webdav/xml.js';

/** The largest PROPFIND body read on a virtual folder. */
export const MAX_PROPFIND_BYTES = 64 * 1024;

export interface VirtualChild {
  name: string;
  /** Milliseconds since the epoch: when it last changed as far as the console knows. */
  modified: number;
}

function folder(name: string, modified: number): DavEntry {
  return { name, isDir: true, size: 0, created: modified, modified, accessed: modified, attributes: ATTR_DIRECTORY, etag: '' };
}

/** The Depth of a PROPFIND on a virtual folder: 0 or 1 (default 1); infinity is refused as on the agent. */
export function virtualDepth(raw: string | string[] | undefined): '0' | '1' {
  const value = (Array.isArray(raw) ? raw.join(', ') : raw)?.trim().toLowerCase();
  if (value === 'infinity') throw new DavError('ERR_DAV_PROPFIND_INFINITE', 'PROPFIND with Depth infinity is not supported', 'propfind-finite-depth');
  if (value === undefined || value === '1') return '1';
  if (value === '0') return '0';
  throw new DavError('ERR_DAV_DEPTH_INVALID', `Depth "${value}" is not allowed here (allowed: 0, 1)`);
}

/** A PROPFIND of the virtual folder `self` (names from the root) with its children. */
export async function virtualPropfind(opts: { self: readonly string[]; modified: number; children: readonly VirtualChild[]; depth: '0' | '1'; body: Readable | undefined; now: number }): Promise<MultistatusResponse> {
  const asked = parsePropfind(parseXml(await readBody(opts.body, MAX_PROPFIND_BYTES), { maxBytes: MAX_PROPFIND_BYTES }));
  const render = function* (entry: DavEntry, names: readonly string[], full: boolean): Generator<string> {
    const c: PropContext = { entry, now: opts.now, quota: undefined, locks: () => [], dead: () => [] };
    yield `<D:response><D:href>${escapeXml(encodeHref(names, true))}</D:href>`;
    if (asked.mode === 'allprop') yield* propstat(allprop(c, full), 200);
    else if (asked.mode === 'propname') yield* propstat(propNames(c).map(emptyProp), 200);
    else yield* namedProps(asked.requested, c);
    yield '</D:response>';
  };
  const pieces = function* (): Generator<string> {
    yield MULTISTATUS_OPEN;
    yield* render(folder(opts.self.at(-1) ?? '', opts.modified), opts.self, true);
    if (opts.depth === '1') for (const child of opts.children) yield* render(folder(child.name, child.modified), [...opts.self, child.name], false);
    yield MULTISTATUS_CLOSE;
  };
  return multistatus(pieces());
}

/** A GET of a virtual folder: its names, one a line, each with a trailing "/". */
export function virtualListing(children: readonly VirtualChild[]): Buffer {
  return Buffer.from(children.map((c) => `${c.name}/\n`).join(''), 'utf8');
}
