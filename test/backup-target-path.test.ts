/** The folder backup target (backup/path-target.ts) against the shared target contract. */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PathTarget } from '../backup/path-target.js';
import { tempDir } from './helpers/keys.js';
import { targetContract } from './helpers/target-contract.js';

// The target's root is a folder that does not exist yet.
targetContract('path', async () => {
  const { dir, cleanup } = await tempDir('mydoc-path-target-');
  const root = join(dir, 'nas', 'backups');
  return {
    target: new PathTarget(root),
    cleanup,
    plant: async (path, data) => {
      const file = join(root, path);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, data);
    },
  };
});
