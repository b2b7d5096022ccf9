/**
 * A store that shows one folder of another as its root: every path is the
 * folder's names followed by the request's (a share serves the shared
 * folder of its owner's vault this way, at the share's own href base).
 *
 * Security considerations: paths only ever get longer (`root` is put in
 * front; the handler's paths are decoded names without "." or ".."), so
 * nothing outside `root` can be named, by a request path or a Destination.
 * The root itself (the shared folder) cannot be deleted or moved away
 * (ERR_PROTECTED, 403): a readwrite grantee works inside the folder, and
 * removing it would remove the owner's folder with everything in it.
 * What the inner store can show (dead properties, Windows metadata, quota)
 * stays visible, mapped the same way.
 */
import { StoreError, hasDeadProps, hasQuota, hasWin32Meta, type DavPath, type DavStore, type DeadPropsStore, type QuotaStore, type Win32MetaStore } from './store.js';

export function subtreeStore(inner: DavStore, root: DavPath): DavStore {
  if (root.length === 0) return inner;
  const at = (path: DavPath): string[] => [...root, ...path];
  const store: DavStore & Partial<DeadPropsStore & Win32MetaStore & QuotaStore> = {
    stat: (path) => inner.stat(at(path)),
    list: (path) => inner.list(at(path)),
    read: (path, range) => inner.read(at(path), range),
    write: (path, source, opts) => inner.write(at(path), source, opts),
    mkdir: (path, times) => inner.mkdir(at(path), times),
    delete: async (path) => {
      if (path.length === 0) throw rootProtected();
      return inner.delete(at(path));
    },
    move: async (from, to, opts) => {
      if (from.length === 0 || to.length === 0) throw rootProtected();
      return inner.move(at(from), at(to), opts);
    },
    copy: (from, to, opts) => inner.copy(at(from), at(to), opts),
  };
  if (hasDeadProps(inner)) {
    store.getProps = (path) => inner.getProps(at(path));
    store.childProps = (path) => inner.childProps(at(path));
    store.patchProps = (path, set, remove) => inner.patchProps(at(path), set, remove);
  }
  if (hasWin32Meta(inner)) store.setMeta = (path, meta) => inner.setMeta(at(path), meta);
  if (hasQuota(inner)) store.quotaUsed = () => inner.quotaUsed();
  return store;
}

const rootProtected = () => new StoreError('ERR_PROTECTED', 'the shared folder itself cannot be deleted or moved; what is inside it can');

/** A store whose file contents cannot be read (a `list` grant: names, sizes and dates only). */
export function contentsRefusedStore(inner: DavStore): DavStore {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'read') return async () => Promise.reject(new StoreError('ERR_READ_ONLY', 'file contents are not part of this access (names, sizes and dates only)'));
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
