/** The WebDAV store contract, run against the in-memory store of the handler tests. */
import { davStoreContract } from './helpers/dav-store-contract.js';
import { MemoryDavStore } from './helpers/memory-dav-store.js';

davStoreContract('in memory', async () => ({ store: new MemoryDavStore(), base: [], cleanup: async () => undefined }), ['deadProps', 'win32Meta', 'quota']);
