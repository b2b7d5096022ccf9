/**
 * How a user is shown their access notices (notices.ts): the same words on
 * their page and in the notice file at the root of their drive. Who (and as
 * what: administrator or share grantee), when (UTC), what (the WebDAV method
 * as a verb), which path, and the console's request id. Plain text only:
 * the page escapes it, the file is text.
 *
 * Security considerations: what comes from the console (names, the via,
 * the request id) could carry control or bidirectional characters that
 * would start a forged line or make one read as another; each such
 * character is shown as U+FFFD.
 */
import type { AccessNotice } from './notices.js';

/** C0 and C1 controls, DEL, line and paragraph separators, bidi embeddings, overrides and isolates. */
const UNSHOWABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;

/** `text` with every character that could forge or disguise a line replaced by U+FFFD. */
export function shown(text: string): string {
  return text.replace(UNSHOWABLE, '\ufffd');
}

const VERBS: Record<string, string> = {
  GET: 'read',
  HEAD: 'looked at',
  PROPFIND: 'listed',
  OPTIONS: 'asked about',
  PUT: 'wrote',
  DELETE: 'deleted',
  MKCOL: 'created the folder',
  MOVE: 'moved',
  COPY: 'copied',
  PROPPATCH: 'changed properties of',
  LOCK: 'locked',
  UNLOCK: 'unlocked',
};

/** The method as a verb ("read", "listed"); an unknown method as it was sent. */
export function noticeVerb(method: string): string {
  return VERBS[method.toUpperCase()] ?? shown(method);
}

/** Who, and as what: "alice (administrator, role data)", "bob (share grantee, share rule r1)". */
export function noticeWho(n: AccessNotice): string {
  return `${shown(n.actor)} (${n.kind === 'admin' ? 'administrator' : 'share grantee'}, ${shown(n.via)})`;
}

/** The time in UTC to the second: "2026-12-02 16:47:05 UTC". */
export function noticeTime(n: AccessNotice): string {
  const iso = new Date(n.time).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}

/** What was done: "read /Documents/a.txt", with " (refused)" when it was not served. */
export function noticeWhat(n: AccessNotice): string {
  return `${noticeVerb(n.method)} ${shown(n.path)}${n.decision === 'deny' ? ' (refused)' : ''}`;
}

/** One line of the notice file: time, who, what, request id, tab-separated. */
export function noticeLine(n: AccessNotice): string {
  return [noticeTime(n), noticeWho(n), noticeWhat(n), `request ${shown(n.requestId)}`].join('\t');
}

/** The notice file's text (notices newest first): a header line, then one line per access, CRLF line ends (Windows Notepad). */
export function noticesText(notices: readonly AccessNotice[]): string {
  const head =
    notices.length === 0
      ? ['Accesses to your documents by administrators and share grantees are listed here, newest first. There have been none.']
      : ['Accesses to your documents by administrators and share grantees, newest first (times in UTC):', ''];
  return [...head, ...notices.map(noticeLine)].join('\r\n') + '\r\n';
}
