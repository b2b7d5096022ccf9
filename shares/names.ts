/**
 * Names and paths inside a vault, Windows-like: names are stored in Unicode
 * NFC, compared case-insensitively (simple, per-code-point upper-casing, like
 * NTFS's upcase table) and kept as written (case-preserving).
 *
 * Security considerations: a path is split on "/" only after the caller
 * decoded it once; "." and ".." segments, NUL, control characters, "\" and
 * the characters Windows forbids in names are refused, so no name can step
 * out of its parent or mean something else on the Windows side.
 */
import { VaultError } from './errors.js';

const MAX_NAME_UTF16 = 255;
const FORBIDDEN = /[\u0000-\u001f\u007f\\/:*?"<>|]/u;

/** Validates one name and returns its NFC form. */
export function normalizeName(name: string): string {
  const nfc = name.normalize('NFC');
  if (nfc === '' || nfc === '.' || nfc === '..') throw new VaultError('ERR_NAME_INVALID', `invalid name "${nfc}"`);
  if (FORBIDDEN.test(nfc)) {
    throw new VaultError('ERR_NAME_INVALID', `invalid name ${JSON.stringify(nfc)}: control characters and \\ / : * ? " < > | are not allowed`);
  }
  if (nfc.length > MAX_NAME_UTF16) throw new VaultError('ERR_NAME_INVALID', `name is longer than ${MAX_NAME_UTF16} characters`);
  if (/[ .]$/.test(nfc)) throw new VaultError('ERR_NAME_INVALID', `invalid name ${JSON.stringify(nfc)}: Windows cannot use names ending in a space or a dot`);
  if (!isWellFormed(nfc)) throw new VaultError('ERR_NAME_INVALID', 'invalid name: it contains a lone surrogate');
  return nfc;
}

function isWellFormed(s: string): boolean {
  return !/\p{Surrogate}/u.test(s);
}

/** The case-insensitive comparison key of an NFC name. */
export function foldName(nfc: string): string {
  let out = '';
  for (const ch of nfc) {
    const up = ch.toUpperCase();
    // Keep only one-to-one mappings (simple case folding): "ß" stays "ß".
    out += [...up].length === 1 ? up : ch;
  }
  return out;
}

/** Splits "/a/b/c" (or "a/b/c/") into validated NFC names; "/" is the root (no names). */
export function splitPath(path: string): string[] {
  return path.split('/').filter((s) => s !== '').map(normalizeName);
}

export function joinPath(names: readonly string[]): string {
  return '/' + names.join('/');
}
