/**
 * Test helper: a real PostgreSQL server (Debian `postgresql`) of its own, in a
 * temporary folder: `initdb` makes a cluster there (superuser `mydoc` with a
 * random password, SCRAM logins, UTF-8, C locale), then the `postgres` server
 * binary runs on 127.0.0.1 and a free port, its Unix socket in the same
 * folder. It is started detached (its own process group, see daemon.ts, so
 * it never outlives the test process) and stopped by its pid. No system
 * cluster, service or configuration is used or touched.
 *
 * The programs are found in /usr/lib/postgresql/<version>/bin (the newest
 * version installed), where Debian keeps them off PATH. PostgreSQL refuses
 * to run as root: as root, initdb and the server run as the `postgres`
 * system user the package creates (by uid/gid; the folder is chowned to it).
 *
 * Its backends each run in a session of their own (PostgreSQL calls setsid),
 * so signals for the whole server go to the postmaster and each process it
 * forked (found in /proc), not to a process group.
 *
 * startPostgres({ tls: true }) also turns TLS on (ssl=on) with a server
 * certificate for 127.0.0.1 and localhost from a throwaway CA made here
 * (server/http/tls.ts); `caPem` is that CA. Plain connections still work.
 *
 * stop({ keepData: true }) and start() stop and start the same server on the
 * same port with the same data (to lose the database mid-use and bring it
 * back); stop() also removes the folder.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { createTlsMaterial } from '../../server/http/tls.js';
import { launchDaemon, type Daemon } from './daemon.js';
import { freePort } from './server.js';

const run = promisify(execFile);

const POSTGRES_LIB = '/usr/lib/postgresql';
const SUPERUSER = 'mydoc';
const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;

export interface PostgresParams {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
}

export interface Postgres {
  host: '127.0.0.1';
  port: number;
  user: string;
  password: string;
  /** `postgres://mydoc:PASSWORD@127.0.0.1:PORT/postgres` */
  url: string;
  /** The CA of the server's certificate when started with { tls: true }; else null. */
  caPem: string | null;
  /** Connection parameters for `database` (default `postgres`). */
  params(database?: string): PostgresParams;
  /** pid of the running server (changes on start()). */
  readonly pid: number;
  /** Creates an empty database; with `icuLocale` (e.g. `en-US`) its default collation is that ICU locale's, not C. */
  createDatabase(name: string, opts?: { icuLocale?: string }): Promise<void>;
  /** Runs one statement as the superuser on `database` (default `postgres`). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[], database?: string): Promise<pg.QueryResult<R>>;
  /** What the server wrote since its last start (last 256 KiB). */
  output(): string;
  /** Fast shutdown (SIGINT: sessions are ended), up to 10 s, then SIGKILL. Removes the folder unless keepData. Idempotent. */
  stop(opts?: { keepData?: boolean }): Promise<void>;
  /** Starts the server again on the same port and data after stop({ keepData: true }). */
  start(): Promise<void>;
  /** SIGSTOP (freeze) or SIGCONT (thaw) the server and every process it forked: a server that stops answering. */
  signalAll(signal: 'SIGSTOP' | 'SIGCONT'): void;
}

/** The bin folder of the newest PostgreSQL installed, e.g. /usr/lib/postgresql/15/bin. */
export function postgresBinDir(): string {
  const versions = existsSync(POSTGRES_LIB)
    ? readdirSync(POSTGRES_LIB)
        .filter((v) => /^\d+(\.\d+)?$/.test(v) && existsSync(join(POSTGRES_LIB, v, 'bin', 'postgres')) && existsSync(join(POSTGRES_LIB, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) throw new Error(`no PostgreSQL server under ${POSTGRES_LIB}/<version>/bin (Debian package postgresql; scripts/test.mjs installs it)`);
  return join(POSTGRES_LIB, versions[0]!, 'bin');
}

/** The uid/gid to run PostgreSQL as: the `postgres` system user when we are root, else ourselves. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (line === undefined) throw new Error('running as root, but there is no `postgres` system user to run PostgreSQL as (Debian package postgresql creates it)');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

export async function startPostgres(opts: { tls?: boolean } = {}): Promise<Postgres> {
  const bin = postgresBinDir();
  const user = runAs();
  const dir = await mkdtemp(join(tmpdir(), 'mydoc-postgres-'));
  const data = join(dir, 'data');
  const socketDir = join(dir, 'socket');
  const password = randomBytes(18).toString('base64url');
  let caPem: string | null = null;
  try {
    await mkdir(socketDir);
    const pwFile = join(dir, 'superuser-password');
    await writeFile(pwFile, `${password}\n`, { mode: 0o600 });
    await chmod(dir, 0o700);
    const owned = [dir, socketDir, pwFile];
    if (opts.tls) {
      const material = await createTlsMaterial({ hostNames: [], ipAddresses: [], commonName: 'postgres test server' });
      caPem = material.caCertPem;
      await writeFile(join(dir, 'server.crt'), material.certPem, { mode: 0o600 });
      await writeFile(join(dir, 'server.key'), material.keyPem, { mode: 0o600 });
      owned.push(join(dir, 'server.crt'), join(dir, 'server.key'));
    }
    if (user) for (const p of owned) chownSync(p, user.uid, user.gid);
    const env = { ...process.env, LC_ALL: 'C', LANG: 'C' };
    try {
      await run(join(bin, 'initdb'), ['-D', data, '-U', SUPERUSER, `--pwfile=${pwFile}`, '--auth=scram-sha-256', '--encoding=UTF8', '--no-locale', '--no-sync'], {
        env,
        cwd: dir,
        ...user,
      });
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string };
      throw new Error(`initdb failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const port = await freePort();
  const params = (database = 'postgres'): PostgresParams => ({ host: '127.0.0.1', port, database, user: SUPERUSER, password });
  let daemon: Daemon | undefined;
  let removed = false;

  const query = async <R extends pg.QueryResultRow>(text: string, values?: unknown[], database?: string) => {
    const client = new pg.Client({ ...params(database), connectionTimeoutMillis: 2000 });
    client.on('error', () => {}); // a server stopping under it: the query rejects
    await client.connect();
    try {
      return await client.query<R>(text, values);
    } finally {
      await client.end().catch(() => {});
    }
  };

  const start = async () => {
    if (daemon !== undefined) return;
    // setpriv execs the server in place (no extra process): the pid we hold is the postmaster's.
    const server = [
      join(bin, 'postgres'),
      '-D',
      data,
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-k',
      socketDir,
      // A throwaway cluster: durability off, so tests do not wait on fsync.
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      ...(caPem === null ? [] : ['-c', 'ssl=on', '-c', `ssl_cert_file=${join(dir, 'server.crt')}`, '-c', `ssl_key_file=${join(dir, 'server.key')}`]),
    ];
    const [command, ...args] = user ? ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', ...server] : server;
    daemon = await launchDaemon({
      name: 'postgres',
      command: command!,
      args,
      env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
      ready: async () => {
        try {
          await query('select 1');
          return true;
        } catch {
          return false;
        }
      },
      readyTimeoutMs: READY_TIMEOUT_MS,
      where: `127.0.0.1:${port}`,
      graceMs: STOP_GRACE_MS,
    });
  };

  const stop = async (opts: { keepData?: boolean } = {}) => {
    const d = daemon;
    daemon = undefined;
    if (d !== undefined) {
      const pid = d.child.pid!;
      signal(pid, 'SIGINT'); // fast shutdown: ends sessions, writes a checkpoint
      let timer: NodeJS.Timeout | undefined;
      const done = await Promise.race([d.exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), STOP_GRACE_MS)))]);
      clearTimeout(timer);
      if (!done) {
        for (const p of [pid, ...descendants(pid)]) signal(p, 'SIGKILL');
        await d.exited;
      }
    }
    if (!opts.keepData && !removed) {
      removed = true;
      await rm(dir, { recursive: true, force: true });
    }
  };

  try {
    await start();
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    host: '127.0.0.1',
    port,
    user: SUPERUSER,
    password,
    url: `postgres://${SUPERUSER}:${password}@127.0.0.1:${port}/postgres`,
    caPem,
    params,
    get pid() {
      return daemon?.child.pid ?? 0;
    },
    createDatabase: async (name, opts = {}) => {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a plain database name: ${name}`);
      if (opts.icuLocale !== undefined && !/^[A-Za-z0-9-]+$/.test(opts.icuLocale)) throw new Error(`not an ICU locale name: ${opts.icuLocale}`);
      const locale = opts.icuLocale === undefined ? '' : ` template template0 locale_provider icu icu_locale '${opts.icuLocale}' locale 'C'`;
      await query(`create database ${name}${locale}`);
    },
    query,
    output: () => daemon?.output() ?? '',
    stop,
    start,
    signalAll: (s) => {
      const pid = daemon?.child.pid;
      if (pid !== undefined) for (const p of [pid, ...descendants(pid)]) signal(p, s);
    },
  };
}

/** The pids of every process below `pid` (from /proc/<pid>/stat's parent field). */
function descendants(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parentOf.set(Number(entry), ppid);
    } catch {
      // gone meanwhile
    }
  }
  const found: number[] = [];
  const walk = (parent: number) => {
    for (const [child, ppid] of parentOf) {
      if (ppid === parent) {
        found.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return found;
}

function signal(target: number, s: NodeJS.Signals): void {
  try {
    process.kill(target, s);
  } catch {
    // already gone
  }
}
