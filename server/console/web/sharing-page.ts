/**
 * The sharing page of the administrators' page: /admin/sharing lists the
 * share rules (live ones first, then the latest revoked or expired), with
 * a form to create one (owner PC and user, folder, grantee user or group,
 * read or readwrite, expiry in days) and a revoke button per live rule.
 * Creating and revoking need the `sharing` role (the routes and ShareRules
 * refuse it again); anyone logged in may look.
 *
 * Security considerations: every value (names, folders, grantees) goes
 * through `html` (escaped); every form carries the session's CSRF token.
 */
import type { ShareRuleRow } from '../store/store.js';
import { formatTime } from './format.js';
import { html, segment, type Html } from './html.js';
import { layout, type PageContext } from './pages.js';

const NOTICES: Record<string, string> = {
  created: 'Created: the rule is signed and sent to the PC (at once when it is connected, else at its next connect).',
  revoked: 'Revoked: a connected PC stops serving the share at once.',
};

function state(ctx: PageContext, r: ShareRuleRow): string {
  if (r.revokedAt !== null) return `revoked ${formatTime(r.revokedAt)} by ${r.revokedBy ?? '?'}`;
  return r.expiresAt <= ctx.now ? `expired ${formatTime(r.expiresAt)}` : `live until ${formatTime(r.expiresAt)}`;
}

function table(ctx: PageContext, rows: ShareRuleRow[], id: string): Html {
  if (rows.length === 0) return html`<p class="muted">None.</p>`;
  const canRevoke = ctx.admin.roles.has('sharing');
  return html`<table id="${id}" class="requests"><thead><tr><th>Owner</th><th>Folder</th><th>Grantee</th><th>Access</th><th>Set by</th><th>State</th><th></th></tr></thead><tbody>
${rows.map(
  (r) => html`<tr data-rule="${r.id}"><td>${r.user} on <a href="/admin/pcs/${segment(r.pcId)}">${r.pcId}</a></td><td>${r.folder.join('/')}</td><td>${r.grantee.kind} ${r.grantee.name}</td>
<td>${r.access}</td><td title="${formatTime(r.createdAt)}">${r.createdBy}</td><td>${state(ctx, r)}</td>
<td>${canRevoke && r.revokedAt === null && r.expiresAt > ctx.now ? html`<form class="inline" method="post" action="/admin/sharing/${segment(r.id)}/revoke"><input type="hidden" name="csrf" value="${ctx.csrf}"><button class="danger" type="submit">Revoke</button></form>` : ''}</td></tr>`,
)}</tbody></table>`;
}

export function sharingPage(ctx: PageContext, opts: { live: ShareRuleRow[]; recent: ShareRuleRow[]; defaultDays: number; maxDays: number; done: string | undefined }): string {
  const text = opts.done === undefined ? undefined : NOTICES[opts.done];
  const form = ctx.admin.roles.has('sharing')
    ? html`<form id="share-create" method="post" action="/admin/sharing"><input type="hidden" name="csrf" value="${ctx.csrf}">
<label>PC<input name="pcId" required maxlength="256"></label>
<label>Owner (user)<input name="user" required maxlength="256"></label>
<label>Folder<input name="folder" required maxlength="2048" placeholder="Documents/Projects"></label>
<label>Grantee<select name="granteeKind"><option value="user">user</option><option value="group">group</option></select></label>
<label>Grantee name<input name="granteeName" required maxlength="256"></label>
<label>Access<select name="access"><option value="read">read</option><option value="readwrite">readwrite</option></select></label>
<label>Days<input type="number" name="days" min="1" max="${opts.maxDays}" step="1" value="${opts.defaultDays}" required></label>
<button type="submit">Share</button></form>`
    : html`<p class="muted">The sharing role is needed to create or revoke share rules.</p>`;
  const body = html`<h1>Sharing</h1>${text ? html`<p class="notice" role="status">${text}</p>` : ''}
<p class="muted">Grantees reach a shared folder at /shared/&lt;user&gt;@&lt;PC&gt;/&lt;folder&gt;/ with their directory account. Every rule expires (at most ${opts.maxDays} days).</p>
<h2>New share</h2>${form}
<h2>Live</h2>${table(ctx, opts.live, 'live')}
<h2>Latest</h2>${table(ctx, opts.recent, 'recent')}`;
  return layout('Sharing', body, ctx, 'sharing');
}
