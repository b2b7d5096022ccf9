/** The Win32 file attribute bits the share keeps meaning of (FILE_ATTRIBUTE_*); the vault stores them, WebDAV carries them. */

/** FILE_ATTRIBUTE_DIRECTORY: set on every folder. */
export const ATTR_DIRECTORY = 0x10;
/** FILE_ATTRIBUTE_ARCHIVE: what a new file carries. */
export const ATTR_ARCHIVE = 0x20;
