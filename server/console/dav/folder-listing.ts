/**
 * A folder of a user's data as the web page's file browser shows it: one
 * PROPFIND Depth 1 down the link (forward.ts, the same grant and checks as
 * /pcs), its multistatus read as it streams with saxes (the XML parser
 * shares/webdav/xml.ts is built on) into names, kinds, sizes and dates.
 *
 * Security considerations: the answer is the agent's and parsed as untrusted
 * XML: no DTD (refused), at most MAX_LISTING_BYTES read, at most
 * MAX_SHOWN entries kept (the rest are counted); an href is decoded with
 * paths.ts and must be a direct child of the folder asked for, or it is
 * ignored. Names are returned as data; the page escapes them.
 */
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { SaxesParser } from 'saxes';
import { DAV } from '../../../shares/webdav/props.js';
import { decodePath } from '../../../shares/webdav/paths.js';

/** The most bytes of a listing read (10,000 entries take about 3 MiB). */
export const MAX_LISTING_BYTES = 64 * 1024 * 1024;
/** The most entries kept for the page. */
export const MAX_SHOWN = 5000;

export const LISTING_BODY =
  '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:getcontentlength/><D:getlastmodified/></D:prop></D:propfind>';

export interface ListedEntry {
  name: string;
  isDir: boolean;
  size: number;
  /** Milliseconds since the epoch, or undefined when not given. */
  modified: number | undefined;
}

export interface FolderListing {
  entries: ListedEntry[];
  /** Entries beyond MAX_SHOWN. */
  more: number;
}

export class ListingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ListingError';
  }
}

/** Reads a 207 multistatus of `folder` (its names from the root) into its direct children, folders first then by name. */
export async function readListing(body: Readable, folder: readonly string[]): Promise<FolderListing> {
  const parser = new SaxesParser({ xmlns: true, defaultXMLVersion: '1.0', forceXMLVersion: true });
  const entries: ListedEntry[] = [];
  let more = 0;
  let current: { href: string; isDir: boolean; size: number; modified: number | undefined; okProps: boolean } | undefined;
  const path: string[] = [];
  let text = '';
  let failed: Error | undefined;
  parser.on('doctype', () => {
    failed = new ListingError('the agent\'s listing has a DOCTYPE');
  });
  parser.on('error', (err) => {
    failed ??= new ListingError(`the agent's listing is not well-formed XML (${err.message})`);
  });
  parser.on('opentag', (tag) => {
    const name = tag.uri === DAV ? tag.local : `{${tag.uri}}${tag.local}`;
    path.push(name);
    text = '';
    if (name === 'response' && path.length === 2) current = { href: '', isDir: false, size: 0, modified: undefined, okProps: false };
    if (current && name === 'collection' && path.at(-2) === 'resourcetype') current.isDir = true;
  });
  parser.on('text', (t) => {
    text += t;
  });
  parser.on('closetag', () => {
    const name = path.pop();
    if (!current) return;
    if (name === 'href' && path.at(-1) === 'response') current.href = text.trim();
    else if (name === 'getcontentlength') current.size = Number(text.trim()) || 0;
    else if (name === 'getlastmodified') {
      const ms = Date.parse(text.trim());
      current.modified = Number.isFinite(ms) ? ms : undefined;
    } else if (name === 'response' && path.length === 1) {
      const entry = toEntry(current, folder);
      if (entry) {
        if (entries.length < MAX_SHOWN) entries.push(entry);
        else more++;
      }
      current = undefined;
    }
    text = '';
  });
  let read = 0;
  const utf8 = new StringDecoder('utf8');
  for await (const chunk of body) {
    read += (chunk as Buffer).length;
    if (read > MAX_LISTING_BYTES) {
      body.destroy();
      throw new ListingError(`the folder's listing is larger than ${MAX_LISTING_BYTES / (1024 * 1024)} MiB`);
    }
    parser.write(utf8.write(chunk as Buffer));
    if (failed) {
      body.destroy();
      throw failed;
    }
  }
  parser.write(utf8.end());
  parser.close();
  if (failed) throw failed;
  entries.sort((a, b) => (a.isDir === b.isDir ? a.name.localeCompare(b.name) : a.isDir ? -1 : 1));
  return { entries, more };
}

function toEntry(r: { href: string; isDir: boolean; size: number; modified: number | undefined }, folder: readonly string[]): ListedEntry | undefined {
  let names: string[];
  try {
    names = decodePath(r.href);
  } catch {
    return undefined;
  }
  // Compared as the vault compares names (case and Unicode form aside): the agent answers with its stored spelling.
  const same = (a: string, b: string) => a.normalize('NFC').toLowerCase() === b.normalize('NFC').toLowerCase();
  if (names.length !== folder.length + 1 || folder.some((n, i) => !same(names[i]!, n))) return undefined;
  return { name: names.at(-1)!, isDir: r.isDir, size: r.isDir ? 0 : r.size, modified: r.modified };
}
