/**
 * Backup target on an SMB share (a NAS, a Windows server), driven through Samba's own
 * `smbclient` as a subprocess: the npm SMB clients speak neither SMB3 nor NTLMv2 (see
 * shared/docs/test-servers.md).
 *
 * Security:
 * - Credentials live only in the auth file (`username = `, `password = `, `domain = ` lines),
 *   which must be readable by its owner only (checked by `open`). smbclient reads it itself
 *   (`-A`); the password is never on a command line, in the environment, in a log or in an
 *   error message, and this module never keeps it.
 * - Paths end up inside smbclient commands, so every remote path must be relative and made of
 *   [A-Za-z0-9._-] names (no `..`, quotes, semicolons, backslashes or wildcards); local paths
 *   are made absolute and quoted, and may not contain `"` or control characters.
 *
 * Atomic: `upload` and `writeFile` put each file to `.tmp-<random>` in its destination folder and
 * then rename it over the final name (an SMB2 rename with replace-if-exists, one rename on the
 * server). A failed put never reaches the final name; its temporary file is deleted when possible
 * and never listed. `download` writes a local temporary name and renames it. Not atomic:
 * `removeDir` (file by file), and a batch as a whole (files before a failure stay uploaded).
 *
 * How smbclient is driven: one process per call, fed commands on stdin. Each command is
 * followed by a marker (an unknown command name, which smbclient answers with
 * "<marker>: command not found"), so the output of every command is known. Most calls wait for
 * each command's answer before sending the next; `upload` pipelines its puts, and then the
 * renames of the files before the first failed put only. This matters because smbclient does not stop at a failed command, its exit status
 * reflects only the last one, and it reports errors as "NT_STATUS_<NAME> <what>" lines (even a
 * put that hit a full disk prints its "putting file" line). `-E` sends all its messages to
 * stderr (unbuffered); `stdbuf -i0` keeps its stdin unbuffered, as otherwise it reads several
 * lines at once and then waits for more input before running the second. Thousands of small
 * files thus go through one process and one SMB session.
 *
 * Times: smbclient prints modification times in its local time zone, to the second; it runs
 * with TZ=UTC and they are read as UTC, truncated to the second like `ls` prints them (`now()`
 * is measured the same way, so ages compare on one clock).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile as readLocal, rename, rm, stat, writeFile as writeLocal } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { TargetError, type BackupTarget, type TargetFile, type Transfer } from './target.js';

export interface SmbTargetOptions {
  /** `//host/share` or `//host/share/folder/sub` (the folder is the target's root). */
  url: string;
  /** smbclient auth file (`username = `, `password = `, optional `domain = `), mode 0600. */
  authFile: string;
  /** TCP port; default 445. */
  port?: number;
  /** Longest wait for the server: to connect, and per command (default 60 s). */
  timeoutSeconds?: number;
}

const TMP_PREFIX = '.tmp-';
/** A transfer may take its timeout plus one second per MiB before the process is killed. */
const SLOWEST_BYTES_PER_S = 1024 * 1024;
/** smbclient reads command lines into a 1024-byte buffer. */
const MAX_LINE = 1000;
const NAME = /^[A-Za-z0-9._-]+$/;
const NOT_FOUND = new Set(['NT_STATUS_OBJECT_NAME_NOT_FOUND', 'NT_STATUS_OBJECT_PATH_NOT_FOUND', 'NT_STATUS_NO_SUCH_FILE']);
const AUTH = new Set([
  'NT_STATUS_LOGON_FAILURE',
  'NT_STATUS_WRONG_PASSWORD',
  'NT_STATUS_NO_SUCH_USER',
  'NT_STATUS_ACCOUNT_DISABLED',
  'NT_STATUS_ACCOUNT_LOCKED_OUT',
  'NT_STATUS_ACCOUNT_RESTRICTION',
  'NT_STATUS_PASSWORD_EXPIRED',
  'NT_STATUS_PASSWORD_MUST_CHANGE',
  'NT_STATUS_LOGON_TYPE_NOT_GRANTED',
]);
const UNREACHABLE = new Set([
  'NT_STATUS_CONNECTION_REFUSED',
  'NT_STATUS_IO_TIMEOUT',
  'NT_STATUS_HOST_UNREACHABLE',
  'NT_STATUS_NETWORK_UNREACHABLE',
  'NT_STATUS_CONNECTION_RESET',
  'NT_STATUS_CONNECTION_DISCONNECTED',
  'NT_STATUS_CONNECTION_ABORTED',
  'NT_STATUS_PORT_UNREACHABLE',
  'NT_STATUS_NETWORK_NAME_DELETED',
  'NT_STATUS_INVALID_NETWORK_RESPONSE',
]);
const FULL = new Set(['NT_STATUS_DISK_FULL', 'NT_STATUS_QUOTA_EXCEEDED']);
/** Error lines of smbclient that carry no NT_STATUS (local files, unknown commands). */
const OTHER_ERROR = /^(?:Error|ERROR|Unable|Failed)\b.*$|^.*: command not found$/m;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** One `ls` entry: "  NAME<pad> ATTRS SIZE  Www Mmm dd hh:mm:ss yyyy" (name padded to 30). */
const ENTRY = /^ {2}(.+?)\s+([A-Z]*)\s+(\d+) {2}[A-Z][a-z]{2} ([A-Z][a-z]{2}) ([ \d]\d) (\d\d):(\d\d):(\d\d) (\d{4})$/;

interface Result {
  output: string;
  /** The first NT_STATUS name in the output. */
  status?: string;
  /** The first error line, when the command failed. */
  error?: string;
}

const random = () => randomBytes(8).toString('hex');
const quoted = (text: string) => JSON.stringify(text);

function refuse(path: string, what: string): never {
  throw new TargetError('ERR_TARGET_IO', `refusing the ${what} ${quoted(path)}: only relative paths of names made of A-Z a-z 0-9 . _ - separated by "/" are allowed`);
}

/** The names of a target path; [] for the root when `root` allows it. */
function names(path: string, what: string, root = false): string[] {
  if (typeof path !== 'string') refuse(String(path), what);
  if (path === '' && root) return [];
  const parts = path.split('/');
  for (const p of parts) if (!NAME.test(p) || p === '.' || p === '..' || p.startsWith('-')) refuse(path, what);
  return parts;
}

function localPath(path: string): string {
  const abs = resolve(path);
  if (/["\x00-\x1f\x7f]/.test(abs)) throw new TargetError('ERR_TARGET_IO', `refusing the local file ${quoted(path)}: its name holds a quote or a control character`);
  return abs;
}

/** Parses `ls` output (recursive or not) of `base` (share path, `\`-separated, '' for the root) into files. */
export function parseListing(output: string, base: string, includeTemporaries = false): TargetFile[] {
  const files: TargetFile[] = [];
  let prefix = '';
  for (const line of output.split('\n')) {
    if (line.startsWith('\\')) {
      // Header of a subfolder's block in a recursive listing: \base\sub\deeper
      const abs = line.slice(1);
      const rel = base === '' ? abs : abs.startsWith(`${base}\\`) ? abs.slice(base.length + 1) : undefined;
      if (rel === undefined) throw new TargetError('ERR_TARGET_IO', `smbclient listed the folder ${quoted(line)} in a listing of ${quoted(base)}`);
      prefix = `${rel.replaceAll('\\', '/')}/`;
      continue;
    }
    const m = ENTRY.exec(line);
    if (!m) continue;
    const [, name, attrs, size, month, day, hh, mm, ss, year] = m as unknown as string[];
    if (attrs!.includes('D') || (name!.startsWith(TMP_PREFIX) && !includeTemporaries)) continue;
    const mtimeMs = Date.UTC(Number(year), MONTHS.indexOf(month!), Number(day), Number(hh), Number(mm), Number(ss));
    files.push({ path: prefix + name, size: Number(size), mtimeMs });
  }
  return files;
}

interface SessionConfig {
  args: string[];
  timeoutMs: number;
  /** Maps a failed connection (smbclient exited) to an error. */
  connectError(output: string, code: number | null): TargetError;
  unreachable(message: string): TargetError;
}

/** The environment minus what smbclient would take credentials or a program from; dates in UTC. */
function smbclientEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TZ: 'UTC', LC_ALL: 'C' };
  for (const name of ['PASSWD', 'PASSWD_FD', 'PASSWD_FILE', 'USER', 'LOGNAME', 'LIBSMB_PROG']) delete env[name];
  return env;
}

/** One smbclient process, fed one command (group) at a time. */
class Session {
  private readonly child: ChildProcess;
  private output = '';
  /** Command groups sent and not yet answered, oldest first. */
  private readonly pending: { marker: string; done(error: TargetError | undefined, output: string): void }[] = [];
  private dead: TargetError | undefined;
  private count = 0;
  private readonly nonce = random();
  private readonly closed: Promise<void>;

  constructor(private readonly config: SessionConfig) {
    // stdbuf -i0: smbclient must not read ahead on stdin (see the header comment).
    this.child = spawn('stdbuf', ['-i0', 'smbclient', ...config.args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: smbclientEnv(),
    });
    const onData = (d: string) => {
      this.output += d;
      this.deliver();
    };
    this.child.stdout!.setEncoding('utf8').on('data', onData);
    this.child.stderr!.setEncoding('utf8').on('data', onData);
    this.child.stdin!.on('error', () => {}); // EPIPE when it exited: reported by 'close'
    this.closed = new Promise<void>((resolveClosed) => {
      this.child.once('error', (error) => {
        this.dead ??= new TargetError('ERR_TARGET_IO', `cannot run smbclient (is Debian's smbclient package installed?): ${error.message}`, { cause: error });
        resolveClosed();
      });
      this.child.once('close', (code) => {
        this.dead ??= config.connectError(this.output, code);
        resolveClosed();
      });
    }).then(() => {
      for (const p of this.pending.splice(0)) p.done(this.dead, '');
    });
  }

  private deliver(): void {
    for (;;) {
      const first = this.pending[0];
      if (!first) return;
      const line = `${first.marker}: command not found\n`;
      const at = this.output.indexOf(line);
      if (at < 0) return;
      const output = this.output.slice(0, at);
      this.output = this.output.slice(at + line.length);
      this.pending.shift();
      first.done(undefined, output);
    }
  }

  /** Runs command lines and returns their output, once smbclient has run them all. */
  run(lines: readonly string[], extraMs = 0): Promise<Result> {
    return this.runMany([lines], extraMs).then((results) => results[0]!);
  }

  /**
   * Sends several command groups at once (each followed by its own marker)
   * and returns the result of each, in order. smbclient runs every group even
   * after one failed: callers only pipeline groups whose failure cannot harm
   * the later ones. `extraMs` is the time allowed beyond the timeout, in all.
   */
  runMany(groups: readonly (readonly string[])[], extraMs = 0): Promise<Result[]> {
    if (this.dead) return Promise.reject(this.dead);
    if (groups.some((lines) => lines.some((l) => l.length > MAX_LINE || /[\r\n]/.test(l)))) {
      return Promise.reject(new TargetError('ERR_TARGET_IO', 'a path is too long for an smbclient command'));
    }
    const seconds = Math.ceil((this.config.timeoutMs + extraMs) / 1000);
    const timer = setTimeout(() => {
      this.dead ??= this.config.unreachable(`did not answer within ${seconds} s`);
      this.child.kill('SIGKILL');
    }, this.config.timeoutMs + extraMs);
    const results = groups.map((lines) => {
      const marker = `zz${this.nonce}-${++this.count}`;
      const result = new Promise<Result>((resolveRun, reject) => {
        this.pending.push({
          marker,
          done: (error, output) => {
            if (error) return reject(error);
            const status = /NT_STATUS_[A-Z0-9_]+/.exec(output)?.[0];
            const error2 = status ? output.split('\n').find((l) => l.includes(status)) : OTHER_ERROR.exec(output)?.[0];
            resolveRun({ output, status, error: error2?.trim() });
          },
        });
      });
      this.child.stdin!.write(`${[...lines, marker].join('\n')}\n`);
      return result;
    });
    return Promise.all(results).finally(() => clearTimeout(timer));
  }

  /** Ends the session ("quit"), killing smbclient if it does not exit in time. */
  async close(): Promise<void> {
    if (!this.dead) this.child.stdin!.end('quit\n');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), this.config.timeoutMs);
    await this.closed;
    clearTimeout(timer);
  }
}

export class SmbTarget implements BackupTarget {
  readonly description: string;
  private readonly server: string;
  /** Folders this target made (or found) on the share: not made again. */
  private readonly madeDirs = new Set<string>();

  private constructor(
    private readonly host: string,
    private readonly share: string,
    /** The target root's names inside the share. */
    private readonly folder: readonly string[],
    private readonly authFile: string,
    private readonly port: number | undefined,
    private readonly timeoutMs: number,
  ) {
    this.server = `//${host}/${share}`;
    this.description = [this.server, ...folder].join('/');
  }

  /** Checks the auth file and connects once to the share; fails with a TargetError saying why. */
  static async open(opts: SmbTargetOptions): Promise<SmbTarget> {
    const m = /^\/\/([A-Za-z0-9.:[\]-]+)\/([^/\\\s"]+)((?:\/[^/]+)*?)\/?$/.exec(opts.url);
    if (!m) throw new TargetError('ERR_TARGET_IO', `the SMB target ${quoted(opts.url)} is not of the form //host/share or //host/share/folder`);
    const folder = m[3] ? names(m[3].slice(1), 'SMB folder') : [];
    const authFile = resolve(opts.authFile);
    await checkAuthFile(authFile);
    const timeoutSeconds = opts.timeoutSeconds ?? 60;
    const target = new SmbTarget(m[1]!, m[2]!, folder, authFile, opts.port, timeoutSeconds * 1000);
    await target.session((s) => s.run([])); // connects: logon and tree connect
    return target;
  }

  // --- BackupTarget ---

  async list(dir: string, includeTemporaries = false): Promise<TargetFile[]> {
    const base = this.remote(names(dir, 'folder', true));
    const r = await this.session((s) => s.run(['recurse', `ls ${base === '' ? '*' : `${base}/*`}`, 'recurse']));
    const files = parseListing(r.output, base.replaceAll('/', '\\'), includeTemporaries);
    if (r.error) {
      if (r.status && NOT_FOUND.has(r.status) && files.length === 0) return [];
      throw this.failed(r, 'list', dir);
    }
    return files;
  }

  async stat(path: string): Promise<TargetFile | undefined> {
    const parts = names(path, 'file');
    return this.session((s) => this.statIn(s, parts));
  }

  async readFile(path: string): Promise<Buffer> {
    return this.withLocalTemp(async (dir) => {
      await this.download([{ remote: path, local: join(dir, 'file') }]);
      return readLocal(join(dir, 'file'));
    });
  }

  async writeFile(path: string, data: Buffer | string): Promise<void> {
    names(path, 'file');
    await this.withLocalTemp(async (dir) => {
      await writeLocal(join(dir, 'file'), data, { mode: 0o600 });
      await this.upload([{ local: join(dir, 'file'), remote: path }]);
    });
  }

  /**
   * Pipelined in three rounds, so that many files cost few round trips: the
   * folders (mkdir with recursion skips existing ones), every `put` to a
   * temporary name, then the renames of the files before the first failed
   * put only. A file whose put failed never reaches its final name; the
   * temporary files from it on are deleted.
   */
  async upload(files: readonly Transfer[]): Promise<void> {
    const jobs = files.map((f) => ({ local: localPath(f.local), parts: names(f.remote, 'file'), remote: f.remote, tmp: '', size: 0 }));
    if (jobs.length === 0) return;
    for (const job of jobs) {
      try {
        job.size = (await stat(job.local)).size;
      } catch (error) {
        throw new TargetError('ERR_TARGET_IO', `cannot read the local file ${job.local} to upload it: ${(error as Error).message}`, { cause: error });
      }
      job.tmp = this.remote([...job.parts.slice(0, -1), `${TMP_PREFIX}${random()}`]);
    }
    await this.session(async (s) => {
      const dirs = [...new Set(jobs.map((j) => this.remote(j.parts.slice(0, -1))))].filter((d) => d !== '' && !this.madeDirs.has(d));
      if (dirs.length > 0) {
        const made = await s.run(['recurse', ...dirs.map((d) => `mkdir ${d}`), 'recurse']);
        if (made.error && !(made.status === 'NT_STATUS_OBJECT_NAME_COLLISION')) throw this.failed(made, 'create the folders for', jobs[0]!.remote);
        for (const d of dirs) this.madeDirs.add(d);
      }
      const bytes = jobs.reduce((n, j) => n + j.size, 0);
      const puts = await s.runMany(jobs.map((j) => [`put "${j.local}" ${j.tmp}`]), (bytes / SLOWEST_BYTES_PER_S) * 1000);
      const failedAt = puts.findIndex((r) => r.error);
      // A folder removed behind this target's back: made again at the next call.
      if (failedAt >= 0 && NOT_FOUND.has(puts[failedAt]!.status ?? '')) this.madeDirs.clear();
      const good = failedAt < 0 ? jobs : jobs.slice(0, failedAt);
      const renames = await s.runMany(good.map((j) => [`rename ${j.tmp} ${this.remote(j.parts)} -f`]));
      const renameFailed = renames.findIndex((r) => r.error);
      const leftovers = jobs.slice(renameFailed >= 0 ? renameFailed : good.length);
      if (leftovers.length > 0) await s.runMany(leftovers.map((j) => [`del ${j.tmp}`])).catch(() => []);
      if (renameFailed >= 0) throw this.failed(renames[renameFailed]!, 'write', good[renameFailed]!.remote);
      if (failedAt >= 0) throw this.failed(puts[failedAt]!, 'write', jobs[failedAt]!.remote);
    });
  }

  async download(files: readonly Transfer[]): Promise<void> {
    const jobs = files.map((f) => ({ local: localPath(f.local), parts: names(f.remote, 'file'), remote: f.remote }));
    if (jobs.length === 0) return;
    await this.session(async (s) => {
      for (const job of jobs) {
        const found = await this.statIn(s, job.parts); // its size sets the time allowed
        if (!found) throw this.notFound(job.remote);
        await mkdir(dirname(job.local), { recursive: true, mode: 0o700 });
        const tmp = `${job.local}${TMP_PREFIX}${random()}`;
        const r = await s.run([`get ${this.remote(job.parts)} "${tmp}"`], (found.size / SLOWEST_BYTES_PER_S) * 1000);
        if (r.error) {
          await rm(tmp, { force: true });
          throw r.status && NOT_FOUND.has(r.status) ? this.notFound(job.remote) : this.failed(r, 'read', job.remote);
        }
        await chmod(tmp, 0o600); // smbclient makes it 0644 less the umask
        await rename(tmp, job.local);
      }
    });
  }

  async remove(path: string): Promise<void> {
    const remote = this.remote(names(path, 'file'));
    const r = await this.session((s) => s.run([`del ${remote}`]));
    if (r.error && !(r.status && NOT_FOUND.has(r.status))) throw this.failed(r, 'remove', path);
  }

  async removeDir(dir: string): Promise<void> {
    const remote = this.remote(names(dir, 'folder'));
    this.madeDirs.clear();
    const r = await this.session((s) => s.run([`deltree ${remote}`]));
    if (r.error && !(r.status && NOT_FOUND.has(r.status))) throw this.failed(r, 'remove the folder', dir);
  }

  async cleanTemporaries(dir: string): Promise<number> {
    const temps = (await this.list(dir, true)).filter((f) => f.path.split('/').at(-1)!.startsWith(TMP_PREFIX));
    if (temps.length === 0) return 0;
    await this.session(async (s) => {
      for (const t of temps) {
        const r = await s.run([`del ${this.remote(names(dir === '' ? t.path : `${dir}/${t.path}`, 'file'))}`]);
        if (r.error && !(r.status && NOT_FOUND.has(r.status))) throw this.failed(r, 'remove', t.path);
      }
    });
    return temps.length;
  }

  /** Writes a probe file and reads back the modification time the server gave it. */
  async now(): Promise<number> {
    return this.withLocalTemp(async (dir) => {
      const probe = join(dir, 'probe');
      await writeLocal(probe, 'clock probe\n', { mode: 0o600 });
      const name = `${TMP_PREFIX}clock-${random()}`;
      return this.session(async (s) => {
        await this.put(s, probe, this.remote([name]), this.remote([]), 12, name);
        // ls of the exact name: parseListing skips temporary names, so parse the entry here.
        const r = await s.run([`ls ${this.remote([name])}`]);
        await s.run([`del ${this.remote([name])}`]);
        const entry = r.output.split('\n').map((l) => ENTRY.exec(l)).find((e) => e !== null);
        if (r.error || !entry) throw this.failed(r, 'read the time of', name);
        const [, , , , month, day, hh, mm, ss, year] = entry as unknown as string[];
        return Date.UTC(Number(year), MONTHS.indexOf(month!), Number(day), Number(hh), Number(mm), Number(ss));
      });
    });
  }

  // --- internals ---

  /** The share path of target names ('/'-separated, '' for the share root). */
  private remote(parts: readonly string[]): string {
    return [...this.folder, ...parts].join('/');
  }

  /** `put`, creating the remote folder on "path not found" and trying once more. */
  private async put(s: Session, local: string, tmp: string, dir: string, size: number, what: string): Promise<void> {
    const extraMs = (size / SLOWEST_BYTES_PER_S) * 1000;
    let r = await s.run([`put "${local}" ${tmp}`], extraMs);
    if (r.status && NOT_FOUND.has(r.status) && dir !== '') {
      // mkdir with recursion on creates the missing parents and skips existing ones.
      const made = await s.run(['recurse', `mkdir ${dir}`, 'recurse']);
      if (made.error) throw this.failed(made, 'create the folder for', what);
      r = await s.run([`put "${local}" ${tmp}`], extraMs);
    }
    if (r.error) {
      await s.run([`del ${tmp}`]).catch(() => {}); // a partial temporary file, if any
      throw this.failed(r, 'write', what);
    }
  }

  private async statIn(s: Session, parts: readonly string[]): Promise<TargetFile | undefined> {
    const r = await s.run([`ls ${this.remote(parts)}`]);
    if (r.error) {
      if (r.status && NOT_FOUND.has(r.status)) return undefined;
      throw this.failed(r, 'look up', parts.join('/'));
    }
    const file = parseListing(r.output, '').find((f) => f.path.toLowerCase() === parts.at(-1)!.toLowerCase());
    return file && { ...file, path: parts.join('/') };
  }

  private async session<T>(fn: (s: Session) => Promise<T>): Promise<T> {
    const args = [this.server, '-A', this.authFile, '-m', 'SMB3', '-E', '-q', '-t', String(Math.ceil(this.timeoutMs / 1000))];
    if (this.port !== undefined) args.push('-p', String(this.port));
    const s = new Session({
      args,
      timeoutMs: this.timeoutMs,
      connectError: (output, code) => this.connectError(output, code),
      unreachable: (message) => new TargetError('ERR_TARGET_UNREACHABLE', `the SMB server ${this.server}${this.portText()} ${message}`),
    });
    try {
      return await fn(s);
    } finally {
      await s.close();
    }
  }

  private async withLocalTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
    const dir = await mkdtemp(join(tmpdir(), 'mydoc-smb-'));
    try {
      return await fn(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private portText(): string {
    return this.port === undefined ? '' : ` (port ${this.port})`;
  }

  private notFound(path: string): TargetError {
    return new TargetError('ERR_TARGET_NOT_FOUND', `${path} does not exist on ${this.description}`);
  }

  /** smbclient exited: before answering (connection, logon, share) or after losing the server. */
  private connectError(output: string, code: number | null): TargetError {
    const status = /NT_STATUS_[A-Z0-9_]+/.exec(output)?.[0];
    if (status && AUTH.has(status)) {
      return new TargetError('ERR_TARGET_AUTH', `the SMB server ${this.server} refused the user name or password in ${this.authFile} (${status})`);
    }
    if (status === 'NT_STATUS_ACCESS_DENIED' && output.includes('tree connect failed')) {
      return new TargetError('ERR_TARGET_AUTH', `the SMB server ${this.server} does not let the user in ${this.authFile} use the share (${status})`);
    }
    if (status === 'NT_STATUS_BAD_NETWORK_NAME') {
      return new TargetError('ERR_TARGET_NO_SHARE', `the SMB server //${this.host} has no share named ${quoted(this.share)} (${status})`);
    }
    if ((status && UNREACHABLE.has(status)) || /Connection to .* failed/.test(output)) {
      return new TargetError('ERR_TARGET_UNREACHABLE', `cannot reach the SMB server ${this.server}${this.portText()} (${status ?? 'connection failed'})`);
    }
    const line = status ? output.split('\n').find((l) => l.includes(status)) : output.trim().split('\n').at(-1);
    return new TargetError('ERR_TARGET_IO', `smbclient for ${this.description} exited (code ${code}): ${line?.trim() || 'no output'}`);
  }

  /** A failed command. */
  private failed(r: Result, action: string, path: string): TargetError {
    const status = r.status;
    if (status && FULL.has(status)) {
      return new TargetError('ERR_TARGET_FULL', `the SMB share ${this.description} is full: cannot write ${path} (${status})`);
    }
    if (status && UNREACHABLE.has(status)) {
      return new TargetError('ERR_TARGET_UNREACHABLE', `lost the SMB server ${this.server}${this.portText()} while trying to ${action} ${path} (${status})`);
    }
    return new TargetError('ERR_TARGET_IO', `cannot ${action} ${path} on ${this.description}: ${r.error ?? 'unexpected smbclient output'}`);
  }
}

/** The auth file must exist, be a regular file readable by its owner only, and name a user and password. */
async function checkAuthFile(file: string): Promise<void> {
  let info;
  try {
    info = await stat(file);
  } catch (error) {
    throw new TargetError('ERR_TARGET_AUTH', `the SMB credentials file ${file} cannot be read: ${(error as NodeJS.ErrnoException).code ?? error}`, { cause: error });
  }
  if (!info.isFile()) throw new TargetError('ERR_TARGET_AUTH', `the SMB credentials file ${file} is not a file`);
  if ((info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, '0');
    throw new TargetError('ERR_TARGET_AUTH', `the SMB credentials file ${file} is open to other users (mode ${mode}); make it readable by its owner only (chmod 600)`);
  }
  const text = await readLocal(file, 'utf8');
  for (const key of ['username', 'password']) {
    if (!new RegExp(`^\\s*${key}\\s*=`, 'm').test(text)) {
      throw new TargetError('ERR_TARGET_AUTH', `the SMB credentials file ${file} has no "${key} = " line`);
    }
  }
}
