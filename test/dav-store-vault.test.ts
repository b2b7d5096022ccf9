/** The WebDAV store contract, run against the vault (shares/vault/dav-store.ts). */
import { VaultDavStore } from '../shares/vault/dav-store.js';
import { Vault } from '../shares/vault/vault.js';
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
});
