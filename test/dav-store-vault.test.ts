/** The WebDAV store contract, run against the vault (shares/vault/dav-store.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VaultDavStore } from '../shares/vault/dav-store.js';
import type { VaultErrorCode } from '../shares/vault/errors.js';
import { Vault } from '../shares/vault/vault.js';
import type { StoreErrorCode } from '../shares/webdav/store.js';
import { davStoreContract } from './helpers/dav-store-contract.js';
import { randomDataKey, tempDir } from './helpers/keys.js';

davStoreContract('vault', async () => {
  const { dir, cleanup } = await tempDir('mydoc-dav-store-');
  const vault = await Vault.open(dir, randomDataKey());
  return {
    store: new VaultDavStore(vault),
    base: ['Documents'],
    cleanup: async () => {
      vault.close();
      await cleanup();
    },
  };
}, ['deadProps', 'win32Meta', 'quota']);

test("every VaultError code is a store error code (checked when compiling): the handler answers each with its status, none with a bare 500", () => {
  const asStoreCode = (code: VaultErrorCode): StoreErrorCode => code;
  assert.equal(asStoreCode('ERR_NO_SPACE'), 'ERR_NO_SPACE');
});
