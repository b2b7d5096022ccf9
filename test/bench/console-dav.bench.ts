/**
 * Browsing through the console against the agent directly, in the same run,
 * with real processes (test/helpers/console-fleet.ts: `mydoc console serve`
 * and one `mydoc serve` agent, enrolled and linked):
 * - PROPFIND Depth 1 of a folder of 10,000 entries: the agent's own share
 *   (as its user) against the console's /pcs/<pcId>/<user>/... (as a `data`
 *   administrator, forwarded down the link with a grant); the same Node
 *   https client, keep-alive, warmed up; median of 5 runs each, alternating.
 *   Target: the console <= 2x the direct time.
 * - GET of 1 GiB with curl (a separate process, --http1.1, body discarded):
 *   direct against through the console, alternating; median MB/s of 3 runs.
 *   Target: the console >= 0.5x the direct throughput.
 * - The console's memory during those GETs: VmRSS sampled every 50 ms, and
 *   VmHWM after, against its VmRSS before the first GET. Target: the peak
 *   under 200 MB (no file buffered).
 *
 * The 10,000 entries are made with COPY on the agent (copies share the
 * content object: one index transaction each), the 1 GiB file with one curl
 * PUT. MYDOC_BENCH_SCALE shrinks both (at least 100 entries and 1 MiB).
 */
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { rssOf, sampleRss, startConsoleFleet, type ConsoleFleet } from '../helpers/console-fleet.js';
import { register } from './cleanup.js';
import { curlGet, curlPut, NodeClient, type NodeResponse, type Target } from './http-client.js';
import { MiB, alternating, benchScale, emit, median, mbPerSecond, progress, scaledBytes, throughputFigure, type Figure } from './measure.js';
import { blockDigest, writeBlockFile } from './share.js';

const PROPFIND_RUNS = 5;
const GET_RUNS = Number(process.env['MYDOC_BENCH_RUNS'] ?? '') || 3;
const COUNT = Math.max(100, Math.round(10_000 * benchScale()));
const BYTES = scaledBytes(1024 * MiB);
const RSS_TARGET_MB = 200;
const MB = 1e6;
const PC = 'pc-bench';
const USER = 'alice';
const FOLDER = '/Documents/many/';
const BIG = '/Documents/big.bin';
const nameOf = (i: number): string => `document-${String(i).padStart(5, '0')}.docx`;
const RESPONSE = /<(?:[A-Za-z_][\w.-]*:)?response[\s>]/g;

async function propfind(client: NodeClient, path: string): Promise<NodeResponse> {
  const res = await client.request('PROPFIND', path, { headers: { depth: '1' }, keepBody: true });
  if (res.status !== 207) throw new Error(`PROPFIND ${client.target.base}${path} answered ${res.status}: ${res.body.toString('utf8', 0, 300)}`);
  const entries = res.body.toString('utf8').match(RESPONSE)?.length ?? 0;
  if (entries !== COUNT + 1) throw new Error(`PROPFIND ${client.target.base}${path} listed ${entries} responses, expected ${COUNT + 1}`);
  return res;
}

/** Makes FOLDER with COUNT entries on the agent: one empty file, then copies of it. */
async function populate(client: NodeClient, base: string): Promise<void> {
  const mk = await client.request('MKCOL', FOLDER.slice(0, -1));
  if (mk.status !== 201) throw new Error(`MKCOL ${FOLDER} answered ${mk.status}`);
  const first = await client.request('PUT', FOLDER + nameOf(0), { body: Buffer.alloc(0) });
  if (first.status !== 201) throw new Error(`PUT ${FOLDER}${nameOf(0)} answered ${first.status}`);
  const clients = [client, new NodeClient(client.target), new NodeClient(client.target), new NodeClient(client.target)];
  const limit = pLimit(clients.length);
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: COUNT - 1 }, (_, k) =>
        limit(async () => {
          const c = clients[next++ % clients.length]!;
          const res = await c.request('COPY', FOLDER + nameOf(0), { headers: { destination: `${base}${FOLDER}${nameOf(k + 1)}`, overwrite: 'F' } });
          if (res.status !== 201) throw new Error(`COPY to ${nameOf(k + 1)} answered ${res.status}`);
        }),
      ),
    );
  } finally {
    for (const c of clients.slice(1)) c.close();
  }
}

let fleet: ConsoleFleet | undefined;
const clients: NodeClient[] = [];
try {
  progress(`console-dav: ${COUNT} entries, ${BYTES} bytes; starting a console and an agent`);
  fleet = await startConsoleFleet({ pcs: [{ pcId: PC, users: [USER] }], admins: [{ name: 'dana', roles: ['data'] }] });
  const running = fleet;
  register(
    () => running.stop(),
    () => undefined, // the daemons kill themselves at exit (daemon.ts)
  );
  const agent = fleet.pc(PC);
  const admin = fleet.admins['dana']!;
  const direct: Target = { base: agent.server.url.replace(/\/$/, ''), caFile: agent.server.caFile, caPem: agent.server.caPem, user: USER, password: agent.user(USER).password };
  const viaConsole: Target = { base: `${fleet.url}/pcs/${PC}/${USER}`, caFile: fleet.caFile, caPem: fleet.caPem, user: admin.name, password: admin.password };
  // NodeClient sends to the target's port with the path as given: the console's path carries the /pcs/<pc>/<user> prefix.
  const consoleClient = new NodeClient({ ...viaConsole, base: fleet.url });
  const directClient = new NodeClient(direct);
  clients.push(consoleClient, directClient);
  const consolePath = (p: string) => `/pcs/${PC}/${USER}${p}`;

  let started = Date.now();
  await populate(directClient, direct.base);
  progress(`made ${COUNT} entries on the agent in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  // PROPFIND Depth 1: warm-up (vault open, logins cached), then alternating runs.
  await propfind(directClient, FOLDER);
  const warm = await propfind(consoleClient, consolePath(FOLDER));
  const ms = { candidate: [] as number[], baseline: [] as number[] };
  for (let run = 0; run < PROPFIND_RUNS; run++) {
    await alternating(
      run,
      async () => {
        ms.candidate.push((await propfind(consoleClient, consolePath(FOLDER))).seconds * 1000);
      },
      async () => {
        ms.baseline.push((await propfind(directClient, FOLDER)).seconds * 1000);
      },
    );
  }
  const scale = benchScale();
  const tMed = { candidate: median(ms.candidate), baseline: median(ms.baseline) };
  const propfindFigure: Figure = {
    bench: 'console.dav.propfind.depth1',
    unit: 'ms',
    candidate: Math.round(tMed.candidate),
    baseline: Math.round(tMed.baseline),
    ratio: Math.round((tMed.candidate / tMed.baseline) * 1000) / 1000,
    bytes: warm.bytes,
    entries: COUNT,
    runs: PROPFIND_RUNS,
    ...(scale === 1 ? {} : { scale }),
    client: 'node https, keep-alive, one connection per server',
    candidateOp: 'PROPFIND Depth 1 (allprop) through the console /pcs/<pc>/<user>/..., forwarded down the link',
    baselineOp: "PROPFIND Depth 1 (allprop) on the agent's own share",
    target: '<= 2.00x',
    met: tMed.candidate / tMed.baseline <= 2,
  };
  emit(propfindFigure);
  progress(`PROPFIND: console ${tMed.candidate.toFixed(0)} ms (${ms.candidate.map((m) => m.toFixed(0)).join(', ')}), direct ${tMed.baseline.toFixed(0)} ms (${ms.baseline.map((m) => m.toFixed(0)).join(', ')})`);

  // GET of the big file: written once through the agent, then read both ways.
  const scratch = join(fleet.dir, 'bench-scratch');
  await mkdir(scratch, { recursive: true });
  const source = join(scratch, 'source.bin');
  await writeBlockFile(source, BYTES);
  started = Date.now();
  await curlPut(direct, BIG, source, BYTES);
  progress(`PUT ${BYTES} bytes on the agent in ${((Date.now() - started) / 1000).toFixed(1)} s; checking both ways give them back`);
  const digest = blockDigest(BYTES);
  for (const [name, client, path] of [['direct', directClient, BIG], ['console', consoleClient, consolePath(BIG)]] as const) {
    const h = createHash('sha256');
    const res = await client.request('GET', path, { onData: (c) => h.update(c) });
    if (res.status !== 200 || res.bytes !== BYTES || h.digest('hex') !== digest) throw new Error(`${name}: GET ${path} gave ${res.status} with ${res.bytes} bytes, or other bytes than were PUT`);
  }

  const pid = fleet.consolePid()!;
  const before = (await rssOf(pid))!;
  const seconds = { candidate: [] as number[], baseline: [] as number[] };
  let peakKiB = 0;
  for (let run = 0; run < GET_RUNS; run++) {
    await alternating(
      run,
      async () => {
        const sampler = sampleRss(pid, 50);
        try {
          seconds.candidate.push((await curlGet(viaConsole, BIG, BYTES)).seconds);
        } finally {
          peakKiB = Math.max(peakKiB, (await sampler.stop()).peakKiB);
        }
      },
      async () => {
        seconds.baseline.push((await curlGet(direct, BIG, BYTES)).seconds);
      },
    );
    progress(`GET run ${run + 1}/${GET_RUNS}: console ${mbPerSecond(BYTES, seconds.candidate.at(-1)!).toFixed(0)} MB/s, direct ${mbPerSecond(BYTES, seconds.baseline.at(-1)!).toFixed(0)} MB/s`);
  }
  const after = (await rssOf(pid))!;
  const get = throughputFigure('console.dav.get', BYTES, seconds, {
    client: 'curl --http1.1 (one TLS connection per transfer, time_total)',
    candidateOp: 'GET through the console /pcs/<pc>/<user>/..., streamed down the link',
    baselineOp: "GET on the agent's own share",
    target: '>= 0.50x',
  });
  emit({ ...get, met: get.ratio >= 0.5 });
  const peakMB = (peakKiB * 1024) / MB;
  const rss: Figure = {
    bench: 'console.dav.get.rss',
    unit: 'MB',
    candidate: Math.round(peakMB * 10) / 10,
    baseline: Math.round(((before.rssKiB * 1024) / MB) * 10) / 10,
    ratio: Math.round((peakKiB / before.rssKiB) * 1000) / 1000,
    bytes: BYTES,
    runs: GET_RUNS,
    ...(scale === 1 ? {} : { scale }),
    candidateOp: 'peak VmRSS of the console process sampled every 50 ms during the GETs through it',
    baselineOp: 'VmRSS of the console process before the first timed GET',
    hwmAfter: Math.round(((after.hwmKiB * 1024) / MB) * 10) / 10,
    target: `< ${RSS_TARGET_MB} MB`,
    met: peakMB < RSS_TARGET_MB,
  };
  emit(rss);
  progress(`console RSS: ${rss.baseline} MB before, peak ${rss.candidate} MB during the GETs, VmHWM ${rss.hwmAfter} MB after`);
} finally {
  for (const c of clients) c.close();
  await fleet?.stop();
}
