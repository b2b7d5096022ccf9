// The holder files (pid-file.ts) and the vault lock: a lock whose process is
// gone never keeps a vault closed, one whose process runs always does, and a
// vault really open elsewhere is a 503 sentence, not a 500.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { lstat, readlink, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { holderTag, livePid, processStart, tagRuns, takeLock, thisProcess } from '../shares/vault/pid-file.js';
import { Vault } from '../shares/vault/vault.js';
import { VaultError } from '../shares/vault/errors.js';
import { userDir } from '../shares/vault/user-vaults.js';
import { randomDataKey, tempDir } from './helpers/keys.js';
import { davRequest, randomPassword, startServer } from './helpers/server.js';

const BOOT = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();

/** A running process that is not mydoc (its command line does not say so). */
async function otherProcess(): Promise<ChildProcess & { pid: number }> {
  const child = spawn('sleep', ['600'], { stdio: 'ignore' });
  await new Promise((resolve, reject) => child.once('spawn', resolve).once('error', reject));
  return child as ChildProcess & { pid: number };
}

async function stopped(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

const tag = (pid: number, boot: string, start: number) => `${pid}.${start}.${boot}`;

/** Makes `file` a lock naming `holder` (a tag: a symbolic link to it; a number: an older version's pid file). */
async function writeLock(file: string, holder: string | number): Promise<void> {
  await rm(file, { force: true });
  if (typeof holder === 'number') await writeFile(file, `${holder}\n`);
  else await symlink(holder, file);
}
const OTHER_BOOT = '00000000-0000-4000-8000-000000000000';

test('holder tags and lock files: only the very process that wrote one holds it', { timeout: 30_000 }, async () => {
  const { dir, cleanup } = await tempDir();
  const other = await otherProcess();
  try {
    const file = join(dir, 'holder');
    const start = processStart(other.pid)!;
    assert.ok(start > 0, 'the start time of a running process is known');
    const me = thisProcess();

    assert.equal(await takeLock(file), true);
    assert.equal(await takeLock(file), false, 'taken exclusively');
    assert.ok((await lstat(file)).isSymbolicLink(), 'a link: no data block needed on a full disk');
    assert.equal(await readlink(file), holderTag());
    assert.equal(livePid(file), process.pid, 'this process, written by this process');
    assert.equal(tagRuns(holderTag()), true);

    const cases: [string | number, number | undefined, string][] = [
      [tag(other.pid, BOOT, start), other.pid, 'the exact tag of a running process'],
      [tag(other.pid, OTHER_BOOT, start), undefined, 'written before this boot (the pid restarted at boot)'],
      [tag(other.pid, BOOT, start - 1), undefined, 'the pid is now another process'],
      [tag(process.pid, OTHER_BOOT, me.start), undefined, 'our own pid, from an earlier boot'],
      [tag(process.pid, BOOT, me.start + 1), undefined, 'our own pid, another process'],
      [process.pid, undefined, 'an older version\'s file naming our own pid: this process never writes one'],
      [other.pid, undefined, 'an older version\'s file naming a running process that is not mydoc'],
      [999999999, undefined, 'an older version\'s file naming a process that does not exist'],
      ['garbage', undefined, 'a link to nonsense'],
      ['1.x.y', undefined, 'a malformed tag'],
    ];
    for (const [holder, expected, why] of cases) {
      await writeLock(file, holder);
      assert.equal(livePid(file), expected, why);
    }
    for (const junk of ['', 'garbage', '-5', '{"pid":1}']) {
      await rm(file, { force: true });
      await writeFile(file, junk);
      assert.equal(livePid(file), undefined, `unreadable content ${JSON.stringify(junk)}`);
    }
    await stopped(other);
    await writeLock(file, tag(other.pid, BOOT, start));
    assert.equal(livePid(file), undefined, 'the process has exited');
    assert.equal(livePid(join(dir, 'missing')), undefined);
  } finally {
    await stopped(other);
    await cleanup();
  }
});

test('a legacy holder file names a running mydoc only when it started before the file was written', { timeout: 30_000 }, async () => {
  const { dir, cleanup } = await tempDir();
  // A process whose command line says mydoc, as an older service's did.
  const mydocLike = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 600000)', 'mydoc-serve'], { stdio: 'ignore' });
  await new Promise((resolve, reject) => mydocLike.once('spawn', resolve).once('error', reject));
  try {
    const file = join(dir, 'vault.lock');
    await sleep(50);
    await writeFile(file, `${mydocLike.pid}\n`);
    assert.equal(livePid(file), mydocLike.pid, 'written by the running process');
    // The same file, written before the process started (a lock of the last boot's pid).
    const before = new Date(Date.now() - 60_000);
    await utimes(file, before, before);
    assert.equal(livePid(file), undefined, 'the process started after the file was written');
  } finally {
    await stopped(mydocLike);
    await cleanup();
  }
});

test('a vault locked by a gone process opens; one held by a running process is refused without cleaning up', { timeout: 30_000 }, async () => {
  const { dir, cleanup } = await tempDir();
  const other = await otherProcess();
  try {
    const dek = randomDataKey();
    (await Vault.open(dir, dek)).close();
    const lock = join(dir, 'vault.lock');
    for (const stale of [process.pid, tag(process.pid, OTHER_BOOT, thisProcess().start), other.pid]) {
      await writeLock(lock, stale);
      const vault = await Vault.open(dir, dek);
      assert.equal(await readlink(lock), holderTag(), 'the lock now names this process');
      vault.close();
    }
    await writeLock(lock, tag(other.pid, BOOT, processStart(other.pid)!));
    await assert.rejects(Vault.open(dir, dek), (e: unknown) => e instanceof VaultError && e.code === 'ERR_VAULT_BUSY' && e.message.includes(`process ${other.pid}`));
    await stopped(other);
    (await Vault.open(dir, dek)).close();
  } finally {
    await stopped(other);
    await cleanup();
  }
});

test('the service: stale vault locks (its own pid, an earlier boot, another program) never keep documents closed; a live holder is a 503 sentence', { timeout: 60_000 }, async () => {
  const names = ['alice', 'bob', 'carol', 'dave'];
  const server = await startServer({ users: names.map((name) => ({ name, password: randomPassword() })) });
  const other = await otherProcess();
  try {
    const lockOf = (user: string) => join(userDir(server.dataDir, 'pc-test', user), 'vault.lock');
    // After a power cut the service easily gets the pid the lock names.
    await writeLock(lockOf('alice'), server.pid);
    await writeLock(lockOf('bob'), tag(server.pid, OTHER_BOOT, 1234));
    await writeLock(lockOf('carol'), other.pid);
    // dave's vault is really open in another process.
    await writeLock(lockOf('dave'), tag(other.pid, BOOT, processStart(other.pid)!));
    for (const user of ['alice', 'bob', 'carol']) {
      const res = await davRequest(server, 'PROPFIND', '/Documents/', { user, headers: { depth: '1' } });
      assert.equal(res.status, 207, `${user}: ${res.body.toString()}`);
    }
    const busy = await davRequest(server, 'PROPFIND', '/Documents/', { user: 'dave', headers: { depth: '1' } });
    assert.equal(busy.status, 503);
    assert.match(busy.body.toString(), /open in another mydoc process on this PC/);
    assert.doesNotMatch(busy.body.toString(), new RegExp(`${server.dataDir}|users/|internal error`));
    await stopped(other);
    const later = await davRequest(server, 'PROPFIND', '/Documents/', { user: 'dave', headers: { depth: '1' } });
    assert.equal(later.status, 207, 'once the holder is gone, the vault opens');
  } finally {
    await stopped(other);
    await server.stop();
  }
});
