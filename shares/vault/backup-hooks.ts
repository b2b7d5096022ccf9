/**
 * What a backup of a vault folder needs from the vault (backup/run.ts calls
 * these through Vault): a consistent copy of the index files, read without
 * the DEK, and a hold that stops every vault from deleting objects while the
 * backup copies them.
 *
 * A hold is an empty file `backup.hold-<holder tag>-<random>` in the vault
 * folder; it counts while the process its tag names runs (pid-file.ts).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { VaultError } from './errors.js';
import { INDEX_FILE } from './index-db.js';
import { vaultHolder } from './lock-file.js';
import { holderTag, tagRuns } from './pid-file.js';

/** `backup.hold-<holder tag>-<random>`: while one names a running process, no object is deleted. */
const HOLD_PREFIX = 'backup.hold-';

/**
 * Reads the index files (`index.db` and its WAL, both encrypted) of the
 * vault in `dir` into memory, consistently, without the DEK, so that a
 * backup needs no room on this disk. The read is synchronous: a vault open
 * in this process cannot commit in between (its writes are synchronous
 * JavaScript too). A vault open in another live process is refused
 * (ERR_VAULT_BUSY). Regular files only, never through a link (ELOOP).
 * Returns each file's name and bytes.
 */
export function snapshotIndex(dir: string): { name: string; data: Buffer }[] {
  const owner = vaultHolder(dir);
  if (owner !== undefined && owner !== process.pid) {
    throw new VaultError('ERR_VAULT_BUSY', `the vault ${dir} is open in process ${owner}; back it up through that process`);
  }
  const read: { name: string; data: Buffer }[] = [];
  for (const name of [INDEX_FILE, `${INDEX_FILE}-wal`]) {
    let fd: number;
    try {
      fd = openSync(join(dir, name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      if (name === INDEX_FILE) throw new VaultError('ERR_NOT_FOUND', `no vault index in ${dir}`, { cause: err });
      continue;
    }
    try {
      if (!fstatSync(fd).isFile()) throw new VaultError('ERR_NOT_FOUND', `${join(dir, name)} is not a regular file`);
      read.push({ name, data: readFileSync(fd) });
    } finally {
      closeSync(fd);
    }
  }
  return read;
}

/**
 * Stops every vault (in any process) from deleting objects of `dir` until
 * the returned release is called, so that a backup can copy every object
 * its index snapshot refers to. Deletions wait in the garbage list.
 */
export async function holdDeletions(dir: string): Promise<() => Promise<void>> {
  // One file per hold, so that two holds never release each other; holds
  // of processes that died are removed here.
  for (const name of await readdir(dir)) {
    if (name.startsWith(HOLD_PREFIX) && !holdIsLive(name)) await rm(join(dir, name), { force: true });
  }
  // Empty: the holder is in the name, so a hold needs no room on a full disk.
  const file = join(dir, `${HOLD_PREFIX}${holderTag()}-${randomBytes(4).toString('hex')}`);
  await (await open(file, 'wx', 0o600)).close();
  return () => rm(file, { force: true });
}

/** Whether a running process holds the deletions of `dir` (the collector checks before each one). */
export function deletionsHeld(dir: string): boolean {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return false;
  }
  return names.some((name) => name.startsWith(HOLD_PREFIX) && holdIsLive(name));
}

/** A hold file `backup.hold-<holder tag>-<random>` counts while its process runs (pid-file.ts). */
function holdIsLive(name: string): boolean {
  return tagRuns(name.slice(HOLD_PREFIX.length, name.lastIndexOf('-')));
}
