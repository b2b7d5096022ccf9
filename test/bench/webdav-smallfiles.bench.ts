/**
 * Copying many small files in, against Apache httpd mod_dav over TLS
 * (apache.ts) and rclone `serve webdav` over a crypt remote (rclone-crypt.ts),
 * all measured in the same run, in a rotating order, medians over the runs:
 * - `webdav.smallfiles.parallel`: 8 curl processes at once, each PUTting its
 *   share of the 1 KiB files one after another over one kept-open connection
 *   (files/s from the start of the first to the end of the last);
 * - `webdav.smallfiles.windows`: the Windows Explorer copy sequence per file
 *   (PROPFIND 404, 0-byte PUT, LOCK, PROPPATCH Win32*, PUT, UNLOCK; see
 *   docs/windows-webdav.md) from one sequential keep-alive Node client.
 *
 * mydoc runs as `mydoc serve` in a child process (so that the Node client
 * never shares its event loop) and answers a PUT only once it is durable;
 * Apache and rclone do not fsync. MYDOC_BENCH_SCALE scales the file counts
 * (1: 2,000 parallel and 1,000 Windows files); MYDOC_BENCH_NODE_ARGS adds
 * node options to the server (e.g. --cpu-prof) for profiling.
 * MYDOC_BENCH_BASE_BIN (the bin/mydoc.js of another build, e.g. the commit
 * before a change) adds that build as a fourth side on its own data folder,
 * and the figures `webdav.smallfiles.*.vs-base`.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startApache, type Apache } from './apache.js';
import { cleanupAll } from './cleanup.js';
import { NodeClient, type Target } from './http-client.js';
import { benchScale, emit, progress, rateFigure, timed, type Figure } from './measure.js';
import { startRcloneCrypt, type RcloneCrypt } from './rclone-crypt.js';
import { createShare, spawnServer, type ChildServer } from './share.js';

const RUNS = Number(process.env['MYDOC_BENCH_RUNS'] ?? '') || 3;
const CLIENTS = 8;
const FILE_BYTES = 1024;
const PARALLEL_FILES = Math.max(CLIENTS, Math.round((2000 * benchScale()) / CLIENTS) * CLIENTS);
const WINDOWS_FILES = Math.max(10, Math.round(1000 * benchScale()));

interface Side {
  name: 'mydoc' | 'apache' | 'rclone-crypt' | 'mydoc-base';
  target: Target;
  parallel: number[];
  windows: number[];
}

/** One curl process PUTting `names` one after another over one connection; rejects unless every answer is 201/204. */
function curlMany(t: Target, file: string, folder: string, names: string[], configFile: string): Promise<void> {
  const lines = ['silent', 'show-error', 'http1.1', `cacert = "${t.caFile}"`, `user = "${t.user}:${t.password}"`, 'header = "Expect:"', 'write-out = "%{http_code}\\n"'];
  for (const n of names) lines.push(`upload-file = "${file}"`, `url = "${t.base}${folder}/${n}"`, 'output = "/dev/null"');
  return writeFile(configFile, lines.join('\n') + '\n').then(
    () =>
      new Promise<void>((resolve, reject) => {
        const child = spawn('curl', ['-K', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
        child.stderr.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-4096)));
        child.once('error', reject);
        child.once('close', (code) => {
          const codes = out.trim().split('\n');
          const bad = codes.filter((c) => c !== '201' && c !== '204');
          if (code !== 0 || codes.length !== names.length || bad.length > 0) {
            reject(new Error(`curl to ${t.base}: exit ${code}, ${codes.length}/${names.length} answers, unexpected ${bad.slice(0, 3).join(',')} ${err.trim()}`));
          } else resolve();
        });
      }),
  );
}

async function mkcol(t: Target, path: string): Promise<void> {
  const client = new NodeClient(t);
  try {
    const res = await client.request('MKCOL', path);
    if (res.status !== 201) throw new Error(`MKCOL ${t.base}${path} answered ${res.status}`);
  } finally {
    client.close();
  }
}

async function parallelRun(side: Side, file: string, folder: string, scratch: string): Promise<number> {
  await mkcol(side.target, folder);
  const per = PARALLEL_FILES / CLIENTS;
  return timed(() =>
    Promise.all(
      Array.from({ length: CLIENTS }, (_, c) =>
        curlMany(side.target, file, folder, Array.from({ length: per }, (_, i) => `c${c}-${i}.bin`), join(scratch, `${side.name}-${c}.curlrc`)),
      ),
    ),
  );
}

const WINDOWS = { 'user-agent': 'Microsoft-WebDAV-MiniRedir/10.0.19045', translate: 'f', connection: 'Keep-Alive' };
const LOCKINFO =
  '<?xml version="1.0" encoding="utf-8" ?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><D:href>BENCH\\alice</D:href></D:owner></D:lockinfo>';
const WIN32_PATCH =
  '<?xml version="1.0" encoding="utf-8" ?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>' +
  '<Z:Win32CreationTime>Tue, 01 Oct 2024 08:00:00 GMT</Z:Win32CreationTime><Z:Win32LastAccessTime>Tue, 01 Oct 2024 08:00:00 GMT</Z:Win32LastAccessTime>' +
  '<Z:Win32LastModifiedTime>Tue, 01 Oct 2024 08:00:00 GMT</Z:Win32LastModifiedTime><Z:Win32FileAttributes>00000020</Z:Win32FileAttributes>' +
  '</D:prop></D:set></D:propertyupdate>';

async function windowsRun(side: Side, body: Buffer, folder: string): Promise<number> {
  await mkcol(side.target, folder);
  const client = new NodeClient(side.target);
  const expect = (what: string, status: number, ok: number[]) => {
    if (!ok.includes(status)) throw new Error(`${side.name}: ${what} answered ${status}`);
  };
  try {
    return await timed(async () => {
      for (let i = 0; i < WINDOWS_FILES; i++) {
        const path = `${folder}/w${i}.bin`;
        const xml = { ...WINDOWS, 'content-type': 'text/xml; charset="utf-8"' };
        expect('PROPFIND', (await client.request('PROPFIND', path, { headers: { ...WINDOWS, depth: '0' } })).status, [404]);
        expect('PUT 0', (await client.request('PUT', path, { headers: WINDOWS, body: Buffer.alloc(0) })).status, [201]);
        const lock = await client.request('LOCK', path, { headers: { ...xml, timeout: 'Second-3600' }, body: LOCKINFO });
        expect('LOCK', lock.status, [200]);
        const token = String(lock.headers['lock-token'] ?? '').replace(/^<|>$/g, '');
        const ifHeader = { ...WINDOWS, if: `(<${token}>)` };
        expect('PROPPATCH', (await client.request('PROPPATCH', path, { headers: { ...xml, ...ifHeader }, body: WIN32_PATCH })).status, [207]);
        expect('PUT', (await client.request('PUT', path, { headers: ifHeader, body })).status, [200, 201, 204]);
        expect('UNLOCK', (await client.request('UNLOCK', path, { headers: { ...WINDOWS, 'lock-token': `<${token}>` } })).status, [204]);
      }
    });
  } finally {
    client.close();
  }
}

function filesFigure(bench: string, files: number, candidate: number[], baseline: number[], extra: Record<string, unknown>): Figure {
  return rateFigure(bench, 'files/s', (s) => files / s, files * FILE_BYTES, { candidate, baseline }, { files, ...extra });
}

const baseBin = process.env['MYDOC_BENCH_BASE_BIN'] || undefined;

let server: ChildServer | undefined;
let baseServer: ChildServer | undefined;
let apache: Apache | undefined;
let rclone: RcloneCrypt | undefined;
try {
  const share = await createShare();
  const scratch = join(share.dir, 'scratch');
  await mkdir(scratch);
  const file = join(scratch, 'one-kib.bin');
  const body = randomBytes(FILE_BYTES);
  await writeFile(file, body);
  const nodeArgs = (process.env['MYDOC_BENCH_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
  server = await spawnServer(share, nodeArgs);
  const tlsOpts = { certFile: share.certFile, keyFile: share.keyFile, caPem: share.caPem, user: share.user, password: share.password };
  apache = await startApache(tlsOpts);
  await mkdir(join(apache.root, 'Documents'));
  apache.chownRoot();
  rclone = await startRcloneCrypt(tlsOpts);
  const common = { caFile: share.caFile, caPem: share.caPem, user: share.user, password: share.password };
  const sides: Side[] = [
    { name: 'mydoc', target: { base: server.url, ...common }, parallel: [], windows: [] },
    { name: 'apache', target: { base: apache.url, ...common }, parallel: [], windows: [] },
    { name: 'rclone-crypt', target: { base: rclone.url, ...common }, parallel: [], windows: [] },
  ];
  await mkcol(sides[2]!.target, '/Documents');
  if (baseBin) {
    const baseShare = await createShare();
    baseServer = await spawnServer(baseShare, nodeArgs, baseBin);
    sides.push({ name: 'mydoc-base', target: { base: baseServer.url, caFile: baseShare.caFile, caPem: baseShare.caPem, user: baseShare.user, password: baseShare.password }, parallel: [], windows: [] });
  }
  progress(`webdav-smallfiles: ${PARALLEL_FILES} files by ${CLIENTS} curl clients, ${WINDOWS_FILES} files in Windows' sequence, ${RUNS} runs`);

  // Untimed warm-up (connections, caches, the JIT).
  for (const side of sides) {
    await parallelRun(side, file, '/Documents/warm-p', scratch);
    await windowsRun(side, body, '/Documents/warm-w');
  }
  for (let run = 0; run < RUNS; run++) {
    const order = sides.map((_, i) => sides[(i + run) % sides.length]!);
    for (const side of order) {
      const p = await parallelRun(side, file, `/Documents/p${run}`, scratch);
      const w = await windowsRun(side, body, `/Documents/w${run}`);
      side.parallel.push(p);
      side.windows.push(w);
      progress(`run ${run + 1}/${RUNS} ${side.name}: parallel ${(PARALLEL_FILES / p).toFixed(0)} files/s, windows ${(WINDOWS_FILES / w).toFixed(0)} files/s`);
    }
  }
  const [m, a, r] = sides as [Side, Side, Side];
  const note = { fileBytes: FILE_BYTES, fsync: { candidate: true, baseline: false } };
  const parallelNote = { client: `${CLIENTS} curl --http1.1 processes at once, each one kept-open TLS connection`, baselineOp: `${apache.version} mod_dav_fs over TLS`, target: '>= 1.00x' };
  const windowsNote = { client: 'one keep-alive Node https client, PROPFIND 404, PUT 0, LOCK, PROPPATCH, PUT, UNLOCK per file', baselineOp: `${apache.version} mod_dav_fs over TLS`, target: '>= 1.00x' };
  const pf = filesFigure('webdav.smallfiles.parallel.vs-apache', PARALLEL_FILES, m.parallel, a.parallel, { ...note, ...parallelNote });
  emit({ ...pf, met: pf.ratio >= 1 });
  const wf = filesFigure('webdav.smallfiles.windows.vs-apache', WINDOWS_FILES, m.windows, a.windows, { ...note, ...windowsNote });
  emit({ ...wf, met: wf.ratio >= 1 });
  emit(filesFigure('webdav.smallfiles.parallel.vs-rclone-crypt', PARALLEL_FILES, m.parallel, r.parallel, { ...note, ...parallelNote, baselineOp: `${rclone.version} serve webdav, crypt remote` }));
  emit(filesFigure('webdav.smallfiles.windows.vs-rclone-crypt', WINDOWS_FILES, m.windows, r.windows, { ...note, ...windowsNote, baselineOp: `${rclone.version} serve webdav, crypt remote` }));
  const base = sides[3];
  if (base) {
    const baseOp = `mydoc serve of ${baseBin}, same machine, own data folder`;
    emit(filesFigure('webdav.smallfiles.parallel.vs-base', PARALLEL_FILES, m.parallel, base.parallel, { ...note, ...parallelNote, baselineOp: baseOp, fsync: { candidate: true, baseline: true } }));
    emit(filesFigure('webdav.smallfiles.windows.vs-base', WINDOWS_FILES, m.windows, base.windows, { ...note, ...windowsNote, baselineOp: baseOp, fsync: { candidate: true, baseline: true } }));
    emit(filesFigure('webdav.smallfiles.parallel.base-vs-apache', PARALLEL_FILES, base.parallel, a.parallel, { ...note, ...parallelNote }));
    emit(filesFigure('webdav.smallfiles.windows.base-vs-apache', WINDOWS_FILES, base.windows, a.windows, { ...note, ...windowsNote }));
  }
} finally {
  await baseServer?.stop().catch((err: Error) => progress(`stopping the base mydoc failed: ${err.message}`));
  await server?.stop().catch((err: Error) => progress(`stopping mydoc failed: ${err.message}`));
  await apache?.stop();
  await rclone?.stop();
  await cleanupAll();
}
