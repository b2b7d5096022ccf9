/**
 * The share under test for the WebDAV benchmarks: a fresh data folder
 * (`mydoc init` + `mydoc user add`) in a temporary folder, served either
 * in-process (startService from server/agent/serve.ts, as `mydoc serve` runs it),
 * with optional bench-only plain-file routes on the same fastify instance,
 * or as a `mydoc serve` child process. Everything listens on 127.0.0.1 only.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, readFile, stat, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { loadConfig, type Config } from '../../server/config/config.js';
import { startService } from '../../server/agent/serve.js';
import { launchDaemon } from '../helpers/daemon.js';
import { freePort, mydoc } from '../helpers/server.js';
import { registerDir, registerProcess } from './cleanup.js';
import { MiB, progress } from './measure.js';

export const MYDOC_BIN = fileURLToPath(new URL('../../../bin/mydoc.js', import.meta.url));
export const PC_ID = 'pc-bench';

export interface Share {
  /** Temporary folder holding config, data folder, NAS stand-in and scratch files. */
  dir: string;
  configFile: string;
  dataDir: string;
  port: number;
  caFile: string;
  caPem: string;
  keyFile: string;
  certFile: string;
  user: string;
  password: string;
  /** `user:password` for curl -u. */
  userColonPassword: string;
  /** Removes the temporary folder. */
  remove: () => Promise<void>;
}

/** Creates a data folder with one user (`alice`, random password) in a new temporary folder. */
export async function createShare(): Promise<Share> {
  const dir = await mkdtemp(join(tmpdir(), 'mydoc-bench-share-'));
  const remove = registerDir(dir);
  try {
    const port = await freePort();
    const configFile = join(dir, 'mydoc.yaml');
    const config = [
      `pcId: ${PC_ID}`,
      'dataDir: data',
      'listen:',
      '  host: "127.0.0.1"',
      `  port: ${port}`,
      'directory:',
      '  kind: local',
      'backup:',
      '  target:',
      '    kind: path',
      '    path: nas',
      '',
    ].join('\n');
    await writeFile(configFile, config);
    await mydoc(['init', '--config', configFile, '--recovery-key-out', join(dir, 'offline', 'recovery-private.pem')]);
    const user = 'alice';
    const password = randomBytes(18).toString('base64url');
    await mydoc(['user', 'add', user, '--password-stdin', '--config', configFile], password);
    const dataDir = join(dir, 'data');
    const caFile = join(dataDir, 'tls', 'ca-cert.pem');
    return {
      dir,
      configFile,
      dataDir,
      port,
      caFile,
      caPem: await readFile(caFile, 'utf8'),
      keyFile: join(dataDir, 'tls', 'server-key.pem'),
      certFile: join(dataDir, 'tls', 'server-cert.pem'),
      user,
      password,
      userColonPassword: `${user}:${password}`,
      remove,
    };
  } catch (err) {
    await remove();
    throw err;
  }
}

export interface InProcessServer {
  app: FastifyInstance;
  config: Config;
  url: string;
  close: () => Promise<void>;
}

export interface PlainRoutes {
  /** Folder the plain-file routes read and write (file names only, no paths). */
  dir: string;
  /** Size of the read and write batches (>= 1 MiB). */
  ioBytes?: number;
}

const PLAIN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$/;

/**
 * Registers the bench-only baseline routes `GET|PUT /api/bench/plain/:name`:
 * the same fastify instance, TLS and body handling as the share, but the
 * bytes go to and from a plain file with tuned I/O (>= 1 MiB reads; writes
 * coalesced into >= 1 MiB writev calls, one in flight while the next batch
 * fills, then fsync, as a vault write does).
 */
export function addPlainRoutes(app: FastifyInstance, opts: PlainRoutes): void {
  const io = Math.max(opts.ioBytes ?? MiB, MiB);
  const fileOf = (name: string): string => {
    if (!PLAIN_NAME.test(name)) throw Object.assign(new Error('bad name'), { statusCode: 400 });
    return join(opts.dir, name);
  };
  app.get<{ Params: { name: string } }>('/api/bench/plain/:name', async (req, reply) => {
    const file = fileOf(req.params.name);
    const { size } = await stat(file);
    reply.header('content-type', 'application/octet-stream').header('content-length', size);
    return reply.send(createReadStream(file, { highWaterMark: io }));
  });
  app.put<{ Params: { name: string } }>('/api/bench/plain/:name', async (req, reply) => {
    const file = fileOf(req.params.name);
    const body = req.body as Readable;
    const fh = await open(file, 'w', 0o600);
    let inflight: Promise<unknown> = Promise.resolve();
    let size = 0;
    try {
      let batch: Buffer[] = [];
      let batchBytes = 0;
      const flush = async () => {
        await inflight;
        if (batchBytes === 0) return;
        const pieces = batch;
        batch = [];
        batchBytes = 0;
        inflight = fh.writev(pieces);
        inflight.catch(() => undefined);
      };
      for await (const chunk of body) {
        batch.push(chunk as Buffer);
        batchBytes += (chunk as Buffer).length;
        size += (chunk as Buffer).length;
        if (batchBytes >= io) await flush();
      }
      await flush();
      await inflight;
      await fh.sync();
    } finally {
      await inflight.catch(() => undefined);
      await fh.close();
    }
    return reply.code(201).header('content-length', 0).send('');
  });
}

/**
 * Builds the app in this process exactly as `mydoc serve` does (server/agent/serve.ts),
 * optionally with the plain-file baseline routes, and listens on the share's port.
 */
export async function startInProcess(share: Share, plain?: PlainRoutes): Promise<InProcessServer> {
  const config = await loadConfig(share.configFile);
  const { app } = await startService(config, 'bench', { logLevel: 'error', beforeListen: (a) => plain && addPlainRoutes(a, plain) });
  let closed = false;
  return {
    app,
    config,
    url: `https://127.0.0.1:${config.listen.port}`,
    close: async () => {
      if (closed) return;
      closed = true;
      await app.close();
    },
  };
}

export interface ChildServer {
  pid: number;
  url: string;
  output: () => string;
  stop: () => Promise<void>;
}


/** Runs `node bin/mydoc.js serve --config ...` (or another build's `bin`) as a child process; resolves once /healthz answers. */
export async function spawnServer(share: Share, nodeArgs: string[] = [], bin = MYDOC_BIN): Promise<ChildServer> {
  const url = `https://127.0.0.1:${share.port}`;
  const daemon = await launchDaemon({
    name: 'mydoc serve',
    command: process.execPath,
    args: [...nodeArgs, bin, 'serve', '--config', share.configFile],
    env: { ...process.env, MYDOC_CONFIG: '' },
    ready: () => fetchHealth(share),
    readyTimeoutMs: 20_000,
    where: `${url}/healthz`,
    graceMs: 5_000,
  });
  const pid = daemon.child.pid!;
  const stop = registerProcess(pid, daemon.exited);
  progress(`mydoc serve running as pid ${pid} on ${url}`);
  return { pid, url, output: daemon.output, stop };
}

async function fetchHealth(share: Share): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.get({ host: '127.0.0.1', port: share.port, path: '/healthz', ca: share.caPem, agent: false, timeout: 2_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
  });
}

/** Peak and current resident set of a process, in bytes, from /proc/<pid>/status. */
export async function memoryOf(pid: number): Promise<{ hwm: number; rss: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!m) throw new Error(`no ${key} in /proc/${pid}/status`);
    return Number(m[1]) * 1024;
  };
  return { hwm: kb('VmHWM'), rss: kb('VmRSS') };
}

/** 1 MiB of random bytes, repeated to make the test content (encryption makes repetition irrelevant to the share). */
export const BLOCK = randomBytes(MiB);

/** Yields `total` bytes of BLOCK repeated, 1 MiB at a time. */
export async function* blockSource(total: number): AsyncGenerator<Buffer> {
  for (let done = 0; done < total; done += MiB) yield total - done >= MiB ? BLOCK : BLOCK.subarray(0, total - done);
}

/** SHA-256 (hex) of `total` bytes of BLOCK repeated. */
export function blockDigest(total: number): string {
  const h = createHash('sha256');
  for (let done = 0; done < total; done += MiB) h.update(total - done >= MiB ? BLOCK : BLOCK.subarray(0, total - done));
  return h.digest('hex');
}

/** Writes `total` bytes of BLOCK repeated to `file` (fsynced). */
export async function writeBlockFile(file: string, total: number): Promise<void> {
  const fh = await open(file, 'w', 0o644);
  try {
    for await (const piece of blockSource(total)) await fh.write(piece);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
