/**
 * The user's own drive with their access notices: a store over another
 * (the user's vault) that adds a read-only virtual file NOTICES_FILE_NAME
 * (shares/vault/notices.ts) at the root. It is listed, its GET gives the
 * notices as UTF-8 text, newest first (shares/vault/notice-text.ts).
 *
 * Security considerations:
 * - The user must not hide or change what they are told: every change that
 *   names the file at the root (PUT, DELETE, MOVE or COPY from or onto it,
 *   MKCOL, PROPPATCH, Win32 metadata) is refused with ERR_READ_ONLY (403),
 *   and so is creating a file or folder of that name there. Names are
 *   compared as the vault compares them (NFC, case-insensitive), so
 *   "ACCESS NOTICES.TXT" is the same file. A vault entry of that name left at
 *   the root (from before) is hidden behind it.
 * - Only the owner's own drive gets this store; what an administrator or a
 *   grantee sees through the console is a subtree without it.
 * - The text is built from the vault (its encrypted index) per store, once:
 *   nothing of it is written elsewhere or logged.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { foldName } from '../names.js';
import { NOTICES_FILE_NAME, type AccessNotice } from '../vault/notices.js';
import { noticesText } from '../vault/notice-text.js';
import { ATTR_ARCHIVE, StoreError, hasDeadProps, hasQuota, hasWin32Meta, type DavEntry, type DavPath, type DavStore, type DeadPropsStore, type QuotaStore, type Win32MetaStore } from './store.js';

/** FILE_ATTRIBUTE_READONLY: Explorer shows the file read-only. */
const ATTR_READONLY = 0x01;
const NOTICE_FOLD = foldName(NOTICES_FILE_NAME);

/** Whether `path` names the notice file (at the root, compared as the vault compares names). */
export function isNoticeFile(path: DavPath): boolean {
  return path.length === 1 && foldName(path[0]!.normalize('NFC')) === NOTICE_FOLD;
}

function refuse(): never {
  throw new StoreError('ERR_READ_ONLY', `"${NOTICES_FILE_NAME}" lists who accessed your documents; it cannot be changed, replaced, moved or deleted`);
}

/** The store `inner` with the notice file at its root; `notices` gives the notices, newest first. */
export function noticesStore(inner: DavStore, notices: () => readonly AccessNotice[]): DavStore {
  let file: { entry: DavEntry; bytes: Buffer } | undefined;
  /** The file as of the first look in this store's life (one request): entry and bytes agree. */
  const noticeFile = () => {
    if (file) return file;
    const list = notices();
    const bytes = Buffer.from(noticesText(list), 'utf8');
    const time = list[0]?.time ?? inner.stat([])?.created ?? 0;
    const etag = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
    const entry: DavEntry = { name: NOTICES_FILE_NAME, isDir: false, size: bytes.length, created: time, modified: time, accessed: time, attributes: ATTR_ARCHIVE | ATTR_READONLY, etag };
    return (file = { entry, bytes });
  };
  const guard = (path: DavPath) => {
    if (isNoticeFile(path)) refuse();
  };
  const store: DavStore & Partial<DeadPropsStore & Win32MetaStore & QuotaStore> = {
    stat: (path) => (isNoticeFile(path) ? noticeFile().entry : inner.stat(path)),
    list: (path) => {
      const children = inner.list(path);
      if (path.length > 0) return children;
      const entries = [...children.filter((e) => !isNoticeFile([e.name])), noticeFile().entry];
      return entries.sort((a, b) => (foldName(a.name) < foldName(b.name) ? -1 : foldName(a.name) > foldName(b.name) ? 1 : 0));
    },
    read: async (path, range) => {
      if (!isNoticeFile(path)) return inner.read(path, range);
      const { bytes } = noticeFile();
      return Readable.from([range ? bytes.subarray(range.start, range.end) : bytes]);
    },
    write: async (path, source, opts) => {
      guard(path);
      return inner.write(path, source, opts);
    },
    mkdir: (path, times) => {
      guard(path);
      return inner.mkdir(path, times);
    },
    delete: async (path) => {
      guard(path);
      return inner.delete(path);
    },
    move: async (from, to, opts) => {
      guard(from);
      guard(to);
      return inner.move(from, to, opts);
    },
    copy: async (from, to, opts) => {
      guard(from);
      guard(to);
      return inner.copy(from, to, opts);
    },
  };
  if (hasDeadProps(inner)) {
    store.getProps = (path) => (isNoticeFile(path) ? [] : inner.getProps(path));
    store.childProps = (path) => inner.childProps(path);
    store.patchProps = (path, set, remove) => {
      guard(path);
      return inner.patchProps(path, set, remove);
    };
  }
  if (hasWin32Meta(inner)) {
    store.setMeta = (path, meta) => {
      guard(path);
      return inner.setMeta(path, meta);
    };
  }
  if (hasQuota(inner)) store.quotaUsed = () => inner.quotaUsed();
  return store;
}
