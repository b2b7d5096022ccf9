/**
 * The vault as a WebDAV store (shares/webdav/store.ts): every capability
 * (dead properties, Win32 metadata, quota). The vault takes the decoded
 * path segments as they are (no join and split again); its entries, times and dead
 * properties already have the store's shape, and its VaultError codes are
 * the store's error codes. Folders, dead properties and Win32 metadata are
 * changed through the vault's group commit: the WAL's
 * fsync runs in the thread pool, shared with the writes of the moment,
 * instead of on the event loop.
 */
import type { Readable } from 'node:stream';
import type { ByteSource, DavEntry, DavPath, DavStore, DavTimes, DavWriteOptions, DavWriteResult, DeadPropsStore, DeadProperty, QuotaStore, Win32MetaStore } from '../webdav/store.js';
import type { Vault } from './vault.js';

export class VaultDavStore implements DavStore, DeadPropsStore, Win32MetaStore, QuotaStore {
  constructor(private readonly vault: Vault) {}

  stat(path: DavPath): DavEntry | undefined {
    return this.vault.stat(path);
  }

  list(path: DavPath): DavEntry[] {
    return this.vault.list(path);
  }

  async read(path: DavPath, range?: { start: number; end: number }): Promise<Readable> {
    return (await this.vault.read(path, range)).stream;
  }

  write(path: DavPath, source: ByteSource, opts?: DavWriteOptions): Promise<DavWriteResult> {
    return this.vault.write(path, source, opts);
  }

  mkdir(path: DavPath, times?: DavTimes): Promise<DavEntry> {
    return this.vault.mkdir(path, times);
  }

  delete(path: DavPath): Promise<void> {
    return this.vault.delete(path);
  }

  move(from: DavPath, to: DavPath, opts: { overwrite: boolean }): Promise<{ replaced: boolean }> {
    return this.vault.move(from, to, opts);
  }

  copy(from: DavPath, to: DavPath, opts: { overwrite: boolean }): Promise<{ replaced: boolean }> {
    return this.vault.copy(from, to, opts);
  }

  getProps(path: DavPath): DeadProperty[] {
    return this.vault.getProps(path);
  }

  childProps(path: DavPath): Map<string, DeadProperty[]> {
    return this.vault.childProps(path);
  }

  patchProps(path: DavPath, set: readonly DeadProperty[], remove?: readonly { ns: string; name: string }[]): Promise<void> {
    return this.vault.patchProps(path, set, remove);
  }

  setMeta(path: DavPath, meta: DavTimes & { attributes?: number }): Promise<DavEntry> {
    return this.vault.setMeta(path, meta);
  }

  quotaUsed(): number {
    return this.vault.quotaUsed();
  }
}
