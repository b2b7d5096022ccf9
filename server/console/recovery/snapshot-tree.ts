/**
 * The tree of a PC's latest snapshot on the NAS (names, sizes, dates), read
 * with the recovery key as `mydoc recover --list` reads it
 * (backup/recover.ts), for the console's recovery view.
 *
 * Security considerations:
 * - Manifests are trusted only when signed by the device key the console
 *   pinned for this PC at enrolment (never the key the NAS offers).
 * - openBackup fetches the keyrings and vault indexes (encrypted as on the
 *   PC) into a private scratch folder under the system's temp folder, and
 *   this closes it (the folder removed) before it returns: no file of the
 *   snapshot and no key outlives the call. Contents are not fetched:
 *   extracting stays `mydoc recover --extract`.
 * - The walk stops at MAX_ENTRIES, so a huge tree cannot exhaust memory.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { openTarget, type TargetSpec } from '../../../backup/open-target.js';
import { trustOf } from '../../../backup/device-trust.js';
import { openBackup, walk } from '../../../backup/recover.js';

/** The most entries one view lists (the rest are counted, not listed). */
export const MAX_ENTRIES = 20_000;

export interface TreeEntry {
  /** "/"-joined inside the user's vault ("/Documents/a.txt"). */
  path: string;
  depth: number;
  isDir: boolean;
  size: number;
  modified: number;
}

export interface SnapshotTree {
  snapshot: string;
  /** When the snapshot was finished, as its manifest says (epoch ms). */
  finished: number | undefined;
  users: { user: string; entries: TreeEntry[] }[];
  /** Entries beyond MAX_ENTRIES, not listed. */
  omitted: number;
  files: number;
  bytes: number;
}

export async function readSnapshotTree(opts: { target: TargetSpec; pcId: string; devicePublicPem: string; recoveryPrivateKey: KeyObject }): Promise<SnapshotTree> {
  const target = await openTarget(opts.target);
  const trust = await trustOf(createPublicKey(opts.devicePublicPem));
  const backup = await openBackup({ target, pcId: opts.pcId, snapshot: 'latest', recoveryPrivateKey: opts.recoveryPrivateKey, trust });
  try {
    const finished = Date.parse(backup.manifest.finishedAt);
    const tree: SnapshotTree = { snapshot: backup.snapshot, finished: Number.isFinite(finished) ? finished : undefined, users: [], omitted: 0, files: 0, bytes: 0 };
    let listed = 0;
    for (const u of backup.users) {
      const entries: TreeEntry[] = [];
      for (const e of walk(u.vault)) {
        if (!e.isDir) {
          tree.files++;
          tree.bytes += e.size;
        }
        if (listed >= MAX_ENTRIES) {
          tree.omitted++;
          continue;
        }
        listed++;
        entries.push({ path: e.path, depth: e.path.split('/').length - 2, isDir: e.isDir, size: e.size, modified: e.modified });
      }
      tree.users.push({ user: u.user, entries });
    }
    return tree;
  } finally {
    await backup.close();
  }
}
