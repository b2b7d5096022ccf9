/**
 * Peak resident memory of `mydoc serve` (a child process) while a file of
 * 4 GiB - 1 bytes (4294967295, the largest the share accepts) goes up with
 * PUT and comes back with GET, read to the end. The client streams the
 * upload from a generator (1 MiB pieces, with back-pressure) and discards
 * the download, so it never holds the file.
 *
 * Candidate: VmHWM of the server after both transfers. Baseline: VmHWM of
 * the same server after a warm-up (vault opened, a 1 MiB PUT and GET), so
 * the ratio is what the big transfers add. VmRSS is also sampled every
 * 100 ms during the transfers. MB = 10^6 bytes.
 */
import { cleanupAll } from './cleanup.js';
import { NodeClient } from './http-client.js';
import { MiB, benchScale, emit, mbPerSecond, progress, type Figure } from './measure.js';
import { blockSource, createShare, memoryOf, spawnServer, type ChildServer } from './share.js';

const FULL = 0xffffffff;
const scale = benchScale();
const bytes = scale === 1 ? FULL : Math.min(FULL, Math.max(MiB, Math.floor(FULL * scale)));
const TARGET_MB = 150;
const MB = 1e6;

let server: ChildServer | undefined;
let client: NodeClient | undefined;
try {
  const share = await createShare();
  server = await spawnServer(share);
  const pid = server.pid;
  const atStart = await memoryOf(pid);
  client = new NodeClient({ base: server.url, caFile: share.caFile, caPem: share.caPem, user: share.user, password: share.password });
  const octets = { 'content-type': 'application/octet-stream' };

  // The first authenticated request: scrypt password check (N = 2^15, r = 8: 32 MiB) and vault open.
  const first = await client.request('PROPFIND', '/', { headers: { depth: '0' } });
  if (first.status !== 207) throw new Error(`first PROPFIND answered ${first.status}`);
  const afterAuth = await memoryOf(pid);
  // Warm-up: vault open, password check cached, both paths exercised once.
  const small = await client.request('PUT', '/Documents/warm.bin', { headers: octets, body: blockSource(MiB), contentLength: MiB });
  if (small.status !== 201 && small.status !== 204) throw new Error(`warm-up PUT answered ${small.status}`);
  const smallGet = await client.request('GET', '/Documents/warm.bin');
  if (smallGet.status !== 200 || smallGet.bytes !== MiB) throw new Error(`warm-up GET answered ${smallGet.status} with ${smallGet.bytes} bytes`);
  const before = await memoryOf(pid);
  progress(`webdav-rss: server pid ${pid}, VmHWM at start ${(atStart.hwm / MB).toFixed(1)} MB, after the first request ${(afterAuth.hwm / MB).toFixed(1)} MB, after warm-up VmHWM ${(before.hwm / MB).toFixed(1)} MB, VmRSS ${(before.rss / MB).toFixed(1)} MB; transferring ${bytes} bytes`);

  let maxSampled = before.rss;
  const sampler = setInterval(() => {
    void memoryOf(pid)
      .then((m) => (maxSampled = Math.max(maxSampled, m.rss)))
      .catch(() => undefined);
  }, 100);
  let put;
  let get;
  try {
    put = await client.request('PUT', '/Documents/big.bin', { headers: octets, body: blockSource(bytes), contentLength: bytes });
    if (put.status !== 201 && put.status !== 204) throw new Error(`PUT of ${bytes} bytes answered ${put.status}: ${server.output().slice(-500)}`);
    const afterPut = await memoryOf(pid);
    progress(`PUT ${mbPerSecond(bytes, put.seconds).toFixed(0)} MB/s; VmHWM ${(afterPut.hwm / MB).toFixed(1)} MB`);
    get = await client.request('GET', '/Documents/big.bin');
    if (get.status !== 200 || get.bytes !== bytes) throw new Error(`GET answered ${get.status} with ${get.bytes} bytes (expected 200 with ${bytes})`);
  } finally {
    clearInterval(sampler);
  }
  const after = await memoryOf(pid);
  progress(`GET ${mbPerSecond(bytes, get.seconds).toFixed(0)} MB/s; VmHWM ${(after.hwm / MB).toFixed(1)} MB, VmRSS ${(after.rss / MB).toFixed(1)} MB`);

  const candidate = after.hwm / MB;
  const baseline = before.hwm / MB;
  const figure: Figure = {
    bench: 'webdav.rss.peak',
    unit: 'MB',
    candidate: Math.round(candidate * 10) / 10,
    baseline: Math.round(baseline * 10) / 10,
    ratio: Math.round((candidate / baseline) * 1000) / 1000,
    bytes,
    runs: 1,
    ...(scale === 1 ? {} : { scale }),
    candidateOp: 'VmHWM of mydoc serve after PUT and GET (read to the end) of the file',
    baselineOp: 'VmHWM of the same process after warm-up (1 MiB PUT + GET)',
    startHwm: Math.round((atStart.hwm / MB) * 10) / 10,
    afterFirstRequestHwm: Math.round((afterAuth.hwm / MB) * 10) / 10,
    maxSampledRss: Math.round((maxSampled / MB) * 10) / 10,
    putMBps: Math.round(mbPerSecond(bytes, put.seconds)),
    getMBps: Math.round(mbPerSecond(bytes, get.seconds)),
    client: 'node https (streamed from a generator, body discarded)',
    target: `< ${TARGET_MB} MB`,
    met: candidate < TARGET_MB,
  };
  emit(figure);
} finally {
  client?.close();
  await server?.stop();
  await cleanupAll();
}
