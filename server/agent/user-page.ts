/**
 * The user's own page on the agent: `GET /` from the guest's browser
 * (`https://svc:8443/`), Basic-authenticated as the drive is. It shows the
 * PC's state (online, take-out until T, locked), the user's take-out (pending,
 * approved with a countdown to its end, denied with the approver's note,
 * expired unanswered), the form to ask for a take-out period, and the notices
 * of every access to their documents by an administrator or a share's
 * grantee (who, when, what), newest first, from their vault (the same words
 * as the notice file at the root of their drive: shares/vault/notice-text.ts).
 *
 * WebDAV answers at `/` too: only a GET of exactly `/` that accepts
 * `text/html` is the page (`isUserPageRequest`); the Windows client's GET
 * and PROPFIND of `/` never ask for HTML and reach the share as before.
 *
 * Security considerations:
 * - Every value on the page (user name, reason, note, approver, PC id, the
 *   notices' names, paths and request ids) is
 *   HTML-escaped by the `html` template tag; nothing is inserted unescaped.
 * - The page's one script and one style sheet are constants, allowed by
 *   their SHA-256 in the Content-Security-Policy; no other script, style,
 *   frame, form target or connection but this origin is allowed
 *   (`default-src 'none'`, `frame-ancestors 'none'`, `form-action 'none'`).
 * - The form is sent by the script as same-origin JSON to the take-out API,
 *   so the API's cross-site guard (http/api-guard.ts) holds for it as for
 *   any other client; the page adds no route that changes state.
 * - The locked page (no one can log in) says only what the plain locked
 *   sentence says. Answers are `no-store` and never framed.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Gate } from '../../policy/gate.js';
import type { TakeoutStatus } from '../../policy/takeout/agent/status.js';
import type { Takeout } from '../../policy/takeout/agent/takeout.js';
import type { ApiCaller } from './takeout-routes.js';
import type { AccessNotice } from '../../shares/vault/notices.js';
import { NOTICES_FILE_NAME } from '../../shares/vault/notices.js';
import { noticeTime, noticeWhat, noticeWho, shown } from '../../shares/vault/notice-text.js';

/** How many notices the page shows (the newest); the notice file has them all. */
export const PAGE_NOTICES = 1000;

/** The internal route the page is served on (the app rewrites a browser's GET of `/` to it). */
export const USER_PAGE_ROUTE = '/.mydoc-user-page';

/** Whether a request is a browser's GET of `/` asking for HTML (the user's page), not a WebDAV client's. */
export function isUserPageRequest(method: string | undefined, url: string | undefined, accept: string | string[] | undefined): boolean {
  if (method !== 'GET' || url !== '/' || typeof accept !== 'string') return false;
  return accept.split(',').some((range) => {
    const [type, ...params] = range.split(';').map((p) => p.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    return type === 'text/html' && (q === undefined || Number(q.slice(2)) > 0);
  });
}

/** HTML text whose interpolated values were escaped (or are HTML themselves). */
class Html {
  constructor(readonly text: string) {}
}

function escape(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

type Part = Html | string | number | readonly Html[] | undefined | false;

/** Template tag: strings and numbers are escaped; Html (and arrays of it) is kept; undefined and false are nothing. */
function html(strings: TemplateStringsArray, ...parts: Part[]): Html {
  let out = strings[0]!;
  parts.forEach((part, i) => {
    if (part instanceof Html) out += part.text;
    else if (Array.isArray(part)) out += part.map((p: Html) => p.text).join('');
    else if (part !== undefined && part !== false) out += escape(String(part));
    out += strings[i + 1]!;
  });
  return new Html(out);
}

const STYLE = `body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;color:#1d2430}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}section{border-top:1px solid #d5d9e0}
.state{padding:.6rem .8rem;border-radius:.4rem;background:#eef3fb}.state.takeout{background:#fff5e0}.state.locked{background:#fde8e8}
.note{white-space:pre-wrap}table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{text-align:left;padding:.2rem .4rem;border-bottom:1px solid #e4e7ec;vertical-align:top}.deny{color:#a11}label{display:block;margin:.6rem 0 .2rem}textarea{width:100%;min-height:4rem}
button{margin-top:.8rem;padding:.4rem 1rem}#result{margin-top:.6rem}.muted{color:#5a6473}`;

const SCRIPT = `(function () {
  var form = document.getElementById('ask');
  if (form) form.addEventListener('submit', function (event) {
    event.preventDefault();
    var out = document.getElementById('result');
    out.textContent = 'Sending...';
    fetch('/api/takeout/requests', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ days: Number(form.elements.days.value), reason: form.elements.reason.value })
    }).then(function (res) {
      if (res.ok) { location.reload(); return; }
      return res.json().then(function (b) { out.textContent = (b && b.error && b.error.message) || ('refused (' + res.status + ')'); },
        function () { out.textContent = 'refused (' + res.status + ')'; });
    }, function () { out.textContent = 'the request did not reach this PC'; });
  });
  var left = document.querySelector('[data-remaining]');
  if (left) {
    var end = Date.now() + Number(left.getAttribute('data-remaining')) * 1000;
    var tick = function () {
      var s = Math.max(0, Math.floor((end - Date.now()) / 1000));
      var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
      left.textContent = d + ' d ' + h + ' h ' + m + ' min ' + (s % 60) + ' s';
      if (s > 0) setTimeout(tick, 1000);
    };
    tick();
  }
})();`;

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('base64');
const CSP = [
  "default-src 'none'",
  `script-src 'sha256-${sha256(SCRIPT)}'`,
  `style-src 'sha256-${sha256(STYLE)}'`,
  "connect-src 'self'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** A time as the page shows it: `2026-12-02 16:47 UTC`. */
function when(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

/** Time left as the page shows it before the script counts down: `2 d 3 h 4 min 5 s`. */
function duration(seconds: number): string {
  return `${Math.floor(seconds / 86_400)} d ${Math.floor((seconds % 86_400) / 3600)} h ${Math.floor((seconds % 3600) / 60)} min ${seconds % 60} s`;
}

function page(title: string, body: Html): string {
  return html`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title><style>${new Html(STYLE)}</style></head>
<body>${body}<script>${new Html(SCRIPT)}</script></body></html>
`.text;
}

function takeoutSection(status: TakeoutStatus, online: boolean, maxDays: number): Html {
  const parts: Html[] = [];
  const { key, request, ended } = status;
  if (key?.valid) {
    parts.push(html`<p id="approved">Approved: you may use your documents away from the company network until <strong>${when(key.expires)}</strong>.
Time left: <strong data-remaining="${key.remainingSeconds}">${duration(key.remainingSeconds)}</strong>.</p>`);
  } else if (key) {
    parts.push(html`<p id="approved">Your take-out key (until ${when(key.expires)}) is not valid now${key.refusal ? html` (${key.refusal})` : ''}.</p>`);
  }
  if (request) {
    parts.push(html`<p id="pending">Pending: you asked on ${when(request.requested)} for ${request.days} day(s). Reason: <span class="note">${request.reason}</span><br>
<span class="muted">An administrator has not answered yet.</span></p>`);
  }
  if (ended?.outcome === 'denied') {
    parts.push(html`<p id="denied">Denied: your request of ${when(ended.requested)} for ${ended.days} day(s) was denied by ${ended.by} on ${when(ended.at)}.
Note: <span class="note">${ended.note || '(none)'}</span></p>`);
  } else if (ended?.outcome === 'expired') {
    parts.push(html`<p id="expired">Expired: your request of ${when(ended.requested)} for ${ended.days} day(s) was not answered in time and expired on ${when(ended.at)}. You can ask again.</p>`);
  }
  if (parts.length === 0) parts.push(html`<p class="muted">You have no take-out request.</p>`);
  const form = online
    ? html`<form id="ask"><label for="days">Days (1 to ${maxDays})</label><input id="days" name="days" type="number" min="1" max="${maxDays}" value="1" required>
<label for="reason">Reason</label><textarea id="reason" name="reason" maxlength="500" required></textarea>
<button type="submit">Ask for a take-out period</button><div id="result" role="status"></div>
<p class="muted">A new request replaces your current request or key.</p></form>`
    : html`<p class="muted">A take-out period can only be asked for on the company network.</p>`;
  return html`<section><h2>Take-out</h2>${parts}${form}</section>`;
}

/** The notices (newest first), or undefined when the vault could not be opened for them. */
function noticesSection(notices: readonly AccessNotice[] | undefined): Html {
  const head = html`<h2>Access notices</h2>`;
  if (!notices) return html`<section id="notices">${head}<p class="muted">Your access notices cannot be shown now: your documents could not be opened. They are kept; try again later.</p></section>`;
  if (notices.length === 0) return html`<section id="notices">${head}<p class="muted">No administrator or share grantee has accessed your documents.</p></section>`;
  const rows = notices.map(
    (n) => html`<tr${n.decision === 'deny' ? html` class="deny"` : ''}><td>${noticeTime(n)}</td><td>${noticeWho(n)}</td><td>${noticeWhat(n)}</td><td>${shown(n.requestId)}</td></tr>`,
  );
  const more = notices.length >= PAGE_NOTICES ? html`<p class="muted">The newest ${PAGE_NOTICES} are shown; "${NOTICES_FILE_NAME}" at the root of your drive lists up to 10,000.</p>` : '';
  return html`<section id="notices">${head}<p class="muted">Every access to your documents by an administrator or a share grantee, newest first. They are also listed in "${NOTICES_FILE_NAME}" at the root of your drive.</p>
<table><thead><tr><th>When</th><th>Who</th><th>What</th><th>Request</th></tr></thead><tbody>${rows}</tbody></table>${more}</section>`;
}

function userPage(opts: { pcId: string; user: string; online: boolean; status: TakeoutStatus; maxDays: number; notices: readonly AccessNotice[] | undefined }): string {
  const { key } = opts.status;
  const state = opts.online
    ? html`<p class="state online" id="state">Online: the company network is reachable; your documents are served.</p>`
    : html`<p class="state takeout" id="state">Take-out: your documents are served away from the company network until ${key ? when(key.expires) : '-'}.</p>`;
  return page(
    `My documents on ${opts.pcId}`,
    html`<h1>My documents on ${opts.pcId}</h1><p>Signed in as <strong id="user">${opts.user}</strong>.</p>${state}
${takeoutSection(opts.status, opts.online, opts.maxDays)}
${noticesSection(opts.notices)}`,
  );
}

function send(reply: FastifyReply, status: number, text: string): FastifyReply {
  return reply
    .code(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('content-security-policy', CSP)
    .header('x-frame-options', 'DENY')
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-store')
    .send(text);
}

/** The locked state's page: what the plain locked sentence says, as HTML (no login is possible). */
export function sendLockedPage(reply: FastifyReply, status: number, message: string): FastifyReply {
  return send(reply, status, page('This PC is locked', html`<h1>This PC is locked</h1><p class="state locked" id="state">Locked: ${message}</p>`));
}

export interface UserPageOptions {
  takeout: Takeout;
  gate: Gate;
  pcId: string;
  /** `takeout.maxDays`: the form's limit. */
  maxDays: number;
  /** Authenticates the request as the drive does; undefined when it answered 401 already. */
  authenticate: (req: FastifyRequest, reply: FastifyReply) => Promise<ApiCaller | undefined>;
  /** The user's newest `limit` access notices, newest first (their vault opens for it); rejects when it cannot open. */
  notices: (user: string, limit: number) => Promise<readonly AccessNotice[]>;
}

export function registerUserPage(app: FastifyInstance, opts: UserPageOptions): void {
  app.get(USER_PAGE_ROUTE, async (req, reply) => {
    const caller = await opts.authenticate(req, reply);
    if (!caller) return reply;
    const status = await opts.takeout.status(caller.user);
    const notices = await opts.notices(caller.user, PAGE_NOTICES).catch((err: unknown) => {
      req.log.warn({ code: (err as { code?: unknown }).code }, 'user page: the notices could not be read');
      return undefined;
    });
    return send(reply, 200, userPage({ pcId: opts.pcId, user: caller.user, online: opts.gate.isReachable, status, maxDays: opts.maxDays, notices }));
  });
}
