/**
 * Peak resident memory of `mydoc serve` (a child process) while a file of
 * 4 GiB - 1 bytes (4294967295, the largest the share accepts) goes up with
 * PUT and comes back with GET, read to the end, and a folder of 10,000
 * entries is listed (PROPFIND Depth 1, allprop and Windows' property list).
 * The client streams the upload from a generator (1 MiB pieces, with
 * back-pressure) and discards the download and the listings, so it never
 * holds them.
 *
 * Candidate: VmHWM of the server after all of it (target below 100 MiB).
 * Baseline: VmHWM of the same server after a warm-up (vault opened, a 1 MiB
 * PUT and GET), so the ratio is what the big transfers and listings add.
 * VmRSS is also sampled every 100 ms. The folder's entries are made through
 * the vault API before the server starts (one empty file and copies of it,
 * as webdav-propfind.bench.ts does). MiB = 2^20 bytes.
 */
import { loadConfig } from '../../server/config/config.js';
import { buildDirectory } from '../../server/config/directory.js';
import { openUserVault } from '../../shares/vault/user-vaults.js';
import { cleanupAll } from './cleanup.js';
import { NodeClient } from './http-client.js';
import { MiB, benchScale, emit, mbPerSecond, progress, type Figure } from './measure.js';
import { blockSource, createShare, memoryOf, spawnServer, type ChildServer } from './share.js';

const FULL = 0xffffffff;
const scale = benchScale();
const bytes = scale === 1 ? FULL : Math.min(FULL, Math.max(MiB, Math.floor(FULL * scale)));
const TARGET_MIB = 100;
const MB = MiB; // the figures below are in MiB
const ENTRIES = Math.max(1000, Math.round(10_000 * scale));
const FOLDER = '/Documents/many/';
const WINDOWS_BODY =
  '<?xml version="1.0" encoding="utf-8" ?><D:propfind xmlns:D="DAV:"><D:prop xmlns:Z="urn:schemas-microsoft-com:">' +
  '<D:resourcetype/><D:getcontentlength/><D:getlastmodified/><D:creationdate/>' +
  '<Z:Win32CreationTime/><Z:Win32LastAccessTime/><Z:Win32LastModifiedTime/><Z:Win32FileAttributes/>' +
  '</D:prop></D:propfind>';

async function populate(configFile: string, user: string): Promise<void> {
  const config = await loadConfig(configFile);
  const directory = await buildDirectory(config);
  const { keyring, vault } = await openUserVault(config.dataDir, config.pcId, user, directory.secrets);
  try {
    await vault.mkdir(FOLDER.slice(0, -1));
    const first = `${FOLDER}document-00000.docx`;
    await vault.write(first, []);
    for (let i = 1; i < ENTRIES; i++) await vault.copy(first, `${FOLDER}document-${String(i).padStart(5, '0')}.docx`, { overwrite: false });
  } finally {
    vault.close();
    keyring.lock();
  }
}

let server: ChildServer | undefined;
let client: NodeClient | undefined;
try {
  const share = await createShare();
  progress(`webdav-rss: making a folder of ${ENTRIES} entries`);
  await populate(share.configFile, share.user);
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
  progress(`webdav-rss: server pid ${pid}, VmHWM at start ${(atStart.hwm / MB).toFixed(1)} MiB, after the first request ${(afterAuth.hwm / MB).toFixed(1)} MiB, after warm-up VmHWM ${(before.hwm / MB).toFixed(1)} MiB, VmRSS ${(before.rss / MB).toFixed(1)} MiB; transferring ${bytes} bytes`);

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
    progress(`PUT ${mbPerSecond(bytes, put.seconds).toFixed(0)} MB/s; VmHWM ${(afterPut.hwm / MB).toFixed(1)} MiB`);
    get = await client.request('GET', '/Documents/big.bin');
    if (get.status !== 200 || get.bytes !== bytes) throw new Error(`GET answered ${get.status} with ${get.bytes} bytes (expected 200 with ${bytes})`);
    const afterGet = await memoryOf(pid);
    progress(`GET ${mbPerSecond(bytes, get.seconds).toFixed(0)} MB/s; VmHWM ${(afterGet.hwm / MB).toFixed(1)} MiB`);
    for (const body of [undefined, WINDOWS_BODY]) {
      const headers: Record<string, string> = { depth: '1', ...(body ? { 'content-type': 'application/xml; charset="utf-8"' } : {}) };
      const list = await client.request('PROPFIND', FOLDER, { headers, ...(body ? { body } : {}) });
      if (list.status !== 207) throw new Error(`PROPFIND of ${ENTRIES} entries answered ${list.status}`);
      progress(`PROPFIND Depth 1 of ${ENTRIES} entries (${body ? "Windows' list" : 'allprop'}): ${list.bytes} bytes in ${(list.seconds * 1000).toFixed(0)} ms`);
    }
  } finally {
    clearInterval(sampler);
  }
  const after = await memoryOf(pid);
  progress(`after the listings: VmHWM ${(after.hwm / MB).toFixed(1)} MiB, VmRSS ${(after.rss / MB).toFixed(1)} MiB`);

  const candidate = after.hwm / MB;
  const baseline = before.hwm / MB;
  const figure: Figure = {
    bench: 'webdav.rss.peak',
    unit: 'MiB',
    candidate: Math.round(candidate * 10) / 10,
    baseline: Math.round(baseline * 10) / 10,
    ratio: Math.round((candidate / baseline) * 1000) / 1000,
    bytes,
    runs: 1,
    ...(scale === 1 ? {} : { scale }),
    candidateOp: `VmHWM of mydoc serve after PUT and GET (read to the end) of the file and PROPFIND Depth 1 of ${ENTRIES} entries (allprop, Windows' list)`,
    entries: ENTRIES,
    baselineOp: 'VmHWM of the same process after warm-up (1 MiB PUT + GET)',
    startHwm: Math.round((atStart.hwm / MB) * 10) / 10,
    afterFirstRequestHwm: Math.round((afterAuth.hwm / MB) * 10) / 10,
    maxSampledRss: Math.round((maxSampled / MB) * 10) / 10,
    putMBps: Math.round(mbPerSecond(bytes, put.seconds)),
    getMBps: Math.round(mbPerSecond(bytes, get.seconds)),
    client: 'node https (streamed from a generator, body discarded)',
    target: `< ${TARGET_MIB} MiB`,
    met: candidate < TARGET_MIB,
  };
  emit(figure);
} finally {
  client?.close();
  await server?.stop();
  await cleanupAll();
}
