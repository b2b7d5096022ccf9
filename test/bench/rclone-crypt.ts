/**
 * rclone `serve webdav` over a crypt remote as the nearest encrypted WebDAV
 * peer: a local folder wrapped in rclone's crypt backend (file contents and
 * names encrypted, NaCl secretbox), served over TLS with Basic
 * authentication on a free port of 127.0.0.1, in the foreground, stopped by
 * its pid. Its own configuration file in a temporary folder (never the
 * user's), the crypt password obscured there as rclone wants it; no VFS
 * cache (`--vfs-cache-mode off`): uploads and downloads stream through
 * crypt, as mydoc's do through its vault.
 *
 * rclone is installed with apt-get when missing (the test command installs
 * it already); if that is impossible the benchmark fails saying so.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { registerDir, registerProcess } from './cleanup.js';
import { progress } from './measure.js';
import { freePort } from '../helpers/server.js';

const RCLONE_BIN = '/usr/bin/rclone';

export interface RcloneCryptOptions {
  /** PEM server certificate and key (the share's, so the same CA is trusted). */
  certFile: string;
  keyFile: string;
  caPem: string;
  user: string;
  password: string;
}

export interface RcloneCrypt {
  url: string;
  pid: number;
  /** The folder the crypt remote writes its encrypted files into (for a `sync -f` after a PUT). */
  root: string;
  version: string;
  output: () => string;
  stop: () => Promise<void>;
}

/** Installs rclone with apt-get when it is missing; throws a clear error when that fails. */
export function ensureRclone(): void {
  if (existsSync(RCLONE_BIN)) return;
  progress('rclone is missing: installing it with apt-get (Debian package rclone)');
  const res = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', 'install', '-y', 'rclone'], {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    timeout: 15 * 60_000,
  });
  if (res.status !== 0 || !existsSync(RCLONE_BIN)) {
    const why = res.error ? res.error.message : `exit ${res.status}: ${(res.stderr || res.stdout || '').trim().split('\n').slice(-3).join(' | ')}`;
    throw new Error(`the rclone crypt baseline needs rclone (${RCLONE_BIN}) and installing it failed (${why}). Install it as root with: apt-get install -y rclone`);
  }
}

function probe(url: string, caPem: string, auth: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = https.request(`${url}/`, { method: 'PROPFIND', ca: caPem, agent: false, timeout: 2_000, headers: { authorization: auth, depth: '0' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

/** Starts `rclone serve webdav` over a crypt remote with TLS on a free port of 127.0.0.1. */
export async function startRcloneCrypt(opts: RcloneCryptOptions): Promise<RcloneCrypt> {
  ensureRclone();
  const dir = await mkdtemp(join(tmpdir(), 'mydoc-bench-rclone-'));
  const removeDir = registerDir(dir);
  try {
    const root = join(dir, 'root');
    await mkdir(root, { mode: 0o700 });
    const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: dir, LANG: 'C', RCLONE_CONFIG: join(dir, 'rclone.conf') };
    const obscured = spawnSync(RCLONE_BIN, ['obscure', '-'], { input: randomBytes(24).toString('base64url'), encoding: 'utf8', env });
    if (obscured.status !== 0) throw new Error(`rclone obscure failed: ${obscured.stderr}`);
    await writeFile(join(dir, 'rclone.conf'), ['[bench]', 'type = crypt', `remote = ${root}`, 'filename_encryption = standard', `password = ${obscured.stdout.trim()}`, ''].join('\n'), { mode: 0o600 });
    const version = (spawnSync(RCLONE_BIN, ['version'], { encoding: 'utf8', env }).stdout ?? '').split('\n')[0]?.trim() ?? '';
    const auth = `Basic ${Buffer.from(`${opts.user}:${opts.password}`).toString('base64')}`;

    let lastError = '';
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      const url = `https://127.0.0.1:${port}`;
      const args = ['serve', 'webdav', 'bench:', '--addr', `127.0.0.1:${port}`, '--cert', opts.certFile, '--key', opts.keyFile, '--user', opts.user, '--vfs-cache-mode', 'off'];
      // The login's password goes by environment (rclone reads --pass as RCLONE_PASS), not argv, where ps shows it.
      const child = spawn(RCLONE_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...env, RCLONE_PASS: opts.password } });
      let output = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (output = (output + d).slice(-32 * 1024)));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (output = (output + d).slice(-32 * 1024)));
      const state = { exited: false };
      const exited = new Promise<void>((resolve) => {
        child.once('exit', () => {
          state.exited = true;
          resolve();
        });
        child.once('error', (err) => {
          output += `[spawn error: ${err.message}]`;
          state.exited = true;
          resolve();
        });
      });
      if (child.pid === undefined) {
        await exited;
        throw new Error(`cannot start ${RCLONE_BIN}: ${output}`);
      }
      const stop = registerProcess(child.pid, exited, 10_000);
      const deadline = Date.now() + 15_000;
      let status: number | undefined;
      while (!state.exited && Date.now() < deadline) {
        status = await probe(url, opts.caPem, auth);
        if (status !== undefined) break;
        await sleep(100);
      }
      if (status === 207) {
        progress(`rclone crypt (${version}) running as pid ${child.pid} on ${url}/ (encrypted files in ${root})`);
        return {
          url,
          pid: child.pid,
          root,
          version,
          output: () => output,
          stop: async () => {
            await stop();
            await removeDir();
          },
        };
      }
      lastError = `${status === undefined ? 'no answer' : `PROPFIND / answered ${status}`}; output: ${output.trim().split('\n').slice(-5).join(' | ')}`;
      await stop();
      if (!/address already in use/i.test(output)) break;
    }
    throw new Error(`rclone serve webdav did not start: ${lastError}`);
  } catch (err) {
    await removeDir();
    throw err;
  }
}
