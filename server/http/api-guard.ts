/**
 * The cross-site request forgery guard of the HTTP API: a request that
 * changes state (any method but GET, HEAD and OPTIONS on `/api/...`) must
 * come from this origin and carry a JSON body.
 *
 * Security considerations: a browser attaches the user's cached Basic
 * credentials to a form or `fetch` that another site sends here, so:
 * - `Sec-Fetch-Site` other than `same-origin` (or `none`, a request the user
 *   made themselves) is refused with 403, `same-site` included (another port
 *   of this host is another origin);
 * - an `Origin` that is not exactly `https://<Host>` is refused with 403,
 *   `null` included;
 * - the body must be `application/json`: the types a page can send
 *   cross-site without a CORS preflight (`text/plain`, forms) are refused
 *   with 415, and this server answers no preflight.
 * A request with neither `Origin` nor `Sec-Fetch-Site` is not from a browser
 * (curl, `mydoc takeout approve`) and passes on its content type alone. The
 * WebDAV methods are not an API: the Windows client sends neither header.
 */
import { originOf } from '../../shares/webdav/paths.js';

/** Why the guard refuses; each process's status table gives the status (403 cross-site, 415 content type). */
export type ApiGuardCode = 'ERR_API_CROSS_SITE' | 'ERR_API_CONTENT_TYPE';

export interface ApiRefusal {
  code: ApiGuardCode;
  message: string;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** An Origin header as URL serialises it (lower-case host, no default port), or undefined ("null", garbage). */
function serialised(origin: string): string | undefined {
  try {
    const url = new URL(origin);
    return url.origin === 'null' ? undefined : url.origin;
  } catch {
    return undefined;
  }
}

/** Why a request to the API must be refused before it is read, or undefined when it may go on. */
export function apiRequestRefusal(method: string, url: string, headers: Record<string, string | string[] | undefined>): ApiRefusal | undefined {
  if (!url.startsWith('/api/') || SAFE_METHODS.has(method)) return undefined;
  const site = first(headers['sec-fetch-site'])?.trim().toLowerCase();
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return { code: 'ERR_API_CROSS_SITE', message: `refused: this request was sent by another site (Sec-Fetch-Site: ${site}); use the API from this origin or a non-browser client` };
  }
  const origin = first(headers.origin);
  if (origin !== undefined && (serialised(origin) === undefined || serialised(origin) !== originOf(first(headers.host) ?? ''))) {
    return { code: 'ERR_API_CROSS_SITE', message: 'refused: this request was sent by another site (its Origin is not this server); use the API from this origin or a non-browser client' };
  }
  const type = first(headers['content-type'])?.split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    return { code: 'ERR_API_CONTENT_TYPE', message: 'a request that changes state must have Content-Type: application/json' };
  }
  return undefined;
}
