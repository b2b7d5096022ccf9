/**
 * The recovery view's page: the form that takes the recovery private key
 * for this web session, and the tree of the PC's latest snapshot (names,
 * sizes, dates) once a key is held, with the button that forgets it.
 *
 * Security considerations: every name, path and PC id goes through `html`
 * (web/html.ts), which escapes it; the forms carry the session's CSRF
 * token; the key's textarea is never filled back in (the page never holds
 * the key), `autocomplete="off"`.
 */
import { formatTime } from '../web/format.js';
import { html, segment } from '../web/html.js';
import { layout, type PageContext } from '../web/pages.js';
import type { PcRow } from '../store/store.js';
import type { SnapshotTree } from './snapshot-tree.js';

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let n = bytes / 1024;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

const HOW_HELD = html`<p class="muted" id="how-held">The key is held in this console's memory for your web session only: it is never written to its disk, its database, its audit trail or a log. It is forgotten when you log out, when your session ends, after one hour, or when you press "Forget the key". Contents are extracted with <span class="mono">mydoc recover --extract</span>, as before.</p>`;

export function recoveryPage(ctx: PageContext, opts: { pc: PcRow; heldUntil: number | undefined; tree: SnapshotTree | undefined; done: string | undefined }): string {
  const base = `/admin/pcs/${segment(opts.pc.pcId)}/recovery`;
  const csrf = html`<input type="hidden" name="csrf" value="${ctx.csrf}">`;
  const done = opts.done === 'held' ? html`<p class="notice" role="status">The recovery key is held for this session.</p>` : opts.done === 'forgotten' ? html`<p class="notice" role="status">The recovery key was forgotten.</p>` : '';
  const head = html`<h1>Recovery view of PC ${opts.pc.pcId}</h1>${done}
<p>PC ${opts.pc.pcId} is offline (last seen ${formatTime(opts.pc.lastSeenAt)}). This shows the tree of its latest snapshot on the NAS, trusted by the device key pinned when it enrolled (<span class="mono">${opts.pc.deviceId ?? ''}</span>).</p>`;
  if (opts.heldUntil === undefined || !opts.tree) {
    const body = html`${head}
<form method="post" action="${base}/key" id="recovery-key">${csrf}
<label for="key">The organisation's recovery private key (PEM)</label><br>
<textarea id="key" name="key" rows="7" cols="70" autocomplete="off" spellcheck="false" required placeholder="-----BEGIN PRIVATE KEY-----"></textarea><br>
<button type="submit">Open the latest snapshot</button></form>
${HOW_HELD}`;
    return layout(`Recovery view of ${opts.pc.pcId}`, body, ctx, 'pcs');
  }
  const { tree } = opts;
  const rows = tree.users.flatMap((u) => [
    html`<tr class="user"><td colspan="3"><strong>${u.user}</strong></td></tr>`,
    ...u.entries.map(
      (e) =>
        html`<tr data-path="${`/${u.user}${e.path}`}"><td><span class="mono">${'\u00a0\u00a0'.repeat(e.depth)}</span>${e.isDir ? html`<strong>${e.path.slice(e.path.lastIndexOf('/') + 1)}/</strong>` : e.path.slice(e.path.lastIndexOf('/') + 1)}</td><td class="num">${e.isDir ? '' : size(e.size)}</td><td>${formatTime(e.modified)}</td></tr>`,
    ),
  ]);
  const body = html`${head}
<p>Snapshot <span class="mono" id="snapshot">${tree.snapshot}</span>${tree.finished !== undefined ? html`, finished ${formatTime(tree.finished)}` : ''}: ${tree.users.length} user(s), ${tree.files} file(s), ${size(tree.bytes)}.
The key is held until ${formatTime(opts.heldUntil)}.</p>
<form method="post" action="${base}/forget" class="inline" id="forget">${csrf}<button type="submit" class="danger">Forget the key</button></form>
${HOW_HELD}
<table id="tree"><thead><tr><th>Name</th><th>Size</th><th>Modified</th></tr></thead><tbody>${rows}</tbody></table>
${tree.omitted > 0 ? html`<p class="muted">${tree.omitted} more entries are not listed; <span class="mono">mydoc recover --list</span> lists them all.</p>` : ''}`;
  return layout(`Recovery view of ${opts.pc.pcId}`, body, ctx, 'pcs');
}
