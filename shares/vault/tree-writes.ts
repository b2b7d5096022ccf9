/**
 * Changes to the vault's tree in the index: creating folders, deleting,
 * moving and copying trees, dead properties, Win32 metadata, the row a
 * written file flips to, and the root and fixed areas of a new index. Each
 * change runs inside one write transaction the caller opens (Vault's tx), so
 * a folder moves, is copied or is deleted all at once or not at all. Objects
 * a change no longer refers to go to the garbage list (object-store.ts
 * collects them).
 */
import type { Clock } from '../clock.js';
import { VaultError } from './errors.js';
import { ROOT_ID, type IndexDb, type Row } from './index-db.js';
import { AREAS, ATTR_ARCHIVE, ATTR_DIRECTORY, type DeadProperty, type Entry, type Times } from './entry.js';
import { child, requireParent, requireRow, rowById, toEntry } from './queries.js';
import { foldName, joinPath } from '../names.js';

/** What a file's write asks of its index row. */
export interface FileCommit {
  /** Refuse when the file exists (ERR_EXISTS). */
  createOnly?: boolean;
  times?: Times;
}

/** The tree's changes; every method but `checkFile` runs inside a write transaction. */
export class TreeWriter {
  constructor(
    private readonly index: IndexDb,
    private readonly now: Clock,
  ) {}

  /** Creates the root and the fixed areas when missing. */
  ensureLayout(): void {
    const t = this.now();
    if (!this.index.stmt('SELECT id FROM node WHERE id = ?').get(ROOT_ID)) {
      this.index
        .stmt('INSERT INTO node (id, parent, name, fold, is_dir, size, object, created, modified, accessed, attributes) VALUES (?, NULL, \'\', \'\', 1, 0, NULL, ?, ?, ?, ?)')
        .run(ROOT_ID, t, t, t, ATTR_DIRECTORY);
    }
    for (const area of AREAS) {
      if (!child(this.index, ROOT_ID, area)) this.insert(ROOT_ID, area, true, 0, null, { created: t, modified: t, accessed: t }, ATTR_DIRECTORY);
    }
  }

  /** Creates a folder; ERR_EXISTS when something is there. */
  mkdir(names: readonly string[], times: Times): Entry {
    const name = names[names.length - 1]!;
    const parent = requireParent(this.index, names);
    if (child(this.index, parent.id, name)) throw new VaultError('ERR_EXISTS', `${joinPath(names)} already exists`);
    const t = this.now();
    const row = this.insert(parent.id, name, true, 0, null, { created: times.created ?? t, modified: times.modified ?? t, accessed: times.accessed ?? t }, ATTR_DIRECTORY);
    this.touch(parent.id, t);
    return toEntry(row, names);
  }

  /** Deletes a file or a whole folder tree (`path` names it in errors). */
  delete(names: readonly string[], path: string): void {
    const row = requireRow(this.index, names, path);
    this.assertNotProtected(names);
    this.removeTree(row.id);
    this.touch(row.parent!, this.now());
  }

  /** Moves (renames) a file or folder; with `overwrite`, an existing destination is replaced. */
  move(src: readonly string[], from: string, dst: readonly string[], opts: { overwrite: boolean }): { replaced: boolean } {
    const row = requireRow(this.index, src, from);
    this.assertNotProtected(src);
    if (dst.length === 0) throw new VaultError('ERR_EXISTS', '/ exists');
    this.assertNotProtected(dst);
    const parent = requireParent(this.index, dst);
    if (row.is_dir && this.isSelfOrDescendant(parent.id, row.id)) {
      throw new VaultError('ERR_MOVE_INTO_SELF', `cannot move ${joinPath(src)} into itself`);
    }
    const name = dst[dst.length - 1]!;
    const existing = child(this.index, parent.id, name);
    const replaced = existing !== undefined && existing.id !== row.id;
    if (replaced) {
      if (!opts.overwrite) throw new VaultError('ERR_EXISTS', `${joinPath(dst)} already exists`);
      this.removeTree(existing.id);
    }
    const t = this.now();
    this.index.stmt('UPDATE node SET parent = ?, name = ?, fold = ? WHERE id = ?').run(parent.id, name, foldName(name), row.id);
    this.touch(row.parent!, t);
    this.touch(parent.id, t);
    return { replaced };
  }

  /** Copies a file or a folder tree (content shared, metadata and properties copied). */
  copy(src: readonly string[], from: string, dst: readonly string[], opts: { overwrite: boolean }): { replaced: boolean } {
    const row = requireRow(this.index, src, from);
    if (dst.length === 0) throw new VaultError('ERR_EXISTS', '/ exists');
    const parent = requireParent(this.index, dst);
    if (row.is_dir && this.isSelfOrDescendant(parent.id, row.id)) {
      throw new VaultError('ERR_MOVE_INTO_SELF', `cannot copy ${joinPath(src)} into itself`);
    }
    const name = dst[dst.length - 1]!;
    const existing = child(this.index, parent.id, name);
    if (existing) {
      if (existing.id === row.id) throw new VaultError('ERR_EXISTS', `cannot copy ${joinPath(src)} onto itself`);
      if (!opts.overwrite) throw new VaultError('ERR_EXISTS', `${joinPath(dst)} already exists`);
      this.assertNotProtected(dst);
      this.removeTree(existing.id);
    }
    this.copyTree(row, parent.id, name);
    this.touch(parent.id, this.now());
    return { replaced: existing !== undefined };
  }

  /** Sets and removes dead properties of one entry. */
  patchProps(names: readonly string[], path: string, set: readonly DeadProperty[], remove: readonly { ns: string; name: string }[]): void {
    const row = requireRow(this.index, names, path);
    const put = this.index.stmt('INSERT INTO prop (node, ns, name, value) VALUES (?, ?, ?, ?) ON CONFLICT (node, ns, name) DO UPDATE SET value = excluded.value');
    const del = this.index.stmt('DELETE FROM prop WHERE node = ? AND ns = ? AND name = ?');
    for (const p of set) put.run(row.id, p.ns, p.name, p.value);
    for (const p of remove) del.run(row.id, p.ns, p.name);
  }

  /** Sets Win32 times and attributes (the directory bit is kept as the entry's kind says). */
  setMeta(names: readonly string[], path: string, meta: Times & { attributes?: number }): Entry {
    const row = requireRow(this.index, names, path);
    const attributes = meta.attributes === undefined ? row.attributes : (meta.attributes & ~ATTR_DIRECTORY) | (row.is_dir ? ATTR_DIRECTORY : 0);
    this.index
      .stmt('UPDATE node SET created = ?, modified = ?, accessed = ?, attributes = ? WHERE id = ?')
      .run(meta.created ?? row.created, meta.modified ?? row.modified, meta.accessed ?? row.accessed, attributes >>> 0, row.id);
    return toEntry(rowById(this.index, row.id), names);
  }

  /** Points the file at `names` to a new object (created when missing); its old object goes to the garbage list. */
  commitFile(names: readonly string[], objectId: string, size: number, opts: FileCommit): { entry: Entry; created: boolean } {
    const name = names[names.length - 1]!;
    const parent = requireParent(this.index, names);
    const existing = child(this.index, parent.id, name);
    const t = this.now();
    const times = opts.times ?? {};
    let row: Row;
    if (existing) {
      if (existing.is_dir) throw new VaultError('ERR_IS_A_DIRECTORY', `${joinPath(names)} is a folder`);
      if (opts.createOnly) throw new VaultError('ERR_EXISTS', `${joinPath(names)} already exists`);
      this.index.stmt('INSERT OR IGNORE INTO garbage (object) VALUES (?)').run(existing.object);
      this.index
        .stmt('UPDATE node SET object = ?, size = ?, modified = ?, accessed = ?, created = ? WHERE id = ?')
        .run(objectId, size, times.modified ?? t, times.accessed ?? t, times.created ?? existing.created, existing.id);
      row = rowById(this.index, existing.id);
    } else {
      row = this.insert(parent.id, name, false, size, objectId, { created: times.created ?? t, modified: times.modified ?? t, accessed: times.accessed ?? t }, ATTR_ARCHIVE);
      this.touch(parent.id, t);
    }
    return { entry: toEntry(row, names), created: existing === undefined };
  }

  /** Checks, before a body is consumed, what can be checked (commitFile checks again); outside a transaction. */
  checkFile(names: readonly string[], opts: FileCommit): void {
    const parent = requireParent(this.index, names);
    const existing = child(this.index, parent.id, names[names.length - 1]!);
    if (existing?.is_dir) throw new VaultError('ERR_IS_A_DIRECTORY', `${joinPath(names)} is a folder`);
    if (existing && opts.createOnly) throw new VaultError('ERR_EXISTS', `${joinPath(names)} already exists`);
  }

  private insert(parent: number, name: string, isDir: boolean, size: number, object: string | null, times: Required<Times>, attributes: number): Row {
    const info = this.index
      .stmt('INSERT INTO node (parent, name, fold, is_dir, size, object, created, modified, accessed, attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(parent, name, foldName(name), isDir ? 1 : 0, size, object, times.created, times.modified, times.accessed, attributes);
    return rowById(this.index, info.lastInsertRowid);
  }

  private copyTree(row: Row, parent: number, name: string): void {
    const copy = this.insert(parent, name, row.is_dir === 1, row.size, row.object, row, row.attributes);
    this.index.stmt('INSERT INTO prop (node, ns, name, value) SELECT ?, ns, name, value FROM prop WHERE node = ?').run(copy.id, row.id);
    if (!row.is_dir) return;
    for (const child of this.index.stmt('SELECT * FROM node WHERE parent = ?').all(row.id) as Row[]) {
      this.copyTree(child, copy.id, child.name);
    }
  }

  /** Deletes a subtree; its objects go to the garbage list (collected if unreferenced). */
  private removeTree(id: number): void {
    this.index
      .stmt(
        `WITH RECURSIVE sub(id) AS (SELECT ? UNION ALL SELECT node.id FROM node JOIN sub ON node.parent = sub.id)
         INSERT OR IGNORE INTO garbage (object) SELECT object FROM node WHERE id IN sub AND object IS NOT NULL`,
      )
      .run(id);
    this.index.stmt('DELETE FROM node WHERE id = ?').run(id);
  }

  private isSelfOrDescendant(candidate: number, ancestor: number): boolean {
    let id: number | null = candidate;
    while (id !== null) {
      if (id === ancestor) return true;
      id = (this.index.stmt('SELECT parent FROM node WHERE id = ?').get(id) as { parent: number | null }).parent;
    }
    return false;
  }

  private touch(dirId: number, t: number): void {
    this.index.stmt('UPDATE node SET modified = ? WHERE id = ? AND id != ?').run(t, dirId, ROOT_ID);
  }

  private assertNotProtected(names: readonly string[]): void {
    if (names.length === 0 || (names.length === 1 && AREAS.some((a) => foldName(a) === foldName(names[0]!)))) {
      throw new VaultError('ERR_PROTECTED', `${joinPath(names)} is a fixed area of the vault and cannot be removed or replaced`);
    }
  }
}
