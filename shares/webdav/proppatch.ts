/**
 * A PROPPATCH body (RFC 4918 9.2) read into what it changes: the Windows
 * client's Win32 times and attributes (urn:schemas-microsoft-com:) and dead
 * properties, with a status for each property. A PROPPATCH is all or
 * nothing: when one instruction fails, the others get 424 and nothing is
 * applied. Instructions apply in document order (the last one for a
 * property wins); removing a Win32 property keeps the file's own value.
 *
 * Limits (props.ts): a dead property value holds at most
 * MAX_DEAD_PROP_BYTES, the dead properties of one resource at most
 * MAX_DEAD_PROPS_BYTES in all (507); a Win32 time must lie within
 * MIN_TIME_MS..MAX_TIME_MS and attributes be 1 to 8 hex digits (409).
 */
import { DAV, MAX_DEAD_PROP_BYTES, MAX_DEAD_PROPS_BYTES, deadPropsBytes, isProtected, isWin32, parseTime, type PropName } from './props.js';
import type { DavTimes, DeadProperty } from './store.js';
import { childElement, type XmlElement } from './xml.js';

export interface PropPatchPlan {
  /** Every property of the request, in order, with its status. */
  results: { name: PropName; status: number }[];
  /** The sentence of each failure status, for its propstat's responsedescription. */
  why: Map<number, string>;
  /** Whether any instruction failed: then nothing is to be applied. */
  failed: boolean;
  /** The Win32 times and attributes to set. */
  meta: DavTimes & { attributes?: number };
  /** The dead properties to set and to remove. */
  sets: DeadProperty[];
  removes: { ns: string; name: string }[];
}

/** What the store can take: Win32 metadata, and dead properties (with the resource's current ones). */
export interface PropPatchTarget {
  win32: boolean;
  deadProps: (() => readonly DeadProperty[]) | undefined;
}

interface Op {
  name: PropName;
  set: boolean;
  el: XmlElement;
  failure?: number;
}

/** Reads a DAV:propertyupdate element. */
export function planPropPatch(doc: XmlElement, target: PropPatchTarget): PropPatchPlan {
  const ops: Op[] = [];
  for (const instruction of doc.children) {
    if (instruction.ns !== DAV || (instruction.local !== 'set' && instruction.local !== 'remove')) continue;
    const prop = childElement(instruction, DAV, 'prop');
    for (const el of prop?.children ?? []) ops.push({ name: { ns: el.ns, local: el.local }, set: instruction.local === 'set', el });
  }
  const why = new Map<number, string>();
  const fail = (op: Op, status: number, description: string) => {
    op.failure = status;
    why.set(status, description);
  };
  const meta: DavTimes & { attributes?: number } = {};
  for (const op of ops) {
    if (isProtected(op.name)) fail(op, 403, 'live DAV: properties cannot be set or removed');
    else if (isWin32(op.name)) {
      if (!op.set) continue; // removing a Win32 property keeps the file's own value
      if (!target.win32) {
        fail(op, 403, 'this share cannot set Win32 properties');
        continue;
      }
      const value = op.el.text.trim();
      if (op.name.local === 'Win32FileAttributes') {
        if (!/^[0-9a-fA-F]{1,8}$/.test(value)) fail(op, 409, 'Win32FileAttributes must be 1 to 8 hex digits');
        else meta.attributes = parseInt(value, 16);
      } else {
        const ms = parseTime(value);
        if (ms === undefined) fail(op, 409, 'a Win32 time must be a date from 1601-01-01T00:00:00Z to 9999-12-31T23:59:59Z');
        else if (op.name.local === 'Win32CreationTime') meta.created = ms;
        else if (op.name.local === 'Win32LastAccessTime') meta.accessed = ms;
        else meta.modified = ms;
      }
    } else if (!target.deadProps) {
      fail(op, 403, 'this share keeps no dead properties');
    } else if (op.set && Buffer.byteLength(op.el.raw) > MAX_DEAD_PROP_BYTES) {
      fail(op, 507, `a property value may hold at most ${MAX_DEAD_PROP_BYTES} bytes`);
    }
  }
  // Instructions apply in document order: the last one for a property wins.
  const final = new Map<string, { ns: string; name: string; value: string | undefined }>();
  for (const o of ops) {
    if (!isWin32(o.name) && !isProtected(o.name)) final.set(`${o.name.ns}\u0000${o.name.local}`, { ns: o.name.ns, name: o.name.local, value: o.set ? o.el.raw : undefined });
  }
  const sets = [...final.values()].flatMap((p) => (p.value === undefined ? [] : [{ ns: p.ns, name: p.name, value: p.value }]));
  const removes = [...final.values()].filter((p) => p.value === undefined).map((p) => ({ ns: p.ns, name: p.name }));
  if (target.deadProps && sets.length > 0 && !ops.some((o) => o.failure !== undefined)) {
    const after = new Map(target.deadProps().map((p) => [`${p.ns}\u0000${p.name}`, p]));
    for (const [key, p] of final) {
      if (p.value === undefined) after.delete(key);
      else after.set(key, { ns: p.ns, name: p.name, value: p.value });
    }
    const total = deadPropsBytes(after.values());
    if (total > MAX_DEAD_PROPS_BYTES) {
      const description = `the properties of a resource may hold at most ${MAX_DEAD_PROPS_BYTES} bytes in all; these would make ${total}`;
      for (const op of ops) if (op.set && !isWin32(op.name)) fail(op, 507, description);
    }
  }
  const failed = ops.some((o) => o.failure !== undefined);
  const results = ops.map((op) => ({ name: op.name, status: op.failure ?? (failed ? 424 : 200) }));
  return { results, why, failed, meta, sets, removes };
}
