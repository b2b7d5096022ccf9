/**
 * The file browser's page: one folder of a user's data on a PC (names,
 * sizes, dates), folders linking further down, files to their download.
 *
 * Security considerations: every name comes from a user's vault through the
 * agent and is escaped by `html`; links are built from percent-encoded
 * segments (`segment`), so a name cannot add a path level, a query or markup.
 */
import type { FolderListing } from '../dav/folder-listing.js';
import { formatTime } from './format.js';
import { html, segment } from './html.js';
import { layout, type PageContext } from './pages.js';

function sizeText(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let n = bytes / 1024;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n < 10 ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
}

const hrefOf = (base: string, names: readonly string[], isDir: boolean) => `${base}/${names.map(segment).join('/')}${isDir && names.length > 0 ? '/' : ''}`;

export function filesPage(ctx: PageContext, opts: { pcId: string; user: string; path: readonly string[]; listing: FolderListing }): string {
  const pcHref = `/admin/pcs/${segment(opts.pcId)}`;
  const files = `${pcHref}/files`;
  const download = `${pcHref}/download`;
  const trail = [opts.user, ...opts.path];
  const crumbs = trail.map((name, i) => html` / <a href="${hrefOf(files, trail.slice(0, i + 1), true)}">${name}</a>`);
  const rows = opts.listing.entries.map((e) => {
    const names = [...trail, e.name];
    return e.isDir
      ? html`<tr class="dir"><td><a href="${hrefOf(files, names, true)}">${e.name}/</a></td><td class="num">—</td><td>${formatTime(e.modified)}</td></tr>`
      : html`<tr class="file"><td><a href="${hrefOf(download, names, false)}" download>${e.name}</a></td><td class="num" title="${e.size} bytes">${sizeText(e.size)}</td><td>${formatTime(e.modified)}</td></tr>`;
  });
  const body = html`<h1>Files of ${opts.user} on ${opts.pcId}</h1>
<p class="crumbs"><a href="${pcHref}">${opts.pcId}</a>${crumbs}</p>
<p class="muted">Read only. Every access is recorded in the console's trail and on the PC, and the user is told.</p>
<table id="files"><thead><tr><th>Name</th><th>Size</th><th>Modified</th></tr></thead><tbody>
${opts.path.length > 0 ? html`<tr class="up"><td><a href="${hrefOf(files, trail.slice(0, -1), true)}">../</a></td><td></td><td></td></tr>` : ''}
${rows.length > 0 ? rows : html`<tr><td colspan="3" class="muted">This folder is empty.</td></tr>`}
</tbody></table>
${opts.listing.more > 0 ? html`<p class="muted">${opts.listing.more} more entries are not shown here; browse this folder over WebDAV (/pcs/) to see them all.</p>` : ''}`;
  return layout(`Files of ${opts.user} on ${opts.pcId}`, body, ctx, 'pcs');
}
