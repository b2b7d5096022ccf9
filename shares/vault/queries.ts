/**
 * Reads of the vault's index: finding the row a path names (names compared
 * case-insensitively, by their fold), listing a folder, dead properties, the
 * space used, and turning rows into entries. Nothing here writes.
 */
import { VaultError } from './errors.js';
import { ROOT_ID, type IndexDb, type Row } from './index-db.js';
import type { DeadProperty, Entry } from './entry.js';
import { foldName, joinPath, normalizeName } from '../names.js';

/** Paths up to this many names deep are resolved in one query (a join per name); deeper ones a name at a time. */
const JOINED_DEPTH = 16;

/** The row at `names` (a path split into names), or undefined when nothing is there. ERR_VAULT_CLOSED on a closed index. */
export function resolve(index: IndexDb, names: readonly string[]): Row | undefined {
  index.assertOpen();
  if (names.length === 0) return rowById(index, ROOT_ID);
  if (names.length <= JOINED_DEPTH) {
    const folds = names.map((n) => foldName(normalizeName(n)));
    // Bound in the query's order: the joins' names (2nd to last), then the first one's.
    return index.stmt(joinedLookup(names.length)).get(...folds.slice(1), folds[0]) as Row | undefined;
  }
  let row: Row | undefined = rowById(index, ROOT_ID);
  for (const name of names) {
    if (!row || !row.is_dir) return undefined;
    row = child(index, row.id, name);
  }
  return row;
}

/**
 * The query finding the row `depth` names below the root: each name a child
 * (by fold, through the UNIQUE (parent, fold) index) of the one before,
 * every one but the last a folder, as a walk a name at a time finds it.
 */
function joinedLookup(depth: number): string {
  const joins: string[] = [];
  for (let i = 2; i <= depth; i++) joins.push(`JOIN node n${i} ON n${i}.parent = n${i - 1}.id AND n${i - 1}.is_dir = 1 AND n${i}.fold = ?`);
  return `SELECT n${depth}.* FROM node n1 ${joins.join(' ')} WHERE n1.parent = ${ROOT_ID} AND n1.fold = ?`;
}

/** The child `name` of the folder row `parent`, or undefined. */
export function child(index: IndexDb, parent: number, name: string): Row | undefined {
  return index.stmt('SELECT * FROM node WHERE parent = ? AND fold = ?').get(parent, foldName(normalizeName(name))) as Row | undefined;
}

export function rowById(index: IndexDb, id: number | bigint): Row {
  return index.stmt('SELECT * FROM node WHERE id = ?').get(id) as Row;
}

/** The row at `names`; ERR_NOT_FOUND (naming `path`) when nothing is there. */
export function requireRow(index: IndexDb, names: readonly string[], path: string): Row {
  const row = resolve(index, names);
  if (!row) throw new VaultError('ERR_NOT_FOUND', `${displayPath(path)} does not exist`);
  return row;
}

/** The folder row at `names`; ERR_NOT_FOUND or ERR_NOT_A_DIRECTORY. */
export function requireDir(index: IndexDb, names: readonly string[], path: string): Row {
  const row = requireRow(index, names, path);
  if (!row.is_dir) throw new VaultError('ERR_NOT_A_DIRECTORY', `${displayPath(path)} is not a folder`);
  return row;
}

/** The folder that holds (or would hold) `names`; ERR_PARENT_MISSING or ERR_NOT_A_DIRECTORY. */
export function requireParent(index: IndexDb, names: readonly string[]): Row {
  const parentNames = names.slice(0, -1);
  const parent = resolve(index, parentNames);
  if (!parent) throw new VaultError('ERR_PARENT_MISSING', `folder ${joinPath(parentNames)} does not exist`);
  if (!parent.is_dir) throw new VaultError('ERR_NOT_A_DIRECTORY', `${joinPath(parentNames)} is not a folder`);
  return parent;
}

/** The rows of a folder's children, sorted by name (fold). */
export function childRows(index: IndexDb, dirId: number): Row[] {
  return index.stmt('SELECT * FROM node WHERE parent = ? ORDER BY fold').all(dirId) as Row[];
}

/** Sum of the sizes of all files. */
export function usedBytes(index: IndexDb): number {
  return (index.stmt('SELECT COALESCE(SUM(size), 0) AS used FROM node WHERE is_dir = 0').get() as { used: number }).used;
}

/** The dead properties of every child of the folder row `dirId`, by child name (one query, for listings). */
export function childProps(index: IndexDb, dirId: number): Map<string, DeadProperty[]> {
  const rows = index
    .stmt('SELECT node.name AS child, prop.ns, prop.name, prop.value FROM node JOIN prop ON prop.node = node.id WHERE node.parent = ? ORDER BY prop.ns, prop.name')
    .all(dirId) as (DeadProperty & { child: string })[];
  const byChild = new Map<string, DeadProperty[]>();
  for (const { child, ns, name, value } of rows) {
    let list = byChild.get(child);
    if (!list) byChild.set(child, (list = []));
    list.push({ ns, name, value });
  }
  return byChild;
}

/** The dead properties of the row `id`, sorted. */
export function props(index: IndexDb, id: number): DeadProperty[] {
  return index.stmt('SELECT ns, name, value FROM prop WHERE node = ? ORDER BY ns, name').all(id) as DeadProperty[];
}

/** The entry a row describes, at the path `names`. */
export function toEntry(row: Row, names: readonly string[]): Entry {
  const isDir = row.is_dir === 1;
  return {
    path: joinPath(names),
    name: row.name,
    isDir,
    size: row.size,
    objectId: row.object ?? undefined,
    created: row.created,
    modified: row.modified,
    accessed: row.accessed,
    attributes: row.attributes,
    // 64 random bits of the object id: unique per version (empty files may share one empty object: same, empty, content), short in listings.
    etag: isDir ? `d${row.id}-${row.modified}` : row.object!.slice(0, 16),
  };
}

function displayPath(path: string): string {
  return path.startsWith('/') ? path : '/' + path;
}
