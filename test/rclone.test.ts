/**
 * A real WebDAV client end to end: rclone (Debian package `rclone`) copies a tree of 1,000
 * files with awkward names and sizes into `/Documents/tree` of a running `mydoc serve`, checks
 * it (`rclone check`), copies it back into an empty folder, and the copy must equal the
 * original byte for byte.
 *
 * rclone runs with an on-the-fly `:webdav:` remote (`--webdav-vendor other`: no hashes, no
 * vendor quirks), verifies TLS with the data folder's CA only (`--ca-cert`), uses a config file
 * in the scratch folder, and gets no RCLONE_* or proxy variables from the environment, so the
 * user's rclone set-up is neither used nor touched. Retries are off, so a server error is a
 * failure and not a silent retry.
 *
 * Names are valid Windows names (the server refuses `\ / : * ? " < > |`, control characters
 * and a trailing dot or space), in NFC, and no two siblings differ only in case (the server
 * compares names case-insensitively, like Windows).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { runCommand, startServer, type CommandResult, type RunningServer } from './helpers/server.js';

const FILE_COUNT = 1000;
const RCLONE_TIMEOUT_MS = 10 * 60_000;

/** Deterministic PRNG (mulberry32), so a failing tree can be rebuilt. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Folder names: accents, CJK, emoji, spaces, %, #, +, and other characters Windows allows. */
const DIR_NAMES = [
  'Dossier d\u00e9j\u00e0 vu',
  '\u65e5\u672c\u8a9e \u30d5\u30a9\u30eb\u30c0',
  'emoji \ud83d\ude00 folder',
  '100% done',
  '%41 not A',
  'C# and F#',
  'a+b=c',
  'two  spaces',
  '.dotted.start',
  'Stra\u00dfe',
  '[brackets] {braces} (parens)',
  "it's & more; ok, @home!",
];

/** File name stems. A unique number is appended to each, so no two siblings collide. */
const FILE_STEMS = [
  'r\u00e9sum\u00e9',
  'na\u00efve caf\u00e9',
  '\u65e5\u672c',
  '\u4e2d\u6587 \u6587\u4ef6',
  '\ud83d\ude00 smile',
  '\ud83d\udc68\u200d\ud83d\udc69\u200d\ud83d\udc67 family',
  'space in name',
  ' leading space',
  '100%',
  '%2F not a slash',
  '%%',
  '%zz bad escape',
  '#hash',
  'C#',
  'a+b',
  '+plus+',
  '~$owner file',
  'x (1)',
  'tab-less = equals',
  '\u00dcn\u00efc\u00f6d\u00e9 \u03a9 \u0416',
  'ends~',
  "quote'single",
  'semi;colon,comma',
  'caret^dollar$tick`',
  '\u00e9\u00e8\u00ea\u00eb \u00c9\u00c8',
];

const EXTENSIONS = ['.txt', '.docx', '.bin', '', '.tar.gz', '.%20', '.#', '.\u00e9t\u00e9'];

/** Sizes that sit on the server's 64 KiB chunk boundaries, plus the empty file. */
const EDGE_SIZES = [0, 1, 65535, 65536, 65537, 131072, 2 * 65536 + 500];

const WINDOWS_INVALID = /[\\/:*?"<>|\u0000-\u001f]|[. ]$/;

interface PlannedFile {
  path: string; // relative, '/'-separated
  size: number;
}

/** Plans 1,000 files in nested folders (deterministic names and sizes). */
function planTree(): PlannedFile[] {
  const rand = prng(20240601);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
  // Folders: a root level, two nested levels below some, and the root itself.
  const dirs: string[] = [''];
  for (const [i, top] of DIR_NAMES.entries()) {
    dirs.push(top);
    if (i % 2 === 0) {
      for (let j = 0; j < 3; j++) {
        const mid = `${top}/${pick(DIR_NAMES)} ${j}`;
        dirs.push(mid);
        if (j === 1) dirs.push(`${mid}/deeper \u00e9\u00e9 ${i}`, `${mid}/deeper \u00e9\u00e9 ${i}/deepest #${i} + %`);
      }
    }
  }
  const sizes: number[] = [...EDGE_SIZES, 2_000_000, 2_097_152, 2_100_000, 1_999_999];
  while (sizes.length < FILE_COUNT) {
    const r = rand();
    if (r < 0.55) sizes.push(Math.floor(rand() * 4096));
    else if (r < 0.85) sizes.push(4096 + Math.floor(rand() * 60_000));
    else sizes.push(64_000 + Math.floor(rand() * 236_000));
  }
  const files: PlannedFile[] = sizes.map((size, n) => {
    const dir = dirs[n % dirs.length]!;
    const name = `${FILE_STEMS[n % FILE_STEMS.length]} ${n}${EXTENSIONS[Math.floor(n / FILE_STEMS.length) % EXTENSIONS.length]}`;
    return { path: dir === '' ? name : `${dir}/${name}`, size };
  });

  // Self-checks of the plan: Windows-valid NFC names, no case-only collisions among siblings.
  const seen = new Set<string>();
  for (const f of files) {
    const segments = f.path.split('/');
    for (const s of segments) {
      assert.ok(!WINDOWS_INVALID.test(s) && s.length > 0 && s.length <= 255, `invalid Windows name in plan: ${JSON.stringify(s)}`);
      assert.equal(s, s.normalize('NFC'), `non-NFC name in plan: ${JSON.stringify(s)}`);
    }
    for (let k = 1; k <= segments.length; k++) {
      seen.add(segments.slice(0, k).join('/'));
    }
  }
  const folded = new Map<string, string>();
  for (const p of seen) {
    const key = p.toUpperCase();
    const other = folded.get(key);
    assert.ok(other === undefined || other === p, `case-only collision in plan: ${other} / ${p}`);
    folded.set(key, p);
  }
  assert.equal(new Set(files.map((f) => f.path)).size, FILE_COUNT);
  return files;
}

async function writeTree(root: string, files: PlannedFile[]): Promise<void> {
  for (const f of files) {
    const file = join(root, ...f.path.split('/'));
    await mkdir(join(file, '..'), { recursive: true });
    await writeFile(file, randomBytes(f.size));
  }
}

async function listTree(root: string, dir = root): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listTree(root, p)));
    else out.push(relative(root, p).split('\\').join('/'));
  }
  return out.sort();
}

let server: RunningServer;
let scratch: string;

before(async () => {
  server = await startServer();
  scratch = await mkdtemp(join(tmpdir(), 'mydoc-rclone-'));
});

after(async () => {
  await server?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** The environment for rclone: no RCLONE_* settings and no proxies from the caller. */
function rcloneEnv(configFile: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^RCLONE_/i.test(k) || /_proxy$/i.test(k)) continue;
    env[k] = v;
  }
  env.RCLONE_CONFIG = configFile;
  return env;
}

function describe(r: CommandResult, server: RunningServer): string {
  return `exit ${r.status ?? r.signal}\n--- rclone stdout ---\n${r.stdout.slice(-6000)}\n--- rclone stderr ---\n${r.stderr.slice(-12000)}\n--- server output (tail) ---\n${server.output().slice(-4000)}`;
}

test('rclone copies 1,000 files with awkward names in and out unchanged', { timeout: 30 * 60_000 }, async (t) => {
  const configFile = join(scratch, 'rclone.conf'); // never created by us; keeps ~/.config/rclone out of it
  const env = rcloneEnv(configFile);
  const obscured = await runCommand('rclone', ['obscure', server.user.password], { env });
  assert.equal(obscured.status, 0, `rclone obscure: ${obscured.stderr}`);
  const remoteFlags = [
    '--config', configFile,
    '--ca-cert', server.caFile,
    '--webdav-url', server.url,
    '--webdav-vendor', 'other',
    '--webdav-user', server.user.name,
    '--webdav-pass', obscured.stdout.trim(),
    '--retries', '1',
    '--low-level-retries', '1',
    '--stats', '0',
    '--log-level', 'NOTICE',
  ];
  const rclone = (args: string[]) => runCommand('rclone', [...args, ...remoteFlags], { env, timeoutMs: RCLONE_TIMEOUT_MS });
  const remote = ':webdav:Documents/tree';

  const plan = planTree();
  const src = join(scratch, 'src');
  const back = join(scratch, 'back');
  await writeTree(src, plan);
  const total = plan.reduce((n, f) => n + f.size, 0);
  t.diagnostic(`tree: ${plan.length} files, ${(total / 1e6).toFixed(1)} MB`);

  let started = Date.now();
  const up = await rclone(['copy', src, remote]);
  t.diagnostic(`rclone copy up: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  assert.equal(up.status, 0, `rclone copy up failed: ${describe(up, server)}`);

  started = Date.now();
  const check = await rclone(['check', src, remote]);
  t.diagnostic(`rclone check: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  for (const line of check.stderr.split('\n').filter((l) => /differences found|matching files|hash/i.test(l))) {
    t.diagnostic(`  ${line.replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d /, '')}`);
  }
  assert.equal(check.status, 0, `rclone check failed: ${describe(check, server)}`);
  assert.match(check.stderr, /: 0 differences found/, `rclone check: ${describe(check, server)}`);
  assert.match(check.stderr, new RegExp(`: ${FILE_COUNT} matching files`), `rclone check: ${describe(check, server)}`);

  started = Date.now();
  const down = await rclone(['copy', remote, back]);
  t.diagnostic(`rclone copy down: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  assert.equal(down.status, 0, `rclone copy down failed: ${describe(down, server)}`);

  const expected = plan.map((f) => f.path).sort();
  const got = await listTree(back);
  const missing = expected.filter((p) => !got.includes(p));
  const extra = got.filter((p) => !expected.includes(p));
  assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, 'the tree copied back has other names');
  const differing: string[] = [];
  for (const f of plan) {
    const a = join(src, ...f.path.split('/'));
    const b = join(back, ...f.path.split('/'));
    if ((await stat(b)).size !== f.size || !(await readFile(a)).equals(await readFile(b))) differing.push(f.path);
  }
  assert.deepEqual(differing, [], 'files whose bytes differ after the round trip');
});
