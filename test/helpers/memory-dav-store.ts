/**
 * A WebDAV store in memory (shares/webdav/store.ts), for the handler's
 * in-process tests and as the second backend of the store contract suite.
 * It compares names as the vault does (shares/names.ts: NFC,
 * case-insensitive, case-preserving) and throws the same codes, with
 * StoreError.
 */
import { Readable } from 'node:stream';
import { foldName, joinPath, normalizeName } from '../../shares/names.js';
import {
  ATTR_ARCHIVE,
  ATTR_DIRECTORY,
  StoreError,
  type ByteSource,
  type DavEntry,
  type DavPath,
  type DavStore,
  type DavTimes,
  type DavWriteOptions,
  type DavWriteResult,
  type DeadProperty,
  type DeadPropsStore,
  type QuotaStore,
  type Win32MetaStore,
} from '../../shares/webdav/store.js';

interface Node {
  id: number;
  name: string;
  isDir: boolean;
  content: Buffer;
  created: number;
  modified: number;
  accessed: number;
  attributes: number;
  /** Bumped on every change of content (files) or membership (folders). */
  version: number;
  props: Map<string, DeadProperty>;
  /** By folded name. */
  children: Map<string, Node>;
}

const propKey = (ns: string, name: string) => `${ns}\u0000${name}`;
const byKey = <T>(m: Map<string, T>): T[] => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);

export class MemoryDavStore implements DavStore, DeadPropsStore, Win32MetaStore, QuotaStore {
  #nextId = 1;
  readonly #root: Node;

  constructor(private readonly now: () => number = Date.now) {
    this.#root = this.#node('', true, Buffer.alloc(0), {});
  }

  stat(path: DavPath): DavEntry | undefined {
    const node = this.#resolve(path);
    return node && entryOf(node);
  }

  list(path: DavPath): DavEntry[] {
    return byKey(this.#requireDir(path).children).map(entryOf);
  }

  async read(path: DavPath, range?: { start: number; end: number }): Promise<Readable> {
    const node = this.#require(path);
    if (node.isDir) throw new StoreError('ERR_IS_A_DIRECTORY', `${joinPath(path)} is a folder`);
    const content = range ? node.content.subarray(range.start, Math.min(range.end, node.content.length)) : node.content;
    return Readable.from([Buffer.from(content)]);
  }

  async write(path: DavPath, source: ByteSource, opts: DavWriteOptions = {}): Promise<DavWriteResult> {
    if (path.length === 0) throw new StoreError('ERR_IS_A_DIRECTORY', '/ is a folder');
    this.#checkWritable(path, opts);
    const parts: Buffer[] = [];
    let size = 0;
    for await (const piece of source) {
      const buf = typeof piece === 'string' ? Buffer.from(piece) : Buffer.from(piece);
      size += buf.length;
      if (size > (opts.maxBytes ?? Infinity)) throw new StoreError('ERR_TOO_LARGE', `the file is larger than ${opts.maxBytes} bytes`);
      parts.push(buf);
    }
    this.#checkWritable(path, opts);
    const parent = this.#requireParent(path);
    const name = normalizeName(path[path.length - 1]!);
    const existing = parent.children.get(foldName(name));
    const t = this.now();
    if (existing) {
      existing.content = Buffer.concat(parts, size);
      existing.modified = t;
      existing.accessed = t;
      existing.version++;
      return { entry: entryOf(existing), created: false };
    }
    const node = this.#node(name, false, Buffer.concat(parts, size), {});
    this.#attach(parent, node, t);
    return { entry: entryOf(node), created: true };
  }

  mkdir(path: DavPath, times: DavTimes = {}): DavEntry {
    if (path.length === 0) throw new StoreError('ERR_EXISTS', '/ exists');
    const parent = this.#requireParent(path);
    const name = normalizeName(path[path.length - 1]!);
    if (parent.children.has(foldName(name))) throw new StoreError('ERR_EXISTS', `${joinPath(path)} already exists`);
    const node = this.#node(name, true, Buffer.alloc(0), times);
    this.#attach(parent, node, this.now());
    return entryOf(node);
  }

  async delete(path: DavPath): Promise<void> {
    const node = this.#require(path);
    if (path.length === 0) throw new StoreError('ERR_PROTECTED', '/ cannot be removed');
    this.#detach(this.#resolve(path.slice(0, -1))!, node, this.now());
  }

  async move(from: DavPath, to: DavPath, opts: { overwrite: boolean }): Promise<{ replaced: boolean }> {
    const node = this.#require(from);
    if (from.length === 0) throw new StoreError('ERR_PROTECTED', '/ cannot be moved');
    if (to.length === 0) throw new StoreError('ERR_EXISTS', '/ exists');
    const target = this.#requireParent(to);
    if (node.isDir && this.#isWithin(target, node)) throw new StoreError('ERR_MOVE_INTO_SELF', `cannot move ${joinPath(from)} into itself`);
    const name = normalizeName(to[to.length - 1]!);
    const existing = target.children.get(foldName(name));
    const replaced = existing !== undefined && existing !== node;
    if (replaced && !opts.overwrite) throw new StoreError('ERR_EXISTS', `${joinPath(to)} already exists`);
    const t = this.now();
    const source = this.#resolve(from.slice(0, -1))!;
    if (replaced) this.#detach(target, existing, t);
    this.#detach(source, node, t);
    node.name = name;
    this.#attach(target, node, t);
    return { replaced };
  }

  async copy(from: DavPath, to: DavPath, opts: { overwrite: boolean }): Promise<{ replaced: boolean }> {
    const node = this.#require(from);
    if (to.length === 0) throw new StoreError('ERR_EXISTS', '/ exists');
    const target = this.#requireParent(to);
    if (node.isDir && this.#isWithin(target, node)) throw new StoreError('ERR_MOVE_INTO_SELF', `cannot copy ${joinPath(from)} into itself`);
    const name = normalizeName(to[to.length - 1]!);
    const existing = target.children.get(foldName(name));
    if (existing === node) throw new StoreError('ERR_EXISTS', `cannot copy ${joinPath(from)} onto itself`);
    if (existing && !opts.overwrite) throw new StoreError('ERR_EXISTS', `${joinPath(to)} already exists`);
    const t = this.now();
    if (existing) this.#detach(target, existing, t);
    this.#attach(target, this.#clone(node, name), t);
    return { replaced: existing !== undefined };
  }

  getProps(path: DavPath): DeadProperty[] {
    return byKey(this.#require(path).props).map((p) => ({ ...p }));
  }

  childProps(path: DavPath): Map<string, DeadProperty[]> {
    const byChild = new Map<string, DeadProperty[]>();
    for (const child of byKey(this.#requireDir(path).children)) {
      if (child.props.size > 0) byChild.set(child.name, byKey(child.props).map((p) => ({ ...p })));
    }
    return byChild;
  }

  patchProps(path: DavPath, set: readonly DeadProperty[], remove: readonly { ns: string; name: string }[] = []): void {
    const node = this.#require(path);
    for (const p of set) node.props.set(propKey(p.ns, p.name), { ns: p.ns, name: p.name, value: p.value });
    for (const p of remove) node.props.delete(propKey(p.ns, p.name));
  }

  setMeta(path: DavPath, meta: DavTimes & { attributes?: number }): DavEntry {
    const node = this.#require(path);
    node.created = meta.created ?? node.created;
    node.modified = meta.modified ?? node.modified;
    node.accessed = meta.accessed ?? node.accessed;
    if (meta.attributes !== undefined) node.attributes = ((meta.attributes & ~ATTR_DIRECTORY) | (node.isDir ? ATTR_DIRECTORY : 0)) >>> 0;
    return entryOf(node);
  }

  quotaUsed(): number {
    let used = 0;
    const walk = (node: Node): void => {
      used += node.content.length;
      for (const child of node.children.values()) walk(child);
    };
    walk(this.#root);
    return used;
  }

  #node(name: string, isDir: boolean, content: Buffer, times: DavTimes): Node {
    const t = this.now();
    return {
      id: this.#nextId++,
      name,
      isDir,
      content,
      created: times.created ?? t,
      modified: times.modified ?? t,
      accessed: times.accessed ?? t,
      attributes: isDir ? ATTR_DIRECTORY : ATTR_ARCHIVE,
      version: 0,
      props: new Map(),
      children: new Map(),
    };
  }

  #clone(node: Node, name: string): Node {
    const copy: Node = { ...node, id: this.#nextId++, name, version: 0, props: new Map(node.props), children: new Map() };
    for (const [key, child] of node.children) copy.children.set(key, this.#clone(child, child.name));
    return copy;
  }

  #attach(parent: Node, node: Node, t: number): void {
    parent.children.set(foldName(node.name), node);
    this.#touch(parent, t);
  }

  #detach(parent: Node, node: Node, t: number): void {
    parent.children.delete(foldName(node.name));
    this.#touch(parent, t);
  }

  /** A folder's membership changed (the root keeps its time, as the vault's does). */
  #touch(dir: Node, t: number): void {
    dir.version++;
    if (dir !== this.#root) dir.modified = t;
  }

  #isWithin(candidate: Node, ancestor: Node): boolean {
    if (candidate === ancestor) return true;
    for (const child of ancestor.children.values()) if (child.isDir && this.#isWithin(candidate, child)) return true;
    return false;
  }

  #resolve(path: DavPath): Node | undefined {
    let node: Node | undefined = this.#root;
    for (const name of path) {
      if (!node?.isDir) return undefined;
      node = node.children.get(foldName(normalizeName(name)));
    }
    return node;
  }

  #require(path: DavPath): Node {
    const node = this.#resolve(path);
    if (!node) throw new StoreError('ERR_NOT_FOUND', `${joinPath(path)} does not exist`);
    return node;
  }

  #requireDir(path: DavPath): Node {
    const node = this.#require(path);
    if (!node.isDir) throw new StoreError('ERR_NOT_A_DIRECTORY', `${joinPath(path)} is not a folder`);
    return node;
  }

  #requireParent(path: DavPath): Node {
    const parentPath = path.slice(0, -1);
    const parent = this.#resolve(parentPath);
    if (!parent) throw new StoreError('ERR_PARENT_MISSING', `folder ${joinPath(parentPath)} does not exist`);
    if (!parent.isDir) throw new StoreError('ERR_NOT_A_DIRECTORY', `${joinPath(parentPath)} is not a folder`);
    return parent;
  }

  #checkWritable(path: DavPath, opts: DavWriteOptions): void {
    const existing = this.#requireParent(path).children.get(foldName(normalizeName(path[path.length - 1]!)));
    if (existing?.isDir) throw new StoreError('ERR_IS_A_DIRECTORY', `${joinPath(path)} is a folder`);
    if (existing && opts.createOnly) throw new StoreError('ERR_EXISTS', `${joinPath(path)} already exists`);
  }
}

function entryOf(node: Node): DavEntry {
  return {
    name: node.name,
    isDir: node.isDir,
    size: node.content.length,
    created: node.created,
    modified: node.modified,
    accessed: node.accessed,
    attributes: node.attributes,
    etag: `${node.isDir ? 'd' : 'f'}${node.id}-${node.version}`,
  };
}
