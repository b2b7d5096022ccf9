/**
 * Test helper: runs the real `mydoc serve` as a child process on a free loopback port, with a
 * fresh data folder (init + users) in a temporary directory, and talks to it over HTTPS with
 * the data folder's own CA. Nothing here touches anything outside 127.0.0.1 or the temp dir.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import https from 'node:https';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchDaemon, stopDaemon, type ExitStatus } from './daemon.js';

export const MYDOC_BIN = fileURLToPath(new URL('../../../bin/mydoc.js', import.meta.url));

const START_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5_000;

export interface ServerUser {
  name: string;
  password: string;
  /** A mydoc administrator (`user add --admin`; local directory only). */
  admin?: boolean;
}

export interface RunningServer {
  /** `https://127.0.0.1:PORT/` (trailing slash). */
  url: string;
  port: number;
  /** `<dataDir>/tls/ca-cert.pem`: the only CA the clients trust. */
  caFile: string;
  caPem: string;
  configFile: string;
  dataDir: string;
  /** The temporary folder holding config, data folder, NAS stand-in and recovery key. */
  dir: string;
  pid: number;
  users: ServerUser[];
  /** users[0]: the user davRequest authenticates as by default. */
  user: ServerUser;
  /** Keep-alive agent trusting only `caPem`; davRequest uses it. */
  agent: https.Agent;
  /** Everything the server wrote to stdout and stderr so far (last 256 KiB). */
  output(): string;
  /** Resolves when the server process exits. */
  exited: Promise<ExitStatus>;
  /** SIGTERM, up to 5 s grace, then SIGKILL; then removes the temporary folder. Idempotent. */
  stop(): Promise<void>;
  /** Stops the process (as stop() does) and starts `mydoc serve` again on the same folder, configuration and port; `pid`, `output` and `exited` follow the new process. */
  restart(): Promise<void>;
}

export interface StartServerOptions {
  /** Users to add; default one user `alice` with a random password. */
  users?: ServerUser[];
  /** Extra environment for `mydoc serve`. */
  env?: NodeJS.ProcessEnv;
  /** The lines of the `directory:` section (default `kind: local`); with a company directory no user is added. */
  directory?: string[];
  pcId?: string;
  /** Files written into the server's folder before the configuration (name relative to it -> content). */
  files?: Record<string, string>;
  /** Where the server's temporary folder is made (default the system's temp folder), e.g. on a small disk. */
  parentDir?: string;
  /** More top-level configuration lines (e.g. a `takeout:` section). */
  extraConfig?: string[];
}

export function randomPassword(): string {
  return randomBytes(18).toString('base64url');
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Runs `node bin/mydoc.js ARGS` to completion; throws with its output unless it exits 0. */
export async function mydoc(args: string[], input = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MYDOC_BIN, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, MYDOC_CONFIG: '' },
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) resolve(out);
      else reject(new Error(`mydoc ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${out}`));
    });
    child.stdin.end(input);
  });
}

function configText(port: number, directoryLines: readonly string[], pcId: string, extra: readonly string[]): string {
  return [
    '# written by test/helpers/server.ts',
    `pcId: ${pcId}`,
    'dataDir: data',
    'listen:',
    '  host: "127.0.0.1"',
    `  port: ${port}`,
    '  hostNames: []',
    'directory:',
    ...directoryLines.map((l) => `  ${l}`),
    'backup:',
    '  target:',
    '    kind: path',
    '    path: nas',
    // No scheduled backups in tests unless a test asks for them.
    ...(extra.some((l) => /^\s+schedule:/.test(l)) ? [] : ['  schedule: "off"']),
    ...extra,
    '',
  ].join('\n');
}

/** GET /healthz; resolves to true only for 200 with `{"state":"ok"}` (a fresh server holds no take-out key: online). Never rejects. */
function healthz(port: number, caPem: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.get(
      { host: '127.0.0.1', port, path: '/healthz', ca: caPem, agent: false, timeout: 2_000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          try {
            resolve(res.statusCode === 200 && (JSON.parse(body) as { state?: unknown }).state === 'ok');
          } catch {
            resolve(false);
          }
        });
        res.on('error', () => resolve(false));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
  });
}


/**
 * Starts `mydoc serve` on a fresh data folder. Resolves once /healthz answers "ok" over TLS
 * verified with the data folder's CA; rejects (after killing the server) with its output when
 * it exits early or is not ready within 20 s.
 */
export async function startServer(opts: StartServerOptions = {}): Promise<RunningServer> {
  const users = opts.users ?? [{ name: 'alice', password: randomPassword() }];
  if (users.length === 0) throw new Error('startServer: at least one user is needed');
  const dir = await mkdtemp(join(opts.parentDir ?? tmpdir(), 'mydoc-serve-'));
  const dataDir = join(dir, 'data');
  const configFile = join(dir, 'mydoc.yaml');
  const caFile = join(dataDir, 'tls', 'ca-cert.pem');
  let cleanupDir = true;
  try {
    const port = await freePort();
    await mkdir(join(dir, 'nas')); // the backup target folder (never created by mydoc)
    for (const [name, content] of Object.entries(opts.files ?? {})) await writeFile(join(dir, name), content, { mode: 0o600 });
    const directory = opts.directory ?? ['kind: local'];
    await writeFile(configFile, configText(port, directory, opts.pcId ?? 'pc-test', opts.extraConfig ?? []));
    await mydoc(['init', '--config', configFile, '--recovery-key-out', join(dir, 'offline', 'recovery-private.pem')]);
    if (directory[0] === 'kind: local') {
      for (const u of users) {
        await mydoc(['user', 'add', u.name, '--password-stdin', ...(u.admin ? ['--admin'] : []), '--config', configFile], u.password);
      }
    }
    const caPem = await readFile(caFile, 'utf8');

    const launch = () =>
      launchDaemon({
        name: 'mydoc serve',
        command: process.execPath,
        args: [MYDOC_BIN, 'serve', '--config', configFile],
        env: { ...process.env, MYDOC_CONFIG: '', ...opts.env },
        // TLS is verified with the data folder's CA.
        ready: () => healthz(port, caPem),
        readyTimeoutMs: START_TIMEOUT_MS,
        where: `https://127.0.0.1:${port}/healthz`,
        graceMs: STOP_GRACE_MS,
      });
    let daemon = await launch();
    cleanupDir = false;

    const agent = new https.Agent({ keepAlive: true, ca: caPem, maxSockets: 8 });
    let stopping: Promise<void> | null = null;
    const stop = (): Promise<void> => {
      stopping ??= (async () => {
        agent.destroy();
        await stopDaemon(daemon, STOP_GRACE_MS);
        await rm(dir, { recursive: true, force: true });
      })();
      return stopping;
    };
    return {
      url: `https://127.0.0.1:${port}/`,
      port,
      caFile,
      caPem,
      configFile,
      dataDir,
      dir,
      get pid() {
        return daemon.child.pid ?? -1;
      },
      users,
      user: users[0]!,
      agent,
      output: () => daemon.output(),
      get exited() {
        return daemon.exited;
      },
      stop,
      restart: async () => {
        if (stopping) throw new Error('restart: the server was stopped');
        await stopDaemon(daemon, STOP_GRACE_MS);
        daemon = await launch();
      },
    };
  } finally {
    if (cleanupDir) await rm(dir, { recursive: true, force: true });
  }
}

export interface DavRequestOptions {
  /** User name; default the server's first user. `null` sends no Authorization header. */
  user?: string | null;
  /** Password; default the password of `user` among the server's users. */
  password?: string;
  headers?: OutgoingHttpHeaders;
  body?: string | Buffer;
}

export interface DavResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
}

/**
 * One HTTPS request to the server, trusting only its CA, over the server's keep-alive agent.
 * `path` is sent as is: percent-encode it yourself (that is the point of some tests).
 */
export function davRequest(server: RunningServer, method: string, path: string, opts: DavRequestOptions = {}): Promise<DavResponse> {
  const headers: OutgoingHttpHeaders = {};
  if (opts.user !== null) {
    const name = opts.user ?? server.user.name;
    const password = opts.password ?? server.users.find((u) => u.name === name)?.password;
    if (password === undefined) throw new Error(`davRequest: no password for user "${name}"`);
    headers.authorization = basicAuth(name, password);
  }
  const body = typeof opts.body === 'string' ? Buffer.from(opts.body, 'utf8') : opts.body;
  if (body !== undefined) headers['content-length'] = body.length;
  Object.assign(headers, opts.headers);
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: server.port, method, path, headers, agent: server.agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export interface CommandResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs an external command (litmus, rclone, curl...) without blocking the event loop, so the
 * test runner's own timeouts still work. Never rejects for a non-zero exit: callers assert.
 */
export function runCommand(
  command: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            stderr += `\n[killed after ${opts.timeoutMs} ms]\n`;
            child.kill('SIGKILL');
          }, opts.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${command}: ${error.message}`));
    });
    child.once('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}
