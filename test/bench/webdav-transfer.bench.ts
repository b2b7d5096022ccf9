/**
 * GET and PUT of a 1 GiB file over HTTPS through the share, against three
 * baselines measured in the same run with the same client (curl, a separate
 * process; one connection per transfer; no Expect: 100-continue):
 * - Apache httpd mod_dav over TLS serving the same bytes (apache.ts);
 * - the same fastify process (built in-process with buildApp, exactly as
 *   `mydoc serve` does) streaming the same bytes to and from a plain file
 *   with 1 MiB I/O on the bench-only routes /api/bench/plain/:name (share.ts);
 * - rclone `serve webdav` over a crypt remote (rclone-crypt.ts), the nearest
 *   encrypted peer.
 *
 * Each run PUTs then GETs on each server, in a rotating order so that drift
 * and warm-up hit all four alike; figures are medians over the runs. The
 * share and the plain baseline fsync before answering a PUT; Apache and
 * rclone do not, so their "PUT + fsync" time is the PUT then `sync -f` of the
 * folder they wrote into (the share's PUT time already includes its fsyncs).
 * Reads are cache-warm (the file was just written).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startApache, type Apache } from './apache.js';
import { cleanupAll } from './cleanup.js';
import { startRcloneCrypt, type RcloneCrypt } from './rclone-crypt.js';
import { curlGet, curlPut, curlTlsInfo, NodeClient, type Target } from './http-client.js';
import { MiB, emit, median, mbPerSecond, progress, scaledBytes, throughputFigure } from './measure.js';
import { blockDigest, createShare, startInProcess, writeBlockFile, type InProcessServer } from './share.js';

const RUNS = Number(process.env['MYDOC_BENCH_RUNS'] ?? '') || 3;
const bytes = scaledBytes(1024 * MiB);

interface Side {
  name: 'share' | 'apache' | 'plain' | 'rclone-crypt';
  target: Target;
  path: string;
  /** Folder to `sync -f` after a PUT: for servers that answer before their data is on disk. */
  syncRoot?: string;
  put: number[];
  /** PUT, then `sync -f` of syncRoot when there is one. */
  putSync: number[];
  get: number[];
}

/** Seconds taken by `sync -f dir` (flushes the file system holding `dir`). */
function syncSeconds(dir: string): number {
  const start = process.hrtime.bigint();
  const res = spawnSync('sync', ['-f', dir], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`sync -f ${dir} failed: ${res.stderr || res.error?.message}`);
  return Number(process.hrtime.bigint() - start) / 1e9;
}

async function verify(side: Side, expected: string): Promise<void> {
  const client = new NodeClient(side.target);
  try {
    const h = createHash('sha256');
    const res = await client.request('GET', side.path, { onData: (c) => h.update(c) });
    if (res.status !== 200 || res.bytes !== bytes) throw new Error(`${side.name}: GET ${side.path} gave ${res.status} with ${res.bytes} bytes (expected 200 with ${bytes})`);
    if (h.digest('hex') !== expected) throw new Error(`${side.name}: GET ${side.path} returned different bytes than were PUT`);
  } finally {
    client.close();
  }
}

let server: InProcessServer | undefined;
let apache: Apache | undefined;
let rclone: RcloneCrypt | undefined;
try {
  const share = await createShare();
  const scratch = join(share.dir, 'scratch');
  const plainDir = join(share.dir, 'plain');
  await mkdir(scratch);
  await mkdir(plainDir);
  const source = join(scratch, 'source.bin');
  progress(`webdav-transfer: ${bytes} bytes, ${RUNS} runs; writing the source file`);
  await writeBlockFile(source, bytes);
  const digest = blockDigest(bytes);

  server = await startInProcess(share, { dir: plainDir });
  apache = await startApache({ certFile: share.certFile, keyFile: share.keyFile, caPem: share.caPem, user: share.user, password: share.password });
  await mkdir(join(apache.root, 'Documents'));
  apache.chownRoot();
  rclone = await startRcloneCrypt({ certFile: share.certFile, keyFile: share.keyFile, caPem: share.caPem, user: share.user, password: share.password });

  const common = { caFile: share.caFile, caPem: share.caPem, user: share.user, password: share.password };
  const sides: Side[] = [
    { name: 'share', target: { base: server.url, ...common }, path: '/Documents/bench.bin', put: [], putSync: [], get: [] },
    { name: 'apache', target: { base: apache.url, ...common }, path: '/Documents/bench.bin', syncRoot: apache.root, put: [], putSync: [], get: [] },
    // The baseline route is under /api/ only to reach fastify's router; state-changing /api/ requests must be JSON (server/api-guard.ts).
    { name: 'plain', target: { base: server.url, ...common, contentType: 'application/json' }, path: '/api/bench/plain/bench.bin', put: [], putSync: [], get: [] },
    { name: 'rclone-crypt', target: { base: rclone.url, ...common }, path: '/bench.bin', syncRoot: rclone.root, put: [], putSync: [], get: [] },
  ];
  const tls = { share: await curlTlsInfo(sides[0]!.target), apache: await curlTlsInfo(sides[1]!.target) };
  progress(`TLS negotiated by curl: share ${tls.share}; apache ${tls.apache}`);

  // Untimed warm-up; also checks that each server gives back the bytes it was given.
  for (const side of sides) {
    await curlPut(side.target, side.path, source, bytes);
    await verify(side, digest);
  }

  for (let run = 0; run < RUNS; run++) {
    const order = sides.map((_, i) => sides[(i + run) % sides.length]!);
    for (const side of order) {
      if (side.syncRoot) syncSeconds(side.syncRoot); // start from clean pages, as the share's fsynced PUT leaves them
      const put = await curlPut(side.target, side.path, source, bytes);
      const putSync = put.seconds + (side.syncRoot ? syncSeconds(side.syncRoot) : 0);
      const get = await curlGet(side.target, side.path, bytes);
      side.put.push(put.seconds);
      side.putSync.push(putSync);
      side.get.push(get.seconds);
      progress(
        `run ${run + 1}/${RUNS} ${side.name}: PUT ${mbPerSecond(bytes, put.seconds).toFixed(0)} MB/s, PUT + fsync ${mbPerSecond(bytes, putSync).toFixed(0)} MB/s, GET ${mbPerSecond(bytes, get.seconds).toFixed(0)} MB/s`,
      );
    }
  }

  const [s, a, p, r] = sides as [Side, Side, Side, Side];
  const note = { client: 'curl --http1.1 (one TLS connection per transfer, time_total)', tls: tls.share, baselineTls: tls.apache, cache: 'warm' };
  const figure = (bench: string, candidate: number[], baseline: number[], target: number | undefined, extra: Record<string, unknown>) => {
    const f = throughputFigure(bench, bytes, { candidate, baseline }, { ...note, ...extra, ...(target === undefined ? {} : { target: `>= ${target.toFixed(2)}x` }) });
    emit(target === undefined ? f : { ...f, met: f.ratio >= target });
  };
  figure('webdav.get.vs-apache', s.get, a.get, 1.0, { baselineOp: `${apache.version} mod_dav_fs GET over TLS` });
  figure('webdav.put.vs-apache', s.put, a.put, 0.9, { baselineOp: `${apache.version} mod_dav_fs PUT over TLS (no fsync)`, fsync: { candidate: true, baseline: false } });
  figure('webdav.get.vs-plain', s.get, p.get, 0.9, { baselineOp: 'same fastify process: createReadStream highWaterMark 1 MiB of a plain file' });
  figure('webdav.put.vs-plain', s.put, p.put, 0.9, { baselineOp: 'same fastify process: request body to a plain file in >= 1 MiB writev + fsync', fsync: { candidate: true, baseline: true } });
  figure('webdav.put-fsync.vs-apache', s.putSync, a.putSync, 1.0, { baselineOp: `${apache.version} mod_dav_fs PUT over TLS, then sync -f of its root`, fsync: { candidate: true, baseline: true } });
  figure('webdav.get.vs-rclone-crypt', s.get, r.get, undefined, { baselineOp: `${rclone.version} serve webdav over a crypt remote, GET over TLS` });
  figure('webdav.put-fsync.vs-rclone-crypt', s.putSync, r.putSync, undefined, { baselineOp: `${rclone.version} serve webdav over a crypt remote, PUT over TLS, then sync -f of its folder`, fsync: { candidate: true, baseline: true } });
  progress(
    `medians MB/s: share GET ${median(s.get.map((t) => mbPerSecond(bytes, t))).toFixed(0)} PUT ${median(s.put.map((t) => mbPerSecond(bytes, t))).toFixed(0)}; ` +
      `apache GET ${median(a.get.map((t) => mbPerSecond(bytes, t))).toFixed(0)} PUT ${median(a.put.map((t) => mbPerSecond(bytes, t))).toFixed(0)}; ` +
      `plain GET ${median(p.get.map((t) => mbPerSecond(bytes, t))).toFixed(0)} PUT ${median(p.put.map((t) => mbPerSecond(bytes, t))).toFixed(0)}; ` +
      `apache PUT + sync ${median(a.putSync.map((t) => mbPerSecond(bytes, t))).toFixed(0)}; ` +
      `rclone crypt GET ${median(r.get.map((t) => mbPerSecond(bytes, t))).toFixed(0)} PUT ${median(r.put.map((t) => mbPerSecond(bytes, t))).toFixed(0)} PUT + sync ${median(r.putSync.map((t) => mbPerSecond(bytes, t))).toFixed(0)}`,
  );
} finally {
  await server?.close().catch((err: Error) => progress(`closing the server failed: ${err.message}`));
  await apache?.stop();
  await rclone?.stop();
  await cleanupAll();
}
