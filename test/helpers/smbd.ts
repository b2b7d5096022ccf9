/**
 * Test helper: a real Samba file server (`smbd`, Debian package `samba`) on 127.0.0.1 for the
 * SMB backup target, following ../../../shared/docs/test-servers.md ("SMB NAS").
 *
 * Everything lives in a fresh temporary folder: its own smb.conf (standalone server, loopback
 * only, a free high port, no NetBIOS), a tdbsam password database and every state folder. One
 * writable share `nas` serves `shareDir`. The Samba account is Debian's `backup` Unix user
 * (created with useradd if missing) with a random password, written to a 0600 auth file for
 * `smbclient -A`. smbd runs as root (it must switch to the user) in the foreground, in its own
 * process group, and is stopped by its pid.
 *
 * With `quotaBytes`, the share folder is a tmpfs of that size (mounted here, unmounted on
 * stop), so a test can fill the "NAS".
 */
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { launchDaemon, stopDaemon } from './daemon.js';
import { tempDir } from './keys.js';
import { freePort, randomPassword, runCommand } from './server.js';

const SMBD_BIN = '/usr/sbin/smbd';
const READY_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5_000;
const SHARE = 'nas';
const USER = 'backup';

const run = promisify(execFile);

export interface Smbd {
  port: number;
  /** `//127.0.0.1/nas` */
  url: string;
  /** 0600 file with username, password and domain, for `smbclient -A`. */
  authFile: string;
  /** The folder the share serves (a tmpfs with `quotaBytes`). */
  shareDir: string;
  /** The Unix and Samba user name. */
  user: string;
  /** Its password (also in `authFile`). */
  password: string;
  /** Everything smbd wrote so far (last 64 KiB). */
  output(): string;
  /** Stops smbd, unmounts the tmpfs if any, removes the temporary folder. Idempotent. */
  stop(): Promise<void>;
}

export interface SmbdOptions {
  /** Folder to serve; default `<temp>/share`. It is chowned to the share user. */
  shareDir?: string;
  /** Serve a tmpfs of this many bytes instead (mounted over `shareDir`). */
  quotaBytes?: number;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function ensureUser(): Promise<number> {
  const uid = async () => Number((await run('id', ['-u', USER])).stdout.trim());
  try {
    return await uid();
  } catch {
    await run('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', USER]);
    return uid();
  }
}

function smbConf(dir: string, port: number, shareDir: string): string {
  return [
    '# written by test/helpers/smbd.ts',
    '[global]',
    '  server role = standalone server',
    '  workgroup = WORKGROUP',
    '  interfaces = 127.0.0.1',
    '  bind interfaces only = yes',
    `  smb ports = ${port}`,
    '  disable netbios = yes',
    `  passdb backend = tdbsam:${join(dir, 'private', 'passdb.tdb')}`,
    `  private dir = ${join(dir, 'private')}`,
    `  lock directory = ${join(dir, 'lock')}`,
    `  state directory = ${join(dir, 'state')}`,
    `  cache directory = ${join(dir, 'cache')}`,
    `  pid directory = ${join(dir, 'pid')}`,
    `  ncalrpc dir = ${join(dir, 'ncalrpc')}`,
    `  log file = ${join(dir, 'log', 'log.%m')}`,
    '  load printers = no',
    '  printing = bsd',
    '  printcap name = /dev/null',
    '  disable spoolss = yes',
    '  map to guest = never',
    '',
    `[${SHARE}]`,
    `  path = ${shareDir}`,
    '  read only = no',
    `  valid users = ${USER}`,
    '',
  ].join('\n');
}

/** Starts smbd serving one share; rejects with smbd's output if it does not listen within 20 s. */
export async function startSmbd(opts: SmbdOptions = {}): Promise<Smbd> {
  const { dir, cleanup } = await tempDir('mydoc-smbd-');
  const shareDir = opts.shareDir ?? join(dir, 'share');
  let mounted = false;
  const undo = async () => {
    if (mounted) await run('umount', [shareDir]);
    mounted = false;
    await cleanup();
  };
  try {
    const uid = await ensureUser();
    await chmod(dir, 0o711); // smbd, as the share user, must reach shareDir; the files stay private
    for (const sub of ['private', 'lock', 'state', 'cache', 'pid', 'ncalrpc', 'log']) await mkdir(join(dir, sub), { recursive: true });
    await mkdir(shareDir, { recursive: true });
    if (opts.quotaBytes !== undefined) {
      await run('mount', ['-t', 'tmpfs', '-o', `size=${opts.quotaBytes},mode=0755`, 'tmpfs', shareDir]);
      mounted = true;
    }
    await chown(shareDir, uid, 0);

    const port = await freePort();
    const conf = join(dir, 'smb.conf');
    await writeFile(conf, smbConf(dir, port, shareDir));
    const password = randomPassword();
    const added = await runCommand('smbpasswd', ['-c', conf, '-s', '-a', USER], { input: `${password}\n${password}\n`, timeoutMs: 20_000 });
    if (added.status !== 0) throw new Error(`smbpasswd -a ${USER} failed:\n${added.stdout}${added.stderr}`);
    const authFile = join(dir, 'smb-auth');
    await writeFile(authFile, `username = ${USER}\npassword = ${password}\ndomain = WORKGROUP\n`, { mode: 0o600 });

    const daemon = await launchDaemon({
      name: 'smbd',
      command: SMBD_BIN,
      args: ['--foreground', '--no-process-group', '--debug-stdout', '-s', conf],
      ready: () => portOpen(port),
      readyTimeoutMs: READY_TIMEOUT_MS,
      where: `127.0.0.1:${port}`,
      graceMs: STOP_GRACE_MS,
    });
    let stopping: Promise<void> | undefined;
    return {
      port,
      url: `//127.0.0.1/${SHARE}`,
      authFile,
      shareDir,
      user: USER,
      password,
      output: daemon.output,
      stop: () =>
        (stopping ??= (async () => {
          await stopDaemon(daemon, STOP_GRACE_MS);
          await undo();
        })()),
    };
  } catch (error) {
    await undo();
    throw error;
  }
}
