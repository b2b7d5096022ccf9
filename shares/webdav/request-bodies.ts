/**
 * The XML bodies of PROPFIND (RFC 4918 9.1) and LOCK (9.10) read into what
 * they ask for; a body of another shape is a 400. PROPPATCH bodies are
 * proppatch.ts's.
 */
import { DavError } from './errors.js';
import type { LockScope } from './locks.js';
import { DAV, type PropName } from './props.js';
import { childElement, type XmlElement } from './xml.js';

export type PropfindRequest = { mode: 'allprop' } | { mode: 'propname' } | { mode: 'prop'; requested: PropName[] };

/** A PROPFIND body; no body asks for allprop. */
export function parsePropfind(doc: XmlElement | undefined): PropfindRequest {
  if (!doc) return { mode: 'allprop' };
  if (doc.ns !== DAV || doc.local !== 'propfind') throw new DavError('ERR_DAV_BODY_INVALID', 'the body must be a DAV:propfind element');
  if (childElement(doc, DAV, 'propname')) return { mode: 'propname' };
  if (childElement(doc, DAV, 'allprop')) return { mode: 'allprop' };
  const prop = childElement(doc, DAV, 'prop');
  if (!prop) throw new DavError('ERR_DAV_BODY_INVALID', 'DAV:propfind needs allprop, propname or prop');
  return { mode: 'prop', requested: prop.children.map((c) => ({ ns: c.ns, local: c.local })) };
}

export interface LockInfo {
  scope: LockScope;
  /** The DAV:owner element as sent, '' without one. */
  ownerXml: string;
}

/** A LOCK body that creates a lock: a write lock, exclusive or shared. */
export function parseLockInfo(doc: XmlElement): LockInfo {
  if (doc.ns !== DAV || doc.local !== 'lockinfo') throw new DavError('ERR_DAV_BODY_INVALID', 'the body must be a DAV:lockinfo element');
  const scopeEl = childElement(doc, DAV, 'lockscope');
  const scope = scopeEl && childElement(scopeEl, DAV, 'exclusive') ? 'exclusive' : scopeEl && childElement(scopeEl, DAV, 'shared') ? 'shared' : undefined;
  if (!scope) throw new DavError('ERR_DAV_BODY_INVALID', 'lockinfo needs a lockscope of exclusive or shared');
  const typeEl = childElement(doc, DAV, 'locktype');
  if (!typeEl || !childElement(typeEl, DAV, 'write')) throw new DavError('ERR_DAV_BODY_INVALID', 'only write locks are supported');
  const owner = childElement(doc, DAV, 'owner');
  return { scope, ownerXml: owner ? owner.raw : '' };
}
