/**
 * WebDAV properties: the live DAV: properties, the Win32 properties of the
 * Windows client (urn:schemas-microsoft-com:), quota, and dead properties,
 * rendered into compact multistatus XML (prefixes D and Z declared on the
 * root; other namespaces declared where used).
 *
 * Listing size: Windows drops a folder listing over 1,000,000 bytes, so the
 * entries of a Depth 1 allprop listing carry only what Explorer needs
 * (resourcetype, size, times, etag; Win32 attributes when not the default);
 * supportedlock, lockdiscovery, the Win32 times and quota are returned for the
 * requested resource itself and whenever they are asked for by name. A file
 * of the bench's folder takes 376 bytes (2,659 entries fit in 1,000,000).
 *
 * Asked by name, nothing can be left out: each property asked for is answered
 * (RFC 4918 9.1: 200 with its value, or 404), hrefs are absolute paths (8.3),
 * and every element is prefixed (D:, Z:), since the Windows client fails on a
 * default namespace (golang/go#11177). Windows' list of eight properties thus
 * takes 583 bytes per file plus its href (618 in the bench, 1,618 entries in
 * 1,000,000 bytes), which is what this renders: test/webdav-handler.test.ts
 * pins it. (Answering the four Win32 ones 404 would still take about 515 and
 * lose the times Windows stored.) Larger folders need the guest kit's
 * FileAttributesLimitInBytes.
 *
 * A resource is rendered as a list of pieces (its live properties, then each
 * dead property value on its own) so the caller can stream a large
 * multistatus instead of building it as one string.
 *
 * Limits: a dead property value holds at most 64 KiB and the dead properties
 * of one resource at most 1 MiB in all (checked at PROPPATCH); a time is
 * accepted only from 1601-01-01T00:00:00Z (the FILETIME epoch) to
 * 9999-12-31T23:59:59Z, the last second an HTTP-date and an ISO 8601 date
 * can carry with a four-digit year (FILETIME itself ends in 30828, and a JS
 * Date in 275760, neither of which the property formats can express).
 */
import { ATTR_ARCHIVE, ATTR_DIRECTORY, type DavEntry } from './store.js';
import type { Lock } from './locks.js';
import { escapeXml } from './xml.js';

export const DAV = 'DAV:';
export const MS = 'urn:schemas-microsoft-com:';

export interface PropName {
  ns: string;
  local: string;
}

export const WIN32_PROPS = ['Win32CreationTime', 'Win32LastAccessTime', 'Win32LastModifiedTime', 'Win32FileAttributes'] as const;

const LIVE_DAV = [
  'creationdate',
  'displayname',
  'getcontentlength',
  'getcontenttype',
  'getetag',
  'getlastmodified',
  'lockdiscovery',
  'resourcetype',
  'supportedlock',
  'quota-available-bytes',
  'quota-used-bytes',
] as const;

/** Live properties cannot be set or removed by PROPPATCH (403 cannot-modify-protected-property). */
export function isProtected(p: PropName): boolean {
  return p.ns === DAV && (LIVE_DAV as readonly string[]).includes(p.local);
}

export function isWin32(p: PropName): boolean {
  return p.ns === MS && (WIN32_PROPS as readonly string[]).includes(p.local);
}

/** The earliest time a resource may carry: 1601-01-01T00:00:00Z, where Windows' FILETIME starts. */
export const MIN_TIME_MS = Date.UTC(1601, 0, 1);
/** The latest: 9999-12-31T23:59:59Z, the last second with a four-digit year (HTTP-date, ISO 8601). */
export const MAX_TIME_MS = Date.UTC(9999, 11, 31, 23, 59, 59);

/** Parses a time sent for a Win32 time property; undefined when it is not a date in [MIN_TIME_MS, MAX_TIME_MS]. */
export function parseTime(text: string): number | undefined {
  const ms = Date.parse(text);
  return ms >= MIN_TIME_MS && ms <= MAX_TIME_MS ? ms : undefined;
}

/** The most bytes one dead property may hold (its XML, as stored). */
export const MAX_DEAD_PROP_BYTES = 64 * 1024;
/** The most bytes the dead properties of one resource may hold in all (names, namespaces and values). */
export const MAX_DEAD_PROPS_BYTES = 1024 * 1024;

/** The bytes a set of dead properties takes, as MAX_DEAD_PROPS_BYTES counts them. */
export function deadPropsBytes(props: Iterable<{ ns: string; name: string; value: string }>): number {
  let total = 0;
  for (const p of props) total += Buffer.byteLength(p.ns) + Buffer.byteLength(p.name) + Buffer.byteLength(p.value);
  return total;
}

/** Formats per second, remembered (a listing formats the same seconds many times). */
function memoBySecond(format: (ms: number) => string): (ms: number) => string {
  const cache = new Map<number, string>();
  return (ms) => {
    const second = Math.floor(ms / 1000);
    let text = cache.get(second);
    if (text === undefined) {
      if (cache.size >= 65_536) cache.clear();
      cache.set(second, (text = format(second * 1000)));
    }
    return text;
  };
}

export const httpDate = memoBySecond((ms) => new Date(ms).toUTCString());
export const isoDate = memoBySecond((ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z'));
export const hex8 = (n: number): string => (n >>> 0).toString(16).toUpperCase().padStart(8, '0');

/** The strong ETag of an entry, quoted (hex inside: nothing to escape in XML). */
export function etagOf(entry: DavEntry): string {
  return `"${entry.etag}"`;
}

const SUPPORTED_LOCK =
  '<D:supportedlock><D:lockentry><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>' +
  '<D:lockentry><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry></D:supportedlock>';

export function activeLockXml(lock: Lock, now: number): string {
  const remaining = Math.max(0, Math.ceil((lock.expiresAt - now) / 1000));
  return (
    `<D:activelock><D:locktype><D:write/></D:locktype><D:lockscope><D:${lock.scope}/></D:lockscope>` +
    `<D:depth>${lock.depth === 0 ? '0' : 'infinity'}</D:depth>${lock.ownerXml}<D:timeout>Second-${remaining}</D:timeout>` +
    `<D:locktoken><D:href>${escapeXml(lock.token)}</D:href></D:locktoken><D:lockroot><D:href>${escapeXml(lock.rootHref)}</D:href></D:lockroot></D:activelock>`
  );
}

export function lockDiscoveryXml(locks: readonly Lock[], now: number): string {
  return locks.length === 0 ? '<D:lockdiscovery/>' : `<D:lockdiscovery>${locks.map((l) => activeLockXml(l, now)).join('')}</D:lockdiscovery>`;
}

/** What property values are rendered from, for one resource. */
export interface PropContext {
  entry: DavEntry;
  locks: () => readonly Lock[];
  /** Absent when the store does not count the bytes it holds: no quota properties. */
  quota: (() => { used: number; available: number }) | undefined;
  dead: () => readonly { ns: string; name: string; value: string }[];
  now: number;
}

/** Renders a live or Win32 property as XML, or undefined when the resource does not have it. */
export function liveProp(p: PropName, c: PropContext): string | undefined {
  const e = c.entry;
  if (p.ns === DAV) {
    switch (p.local) {
      case 'creationdate':
        return `<D:creationdate>${isoDate(e.created)}</D:creationdate>`;
      case 'displayname':
        return `<D:displayname>${escapeXml(e.name)}</D:displayname>`;
      case 'getcontentlength':
        return e.isDir ? undefined : `<D:getcontentlength>${e.size}</D:getcontentlength>`;
      case 'getcontenttype':
        return e.isDir ? undefined : '<D:getcontenttype>application/octet-stream</D:getcontenttype>';
      case 'getetag':
        return e.isDir ? undefined : `<D:getetag>${etagOf(e)}</D:getetag>`;
      case 'getlastmodified':
        return `<D:getlastmodified>${httpDate(e.modified)}</D:getlastmodified>`;
      case 'resourcetype':
        return e.isDir ? '<D:resourcetype><D:collection/></D:resourcetype>' : '<D:resourcetype/>';
      case 'supportedlock':
        return SUPPORTED_LOCK;
      case 'lockdiscovery':
        return lockDiscoveryXml(c.locks(), c.now);
      case 'quota-available-bytes':
        return e.isDir && c.quota ? `<D:quota-available-bytes>${c.quota().available}</D:quota-available-bytes>` : undefined;
      case 'quota-used-bytes':
        return e.isDir && c.quota ? `<D:quota-used-bytes>${c.quota().used}</D:quota-used-bytes>` : undefined;
    }
    return undefined;
  }
  if (p.ns === MS) {
    switch (p.local) {
      case 'Win32CreationTime':
        return `<Z:Win32CreationTime>${httpDate(e.created)}</Z:Win32CreationTime>`;
      case 'Win32LastAccessTime':
        return `<Z:Win32LastAccessTime>${httpDate(e.accessed)}</Z:Win32LastAccessTime>`;
      case 'Win32LastModifiedTime':
        return `<Z:Win32LastModifiedTime>${httpDate(e.modified)}</Z:Win32LastModifiedTime>`;
      case 'Win32FileAttributes':
        return `<Z:Win32FileAttributes>${hex8(e.attributes)}</Z:Win32FileAttributes>`;
    }
  }
  return undefined;
}

/** A property element without a value (propname, or a 404 entry). */
export function emptyProp(p: PropName): string {
  if (p.ns === DAV) return `<D:${p.local}/>`;
  if (p.ns === MS) return `<Z:${p.local}/>`;
  if (p.ns === '') return `<${p.local} xmlns=""/>`;
  return `<x:${p.local} xmlns:x="${escapeXml(p.ns)}"/>`;
}

/** The allprop set, as pieces (live properties, then each dead one): compact for the members of a listing, full for the requested resource. */
export function allprop(c: PropContext, full: boolean): string[] {
  const e = c.entry;
  let xml = liveProp({ ns: DAV, local: 'resourcetype' }, c)!;
  if (!e.isDir) xml += `<D:getcontentlength>${e.size}</D:getcontentlength>`;
  xml += `<D:getlastmodified>${httpDate(e.modified)}</D:getlastmodified><D:creationdate>${isoDate(e.created)}</D:creationdate>`;
  if (!e.isDir) xml += `<D:getetag>${etagOf(e)}</D:getetag>`;
  const defaultAttributes = e.isDir ? ATTR_DIRECTORY : ATTR_ARCHIVE;
  if (full) {
    xml += SUPPORTED_LOCK + lockDiscoveryXml(c.locks(), c.now);
    for (const local of WIN32_PROPS) xml += liveProp({ ns: MS, local }, c)!;
    if (e.isDir && c.quota) xml += liveProp({ ns: DAV, local: 'quota-available-bytes' }, c)! + liveProp({ ns: DAV, local: 'quota-used-bytes' }, c)!;
  } else {
    if (e.attributes !== defaultAttributes) xml += `<Z:Win32FileAttributes>${hex8(e.attributes)}</Z:Win32FileAttributes>`;
    const locks = c.locks();
    if (locks.length > 0) xml += lockDiscoveryXml(locks, c.now);
  }
  return [xml, ...c.dead().map((d) => d.value)];
}

/** The propstat pieces of the properties asked for by name: 200 for those the resource has, 404 for the others. */
export function namedProps(requested: readonly PropName[], c: PropContext): string[] {
  const deadProps = c.dead();
  const dead = deadProps.length === 0 ? undefined : new Map(deadProps.map((d) => [`${d.ns}\u0000${d.name}`, d.value]));
  const found: string[] = [];
  let missing = '';
  for (const p of requested) {
    const value = liveProp(p, c) ?? dead?.get(`${p.ns}\u0000${p.local}`);
    if (value !== undefined) found.push(value);
    else missing += emptyProp(p);
  }
  if (found.length === 0 && missing === '') return propstat([], 200);
  return [...(found.length > 0 ? propstat(found, 200) : []), ...(missing ? propstat([missing], 404) : [])];
}

/** The names of every property of a resource (propname). */
export function propNames(c: PropContext): PropName[] {
  const names: PropName[] = [];
  for (const local of LIVE_DAV) if (liveProp({ ns: DAV, local }, c) !== undefined) names.push({ ns: DAV, local });
  for (const local of WIN32_PROPS) names.push({ ns: MS, local });
  for (const d of c.dead()) names.push({ ns: d.ns, local: d.name });
  return names;
}

export const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  424: 'Failed Dependency',
  507: 'Insufficient Storage',
};

/** One propstat, as pieces around the property pieces; `description` becomes its responsedescription. */
export function propstat(props: readonly string[], status: number, description?: string): string[] {
  const tail = `</D:prop><D:status>HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? ''}</D:status>${description ? `<D:responsedescription>${escapeXml(description)}</D:responsedescription>` : ''}</D:propstat>`;
  return ['<D:propstat><D:prop>', ...props, tail];
}

export const MULTISTATUS_OPEN = `<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:" xmlns:Z="${MS}">`;
export const MULTISTATUS_CLOSE = '</D:multistatus>';
