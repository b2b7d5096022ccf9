/**
 * RFC 9110 conditional requests (section 13): If-Match,
 * If-Unmodified-Since, If-None-Match and If-Modified-Since, against a
 * file's strong ETag and modification time (compared per second, as
 * HTTP-dates carry them). The WebDAV If header is if-header.ts.
 */
import { header, type DavRequest } from './request.js';

/** RFC 9110 13.2.2 order: If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since. */
export function evaluatePreconditions(req: DavRequest, etag: string, modified: number): 200 | 304 | 412 {
  const ifMatch = header(req, 'if-match');
  if (ifMatch !== undefined && ifMatch.trim() !== '*' && !ifMatch.split(',').some((t) => t.trim() === etag)) return 412;
  const ius = header(req, 'if-unmodified-since');
  if (ifMatch === undefined && ius !== undefined && !Number.isNaN(Date.parse(ius)) && Math.floor(modified / 1000) > Math.floor(Date.parse(ius) / 1000)) return 412;
  const inm = header(req, 'if-none-match');
  if (inm !== undefined) {
    if (inm.trim() === '*' || inm.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)) return 304;
    return 200;
  }
  // RFC 9110 13.1.3: If-Modified-Since is for GET and HEAD only; other methods ignore it.
  const ims = req.method === 'GET' || req.method === 'HEAD' ? header(req, 'if-modified-since') : undefined;
  if (ims !== undefined && !Number.isNaN(Date.parse(ims)) && Math.floor(modified / 1000) <= Math.floor(Date.parse(ims) / 1000)) return 304;
  return 200;
}
