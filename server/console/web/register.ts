/**
 * The administrators' web page, registered on the console's HTTPS app
 * (same origin as its JSON API) under /admin/: the login, the PC list (its
 * filters, search, sort, paging and CSV export, all done by the store), a
 * PC's page, the pending take-out requests with approve / deny, and the
 * console's audit trail.
 *
 * Security considerations:
 * - Sessions: in memory (sessions.ts), a `__Host-` cookie with `HttpOnly;
 *   Secure; SameSite=Strict`, idle and absolute expiry, a new id at login.
 * - CSRF: every POST must carry its session's token (a synchronizer token
 *   in a hidden field, compared in constant time); without it the answer is
 *   403 with a sentence saying so, before anything is done. The login form
 *   has one too, stateless (LoginForms: an HMAC tied to the form's signed
 *   cookie), so fetching the login page keeps nothing on the console.
 * - Roles per route: every page needs `viewer` (any role includes it);
 *   approve, deny and revoke need `approver`; the recovery view
 *   (../recovery/recovery-web.ts) needs `data`, and logout drops the
 *   recovery key the session held. Not logged in: a page
 *   redirects to the login, a POST is 401.
 * - Every response carries a Content-Security-Policy with no script source
 *   at all (the page has no script; an injected one cannot run), no inline
 *   style, frame-ancestors 'none' and X-Frame-Options DENY (no framing),
 *   nosniff, no referrer; pages with data are `Cache-Control: no-store`.
 * - Every value from a PC or a user is escaped (html.ts); CSV cells cannot
 *   start a formula (csv.ts). The `back` field of a form is followed only
 *   to a path of this page (no open redirect).
 * - Login attempts go through AdminAuthenticator (per-account and
 *   per-address hold-back, audited); the password is never kept or logged.
 * - Bodies are at most 16 KiB; form values that repeat are refused.
 */
import fastifyCookie from '@fastify/cookie';
import fastifyFormbody from '@fastify/formbody';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from '../../../shares/clock.js';
import { codeOf, useErrorStatus } from '../../http/error-status.js';
import type { AdminAuthenticator } from '../admins.js';
import type { Role } from '../config.js';
import type { ConsoleStore, PcFilter, PcQuery, PcSort, TakeoutRequestRow } from '../store/store.js';
import { readTrailPage } from './audit-trail.js';
import { csvExport } from './csv.js';
import { WEB_STATUS, WebError } from './errors.js';
import { daysSince, formatTime, gateText, isOnline } from './format.js';
import { auditPage, errorPage, loginPage, pcListPage, pcPage, requestsPage, type ListView, type PageContext } from './pages.js';
import { LoginForms, SESSION_COOKIE, Sessions, type Session } from './sessions.js';
import { STYLE_CSS } from './style.js';
import { registerRecoveryRoutes, type RecoveryDeps } from '../recovery/recovery-web.js';
import type { AccessRequests } from '../access/access-requests.js';
import { accessPage, pcAccessSection } from './access-pages.js';
import type { ShareRules } from '../sharing/share-rules.js';
import { sharingPage } from './sharing-page.js';
import { registerFileBrowser, type FileBrowserDeps } from './files.js';

export interface AdminWebDeps {
  store: Pick<ConsoleStore, 'listPcs' | 'getPc' | 'listKnownUsers' | 'alertCounts' | 'listRequests' | 'getRequest'>;
  admins: Pick<AdminAuthenticator, 'login'>;
  takeout: {
    approve(id: string, admin: string, days: number): Promise<TakeoutRequestRow>;
    deny(id: string, admin: string, note: string): Promise<TakeoutRequestRow>;
    revoke(jti: string, admin: string): Promise<TakeoutRequestRow>;
  };
  hub: { isConnected(pcId: string): boolean };
  /** The two-person rule (/admin/access and the PC page's request form); absent: neither is shown. */
  access?: AccessRequests;
  /** Share rules (/admin/sharing); absent: the page is not there. */
  sharing?: ShareRules;
  /** The console's hash-chained audit file. */
  audit: { file: string };
  /** A PC seen within this long is online: (2 * heartbeatSeconds + 30) * 1000. */
  onlineWindowMs: number;
  clock: Clock;
  logger: FastifyBaseLogger;
  /** The recovery view of an offline PC's latest snapshot (../recovery/); absent: no such pages. */
  recovery?: RecoveryDeps;
  /** The file browser (files.ts); without it, its pages are not there. */
  files?: FileBrowserDeps;
}

const CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const PAGE_SIZE = 50;
const CSV_PAGE = 1000;
const AUDIT_PAGE = 100;
const MAX_BODY_BYTES = 16 * 1024;
const MAX_SEARCH = 100;
const MAX_NOTE = 500;
const FILTERS: readonly PcFilter[] = ['all', 'online', 'offline', 'no-backup', 'takeout', 'pending'];
const SORTS: readonly PcSort[] = ['pcId', 'lastSeen', 'lastBackup', 'gate', 'pending'];
const DEFAULT_DAYS: Partial<Record<PcFilter, number>> = { offline: 30, 'no-backup': 7 };

type Fields = Record<string, unknown>;

/** One value of a query or form field; a repeated field is refused. */
function field(fields: unknown, name: string): string | undefined {
  const value = (fields as Fields | undefined)?.[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new WebError('ERR_WEB_INPUT', `${name} must be given once`);
  return value;
}

function wholeNumber(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (!/^\d{1,9}$/.test(value.trim())) throw new WebError('ERR_WEB_INPUT', `${name} must be a whole number from ${min} to ${max}`);
  const n = Number(value.trim());
  if (n < min || n > max) throw new WebError('ERR_WEB_INPUT', `${name} must be a whole number from ${min} to ${max}`);
  return n;
}

/** The PC list's view from its query string (bad values are a 400 naming the field). */
function listView(query: unknown): ListView {
  const filter = (field(query, 'filter') || 'all') as PcFilter;
  if (!FILTERS.includes(filter)) throw new WebError('ERR_WEB_INPUT', `filter must be one of ${FILTERS.join(', ')}`);
  const sort = (field(query, 'sort') || 'pcId') as PcSort;
  if (!SORTS.includes(sort)) throw new WebError('ERR_WEB_INPUT', `sort must be one of ${SORTS.join(', ')}`);
  const search = (field(query, 'q') ?? '').trim();
  if (search.length > MAX_SEARCH) throw new WebError('ERR_WEB_INPUT', `the search must be at most ${MAX_SEARCH} characters`);
  const days = DEFAULT_DAYS[filter] === undefined ? undefined : (wholeNumber(field(query, 'days'), 'days', 1, 3650) ?? DEFAULT_DAYS[filter]);
  return { filter, days, search, sort, descending: field(query, 'desc') === '1', page: wholeNumber(field(query, 'page'), 'page', 1, 1_000_000) ?? 1, pageSize: PAGE_SIZE };
}

/** Where a form goes back to: a path of this page only (no open redirect), with the notice `done`. */
function backTo(back: string | undefined, fallback: string, done: string): string {
  const target = back !== undefined && /^\/admin\/[A-Za-z0-9._~%/-]*(\?[A-Za-z0-9._~%=&-]*)?$/.test(back) && !back.includes('//') ? back : fallback;
  return `${target}${target.includes('?') ? '&' : '?'}done=${done}`;
}

/** Registers the administrators' web page on the console's app: `/` redirects to it; everything else is under /admin/. */
export function registerAdminWeb(app: FastifyInstance, deps: AdminWebDeps): void {
  const sessions = new Sessions(deps.clock);
  const loginForms = new LoginForms(deps.clock);

  app.get('/', async (_req, reply) => reply.redirect('/admin/pcs', 303));

  app.register(
    async (web) => {
      await web.register(fastifyCookie);
      await web.register(fastifyFormbody, { bodyLimit: MAX_BODY_BYTES });

      web.addHook('onSend', async (req, reply, payload) => {
        reply.header('content-security-policy', CSP);
        reply.header('x-frame-options', 'DENY');
        reply.header('x-content-type-options', 'nosniff');
        reply.header('referrer-policy', 'no-referrer');
        reply.header('strict-transport-security', 'max-age=31536000');
        if (req.url !== '/admin/style.css') reply.header('cache-control', 'no-store');
        return payload;
      });

      const sessionOf = (req: FastifyRequest): Session | undefined => sessions.get(req.cookies[SESSION_COOKIE]);
      const setSession = (reply: FastifyReply, id: string) => reply.setCookie(SESSION_COOKIE, id, { path: '/', httpOnly: true, secure: true, sameSite: 'strict' });

      const context = (session: Session): PageContext => {
        const now = deps.clock();
        return { admin: session.admin, csrf: session.csrf, now, onlineSince: now - deps.onlineWindowMs, isConnected: (pcId) => deps.hub.isConnected(pcId) };
      };

      useErrorStatus(web, WEB_STATUS, (reply, a) => {
        const session = sessionOf(reply.request);
        if (a.code !== undefined || a.status < 500) deps.logger.info({ code: a.code, status: a.status }, 'console web: request refused');
        return reply
          .code(a.status)
          .type('text/html; charset=utf-8')
          .send(errorPage(a.status, a.message, session ? context(session) : undefined));
      });
      web.setNotFoundHandler((req, reply) => {
        const session = sessionOf(req);
        return reply.code(404).type('text/html; charset=utf-8').send(errorPage(404, 'There is no such page.', session ? context(session) : undefined));
      });

      /** The page's context for an administrator with `role`; undefined when the answer (a redirect to the login) is sent. */
      const page = (req: FastifyRequest, reply: FastifyReply, role: Role = 'viewer'): PageContext | undefined => {
        const session = sessionOf(req);
        if (!session) {
          void reply.redirect('/admin/login', 303);
          return undefined;
        }
        if (!session.admin.roles.has(role)) throw new WebError('ERR_WEB_ROLE', `this needs the ${role} role, which ${session.admin.name} does not have`);
        return context(session);
      };

      /** The session of a POST whose CSRF token is right (and whose administrator has `role`); throws the refusal otherwise. */
      const posted = (req: FastifyRequest, role: Role | undefined): Session => {
        const session = sessionOf(req);
        if (!session) throw new WebError('ERR_WEB_LOGIN', 'you are not logged in (or your session has expired); log in again');
        if (!Sessions.csrfMatches(session, (req.body as Fields | undefined)?.csrf)) {
          throw new WebError('ERR_WEB_CSRF', 'refused: this form did not carry the CSRF token of your session (it was not sent by this console\'s page, or the page is old); reload the page and try again');
        }
        if (role !== undefined && !session.admin.roles.has(role)) throw new WebError('ERR_WEB_ROLE', `this needs the ${role} role, which ${session.admin.name} does not have`);
        return session;
      };

      const html = (reply: FastifyReply, body: string, status = 200) => reply.code(status).type('text/html; charset=utf-8').send(body);

      web.get('/style.css', async (_req, reply) => reply.type('text/css; charset=utf-8').header('cache-control', 'max-age=3600').send(STYLE_CSS));

      web.get('/login', async (req, reply) => {
        if (sessionOf(req)) return reply.redirect('/admin/pcs', 303);
        let csrf = loginForms.csrfOf(req.cookies[SESSION_COOKIE]);
        if (csrf === undefined) {
          const form = loginForms.issue();
          setSession(reply, form.cookie);
          csrf = form.csrf;
        }
        return html(reply, loginPage({ csrf }));
      });

      web.post('/login', async (req, reply) => {
        const formCookie = req.cookies[SESSION_COOKIE];
        if (!loginForms.matches(formCookie, (req.body as Fields | undefined)?.csrf)) {
          throw new WebError('ERR_WEB_CSRF', 'this login form has expired or was not sent by this console\'s page; reload the page and try again');
        }
        const name = field(req.body, 'name') ?? '';
        const password = field(req.body, 'password') ?? '';
        const result = await deps.admins.login(name, password, req.ip);
        if (!result.ok) {
          if (result.retryAfter !== undefined) reply.header('retry-after', String(result.retryAfter));
          return html(reply, loginPage({ csrf: loginForms.csrfOf(formCookie)!, name: name.slice(0, 256), error: result.message }), result.status);
        }
        setSession(reply, sessions.create(result.admin).id);
        return reply.redirect('/admin/pcs', 303);
      });

      web.post('/logout', async (req, reply) => {
        const session = posted(req, undefined);
        deps.recovery?.keys.drop(session);
        sessions.end(req.cookies[SESSION_COOKIE]);
        reply.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, secure: true, sameSite: 'strict' });
        return reply.redirect('/admin/login', 303);
      });

      const pcQuery = (view: ListView, now: number, offset: number, limit: number): PcQuery => ({
        filter: view.filter,
        ...(view.days !== undefined && { days: view.days }),
        ...(view.search !== '' && { search: view.search }),
        sort: view.sort,
        descending: view.descending,
        offset,
        limit,
        onlineSince: now - deps.onlineWindowMs,
        now,
      });

      web.get('/pcs', async (req, reply) => {
        const ctx = page(req, reply);
        if (!ctx) return reply;
        const view = listView(req.query);
        const [{ rows, total }, alerts] = await Promise.all([
          deps.store.listPcs(pcQuery(view, ctx.now, (view.page - 1) * view.pageSize, view.pageSize)),
          deps.store.alertCounts(ctx.now, ctx.onlineSince),
        ]);
        return html(reply, pcListPage(ctx, { view, rows, total, alerts }));
      });

      web.get('/pcs.csv', async (req, reply) => {
        const ctx = page(req, reply);
        if (!ctx) return reply;
        const view = listView(req.query);
        const first = await deps.store.listPcs(pcQuery(view, ctx.now, 0, CSV_PAGE));
        const header = ['pc', 'online', 'last seen (UTC)', 'gate', 'take-out until (UTC)', 'users', 'last complete backup (UTC)', 'backup age (days)', 'agent version', 'device id', 'pending requests'];
        const cellsOf = (pc: (typeof first.rows)[number]): string[] => {
          const backup = pc.status?.lastBackupAt ?? null;
          return [
            pc.pcId,
            isOnline(pc, ctx.onlineSince, deps.hub.isConnected(pc.pcId)) ? 'online' : 'offline',
            pc.lastSeenAt === null ? '' : formatTime(pc.lastSeenAt).replace(' UTC', ''),
            pc.status?.gate ?? gateText(pc),
            pc.status?.takeoutUntil ? formatTime(pc.status.takeoutUntil).replace(' UTC', '') : '',
            (pc.status?.users ?? []).join(' '),
            backup === null ? '' : formatTime(backup).replace(' UTC', ''),
            backup === null ? '' : String(daysSince(backup, ctx.now)),
            pc.status?.agentVersion ?? '',
            pc.deviceId ?? '',
            String(pc.pendingRequests),
          ];
        };
        // Pulled page by page as the client reads; a client that leaves returns the generator.
        const now = ctx.now;
        async function* rows() {
          for (const pc of first.rows) yield cellsOf(pc);
          for (let offset = CSV_PAGE; offset < first.total; offset += CSV_PAGE) {
            const page = await deps.store.listPcs(pcQuery(view, now, offset, CSV_PAGE));
            if (page.rows.length === 0) break;
            for (const pc of page.rows) yield cellsOf(pc);
          }
        }
        const csv = csvExport(header, rows(), (err) => deps.logger.error({ code: codeOf(err) }, 'console web: the CSV export failed part-way'));
        const day = new Date(ctx.now).toISOString().slice(0, 10);
        return reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="mydoc-pcs-${day}.csv"`).send(csv);
      });

      web.get('/pcs/:pcId', async (req, reply) => {
        const ctx = page(req, reply);
        if (!ctx) return reply;
        const { pcId } = req.params as { pcId: string };
        const pc = await deps.store.getPc(pcId);
        if (!pc) throw new WebError('ERR_WEB_NOT_FOUND', `there is no PC ${pcId}`);
        const requests = await deps.store.listRequests({ pcId, limit: 50 });
        const knownUsers = pc.removedAt === null ? await deps.store.listKnownUsers(pcId) : [];
        const access = deps.access?.required ? pcAccessSection(ctx, pc, knownUsers, await deps.access.list({ pcId, limit: 50 }), deps.access.maxHours) : undefined;
        return html(reply, pcPage(ctx, { pc, knownUsers, requests, done: field(req.query, 'done'), recovery: deps.recovery?.target != null, ...(access && { access }) }));
      });

      // The two-person rule (access.approvals 1).
      const accessRequests = (): AccessRequests => {
        if (!deps.access) throw new WebError('ERR_WEB_NOT_FOUND', 'there is no such page');
        return deps.access;
      };

      web.get('/access', async (req, reply) => {
        const ctx = page(req, reply);
        if (!ctx) return reply;
        const access = accessRequests();
        const [pending, live, recent] = await Promise.all([access.list({ status: 'pending', limit: 500 }), access.list({ live: true, limit: 500 }), access.list({ limit: 50 })]);
        return html(reply, accessPage(ctx, { required: access.required, pending, live, recent, done: field(req.query, 'done') }));
      });

      web.post('/access/requests', async (req, reply) => {
        const session = posted(req, 'data');
        const pcId = field(req.body, 'pcId') ?? '';
        const hoursText = (field(req.body, 'hours') ?? '').trim();
        const hours = /^\d{1,2}(\.\d{1,4})?$/.test(hoursText) ? Number(hoursText) : NaN;
        await accessRequests().request(session.admin, pcId, field(req.body, 'user') ?? '', field(req.body, 'reason') ?? '', hours);
        return reply.redirect(backTo(`/admin/pcs/${encodeURIComponent(pcId)}`, '/admin/access', 'asked'), 303);
      });

      web.post('/access/:id/approve', async (req, reply) => {
        const session = posted(req, 'approver');
        await accessRequests().approve((req.params as { id: string }).id, session.admin);
        return reply.redirect('/admin/access?done=approved', 303);
      });

      web.post('/access/:id/deny', async (req, reply) => {
        const session = posted(req, 'approver');
        await accessRequests().deny((req.params as { id: string }).id, session.admin, field(req.body, 'note') ?? '');
        return reply.redirect('/admin/access?done=denied', 303);
      });

      // Sharing: share rules (role sharing to change them).
      const shareRules = (): ShareRules => {
        if (!deps.sharing) throw new WebError('ERR_WEB_NOT_FOUND', 'there is no such page');
        return deps.sharing;
      };

      web.get('/sharing', async (req, reply) => {
        const ctx = page(req, reply);
        if (!ctx) return reply;
        const sharing = shareRules();
        const [live, recent] = await Promise.all([sharing.list({ live: true, limit: 500 }), sharing.list({ limit: 50 })]);
        return html(reply, sharingPage(ctx, { live, recent, defaultDays: sharing.defaultDays, maxDays: sharing.maxDays, done: field(req.query, 'done') }));
      });

      web.post('/sharing', async (req, reply) => {
        const session = posted(req, 'sharing');
        const sharing = shareRules();
        const days = wholeNumber(field(req.body, 'days'), 'days', 1, sharing.maxDays);
        if (days === undefined) throw new WebError('ERR_WEB_INPUT', `days must be a whole number from 1 to ${sharing.maxDays} (sharing.maxDays)`);
        const kind = field(req.body, 'granteeKind');
        const access = field(req.body, 'access');
        await sharing.create(session.admin, {
          pcId: field(req.body, 'pcId') ?? '',
          user: field(req.body, 'user') ?? '',
          folder: field(req.body, 'folder') ?? '',
          // Kind and access are checked by ShareRules.create (a wrong value is ERR_SHARE_INPUT, 400).
          grantee: { kind: kind as 'user' | 'group', name: field(req.body, 'granteeName') ?? '' },
          access: access as 'read' | 'readwrite',
          days,
        });
        return reply.redirect('/admin/sharing?done=created', 303);
      });

      web.post('/sharing/:id/revoke', async (req, reply) => {
        const session = posted(req, 'sharing');
        await shareRules().revoke(session.admin, (req.params as { id: string }).id);
        return reply.redirect('/admin/sharing?done=revoked', 303);
      });

      if (deps.files) registerFileBrowser(web, deps.files, (req, reply) => page(req, reply));

      web.get('/requests', async (req, reply) => {
        const ctx = page(req, reply);
        if (!ctx) return reply;
        const pcId = field(req.query, 'pc') || undefined;
        const pending = await deps.store.listRequests({ state: 'pending', ...(pcId !== undefined && { pcId }), limit: 500 });
        return html(reply, requestsPage(ctx, { pending, pcId, done: field(req.query, 'done') }));
      });

      web.post('/requests/:id/approve', async (req, reply) => {
        const session = posted(req, 'approver');
        const { id } = req.params as { id: string };
        const request = await deps.store.getRequest(id);
        if (!request) throw new WebError('ERR_WEB_NOT_FOUND', 'there is no such take-out request');
        const days = wholeNumber(field(req.body, 'days'), 'days', 1, request.maxDays);
        if (days === undefined) throw new WebError('ERR_WEB_INPUT', `days must be a whole number from 1 to ${request.maxDays} (the PC's takeout.maxDays)`);
        await deps.takeout.approve(id, session.admin.name, days);
        return reply.redirect(backTo(field(req.body, 'back'), '/admin/requests', 'approved'), 303);
      });

      web.post('/requests/:id/deny', async (req, reply) => {
        const session = posted(req, 'approver');
        const { id } = req.params as { id: string };
        const note = (field(req.body, 'note') ?? '').trim();
        if (note === '' || note.length > MAX_NOTE) throw new WebError('ERR_WEB_INPUT', `a denial needs a note of 1 to ${MAX_NOTE} characters for the user`);
        await deps.takeout.deny(id, session.admin.name, note);
        return reply.redirect(backTo(field(req.body, 'back'), '/admin/requests', 'denied'), 303);
      });

      web.post('/revocations', async (req, reply) => {
        const session = posted(req, 'approver');
        const jti = field(req.body, 'jti') ?? '';
        if (jti === '') throw new WebError('ERR_WEB_INPUT', 'jti is required');
        await deps.takeout.revoke(jti, session.admin.name);
        return reply.redirect(backTo(field(req.body, 'back'), '/admin/requests', 'revoked'), 303);
      });

      web.get('/audit', async (req, reply) => {
        const ctx = page(req, reply);
        if (!ctx) return reply;
        const pageNo = wholeNumber(field(req.query, 'page'), 'page', 1, 1_000_000) ?? 1;
        const { entries, more } = await readTrailPage(deps.audit.file, (pageNo - 1) * AUDIT_PAGE, AUDIT_PAGE);
        return html(reply, auditPage(ctx, { entries, page: pageNo, more }));
      });

      if (deps.recovery) {
        registerRecoveryRoutes(web, {
          deps: deps.recovery,
          getPc: (pcId) => deps.store.getPc(pcId),
          isOnline: (pc, now) => isOnline(pc, now - deps.onlineWindowMs, deps.hub.isConnected(pc.pcId)),
          page: (req, reply, role) => {
            const ctx = page(req, reply, role);
            return ctx && { ctx, session: sessionOf(req)! };
          },
          posted: (req, role) => posted(req, role),
          adminOf: (req) => sessionOf(req)?.admin.name,
          field,
          clock: deps.clock,
          logger: deps.logger,
        });
      }
    },
    { prefix: '/admin' },
  );
}
