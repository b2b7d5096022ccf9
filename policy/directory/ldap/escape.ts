/**
 * Escaping of user-supplied values for LDAP.
 *
 * Security considerations: every value that reaches a search filter goes
 * through `filterValue` (RFC 4515: `*`, `(`, `)`, `\`, NUL and every byte
 * outside printable ASCII become `\XX`), so input such as `*` or `)(uid=*`
 * can never widen a search; every value put into a DN goes through
 * `dnValue` (RFC 4514).
 */

/** Escapes a value for use inside an LDAP search filter (RFC 4515). */
export function filterValue(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const safe = byte >= 0x20 && byte < 0x7f && byte !== 0x2a && byte !== 0x28 && byte !== 0x29 && byte !== 0x5c;
    out += safe ? String.fromCharCode(byte) : '\\' + byte.toString(16).padStart(2, '0');
  }
  return out;
}

/** Escapes an attribute value for use in a DN (RFC 4514). */
export function dnValue(value: string): string {
  let out = value.replace(/[\\,+"<>;=\u0000]/g, (c) => (c === '\u0000' ? '\\00' : '\\' + c));
  if (out.startsWith(' ') || out.startsWith('#')) out = '\\' + out;
  if (out.endsWith(' ') && !out.endsWith('\\ ')) out = out.slice(0, -1) + '\\ ';
  return out;
}

/** Fills `{user}` and `{pcId}` in a DN template, escaping both. */
export function fillDnTemplate(template: string, values: { user: string; pcId: string }): string {
  return template.replace(/\{(user|pcId)\}/g, (_, key: 'user' | 'pcId') => dnValue(values[key]));
}
