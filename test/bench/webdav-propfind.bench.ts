/**
 * PROPFIND Depth 1 of a folder of 10,000 files: the share (`mydoc serve` as a
 * child process) against Apache httpd mod_dav over TLS holding the same
 * 10,000 names (zero-length files) at the same path, timed with the same
 * Node https client (keep-alive, one connection per server, warmed up).
 *
 * rclone `serve webdav` over a crypt remote (the nearest encrypted peer) is a
 * third column, holding the same names; the three servers' order rotates
 * from run to run.
 *
 * Two request bodies: none (allprop) and the explicit property list the
 * Windows WebDAV client sends. Reported: the median time of 5 runs each, and
 * the response size per entry (body bytes / number of D:response elements),
 * with how many such entries fit in Windows' default FileAttributesLimitInBytes
 * (1,000,000 bytes: a larger listing shows as an empty folder).
 *
 * The share's files are created through the vault API while the server is
 * not running: one zero-length file, then 9,999 copies of it (copies share
 * the content object; their listing entries have the same shape as any
 * file's, and creating them costs one index transaction each instead of an
 * object write with three fsyncs). rclone's are PUT through its own WebDAV
 * answer (4 clients at once), so its crypt backend encrypts their names.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from '../../server/config/config.js';
import { buildDirectory } from '../../server/config/directory.js';
import { openUserVault } from '../../shares/vault/user-vaults.js';
import { startApache, type Apache } from './apache.js';
import { cleanupAll } from './cleanup.js';
import { NodeClient, type NodeResponse, type Target } from './http-client.js';
import { benchScale, emit, median, progress, type Figure } from './measure.js';
import { startRcloneCrypt, type RcloneCrypt } from './rclone-crypt.js';
import { createShare, spawnServer, type ChildServer } from './share.js';

const RUNS = 5;
const COUNT = Math.max(100, Math.round(10_000 * benchScale()));
const FOLDER = '/Documents/many/';
const nameOf = (i: number): string => `document-${String(i).padStart(5, '0')}.docx`;
/** Windows' default FileAttributesLimitInBytes: a PROPFIND answer larger than this shows an empty folder. */
const WINDOWS_LISTING_LIMIT = 1_000_000;
/** The issue's bound for both bodies: 2,500 entries fit under Windows' limit. */
const MAX_BYTES_PER_ENTRY = 400;

const WINDOWS_BODY =
  '<?xml version="1.0" encoding="utf-8" ?><D:propfind xmlns:D="DAV:"><D:prop xmlns:Z="urn:schemas-microsoft-com:">' +
  '<D:resourcetype/><D:getcontentlength/><D:getlastmodified/><D:creationdate/>' +
  '<Z:Win32CreationTime/><Z:Win32LastAccessTime/><Z:Win32LastModifiedTime/><Z:Win32FileAttributes/>' +
  '</D:prop></D:propfind>';

const BODIES = {
  allprop: undefined,
  windows: WINDOWS_BODY,
} as const;
type Kind = keyof typeof BODIES;

const RESPONSE = /<(?:[A-Za-z_][\w.-]*:)?response[\s>]/g;

async function propfind(client: NodeClient, kind: Kind): Promise<NodeResponse & { entries: number }> {
  const body = BODIES[kind];
  const headers: Record<string, string> = { depth: '1' };
  if (body !== undefined) headers['content-type'] = 'application/xml; charset="utf-8"';
  const res = await client.request('PROPFIND', FOLDER, { headers, ...(body === undefined ? {} : { body }), keepBody: true });
  if (res.status !== 207) throw new Error(`PROPFIND ${client.target.base}${FOLDER} (${kind}) answered ${res.status}: ${res.body.toString('utf8', 0, 300)}`);
  const entries = res.body.toString('utf8').match(RESPONSE)?.length ?? 0;
  if (entries !== COUNT + 1) throw new Error(`PROPFIND ${client.target.base}${FOLDER} (${kind}) listed ${entries} responses, expected ${COUNT + 1}`);
  return { ...res, entries };
}

async function populateShare(configFile: string, user: string): Promise<void> {
  const config = await loadConfig(configFile);
  const directory = await buildDirectory(config);
  const { keyring, vault } = await openUserVault(config.dataDir, config.pcId, user, directory.secrets);
  try {
    await vault.mkdir(FOLDER.slice(0, -1));
    const first = FOLDER + nameOf(0);
    await vault.write(first, []);
    for (let i = 1; i < COUNT; i++) await vault.copy(first, FOLDER + nameOf(i), { overwrite: false });
  } finally {
    vault.close();
    keyring.lock();
  }
}

async function populateApache(apache: Apache): Promise<void> {
  const dir = join(apache.root, ...FOLDER.split('/').filter(Boolean));
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < COUNT; i++) await writeFile(join(dir, nameOf(i)), '');
  apache.chownRoot();
}

async function populateRclone(rclone: RcloneCrypt, target: Omit<Target, 'base'>): Promise<void> {
  const clients = Array.from({ length: 4 }, () => new NodeClient({ base: rclone.url, ...target }));
  try {
    let path = '/';
    for (const segment of FOLDER.split('/').filter(Boolean)) {
      path += `${segment}/`;
      const res = await clients[0]!.request('MKCOL', path);
      if (res.status !== 201) throw new Error(`rclone MKCOL ${path} answered ${res.status}`);
    }
    let next = 0;
    await Promise.all(
      clients.map(async (client) => {
        for (let i = next++; i < COUNT; i = next++) {
          const res = await client.request('PUT', FOLDER + nameOf(i), { body: Buffer.alloc(0) });
          if (res.status !== 201 && res.status !== 204) throw new Error(`rclone PUT ${FOLDER + nameOf(i)} answered ${res.status}`);
        }
      }),
    );
  } finally {
    for (const c of clients) c.close();
  }
}

let server: ChildServer | undefined;
let apache: Apache | undefined;
let rclone: RcloneCrypt | undefined;
const clients: NodeClient[] = [];
try {
  const share = await createShare();
  progress(`webdav-propfind: ${COUNT} files, ${RUNS} runs; creating them in the vault`);
  const started = Date.now();
  await populateShare(share.configFile, share.user);
  progress(`created ${COUNT} files in the vault in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  server = await spawnServer(share);
  apache = await startApache({ certFile: share.certFile, keyFile: share.keyFile, caPem: share.caPem, user: share.user, password: share.password });
  await populateApache(apache);
  rclone = await startRcloneCrypt({ certFile: share.certFile, keyFile: share.keyFile, caPem: share.caPem, user: share.user, password: share.password });
  const common = { caFile: share.caFile, caPem: share.caPem, user: share.user, password: share.password };
  const putStarted = Date.now();
  await populateRclone(rclone, common);
  progress(`created ${COUNT} files in rclone crypt in ${((Date.now() - putStarted) / 1000).toFixed(1)} s`);

  const shareClient = new NodeClient({ base: server.url, ...common } satisfies Target);
  const apacheClient = new NodeClient({ base: apache.url, ...common } satisfies Target);
  const rcloneClient = new NodeClient({ base: rclone.url, ...common } satisfies Target);
  clients.push(shareClient, apacheClient, rcloneClient);

  for (const kind of Object.keys(BODIES) as Kind[]) {
    // Warm-up: opens the vault, caches the password check, warms the servers' caches.
    const warm = { share: await propfind(shareClient, kind), apache: await propfind(apacheClient, kind), rclone: await propfind(rcloneClient, kind) };
    const ms = { candidate: [] as number[], baseline: [] as number[], rclone: [] as number[] };
    const order: [number[], NodeClient][] = [
      [ms.candidate, shareClient],
      [ms.baseline, apacheClient],
      [ms.rclone, rcloneClient],
    ];
    for (let run = 0; run < RUNS; run++) {
      // Rotates the order (share, Apache, rclone; then Apache, rclone, share; ...) so drift hits all alike.
      for (let k = 0; k < order.length; k++) {
        const [into, client] = order[(run + k) % order.length]!;
        into.push((await propfind(client, kind)).seconds * 1000);
      }
    }
    const perEntry = {
      candidate: warm.share.bytes / warm.share.entries,
      baseline: warm.apache.bytes / warm.apache.entries,
      rclone: warm.rclone.bytes / warm.rclone.entries,
    };
    const scale = benchScale();
    const common = {
      entries: COUNT,
      runs: RUNS,
      client: 'node https, keep-alive, one connection per server',
      body: kind === 'allprop' ? 'none (allprop)' : 'Windows prop list: resourcetype, getcontentlength, getlastmodified, creationdate, Win32* (urn:schemas-microsoft-com:)',
      ...(scale === 1 ? {} : { scale }),
    };
    const tMed = { candidate: median(ms.candidate), baseline: median(ms.baseline), rclone: median(ms.rclone) };
    const ratio = (a: number, b: number): number => Math.round((a / b) * 1000) / 1000;
    const time: Figure = {
      bench: `webdav.propfind.depth1.${kind}`,
      unit: 'ms',
      candidate: Math.round(tMed.candidate),
      baseline: Math.round(tMed.baseline),
      ratio: ratio(tMed.candidate, tMed.baseline),
      rcloneCrypt: Math.round(tMed.rclone),
      ratioRcloneCrypt: ratio(tMed.candidate, tMed.rclone),
      bytes: warm.share.bytes,
      baselineBytes: warm.apache.bytes,
      rcloneCryptBytes: warm.rclone.bytes,
      bytesPerEntry: { candidate: Math.round(perEntry.candidate), baseline: Math.round(perEntry.baseline), rcloneCrypt: Math.round(perEntry.rclone) },
      ...common,
      baselineOp: `${apache.version} mod_dav_fs PROPFIND Depth 1 over TLS`,
      rcloneCryptOp: `${rclone.version} serve webdav over a crypt remote, TLS`,
      target: '<= 1.00x',
    };
    emit({ ...time, met: time.ratio <= 1 });
    const size: Figure = {
      bench: `webdav.propfind.depth1.${kind}.size`,
      unit: 'bytes/entry',
      candidate: Math.round(perEntry.candidate),
      baseline: Math.round(perEntry.baseline),
      ratio: ratio(perEntry.candidate, perEntry.baseline),
      rcloneCrypt: Math.round(perEntry.rclone),
      ratioRcloneCrypt: ratio(perEntry.candidate, perEntry.rclone),
      bytes: warm.share.bytes,
      baselineBytes: warm.apache.bytes,
      rcloneCryptBytes: warm.rclone.bytes,
      entriesUnderWindowsLimit: {
        candidate: Math.floor(WINDOWS_LISTING_LIMIT / perEntry.candidate),
        baseline: Math.floor(WINDOWS_LISTING_LIMIT / perEntry.baseline),
        rcloneCrypt: Math.floor(WINDOWS_LISTING_LIMIT / perEntry.rclone),
      },
      ...common,
      runs: 1,
      baselineOp: `${apache.version} mod_dav_fs PROPFIND Depth 1 response size`,
      rcloneCryptOp: `${rclone.version} serve webdav over a crypt remote, response size`,
      target: `< ${MAX_BYTES_PER_ENTRY} bytes/entry`,
    };
    emit({ ...size, met: perEntry.candidate < MAX_BYTES_PER_ENTRY });
    const runsOf = (values: number[]): string => values.map((m) => m.toFixed(0)).join(', ');
    progress(
      `${kind}: share ${tMed.candidate.toFixed(0)} ms (${runsOf(ms.candidate)}), apache ${tMed.baseline.toFixed(0)} ms (${runsOf(ms.baseline)}), rclone crypt ${tMed.rclone.toFixed(0)} ms (${runsOf(ms.rclone)})`,
    );
  }
} finally {
  for (const c of clients) c.close();
  await server?.stop();
  await apache?.stop();
  await rclone?.stop();
  await cleanupAll();
}
