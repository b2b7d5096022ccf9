/**
 * The vault's lock file `vault.lock`: a holder file naming the process that
 * has the vault open (see pid-file.ts). While it names a running process, no
 * other vault opens the folder; the clean-up at open must never run beside a
 * writer, and a backup of the folder goes through the process that holds it.
 */
import { rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { VaultError } from './errors.js';
import { livePid, takeLock } from './pid-file.js';

const LOCK_FILE = 'vault.lock';

/**
 * Takes the lock of the vault folder `dir` for this process. A vault open in
 * a running process (this one included) is refused (ERR_VAULT_BUSY); a lock
 * whose process is gone (killed, from an earlier boot, or a pid now used by
 * another process) is taken over.
 */
export async function takeVaultLock(dir: string): Promise<void> {
  const file = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    if (await takeLock(file)) return;
    const pid = livePid(file);
    if (pid !== undefined) {
      throw new VaultError('ERR_VAULT_BUSY', `the vault ${file.slice(0, -LOCK_FILE.length - 1)} is open in process ${pid}`);
    }
    await rm(file, { force: true });
  }
  throw new VaultError('ERR_VAULT_BUSY', `could not take the vault lock ${file}`);
}

/** Gives the lock of `dir` up (it is this process's). */
export function releaseVaultLock(dir: string): void {
  rmSync(join(dir, LOCK_FILE), { force: true });
}

/** The pid of the running process that has the vault `dir` open; undefined when none has. */
export function vaultHolder(dir: string): number | undefined {
  return livePid(join(dir, LOCK_FILE));
}
