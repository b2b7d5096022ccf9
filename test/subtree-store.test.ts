/**
 * shares/webdav/subtree-store.ts over a real DavHandler and an in-memory
 * store (request paths below the share, as server/agent/link-dav.ts passes
 * them; hrefs and Destinations under its base): a share's root is the shared folder; inside it everything works,
 * while DELETE or MOVE of the shared folder itself is refused (403) and the
 * owner's folder stays, with its contents.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { DavHandler } from '../shares/webdav/handler.js';
import { LockManager } from '../shares/webdav/locks.js';
import { subtreeStore } from '../shares/webdav/subtree-store.js';
import { MemoryDavStore } from './helpers/memory-dav-store.js';

describe('subtreeStore', () => {
  it('serves inside the shared folder and refuses to delete or move the folder itself', async () => {
    const inner = new MemoryDavStore();
    inner.mkdir(['Documents']);
    inner.mkdir(['Documents', 'Inbox']);
    await inner.write(['Documents', 'Inbox', 'a.txt'], Readable.from([Buffer.from('a')]));
    const store = subtreeStore(inner, ['Documents', 'Inbox']);
    const handler = new DavHandler(store, new LockManager(Date.now), { maxFileBytes: 1 << 20, maxXmlBytes: 1 << 16, quotaBytes: () => 1 << 30 }, Date.now, '/shared/alice%40pc-1/Inbox');
    const req = (method: string, url: string, headers: Record<string, string> = {}) => handler.handle({ method, url, headers, body: Readable.from([]), principal: 'rita (share grantee)' });

    assert.equal((await req('DELETE', '/')).status, 403);
    assert.equal((await req('MOVE', '/', { host: 'console', destination: 'https://console/shared/alice%40pc-1/Inbox/moved/' })).status, 403);
    assert.ok(inner.stat(['Documents', 'Inbox', 'a.txt']), 'the shared folder and its contents stay');

    assert.equal((await req('MOVE', '/a.txt', { host: 'console', destination: 'https://console/shared/alice%40pc-1/Inbox/b.txt' })).status, 201);
    assert.ok(inner.stat(['Documents', 'Inbox', 'b.txt']));
    assert.equal((await req('DELETE', '/b.txt')).status, 204);
    assert.equal(inner.stat(['Documents', 'Inbox', 'b.txt']), undefined);
    assert.ok(inner.stat(['Documents', 'Inbox']));
  });
});
