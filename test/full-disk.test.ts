// A full data disk (a real, loop-mounted ext4): a file that does not fit is
// a 507 sentence, files can still be deleted (before and after a reopen), and
// the quota properties say what is really free.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { join } from 'node:path';
import { Vault } from '../shares/vault/vault.js';
import { VaultError } from '../shares/vault/errors.js';
import { RESERVE_FILE, freeBytes } from '../shares/vault/space-reserve.js';
import { randomDataKey, tempDir } from './helpers/keys.js';
import { basicAuth, davRequest, startServer, type RunningServer } from './helpers/server.js';

/** A fresh ext4 file system of `mib` MiB (no blocks reserved for root) mounted in a temporary folder. */
async function smallDisk(t: TestContext, mib: number): Promise<string> {
  const { dir, cleanup } = await tempDir('mydoc-disk-');
  const image = join(dir, 'disk.img');
  const mountPoint = join(dir, 'mnt');
  await mkdir(mountPoint);
  await writeFile(image, '');
  const run = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  };
  run('truncate', ['-s', `${mib}M`, image]);
  run('mkfs.ext4', ['-q', '-F', '-m', '0', image]);
  run('mount', ['-o', 'loop', image, mountPoint]);
  t.after(async () => {
    const r = spawnSync('umount', [mountPoint], { encoding: 'utf8' });
    assert.equal(r.status, 0, `umount: ${r.stderr}`);
    await cleanup();
  });
  return mountPoint;
}

/** Writes files of `size` bytes until the vault says the disk is full; returns how many fit. */
async function fill(vault: Vault, prefix: string, size: number): Promise<number> {
  for (let n = 0; ; n++) {
    try {
      await vault.write(`/Documents/${prefix}${n}`, [randomBytes(size)]);
    } catch (err) {
      assert.ok(err instanceof VaultError && err.code === 'ERR_NO_SPACE', `a full disk is ERR_NO_SPACE, not ${(err as Error).message}`);
      assert.match(err.message, /not enough free space on this PC's data disk/);
      return n;
    }
  }
}

test('a vault on a full disk: writes fail with ERR_NO_SPACE and leave nothing behind; deletions work, also after a reopen', { timeout: 60_000 }, async (t) => {
  const disk = await smallDisk(t, 32);
  const dir = join(disk, 'vault');
  const dek = randomDataKey();
  let vault = await Vault.open(dir, dek);
  assert.ok((await readdir(dir)).includes(RESERVE_FILE), 'the reserve is taken at open');
  const big = await fill(vault, 'big', 256 * 1024);
  assert.ok(big > 10);
  const small = await fill(vault, 'small', 200);
  assert.ok(freeBytes(dir) < 64 * 1024, `the disk is full (${freeBytes(dir)} bytes free)`);
  assert.deepEqual(await readdir(join(dir, 'tmp')), [], 'no temporary object left behind');
  assert.equal(vault.stat(`/Documents/big${big}`), undefined, 'the write that did not fit is not in the index');

  await vault.delete('/Documents/big0');
  assert.equal(vault.stat('/Documents/big0'), undefined);
  vault.close();

  // Full again, then closed and opened (a restart): deleting still works.
  vault = await Vault.open(dir, dek);
  await fill(vault, 'again', 64 * 1024);
  vault.close();
  vault = await Vault.open(dir, dek);
  await vault.delete('/Documents/big1');
  await vault.delete(`/Documents/small${small - 1}`);
  assert.equal(vault.stat('/Documents/big1'), undefined);
  assert.equal(vault.stat('/Documents/big2')?.size, 256 * 1024, 'the other files are intact');
  // Room again: the reserve comes back once there is room for it twice over.
  for (let n = 2; n < big; n++) await vault.delete(`/Documents/big${n}`);
  assert.ok((await readdir(dir)).includes(RESERVE_FILE), `the reserve is taken again (${freeBytes(dir)} bytes free)`);
  vault.close();
  await rm(dir, { recursive: true });
});

/** A PUT without Content-Length (chunked), as Windows sends big files. */
function putChunked(server: RunningServer, path: string, data: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: server.port, method: 'PUT', path, agent: server.agent, headers: { authorization: basicAuth(server.user.name, server.user.password) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    for (let at = 0; at < data.length; at += 64 * 1024) req.write(data.subarray(at, at + 64 * 1024));
    req.end();
  });
}

const quotaOf = (xml: string) => Number(/<D:quota-available-bytes>(\d+)</.exec(xml)?.[1]);

test('the service on a full disk: 507 with a sentence for a PUT that does not fit, DELETE works, the quota is what is free', { timeout: 120_000 }, async (t) => {
  const disk = await smallDisk(t, 48);
  const server = await startServer({ parentDir: disk });
  try {
  const propfind = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:quota-available-bytes/></D:prop></D:propfind>';
  const quota = async () => quotaOf((await davRequest(server, 'PROPFIND', '/Documents/', { headers: { depth: '0' }, body: propfind })).body.toString());

  // Announced sizes: refused before the body is read.
  const tooBig = await davRequest(server, 'PUT', '/Documents/huge.bin', { headers: { 'content-length': String(1024 * 1024 * 1024) }, body: Buffer.alloc(0) });
  assert.equal(tooBig.status, 507);
  assert.match(tooBig.body.toString(), /not enough free space on this PC's data disk for this file/);
  let n = 0;
  let last: { status: number; body: Buffer };
  for (;;) {
    // Chunked, no Content-Length: the disk fills while the body is stored.
    last = await putChunked(server, `/Documents/f${n}.bin`, randomBytes(1024 * 1024));
    if (last.status !== 201) break;
    n++;
  }
  assert.equal(last.status, 507, `the PUT that does not fit: ${last.status} ${last.body.toString()}`);
  assert.match(last.body.toString(), /not enough free space on this PC's data disk/);
  assert.ok(n > 5, `${n} files fit`);
  // The log line may reach us just after the answer.
  for (const until = Date.now() + 5000; !/"cause":"(ENOSPC|SQLITE_FULL)"/.test(server.output()) && Date.now() < until; ) await new Promise((r) => setTimeout(r, 50));
  assert.match(server.output(), /"cause":"(ENOSPC|SQLITE_FULL)"/, 'the cause is logged');
  assert.equal((await davRequest(server, 'GET', `/Documents/f${n}.bin`)).status, 404, 'nothing half-written');

  await new Promise((r) => setTimeout(r, 1100));
  const reported = await quota();
  const real = freeBytes(server.dataDir);
  assert.ok(Math.abs(reported - real) < 256 * 1024, `quota-available-bytes ${reported}, really free ${real}`);

  assert.equal((await davRequest(server, 'DELETE', '/Documents/f0.bin')).status, 204, 'DELETE works on a full disk');
  assert.equal((await davRequest(server, 'GET', '/Documents/f0.bin')).status, 404);
  assert.equal((await davRequest(server, 'GET', '/Documents/f1.bin')).status, 200);
  } finally {
    await server.stop(); // before the disk is unmounted
  }
});
