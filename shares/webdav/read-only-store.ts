/**
 * A store that only reads another: every change is refused with
 * ERR_READ_ONLY, answered 403 Forbidden (RFC 9110 15.5.4: the server
 * understood the request and will not perform it; a 405 would have to list
 * other methods in Allow for each resource). What the inner store can show
 * (dead properties, quota) stays visible. The console's admin browsing
 * serves a user's vault through it.
 *
 * Locks are the handler's, not the store's: a LOCK of an existing resource
 * still succeeds, and the write it was taken for is refused.
 */
import { StoreError, hasDeadProps, hasQuota, hasWin32Meta, type DavStore, type DeadPropsStore, type QuotaStore, type Win32MetaStore } from './store.js';

function refuse(): never {
  throw new StoreError('ERR_READ_ONLY', 'this share is read-only');
}

export function readOnlyStore(inner: DavStore): DavStore {
  const store: DavStore & Partial<DeadPropsStore & Win32MetaStore & QuotaStore> = {
    stat: (path) => inner.stat(path),
    list: (path) => inner.list(path),
    read: (path, range) => inner.read(path, range),
    write: async () => refuse(),
    mkdir: refuse,
    delete: async () => refuse(),
    move: async () => refuse(),
    copy: async () => refuse(),
  };
  if (hasDeadProps(inner)) {
    store.getProps = (path) => inner.getProps(path);
    store.childProps = (path) => inner.childProps(path);
    store.patchProps = refuse;
  }
  if (hasWin32Meta(inner)) store.setMeta = refuse;
  if (hasQuota(inner)) store.quotaUsed = () => inner.quotaUsed();
  return store;
}
