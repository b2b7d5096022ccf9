/**
 * Apache httpd with mod_dav / mod_dav_fs over TLS as a WebDAV baseline: its
 * own minimal configuration in a temporary folder (no system configuration,
 * no system service), run in the foreground on a free port of 127.0.0.1 and
 * stopped by its pid. Basic authentication against a one-line {SHA} password
 * file (cheap per request, as the share's cached check is).
 *
 * Apache is installed with apt-get when missing; if that is impossible the
 * benchmark fails with a message saying so.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { registerDir, registerProcess } from './cleanup.js';
import { progress } from './measure.js';
import { freePort } from '../helpers/server.js';

const APACHE_BIN = '/usr/sbin/apache2';
const MODULES = '/usr/lib/apache2/modules';

export interface ApacheOptions {
  /** PEM server certificate and key (the share's, so the same CA is trusted). */
  certFile: string;
  keyFile: string;
  caPem: string;
  user: string;
  password: string;
}

export interface Apache {
  url: string;
  port: number;
  pid: number;
  /** The DAV document root (files here are served at the same path under `url`). */
  root: string;
  /** Makes files created in `root` by this process readable and writable by Apache's workers. */
  chownRoot: () => void;
  version: string;
  output: () => string;
  stop: () => Promise<void>;
}

/** Installs apache2 with apt-get when it is missing; throws a clear error when that fails. */
export function ensureApache(): void {
  if (existsSync(APACHE_BIN) && existsSync(join(MODULES, 'mod_dav_fs.so')) && existsSync(join(MODULES, 'mod_ssl.so'))) return;
  progress('apache2 is missing: installing it with apt-get (Debian package apache2)');
  const res = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', 'install', '-y', 'apache2'], {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    timeout: 15 * 60_000,
  });
  if (res.status !== 0 || !existsSync(APACHE_BIN)) {
    const why = res.error ? res.error.message : `exit ${res.status}: ${(res.stderr || res.stdout || '').trim().split('\n').slice(-3).join(' | ')}`;
    throw new Error(
      `the Apache baseline needs apache2 (${APACHE_BIN} with mod_dav_fs and mod_ssl) and installing it failed (${why}). ` +
        'Install it as root with: DEBIAN_FRONTEND=noninteractive apt-get install -y apache2',
    );
  }
}

function configText(dir: string, port: number, opts: ApacheOptions, asRoot: boolean): string {
  const run = join(dir, 'run');
  const root = join(dir, 'root');
  const mods = ['mpm_event', 'authz_core', 'authn_core', 'authn_file', 'auth_basic', 'authz_user', 'dav', 'dav_fs', 'mime', 'socache_shmcb', 'ssl'];
  return [
    `ServerRoot ${MODULES.replace(/\/modules$/, '')}`,
    `DefaultRuntimeDir ${run}`,
    `PidFile ${join(run, 'apache.pid')}`,
    `ErrorLog ${join(dir, 'error.log')}`,
    'LogLevel warn',
    'ServerName 127.0.0.1',
    `Listen 127.0.0.1:${port}`,
    ...mods.map((m) => `LoadModule ${m}_module ${MODULES}/mod_${m}.so`),
    ...(asRoot ? ['User www-data', 'Group www-data'] : []),
    'TypesConfig /etc/mime.types',
    // Since 2.4.54 the default is 1 GiB; the share accepts up to 4 GiB - 1.
    'LimitRequestBody 0',
    'KeepAlive On',
    `DavLockDB ${join(run, 'davlock')}`,
    `SSLSessionCache shmcb:${join(run, 'ssl_scache')}(512000)`,
    'SSLEngine on',
    'SSLProtocol -all +TLSv1.2 +TLSv1.3',
    `SSLCertificateFile ${opts.certFile}`,
    `SSLCertificateKeyFile ${opts.keyFile}`,
    `DocumentRoot ${root}`,
    '<Directory />',
    '  AllowOverride None',
    '  Require all denied',
    '</Directory>',
    `<Directory ${root}>`,
    '  Dav On',
    '  AuthType Basic',
    '  AuthName bench',
    `  AuthUserFile ${join(dir, 'htpasswd')}`,
    '  Require valid-user',
    '</Directory>',
    '',
  ].join('\n');
}


function probe(port: number, caPem: string, auth: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/', method: 'OPTIONS', ca: caPem, agent: false, timeout: 2_000, headers: { authorization: auth } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

/** Starts Apache with mod_dav over TLS on a free port of 127.0.0.1. */
export async function startApache(opts: ApacheOptions): Promise<Apache> {
  ensureApache();
  const asRoot = process.getuid?.() === 0;
  const dir = await mkdtemp(join(tmpdir(), 'mydoc-bench-apache-'));
  const removeDir = registerDir(dir);
  try {
    // Apache's workers run as www-data when started as root: they need to reach the folder.
    await chmod(dir, 0o755);
    await mkdir(join(dir, 'run'), { mode: 0o755 });
    await mkdir(join(dir, 'root'), { mode: 0o755 });
    const sha = createHash('sha1').update(opts.password, 'utf8').digest('base64');
    await writeFile(join(dir, 'htpasswd'), `${opts.user}:{SHA}${sha}\n`, { mode: 0o644 });
    const chownRoot = () => {
      if (!asRoot) return;
      for (const sub of ['run', 'root']) {
        const res = spawnSync('chown', ['-R', 'www-data:www-data', join(dir, sub)], { encoding: 'utf8' });
        if (res.status !== 0) throw new Error(`chown www-data ${join(dir, sub)} failed: ${res.stderr}`);
      }
    };
    chownRoot();
    const version = (spawnSync(APACHE_BIN, ['-v'], { encoding: 'utf8' }).stdout ?? '').split('\n')[0]?.replace(/^Server version:\s*/, '') ?? '';

    let lastError = '';
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      const conf = join(dir, 'httpd.conf');
      await writeFile(conf, configText(dir, port, opts, asRoot));
      const child = spawn(APACHE_BIN, ['-f', conf, '-DFOREGROUND'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LANG: 'C' } });
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
        throw new Error(`cannot start ${APACHE_BIN}: ${output}`);
      }
      const stop = registerProcess(child.pid, exited, 10_000);
      const auth = `Basic ${Buffer.from(`${opts.user}:${opts.password}`).toString('base64')}`;
      const deadline = Date.now() + 15_000;
      let status: number | undefined;
      while (!state.exited && Date.now() < deadline) {
        status = await probe(port, opts.caPem, auth);
        if (status !== undefined) break;
        await sleep(100);
      }
      if (status === 200) {
        progress(`apache (${version}) running as pid ${child.pid} on https://127.0.0.1:${port}/ (root ${join(dir, 'root')})`);
        return {
          url: `https://127.0.0.1:${port}`,
          port,
          pid: child.pid,
          root: join(dir, 'root'),
          chownRoot,
          version,
          output: () => output,
          stop: async () => {
            await stop();
            await removeDir();
          },
        };
      }
      const log = await readFile(join(dir, 'error.log'), 'utf8').catch(() => '');
      lastError = `${status === undefined ? 'no answer' : `OPTIONS / answered ${status}`}; output: ${output.trim()}; error.log: ${log.trim().split('\n').slice(-5).join(' | ')}`;
      await stop();
      if (!/Address already in use/.test(output + log)) break;
    }
    throw new Error(`apache did not start: ${lastError}`);
  } catch (err) {
    await removeDir();
    throw err;
  }
}
