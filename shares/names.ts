/**
 * Names and paths inside a vault, Windows-like: names are stored in Unicode
 * NFC, compared case-insensitively (simple, per-code-point upper-casing, like
 * NTFS's upcase table) and kept as written (case-preserving).
 *
 * Security considerations: a path is split on "/" only after the caller
 * decoded it once; "." and ".." segments, NUL, control characters, "\" and
 * the characters Windows forbids in names are refused, so no name can step
 * out of its parent or mean something else on the Windows side.
 *
 * A new name (one a request creates) must also not be one of Windows'
 * reserved device names (`CON`, `PRN`, `AUX`, `NUL`, `COM1`-`COM9`,
 * `LPT1`-`LPT9` and the superscript `COM¹`-`COM³`, `LPT¹`-`LPT³`, in any
 * case, with or without an extension: `nul.tar.gz` is `NUL` on Windows), and
 * must not hold a bidirectional override or isolate control (U+202A-U+202E,
 * U+2066-U+2069), with which `report\u202Efdp.exe` shows as `reportexe.pdf`.
 * These are checked when a name is created, not each time one is looked up,
 * so a file that got such a name before this check can still be read,
 * renamed and deleted.
 */
import { VaultError } from './vault/errors.js';

const MAX_NAME_UTF16 = 255;
const FORBIDDEN = /[\u0000-\u001f\u007f\\/:*?"<>|]/u;
/** The device name is the part before the first dot, trailing spaces ignored (as Win32 parses it). */
const RESERVED = /^(?:CON|PRN|AUX|NUL|COM[1-9\u00b9\u00b2\u00b3]|LPT[1-9\u00b9\u00b2\u00b3]) *(?:\.|$)/iu;
const BIDI_CONTROL = /[\u202a-\u202e\u2066-\u2069]/u;

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

/** Validates a name a request is about to create: normalizeName, and no reserved name or bidi control. */
export function checkNewName(name: string): string {
  const nfc = normalizeName(name);
  if (RESERVED.test(nfc)) {
    throw new VaultError('ERR_NAME_INVALID', `invalid name ${JSON.stringify(nfc)}: CON, PRN, AUX, NUL, COM1-COM9 and LPT1-LPT9 are device names on Windows, with any extension`);
  }
  if (BIDI_CONTROL.test(nfc)) {
    throw new VaultError('ERR_NAME_INVALID', 'invalid name: bidirectional override and isolate characters (U+202A-U+202E, U+2066-U+2069) are not allowed, as they make a name display as another');
  }
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
