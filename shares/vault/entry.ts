/**
 * What the vault holds, as its callers see it: entries (files and folders)
 * with their times, Win32 attributes and dead properties, and the fixed
 * areas at the root.
 */

/** The folders at the root of every vault; they cannot be deleted, moved or replaced. */
export const AREAS = ['Documents', 'Desktop', 'Profile'] as const;
export { ATTR_ARCHIVE, ATTR_DIRECTORY } from '../win32-attributes.js';

export interface Entry {
  readonly path: string;
  readonly name: string;
  readonly isDir: boolean;
  readonly size: number;
  /** Id of the object holding the current content (files only). */
  readonly objectId: string | undefined;
  /** Milliseconds since the epoch. */
  readonly created: number;
  readonly modified: number;
  readonly accessed: number;
  /** Win32 file attributes (FILE_ATTRIBUTE_*). */
  readonly attributes: number;
  /** Changes whenever content or (for folders) membership changes. */
  readonly etag: string;
}

export interface DeadProperty {
  ns: string;
  name: string;
  /** Opaque value (the WebDAV layer stores XML text). */
  value: string;
}

export interface Times {
  created?: number;
  modified?: number;
  accessed?: number;
}
