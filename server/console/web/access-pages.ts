/**
 * The two-person rule's parts of the administrators' page: /admin/access
 * (the pending access requests with approve / deny, the live approvals, the
 * latest decisions) and the "request access to contents" form on a PC's page
 * (shown to the `data` role when access.approvals is 1).
 *
 * Security considerations: every value (names, reasons, notes, PC ids) goes
 * through `html` (escaped); every form carries the session's CSRF token;
 * approve / deny are shown only to approvers, and never on the approver's
 * own request (the route and AccessRequests refuse it again).
 */
import { normalizeUserName } from '../../../policy/directory/user-name.js';
import type { AccessRequestRow, PcRow } from '../store/store.js';
import { formatAge, formatTime } from './format.js';
import { html, segment, type Html } from './html.js';
import { layout, type PageContext } from './pages.js';

const NOTICES: Record<string, string> = {
  asked: 'Asked: another administrator with the approver role must approve it.',
  approved: 'Approved: the requester can read the contents for the period asked.',
  denied: 'Denied: the requester sees your note.',
};

function notice(done: string | undefined): Html {
  const text = done === undefined ? undefined : NOTICES[done];
  return text ? html`<p class="notice" role="status">${text}</p>` : html``;
}

function actions(ctx: PageContext, r: AccessRequestRow): Html {
  if (r.status !== 'pending') return html``;
  if (!ctx.admin.roles.has('approver')) return html`<span class="muted">approver role needed</span>`;
  const own = normalizeUserName(ctx.admin.name) === r.admin;
  const approve = own
    ? html`<span class="muted">your own request: another approver decides</span>`
    : html`<form class="inline" method="post" action="/admin/access/${segment(r.id)}/approve"><input type="hidden" name="csrf" value="${ctx.csrf}"><button type="submit">Approve</button></form>`;
  return html`${approve}
<form class="inline" method="post" action="/admin/access/${segment(r.id)}/deny"><input type="hidden" name="csrf" value="${ctx.csrf}">
<input name="note" maxlength="500" placeholder="note to the requester" aria-label="note" required> <button class="danger" type="submit">Deny</button></form>`;
}

function table(ctx: PageContext, rows: AccessRequestRow[], id: string): Html {
  if (rows.length === 0) return html`<p class="muted">None.</p>`;
  return html`<table id="${id}" class="requests"><thead><tr><th>Administrator</th><th>PC</th><th>User</th><th>Hours</th><th>Reason</th><th>Asked</th><th>State</th><th></th></tr></thead><tbody>
${rows.map(
  (r) => html`<tr data-access="${r.id}"><td>${r.admin}</td><td><a href="/admin/pcs/${segment(r.pcId)}">${r.pcId}</a></td><td>${r.user}</td><td class="num">${r.hours}</td>
<td>${r.reason}</td><td title="${formatTime(r.createdAt)}">${formatAge(ctx.now - r.createdAt)} ago</td>
<td>${r.status}${r.decidedBy ? html`<br><span class="muted">by ${r.decidedBy}${r.note ? html`: ${r.note}` : ''}</span>` : ''}${r.until !== null ? html`<br><span class="muted">until ${formatTime(r.until)}</span>` : ''}</td>
<td>${actions(ctx, r)}</td></tr>`,
)}</tbody></table>`;
}

export function accessPage(ctx: PageContext, opts: { required: boolean; pending: AccessRequestRow[]; live: AccessRequestRow[]; recent: AccessRequestRow[]; done: string | undefined }): string {
  const body = html`<h1>Access to contents</h1>${notice(opts.done)}
${opts.required
  ? html`<p class="muted">The two-person rule is on: reading the contents of a user's files needs an access request approved by a different administrator. Listing names and sizes needs only the data role.</p>`
  : html`<p class="muted">The two-person rule is off (access.approvals 0): administrators with the data role read contents without an access request.</p>`}
<h2>Pending</h2>${table(ctx, opts.pending, 'pending')}
<h2>Live approvals</h2>${table(ctx, opts.live, 'live')}
<h2>Latest</h2>${table(ctx, opts.recent, 'recent')}`;
  return layout('Access to contents', body, ctx, 'access');
}

/** The PC page's section: the form to ask for access to a user's contents (any user the PC has ever reported: `knownUsers`), and this PC's requests. */
export function pcAccessSection(ctx: PageContext, pc: PcRow, knownUsers: readonly string[], rows: AccessRequestRow[], maxHours: number): Html {
  const users = knownUsers;
  const form = ctx.admin.roles.has('data')
    ? users.length === 0
      ? html`<p class="muted">The PC has reported no users yet.</p>`
      : html`<form class="inline" id="access-request" method="post" action="/admin/access/requests"><input type="hidden" name="csrf" value="${ctx.csrf}"><input type="hidden" name="pcId" value="${pc.pcId}">
<label>User<select name="user">${users.map((u) => html`<option value="${u}">${u}</option>`)}</select></label>
<label>Hours<input type="number" name="hours" min="0.25" max="${maxHours}" step="0.25" value="${Math.min(1, maxHours)}" required></label>
<label>Reason<input name="reason" maxlength="500" required></label>
<button type="submit">Request access to contents</button></form>`
    : html`<p class="muted">The data role is needed to ask for access to contents.</p>`;
  return html`<h2>Access to contents</h2><p class="muted">Reading file contents needs an access request approved by another administrator (at most ${maxHours} h).</p>
${form}${table(ctx, rows, 'pc-access')}`;
}
