/**
 * What the WebDAV handler needs from the storage behind a share: a small
 * core (`DavStore`) and optional capabilities, each its own interface,
 * detected at runtime (as golang x/net/webdav detects DeadPropsHolder):
 *
 * - `DeadPropsStore`: dead properties (PROPPATCH of other namespaces).
 *   Without it, PROPFIND lists none and PROPPATCH refuses them with 403.
 * - `Win32MetaStore`: the Windows client's Win32 times and attributes.
 *   Without it, PROPPATCH refuses them with 403 (PROPFIND still shows the
 *   entry's own values).
 * - `QuotaStore`: the bytes in use, for quota-used-bytes. Without it, the
 *   quota properties are absent.
 *
 * A wrapper (read-only, metadata-only, audited) implements the same
 * interfaces over another store; read-only-store.ts is one.
 *
 * Paths are arrays of names ([] is the root), each decoded once from the
 * request (paths.ts): no "/", no "\", no NUL, no "." or "..". A store
 * compares names as it likes (the vault: Unicode NFC, case-insensitive,
 * case-preserving) and may still refuse a name it cannot hold
 * (ERR_NAME_INVALID).
 *
 * Errors: a store throws an Error whose `code` is a `StoreErrorCode`; the
 * handler answers it with the status errors.ts gives that code:
 *
 *   ERR_NOT_FOUND 404, ERR_EXISTS 405, ERR_NOT_A_DIRECTORY 409,
 *   ERR_IS_A_DIRECTORY 405, ERR_PARENT_MISSING 409, ERR_NAME_INVALID 400,
 *   ERR_PROTECTED 403, ERR_MOVE_INTO_SELF 403, ERR_READ_ONLY 403,
 *   ERR_TOO_LARGE 413, ERR_NO_SPACE 507, ERR_VAULT_CLOSED 503,
 *   ERR_VAULT_BUSY 503, ERR_OBJECT_CORRUPT 500, ERR_INDEX_KEY 500,
 *   ERR_INDEX_VERSION 500.
 *
 * Any other error is a 500 whose body says only "internal error".
 */
import type { Readable } from 'node:stream';

/** A path inside a share: its names from the root down; [] is the root. */
export type DavPath = readonly string[];

export { ATTR_ARCHIVE, ATTR_DIRECTORY } from '../win32-attributes.js';

export interface DavEntry {
  /** The name as stored ('' for the root). */
  readonly name: string;
  readonly isDir: boolean;
  /** Bytes (0 for a folder). */
  readonly size: number;
  /** Milliseconds since the epoch. */
  readonly created: number;
  readonly modified: number;
  readonly accessed: number;
  /** Win32 file attributes (FILE_ATTRIBUTE_*). */
  readonly attributes: number;
  /** Changes whenever the content or (for a folder) its membership changes; unquoted. */
  readonly etag: string;
}

export interface DavTimes {
  created?: number;
  modified?: number;
  accessed?: number;
}

export interface DeadProperty {
  ns: string;
  name: string;
  /** The property element as XML text, stored and returned verbatim. */
  value: string;
}

/** What a write reads its content from: a Node Readable, an async generator or an array of pieces. */
export type ByteSource = AsyncIterable<Buffer | Uint8Array | string> | Iterable<Buffer | Uint8Array | string>;

export interface DavWriteOptions {
  /** Refuse with ERR_EXISTS when something is there. */
  createOnly?: boolean;
  /** Refuse with ERR_TOO_LARGE beyond this many bytes, keeping nothing. */
  maxBytes?: number;
}

export interface DavWriteResult {
  entry: DavEntry;
  /** False when an existing file was replaced. */
  created: boolean;
}

/** The core every store implements. */
export interface DavStore {
  /** The entry at `path`, or undefined when nothing is there. */
  stat(path: DavPath): DavEntry | undefined;
  /** The children of a folder, sorted by name as the store compares names. */
  list(path: DavPath): DavEntry[];
  /** The file's bytes [start, end) (end exclusive, within the size); the whole file without a range. */
  read(path: DavPath, range?: { start: number; end: number }): Promise<Readable>;
  /** Creates or replaces a file; resolves once the content is durable. */
  write(path: DavPath, source: ByteSource, opts?: DavWriteOptions): Promise<DavWriteResult>;
  /** Creates a folder (ERR_EXISTS when something is there), with these times when given; durable when it returns or resolves. */
  mkdir(path: DavPath, times?: DavTimes): DavEntry | Promise<DavEntry>;
  /** Deletes a file or a whole folder tree. */
  delete(path: DavPath): Promise<void>;
  /** Moves a file or folder tree; with `overwrite`, replaces what is at `to`. `replaced`: something was there. */
  move(from: DavPath, to: DavPath, opts: { overwrite: boolean }): Promise<{ replaced: boolean }>;
  /** Copies a file or folder tree with its times, attributes and dead properties. */
  copy(from: DavPath, to: DavPath, opts: { overwrite: boolean }): Promise<{ replaced: boolean }>;
}

/** Dead properties (RFC 4918 4.2): any property outside DAV: and the Win32 set. */
export interface DeadPropsStore {
  getProps(path: DavPath): DeadProperty[];
  /** The dead properties of every child of a folder, by child name (for listings). */
  childProps(path: DavPath): Map<string, DeadProperty[]>;
  /** Sets and removes properties of one entry, all or none; durable when it returns or resolves. */
  patchProps(path: DavPath, set: readonly DeadProperty[], remove?: readonly { ns: string; name: string }[]): void | Promise<void>;
}

/** The Windows client's Win32 times and attributes (the directory bit stays as the entry's kind says). */
export interface Win32MetaStore {
  /** Durable when it returns or resolves. */
  setMeta(path: DavPath, meta: DavTimes & { attributes?: number }): DavEntry | Promise<DavEntry>;
}

/** The bytes the share's files take, for quota-used-bytes. */
export interface QuotaStore {
  quotaUsed(): number;
}

/** Every error code a store may throw (see the table at the top). */
export const STORE_ERROR_CODES = [
  'ERR_NOT_FOUND',
  'ERR_EXISTS',
  'ERR_NOT_A_DIRECTORY',
  'ERR_IS_A_DIRECTORY',
  'ERR_PARENT_MISSING',
  'ERR_NAME_INVALID',
  'ERR_PROTECTED',
  'ERR_MOVE_INTO_SELF',
  'ERR_OBJECT_CORRUPT',
  'ERR_INDEX_KEY',
  'ERR_TOO_LARGE',
  'ERR_VAULT_CLOSED',
  'ERR_READ_ONLY',
  'ERR_INDEX_VERSION',
  'ERR_VAULT_BUSY',
  'ERR_NO_SPACE',
] as const;
export type StoreErrorCode = (typeof STORE_ERROR_CODES)[number];

/** An error for stores that have no error class of their own (the vault has VaultError, with the same codes). */
export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

export function hasDeadProps(store: DavStore): store is DavStore & DeadPropsStore {
  return typeof (store as Partial<DeadPropsStore>).patchProps === 'function';
}

export function hasWin32Meta(store: DavStore): store is DavStore & Win32MetaStore {
  return typeof (store as Partial<Win32MetaStore>).setMeta === 'function';
}

export function hasQuota(store: DavStore): store is DavStore & QuotaStore {
  return typeof (store as Partial<QuotaStore>).quotaUsed === 'function';
}
