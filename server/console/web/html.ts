/**
 * HTML built with a tagged template: `html\`<td>${pc.pcId}</td>\`` escapes
 * every interpolated value unless it is itself `Html` (a fragment built the
 * same way). Escaping is escape-html's (the pillarjs module express uses:
 * & < > " ' become entities), so a value cannot end an element or an
 * attribute; the template literal's own text is the only markup.
 *
 * Security considerations: every value from a PC or a user (PC names, user
 * names, reasons, notes, versions, audit fields) reaches a page only
 * through `html`, and attribute values are always quoted in the templates,
 * so escaping covers them too. URLs put in `href` are built by `url()` with
 * encodeURIComponent on each value. `raw` is not exported: nothing can
 * mark a value safe without escaping it.
 */
import escapeHtml from 'escape-html';

/** A fragment of markup: the result of `html`. */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

type Value = Html | string | number | boolean | null | undefined | readonly Value[];

function render(value: Value): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === null || value === undefined || value === false) return '';
  return escapeHtml(String(value));
}

/** Markup from the template's text, each value escaped (arrays joined; null, undefined and false are empty). */
export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new Html(out);
}

/** A path with query parameters, each part percent-encoded (empty and undefined parameters are left out). */
export function url(path: string, query: Record<string, string | number | boolean | undefined> = {}): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '' && v !== false) params.set(k, String(v));
  const qs = params.toString();
  return qs === '' ? path : `${path}?${qs}`;
}

/** A path segment, percent-encoded. */
export function segment(value: string): string {
  return encodeURIComponent(value);
}
