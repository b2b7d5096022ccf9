/**
 * GET and PUT of a 1 GiB file over HTTPS through the share, against two
 * baselines measured in the same run with the same client (curl, a separate
 * process; one connection per transfer; no Expect: 100-continue):
 * - Apache httpd mod_dav over TLS serving the same bytes (apache.ts);
 * - the same fastify process (built in-process with buildApp, exactly as
 *   `mydoc serve` does) streaming the same bytes to and from a plain file
 *   with 1 MiB I/O on the bench-only routes /api/bench/plain/:name (share.ts).
 *
 * Each run PUTs then GETs on each server, in a rotating order so that drift
 * and warm-up hit all three alike; figures are medians over the runs. The
 * share and the plain baseline fsync before answering a PUT; Apache does not.
 * Reads are cache-warm (the file was just written).
 */
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startApache, type Apache } from './apache.js';
import { cleanupAll } from './cleanup.js';
import { curlGet, curlPut, curlTlsInfo, NodeClient, type Target } from './http-client.js';
import { MiB, emit, median, mbPerSecond, progress, scaledBytes, throughputFigure } from './measure.js';
import { blockDigest, createShare, startInProcess, writeBlockFile, type InProcessServer } from './share.js';

const RUNS = Number(process.env['MYDOC_BENCH_RUNS'] ?? '') || 3;
const bytes = scaledBytes(1024 * MiB);

interface Side {
  name: 'share' | 'apache' | 'plain';
  target: Target;
  path: string;
  put: number[];
  get: number[];
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

  const common = { caFile: share.caFile, caPem: share.caPem, user: share.user, password: share.password };
  const sides: Side[] = [
    { name: 'share', target: { base: server.url, ...common }, path: '/Documents/bench.bin', put: [], get: [] },
    { name: 'apache', target: { base: apache.url, ...common }, path: '/Documents/bench.bin', put: [], get: [] },
    // The baseline route is under /api/ only to reach fastify's router; state-changing /api/ requests must be JSON (server/api-guard.ts).
    { name: 'plain', target: { base: server.url, ...common, contentType: 'application/json' }, path: '/api/bench/plain/bench.bin', put: [], get: [] },
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
      const put = await curlPut(side.target, side.path, source, bytes);
      const get = await curlGet(side.target, side.path, bytes);
      side.put.push(put.seconds);
      side.get.push(get.seconds);
      progress(`run ${run + 1}/${RUNS} ${side.name}: PUT ${mbPerSecond(bytes, put.seconds).toFixed(0)} MB/s, GET ${mbPerSecond(bytes, get.seconds).toFixed(0)} MB/s`);
    }
  }

  const [s, a, p] = sides as [Side, Side, Side];
  const note = { client: 'curl --http1.1 (one TLS connection per transfer, time_total)', tls: tls.share, baselineTls: tls.apache, cache: 'warm' };
  const figure = (bench: string, candidate: number[], baseline: number[], target: number, extra: Record<string, unknown>) => {
    const f = throughputFigure(bench, bytes, { candidate, baseline }, { ...note, ...extra, target: `>= ${target.toFixed(2)}x` });
    emit({ ...f, met: f.ratio >= target });
  };
  figure('webdav.get.vs-apache', s.get, a.get, 1.0, { baselineOp: `${apache.version} mod_dav_fs GET over TLS` });
  figure('webdav.put.vs-apache', s.put, a.put, 0.9, { baselineOp: `${apache.version} mod_dav_fs PUT over TLS (no fsync)`, fsync: { candidate: true, baseline: false } });
  figure('webdav.get.vs-plain', s.get, p.get, 0.9, { baselineOp: 'same fastify process: createReadStream highWaterMark 1 MiB of a plain file' });
  figure('webdav.put.vs-plain', s.put, p.put, 0.9, { baselineOp: 'same fastify process: request body to a plain file in >= 1 MiB writev + fsync', fsync: { candidate: true, baseline: true } });
  progress(
    `medians MB/s: share GET ${median(s.get.map((t) => mbPerSecond(bytes, t))).toFixed(0)} PUT ${median(s.put.map((t) => mbPerSecond(bytes, t))).toFixed(0)}; ` +
      `apache GET ${median(a.get.map((t) => mbPerSecond(bytes, t))).toFixed(0)} PUT ${median(a.put.map((t) => mbPerSecond(bytes, t))).toFixed(0)}; ` +
      `plain GET ${median(p.get.map((t) => mbPerSecond(bytes, t))).toFixed(0)} PUT ${median(p.put.map((t) => mbPerSecond(bytes, t))).toFixed(0)}`,
  );
} finally {
  await server?.close().catch((err: Error) => progress(`closing the server failed: ${err.message}`));
  await apache?.stop();
  await cleanupAll();
}
