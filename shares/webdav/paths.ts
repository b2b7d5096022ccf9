/**
 * Request paths and hrefs.
 *
 * Security considerations: the raw path is split on "/" before it is
 * decoded, and decoded exactly once, so "%2F" can never become a separator;
 * a decoded "/" or "\" inside a segment, NUL, "." and ".." segments and
 * invalid UTF-8 (overlong forms included) are refused with 400. Nothing is
 * resolved against the file system: names go to the user's own vault index.
 * A "%" not followed by two hex digits is taken literally (as Windows and
 * Office send such names).
 */
import { DavError } from './errors.js';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function percentDecode(segment: string): string {
  if (!segment.includes('%')) return segment;
  const bytes: number[] = [];
  const raw = Buffer.from(segment, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === 0x25 && isHex(raw[i + 1]) && isHex(raw[i + 2])) {
      bytes.push(parseInt(String.fromCharCode(raw[i + 1]!, raw[i + 2]!), 16));
      i += 2;
    } else {
      bytes.push(c);
    }
  }
  try {
    return utf8.decode(Uint8Array.from(bytes));
  } catch {
    throw new DavError('ERR_DAV_PATH_INVALID', 'the request path is not valid UTF-8 once decoded');
  }
}

function isHex(c: number | undefined): boolean {
  return c !== undefined && ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66));
}

/** Decodes the path of a request URL (query and fragment ignored) into names. */
export function decodePath(rawUrl: string): string[] {
  if (rawUrl.includes('#')) throw new DavError('ERR_DAV_PATH_INVALID', 'a request URI must not contain a fragment ("#"); encode "#" in names as %23');
  let path = rawUrl;
  const cut = path.indexOf('?');
  if (cut >= 0) path = path.slice(0, cut);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) path = path.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '') || '/';
  if (!path.startsWith('/')) throw new DavError('ERR_DAV_PATH_INVALID', 'the request path must start with "/"');
  const names: string[] = [];
  for (const raw of path.split('/')) {
    if (raw === '') continue;
    const name = percentDecode(raw);
    if (name.includes('\u0000')) throw new DavError('ERR_DAV_PATH_INVALID', 'NUL is not allowed in a path');
    if (name.includes('/') || name.includes('\\')) throw new DavError('ERR_DAV_PATH_INVALID', 'encoded slashes and backslashes are not allowed in a name');
    if (name === '.' || name === '..') throw new DavError('ERR_DAV_PATH_INVALID', '"." and ".." are not allowed in a path');
    names.push(name);
  }
  return names;
}

/** The href of a resource: each name percent-encoded once, folders ending in "/". */
export function encodeHref(names: readonly string[], isDir: boolean): string {
  const path = '/' + names.map((n) => encodeURIComponent(n)).join('/');
  return isDir && names.length > 0 ? path + '/' : path;
}

/**
 * The path named by a Destination header (RFC 4918 10.3): an absolute
 * https URL on this server, or a path, resolved against this server's
 * origin. One parser (WHATWG URL) gives both the authority and the path, so
 * they cannot disagree (`https://this\@evil/x` is host "this", path
 * "/@evil/x", never "/x" on one side and "evil" on the other). Another
 * authority (scheme, host, port or a user name) is refused with 502
 * (RFC 4918 9.8.5); a backslash (which parsers read differently), a dot
 * segment or a fragment is refused with 400, as in a request path.
 */
export function decodeDestination(value: string | undefined, host: string | undefined): string[] {
  if (!value) throw new DavError('ERR_DAV_DESTINATION_INVALID', 'a Destination header is required');
  if (value.includes('\\')) throw new DavError('ERR_DAV_DESTINATION_INVALID', 'the Destination header must not contain a backslash; encode it as %5C');
  // RFC 4918 10.3: an absolute URI, or an absolute path ("//host/..." is neither).
  if (value.startsWith('//') || (!value.startsWith('/') && !/^[a-z][a-z0-9+.-]*:/i.test(value))) throw new DavError('ERR_DAV_DESTINATION_INVALID', 'the Destination header is not a URL');
  const origin = host === undefined ? undefined : originOf(host);
  let url: URL;
  try {
    url = new URL(value, origin);
  } catch {
    throw new DavError('ERR_DAV_DESTINATION_INVALID', 'the Destination header is not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new DavError('ERR_DAV_DESTINATION_INVALID', 'the Destination header is not an http(s) URL');
  if (url.origin !== origin || url.username !== '' || url.password !== '') throw new DavError('ERR_DAV_DESTINATION_OTHER_SERVER', 'the Destination is on another server');
  if (url.hash !== '' || value.includes('#')) throw new DavError('ERR_DAV_DESTINATION_INVALID', 'the Destination must not contain a fragment ("#"); encode "#" in names as %23');
  // WHATWG URL resolves "." and ".." (and their %2E forms) away; a request path refuses them, and so does a Destination.
  if (/(?:^|\/)(?:\.|%2e){1,2}(?:[/?]|$)/i.test(value)) throw new DavError('ERR_DAV_DESTINATION_INVALID', '"." and ".." are not allowed in a path');
  return decodePath(url.pathname);
}

/** The origin `https://HOST` of a Host header (as URL serialises it), or undefined when it is not a plain host[:port]. */
export function originOf(host: string): string | undefined {
  if (!/^[A-Za-z0-9.\-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/.test(host)) return undefined;
  try {
    return new URL(`https://${host}`).origin;
  } catch {
    return undefined;
  }
}
