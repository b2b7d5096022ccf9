/**
 * The administrators' pages as HTML: the login, the PC list with its
 * filters and alert counts, a PC's own page, the pending take-out requests,
 * the audit trail, and the error page. Plain server-rendered HTML with one
 * stylesheet and no script; every form that changes state carries the
 * session's CSRF token.
 *
 * Security considerations: every value from a PC, a user or a query string
 * goes through `html` (html.ts), which escapes it; links are built with
 * `url()`/`segment()`. Approve and deny buttons are rendered only for the
 * approver role (the routes check the role again).
 */
import type { TrailEntry } from './audit-trail.js';
import { formatAge, formatTime, gateText, isOnline } from './format.js';
import { html, segment, url, type Html } from './html.js';
import type { Admin } from '../admins.js';
import type { AlertCounts, PcFilter, PcRow, PcSort, TakeoutRequestRow } from '../store/store.js';

export interface PageContext {
  admin: Admin;
  csrf: string;
  now: number;
  onlineSince: number;
  isConnected: (pcId: string) => boolean;
}

export type Section = 'pcs' | 'requests' | 'access' | 'sharing' | 'audit';

/** A whole page: the header with the sections and the administrator, then `body`. */
export function layout(title: string, body: Html, ctx?: PageContext, section?: Section): string {
  const nav = (href: string, name: Section, label: string) => html`<a href="${href}" class="${section === name ? 'here' : ''}">${label}</a>`;
  const header = ctx
    ? html`<header><span class="brand">mydoc console</span><nav>${nav('/admin/pcs', 'pcs', 'PCs')}${nav('/admin/requests', 'requests', 'Take-out requests')}${nav('/admin/access', 'access', 'Access to contents')}${nav('/admin/sharing', 'sharing', 'Sharing')}${nav('/admin/audit', 'audit', 'Audit trail')}</nav>
<div class="who"><span>${ctx.admin.name} <span class="muted">(${[...ctx.admin.roles].join(', ')})</span></span>
<form method="post" action="/admin/logout"><input type="hidden" name="csrf" value="${ctx.csrf}"><button class="secondary" type="submit">Log out</button></form></div></header>`
    : html``;
  return `<!doctype html>\n${html`<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · mydoc console</title><link rel="stylesheet" href="/admin/style.css"></head>
<body>${header}<main>${body}</main></body></html>`.text}\n`;
}

export function loginPage(opts: { csrf: string; name?: string; error?: string }): string {
  return layout(
    'Log in',
    html`<form class="login" method="post" action="/admin/login"><h1>mydoc console</h1>
${opts.error ? html`<p class="error" role="alert">${opts.error}</p>` : ''}
<input type="hidden" name="csrf" value="${opts.csrf}">
<label for="name">User name</label><input id="name" name="name" autocomplete="username" required value="${opts.name ?? ''}" autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button></form>`,
  );
}

export function errorPage(status: number, message: string, ctx?: PageContext): string {
  return layout(`Error ${status}`, html`<h1>Error ${status}</h1><p class="error" role="alert">${message}</p><p><a href="/admin/pcs">Back to the PC list</a></p>`, ctx);
}

function alertsBar(a: AlertCounts): Html {
  const box = (href: string, n: number, label: string) => html`<a href="${href}" class="${n > 0 ? 'hot' : ''}" data-alert="${label}"><b>${n}</b>${label}</a>`;
  return html`<div class="alerts">
${box(url('/admin/pcs', { filter: 'offline', days: 30 }), a.notSeen30Days, 'not seen for 30 days')}
${box(url('/admin/pcs', { filter: 'no-backup', days: 7 }), a.noBackup7Days, 'no backup for 7 days')}
${box('/admin/requests', a.pendingRequests, 'pending take-out requests')}
${box(url('/admin/pcs', { filter: 'takeout', sort: 'gate' }), a.takeoutsEndingIn24h, 'take-outs ending within 24 h')}
</div>`;
}

export interface ListView {
  filter: PcFilter;
  days: number | undefined;
  search: string;
  sort: PcSort;
  descending: boolean;
  page: number;
  pageSize: number;
}

/** The list's query parameters for `view`, with `change` applied. */
export function listQuery(view: ListView, change: Partial<ListView> = {}): Record<string, string | number | undefined> {
  const v = { ...view, ...change };
  return {
    filter: v.filter === 'all' ? undefined : v.filter,
    days: v.filter === 'offline' || v.filter === 'no-backup' ? v.days : undefined,
    q: v.search,
    sort: v.sort === 'pcId' ? undefined : v.sort,
    desc: v.descending ? 1 : undefined,
    page: v.page > 1 ? v.page : undefined,
  };
}

const FILTERS: readonly [PcFilter, string][] = [
  ['all', 'all PCs'],
  ['online', 'online'],
  ['offline', 'offline for more than N days'],
  ['no-backup', 'no backup for more than N days'],
  ['takeout', 'take-out active'],
  ['pending', 'pending requests'],
];
const SORTS: readonly [PcSort, string][] = [
  ['pcId', 'PC'],
  ['lastSeen', 'last seen'],
  ['lastBackup', 'last backup'],
  ['gate', 'gate state'],
  ['pending', 'pending requests'],
];

function gateCell(pc: PcRow): Html {
  const text = gateText(pc);
  const cls = pc.status?.gate === 'takeout' ? 'takeout' : pc.status?.gate === 'locked' ? 'locked' : '';
  return html`<span class="${cls}">${text}</span>`;
}

function presenceCell(pc: PcRow, ctx: PageContext): Html {
  const online = isOnline(pc, ctx.onlineSince, ctx.isConnected(pc.pcId));
  const seen = pc.lastSeenAt === null ? html`<span class="muted">never seen</span>` : html`<span class="muted" title="${formatTime(pc.lastSeenAt)}">seen ${formatAge(ctx.now - pc.lastSeenAt)} ago</span>`;
  return html`<span class="${online ? 'on' : 'off'}">${online ? 'online' : 'offline'}</span><br>${seen}`;
}

function backupCell(pc: PcRow, now: number): Html {
  const at = pc.status?.lastBackupAt ?? null;
  return at === null ? html`<span class="muted">none</span>` : html`${formatTime(at)}<br><span class="muted">${formatAge(now - at)} ago</span>`;
}

export function pcListPage(ctx: PageContext, opts: { view: ListView; rows: PcRow[]; total: number; alerts: AlertCounts }): string {
  const { view, rows, total } = opts;
  const pages = Math.max(1, Math.ceil(total / view.pageSize));
  const sortLink = (sort: PcSort, label: string) => {
    const descending = view.sort === sort ? !view.descending : false;
    const mark = view.sort === sort ? (view.descending ? ' ▼' : ' ▲') : '';
    return html`<a href="${url('/admin/pcs', listQuery(view, { sort, descending, page: 1 }))}">${label}${mark}</a>`;
  };
  const body = html`${alertsBar(opts.alerts)}
<h1>PCs</h1>
<form class="filters" method="get" action="/admin/pcs">
<label>Show<select name="filter">${FILTERS.map(([v, l]) => html`<option value="${v}"${view.filter === v ? html` selected` : ''}>${l}</option>`)}</select></label>
<label>N days<input type="number" name="days" min="1" max="3650" value="${view.days ?? ''}"></label>
<label>PC or user<input type="search" name="q" maxlength="100" value="${view.search}"></label>
<label>Sort by<select name="sort">${SORTS.map(([v, l]) => html`<option value="${v}"${view.sort === v ? html` selected` : ''}>${l}</option>`)}</select></label>
<label>Descending<input type="checkbox" name="desc" value="1"${view.descending ? html` checked` : ''}></label>
<button type="submit">Apply</button>
<a href="${url('/admin/pcs.csv', { ...listQuery(view), page: undefined })}" download>Export CSV</a>
</form>
<table id="pcs"><thead><tr><th>${sortLink('pcId', 'PC')}</th><th>${sortLink('lastSeen', 'Online / last seen')}</th><th>${sortLink('gate', 'Gate')}</th><th>Users</th>
<th>${sortLink('lastBackup', 'Last complete backup')}</th><th>Agent</th><th>Device id</th><th>${sortLink('pending', 'Pending')}</th></tr></thead><tbody>
${rows.length === 0 ? html`<tr><td colspan="8" class="muted">No PC matches.</td></tr>` : ''}
${rows.map(
  (pc) => html`<tr data-pc="${pc.pcId}"><td><a href="/admin/pcs/${segment(pc.pcId)}">${pc.pcId}</a></td><td>${presenceCell(pc, ctx)}</td><td>${gateCell(pc)}</td>
<td>${(pc.status?.users ?? []).join(', ')}</td><td>${backupCell(pc, ctx.now)}</td><td class="mono">${pc.status?.agentVersion ?? '—'}</td>
<td class="mono" title="${pc.deviceId ?? ''}">${pc.deviceId ? `${pc.deviceId.slice(0, 12)}…` : '—'}</td>
<td class="num">${pc.pendingRequests > 0 ? html`<a href="${url('/admin/requests', { pc: pc.pcId })}">${pc.pendingRequests}</a>` : '0'}</td></tr>`,
)}
</tbody></table>
<div class="pager"><span id="count">${total} PCs · page ${view.page} of ${pages}</span>
${view.page > 1 ? html`<a href="${url('/admin/pcs', listQuery(view, { page: view.page - 1 }))}">← previous</a>` : ''}
${view.page < pages ? html`<a href="${url('/admin/pcs', listQuery(view, { page: view.page + 1 }))}">next →</a>` : ''}</div>`;
  return layout('PCs', body, ctx, 'pcs');
}

function requestActions(ctx: PageContext, r: TakeoutRequestRow, back: string): Html {
  if (!ctx.admin.roles.has('approver')) return html`<span class="muted">approver role needed</span>`;
  if (r.state === 'pending') {
    return html`<form class="inline" method="post" action="/admin/requests/${segment(r.id)}/approve"><input type="hidden" name="csrf" value="${ctx.csrf}"><input type="hidden" name="back" value="${back}">
<input type="number" name="days" min="1" max="${r.maxDays}" value="${Math.min(r.days, r.maxDays)}" aria-label="days" required> days <button type="submit">Approve</button></form>
<form class="inline" method="post" action="/admin/requests/${segment(r.id)}/deny"><input type="hidden" name="csrf" value="${ctx.csrf}"><input type="hidden" name="back" value="${back}">
<input name="note" maxlength="500" placeholder="note to the user" aria-label="note" required> <button class="danger" type="submit">Deny</button></form>`;
  }
  if (r.state === 'approved' && r.jti !== null) {
    return html`<form class="inline" method="post" action="/admin/revocations"><input type="hidden" name="csrf" value="${ctx.csrf}"><input type="hidden" name="back" value="${back}">
<input type="hidden" name="jti" value="${r.jti}"><button class="danger" type="submit">Revoke</button></form>`;
  }
  return html``;
}

function requestsTable(ctx: PageContext, rows: TakeoutRequestRow[], back: string, withPc: boolean): Html {
  if (rows.length === 0) return html`<p class="muted">None.</p>`;
  return html`<table class="requests"><thead><tr>${withPc ? html`<th>PC</th>` : ''}<th>User</th><th>Days asked</th><th>Max</th><th>Reason</th><th>Asked</th><th>State</th><th></th></tr></thead><tbody>
${rows.map(
  (r) => html`<tr data-request="${r.id}">${withPc ? html`<td><a href="/admin/pcs/${segment(r.pcId)}">${r.pcId}</a></td>` : ''}<td>${r.user}</td><td class="num">${r.days}</td><td class="num">${r.maxDays}</td>
<td>${r.reason}</td><td title="${formatTime(r.requestedAt)}">${formatAge(ctx.now - r.requestedAt)} ago</td>
<td>${r.state}${r.decidedBy ? html`<br><span class="muted">by ${r.decidedBy}${r.note ? html`: ${r.note}` : ''}</span>` : ''}${r.until !== null ? html`<br><span class="muted">until ${formatTime(r.until)}</span>` : ''}</td>
<td>${requestActions(ctx, r, back)}</td></tr>`,
)}</tbody></table>`;
}

const NOTICES: Record<string, string> = {
  approved: 'Approved: the take-out key was sent to the PC.',
  denied: 'Denied: the user is told with your note.',
  revoked: 'Revoked: the PC was told.',
};

function notice(done: string | undefined): Html {
  const text = done === undefined ? undefined : NOTICES[done];
  return text ? html`<p class="notice" role="status">${text}</p>` : html``;
}

export function requestsPage(ctx: PageContext, opts: { pending: TakeoutRequestRow[]; pcId: string | undefined; done: string | undefined }): string {
  const back = url('/admin/requests', { pc: opts.pcId });
  const body = html`<h1>Pending take-out requests${opts.pcId ? html` of ${opts.pcId}` : ''}</h1>${notice(opts.done)}
${opts.pcId ? html`<p><a href="/admin/requests">All PCs</a></p>` : ''}
${requestsTable(ctx, opts.pending, back, true)}`;
  return layout('Take-out requests', body, ctx, 'requests');
}

/** A known user of a PC, marked whether they are signed in now (their session is open on a PC online) or only known. */
function knownUser(name: string, signedIn: boolean, link: string | undefined): Html {
  const label = link === undefined ? html`${name}` : html`<a href="${link}">${name}</a>`;
  return html`<span class="user" data-user="${name}" data-signed-in="${signedIn ? 'yes' : 'no'}">${label} <span class="muted">(${signedIn ? 'signed in now' : 'known, not signed in'})</span></span> `;
}

/**
 * A PC's page. `knownUsers`: every user the PC has ever reported (the store's
 * known users); those its current status names are marked signed in while it is online.
 */
export function pcPage(ctx: PageContext, opts: { pc: PcRow; knownUsers: readonly string[]; requests: TakeoutRequestRow[]; done: string | undefined; recovery?: boolean; access?: Html }): string {
  const { pc, knownUsers } = opts;
  const online = isOnline(pc, ctx.onlineSince, ctx.isConnected(pc.pcId));
  const signedIn = new Set(online ? (pc.status?.users ?? []) : []);
  const filesOf = (u: string) => `/admin/pcs/${segment(pc.pcId)}/files/${segment(u)}/`;
  const back = `/admin/pcs/${segment(pc.pcId)}`;
  const body = html`<h1>PC ${pc.pcId}</h1>${notice(opts.done)}
<dl class="facts">
<dt>Link</dt><dd><span class="${online ? 'on' : 'off'}">${online ? 'online' : 'offline'}</span>, last seen ${formatTime(pc.lastSeenAt)}${pc.lastSeenAt !== null ? ` (${formatAge(ctx.now - pc.lastSeenAt)} ago)` : ''}</dd>
<dt>Gate</dt><dd>${gateCell(pc)}</dd>
<dt>Users</dt><dd id="users">${knownUsers.length === 0 ? '—' : knownUsers.map((u) => knownUser(u, signedIn.has(u), undefined))}</dd>
${ctx.admin.roles.has('data') && knownUsers.length > 0 ? html`<dt>Files</dt><dd class="files">${knownUsers.map((u) => knownUser(u, signedIn.has(u), filesOf(u)))}</dd>` : ''}
<dt>Last complete backup</dt><dd>${backupCell(pc, ctx.now)}</dd>
<dt>Agent version</dt><dd class="mono">${pc.status?.agentVersion ?? '—'}</dd>
<dt>Device id</dt><dd class="mono">${pc.deviceId ?? 'not enrolled'}</dd>
<dt>Added</dt><dd>${formatTime(pc.addedAt)}</dd>
<dt>Enrolled</dt><dd>${formatTime(pc.enrolledAt)}</dd>
${pc.removedAt !== null ? html`<dt>Removed</dt><dd>${formatTime(pc.removedAt)}</dd>` : ''}
</dl>
${opts.recovery && !online && pc.devicePublicPem !== null && ctx.admin.roles.has('data') ? html`<p><a href="${`${back}/recovery`}" id="recovery-link">Recovery view: the tree of its latest NAS snapshot</a></p>` : ''}
<h2>Take-out requests</h2>
${requestsTable(ctx, opts.requests, back, false)}
${opts.access ?? ''}`;
  return layout(`PC ${pc.pcId}`, body, ctx, 'pcs');
}

export function auditPage(ctx: PageContext, opts: { entries: TrailEntry[]; page: number; more: boolean }): string {
  const body = html`<h1>Audit trail</h1><p class="muted">Newest first. The hash chain is checked by <span class="mono">mydoc console audit verify</span>.</p>
<table id="audit"><thead><tr><th>#</th><th>Time</th><th>Who</th><th>What</th><th>On</th><th>Decision</th><th>Reason</th></tr></thead><tbody>
${opts.entries.map((e) =>
  'record' in e
    ? html`<tr><td class="num">${e.record.seq}</td><td>${e.record.time.replace('T', ' ').slice(0, 19)}</td><td>${e.record.actor}</td><td class="mono">${e.record.action}</td><td>${e.record.target ?? ''}</td><td>${e.record.decision}</td><td>${e.record.reason ?? ''}</td></tr>`
    : html`<tr><td colspan="7" class="locked">damaged line: <span class="mono">${e.damaged}</span></td></tr>`,
)}
</tbody></table>
<div class="pager">page ${opts.page}
${opts.page > 1 ? html`<a href="${url('/admin/audit', { page: opts.page - 1 })}">← newer</a>` : ''}
${opts.more ? html`<a href="${url('/admin/audit', { page: opts.page + 1 })}">older →</a>` : ''}</div>`;
  return layout('Audit trail', body, ctx, 'audit');
}
