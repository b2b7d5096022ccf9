/**
 * Opens the target a configuration or a command line names: a folder, or an
 * SMB share `//host[:port]/share[/folder]` with a Samba auth file.
 */
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PathTarget } from './path-target.js';
import { SmbTarget } from './smb-target.js';
import { TargetError, type BackupTarget } from './target.js';

export type TargetSpec = { kind: 'path'; path: string; mountPoint?: string } | { kind: 'smb'; url: string; authFile: string };

/** `timeoutSeconds`: the longest wait for an SMB server, per step (default 60). */
export async function openTarget(spec: TargetSpec, timeoutSeconds?: number): Promise<BackupTarget> {
  if (spec.kind === 'path') {
    // Never created here: a NAS share that is not mounted must not turn into a
    // backup on the local disk under its mount point.
    if (spec.mountPoint !== undefined && !(await isMountPoint(spec.mountPoint))) {
      throw new TargetError('ERR_TARGET_NOT_FOUND', `nothing is mounted at ${spec.mountPoint} (backup.target.mountPoint): mount the NAS share first`);
    }
    const isDir = await stat(spec.path).then((s) => s.isDirectory(), () => false);
    if (!isDir) throw new TargetError('ERR_TARGET_NOT_FOUND', `the backup folder ${spec.path} does not exist: create it, or mount the NAS share there`);
    return new PathTarget(spec.path);
  }
  const m = /^\/\/([^/:]+)(?::(\d{1,5}))?(\/.+)$/.exec(spec.url);
  if (!m) throw new TargetError('ERR_TARGET_IO', `${spec.url} is not an SMB address of the form //host[:port]/share[/folder]`);
  return SmbTarget.open({ url: `//${m[1]}${m[3]}`, authFile: spec.authFile, ...(m[2] ? { port: Number(m[2]) } : {}), ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }) });
}

/** True when `dir` is the root of a mounted file system (its device differs from its parent's). */
async function isMountPoint(dir: string): Promise<boolean> {
  const [self, parent] = await Promise.all([stat(dir).catch(() => undefined), stat(dirname(dir)).catch(() => undefined)]);
  if (!self?.isDirectory() || !parent) return false;
  return self.dev !== parent.dev || dir === dirname(dir);
}

/** A target from the command line's --from: a folder, or //host[:port]/share[/folder] with --auth-file. */
export function targetSpecFromArgs(from: string, authFile: string | undefined): TargetSpec {
  if (from.startsWith('//')) {
    if (!authFile) throw new TargetError('ERR_TARGET_AUTH', `--from ${from} is an SMB share: add --auth-file FILE (a 0600 Samba auth file)`);
    return { kind: 'smb', url: from, authFile };
  }
  return { kind: 'path', path: from };
}
