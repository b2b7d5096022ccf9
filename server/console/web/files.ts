/**
 * The file browser of the administrators' web page, over the same tree and
 * the same forwarding core as /pcs:
 *
 *   GET /admin/pcs/<pcId>/files/<user>/<path...>/    a folder (PROPFIND Depth 1 down the link)
 *   GET /admin/pcs/<pcId>/download/<user>/<path...>  a file (GET down the link, streamed)
 *
 * Security considerations: the same decision as /pcs (admin-data.ts: the
 * data role; contents only when the two-person rule allows) and the same
 * trail line; the raw URL is decoded once (paths.ts), never by the router.
 * A download is always `Content-Disposition: attachment` and
 * application/octet-stream, under the page's CSP and nosniff, so a user's
 * HTML file is never rendered on the console's origin. The page is
 * no-store (register.ts sets it for every page). The process log sees these
 * URLs only up to the PC (`loggableUrl`, the app's request serializer).
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { decodePath, encodeHref } from '../../../shares/webdav/paths.js';
import { LinkError } from '../../link/errors.js';
import { auditData, dataTarget, decideAdminData, refusalReason, type AdminDataDeps } from '../dav/admin-data.js';
import { LISTING_BODY, ListingError, readListing } from '../dav/folder-listing.js';
import { forwardToAgent, openForward, type ForwardDeps } from '../dav/forward.js';
import { errorPage, type PageContext } from './pages.js';
import { filesPage } from './files-page.js';

export interface FileBrowserDeps {
  forward: ForwardDeps;
  data: AdminDataDeps;
}

const BROWSER_URL = /^(\/admin\/pcs\/[^/?]+\/(?:files|download)\/)[^?]*/;

/** A URL as the process log may show it: the file browser's paths below the PC are users' data, cut off. */
export function loggableUrl(url: string): string {
  return url.replace(BROWSER_URL, '$1…');
}

type PageOf = (req: FastifyRequest, reply: FastifyReply) => PageContext | undefined;

/** `attachment; filename*=UTF-8''...` (RFC 6266), with an ASCII fallback. */
function attachment(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

/** The names after /admin/pcs/<pcId>/<kind>/ of the raw URL. */
function namesOf(req: FastifyRequest): { pcId: string; user: string | undefined; rest: string[] } {
  const [, , pcId, , user, ...rest] = decodePath(req.raw.url ?? '/');
  return { pcId: pcId!, user, rest };
}

export function registerFileBrowser(web: FastifyInstance, deps: FileBrowserDeps, page: PageOf): void {
  const html = (reply: FastifyReply, body: string, status = 200) => reply.code(status).type('text/html; charset=utf-8').send(body);

  web.get('/pcs/:pcId/files/*', async (req, reply) => {
    const ctx = page(req, reply);
    if (!ctx) return reply;
    const { pcId, user, rest } = namesOf(req);
    if (user === undefined) return reply.redirect(`/admin/pcs/${encodeURIComponent(pcId)}`, 303);
    const target = dataTarget([pcId, user, ...rest]);
    const decision = await decideAdminData(deps.data, ctx.admin, pcId, user, rest, 'PROPFIND');
    if (!decision.ok) {
      await auditData(deps.data, ctx.admin, target, 'deny', refusalReason('PROPFIND', decision.status, `${decision.why} (web page)`));
      return html(reply, errorPage(decision.status, decision.message, ctx), decision.status);
    }
    const body = Buffer.from(LISTING_BODY, 'utf8');
    const folder = ['pcs', pcId, user, ...rest];
    const answer = await openForward(deps.forward, {
      pcId,
      method: 'PROPFIND',
      rawUrl: encodeHref(folder, true),
      headers: { depth: '1', 'content-type': 'application/xml; charset=utf-8', 'content-length': String(body.length) },
      body: Readable.from([body]),
      grant: decision.grant,
    });
    const reason = (status: number, extra = '') => `PROPFIND ${status} request ${answer.requestId} role data (web page)${extra}`;
    if (!answer.ok) {
      await auditData(deps.data, ctx.admin, target, 'deny', reason(answer.status, ` ${answer.code}`));
      return html(reply, errorPage(answer.status, answer.message, ctx), answer.status);
    }
    if (answer.status !== 207) {
      answer.body.resume();
      await auditData(deps.data, ctx.admin, target, 'allow', reason(answer.status));
      const message = answer.status === 404 ? 'There is no such folder.' : `PC ${pcId} answered ${answer.status} for this folder.`;
      return html(reply, errorPage(answer.status, message, ctx), answer.status);
    }
    try {
      const listing = await readListing(answer.body, folder);
      await auditData(deps.data, ctx.admin, target, 'allow', reason(207));
      return html(reply, filesPage(ctx, { pcId, user, path: rest, listing }));
    } catch (err) {
      if (err instanceof LinkError) {
        // The agent stopped sending (ERR_LINK_TIMEOUT) or the link broke while the listing came.
        const status = err.code === 'ERR_LINK_TIMEOUT' ? 504 : 502;
        await auditData(deps.data, ctx.admin, target, 'deny', reason(status, ` ${err.code}`));
        return html(reply, errorPage(status, `${err.message}; try again`, ctx), status);
      }
      if (!(err instanceof ListingError)) throw err;
      await auditData(deps.data, ctx.admin, target, 'deny', reason(502, ' ERR_LISTING'));
      return html(reply, errorPage(502, `PC ${pcId} sent a listing that cannot be read: ${err.message}`, ctx), 502);
    }
  });

  web.get('/pcs/:pcId/download/*', async (req, reply) => {
    const ctx = page(req, reply);
    if (!ctx) return reply;
    const { pcId, user, rest } = namesOf(req);
    if (user === undefined || rest.length === 0) return html(reply, errorPage(404, 'There is no such file.', ctx), 404);
    const target = dataTarget([pcId, user, ...rest]);
    const decision = await decideAdminData(deps.data, ctx.admin, pcId, user, rest, 'GET');
    if (!decision.ok) {
      await auditData(deps.data, ctx.admin, target, 'deny', refusalReason('GET', decision.status, `${decision.why} (web page)`));
      return html(reply, errorPage(decision.status, decision.message, ctx), decision.status);
    }
    await forwardToAgent(deps.forward, { pcId, method: 'GET', rawUrl: encodeHref(['pcs', pcId, user, ...rest], false), headers: {}, grant: decision.grant }, reply, {
      override: { 'content-type': 'application/octet-stream', 'content-disposition': attachment(rest.at(-1)!) },
      onOutcome: (o) => auditData(deps.data, ctx.admin, target, o.code === undefined ? 'allow' : 'deny', `GET ${o.status} request ${o.requestId} role data (web page)${o.code ? ` ${o.code}` : ''}`),
    });
    return reply;
  });
}
