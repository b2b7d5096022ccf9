/**
 * The shared test suite of the backup target contract (backup/target.ts): every target (a
 * folder, an SMB share) runs it with `targetContract(name, setup)`.
 *
 * `setup` gives a fresh, empty target and may give `plant`, which writes a file into the
 * target's storage behind its back (to leave what an interrupted upload leaves).
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TargetError, type BackupTarget, type TargetFile } from '../../backup/target.js';
import { expectCode } from './expect-code.js';
import { patternBytes, tempDir } from './keys.js';

export interface ContractSetup {
  target: BackupTarget;
  cleanup(): Promise<void>;
  /** Writes a file at a target path directly into the storage, bypassing the target. */
  plant?(path: string, data: Buffer): Promise<void>;
}

const MiB = 1024 * 1024;
/** How far apart the target's clock and this machine's may be (same machine, second resolution). */
const CLOCK_SLACK_MS = 5_000;

const byPath = (files: TargetFile[]) => [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

export function targetContract(name: string, setup: () => Promise<ContractSetup>): void {
  describe(`backup target contract: ${name}`, () => {
    let env: ContractSetup;
    let target: BackupTarget;
    let local: string;
    let cleanupLocal: () => Promise<void>;

    /** A local file with these bytes. */
    const localFile = async (file: string, data: Buffer): Promise<string> => {
      const path = join(local, file);
      await mkdir(join(path, '..'), { recursive: true });
      await writeFile(path, data);
      return path;
    };

    before(async () => {
      env = await setup();
      target = env.target;
      ({ dir: local, cleanup: cleanupLocal } = await tempDir('mydoc-contract-'));
    });
    after(async () => {
      await env?.cleanup();
      await cleanupLocal?.();
    });

    it('has a description', () => {
      assert.equal(typeof target.description, 'string');
      assert.ok(target.description.length > 0);
    });

    it('uploads, lists, stats, reads and downloads files (3 MiB, empty, nested)', async () => {
      const big = patternBytes(3 * MiB, 1);
      const small = Buffer.from('small file\n');
      const before = await target.now();
      await target.upload([
        { local: await localFile('up/big', big), remote: 'rt/big.bin' },
        { local: await localFile('up/empty', Buffer.alloc(0)), remote: 'rt/empty' },
        { local: await localFile('up/small', small), remote: 'rt/a/b/c/small.txt' },
      ]);
      const after = await target.now();

      const listed = byPath(await target.list('rt'));
      assert.deepEqual(
        listed.map((f) => [f.path, f.size]),
        [
          ['a/b/c/small.txt', small.length],
          ['big.bin', big.length],
          ['empty', 0],
        ],
      );
      for (const f of listed) {
        assert.ok(f.mtimeMs >= before - CLOCK_SLACK_MS && f.mtimeMs <= after + CLOCK_SLACK_MS, `${f.path} mtime ${f.mtimeMs} not in [${before}, ${after}]`);
      }
      assert.deepEqual(
        byPath(await target.list('rt/a')).map((f) => f.path),
        ['b/c/small.txt'],
      );
      assert.ok((await target.list('')).some((f) => f.path === 'rt/big.bin'), 'the root lists everything');

      const st = await target.stat('rt/big.bin');
      assert.equal(st?.size, big.length);
      assert.equal(st?.path, 'rt/big.bin');
      assert.equal((await target.stat('rt/empty'))?.size, 0);
      assert.equal(await target.stat('rt/missing'), undefined);
      assert.equal(await target.stat('rt/a/b'), undefined, 'a folder is not a file');

      assert.ok((await target.readFile('rt/big.bin')).equals(big));
      assert.equal((await target.readFile('rt/empty')).length, 0);
      assert.ok((await target.readFile('rt/a/b/c/small.txt')).equals(small));

      await mkdir(join(local, 'down'), { recursive: true });
      await target.download([
        { remote: 'rt/big.bin', local: join(local, 'down', 'big') },
        { remote: 'rt/empty', local: join(local, 'down', 'empty') },
      ]);
      assert.ok((await readFile(join(local, 'down', 'big'))).equals(big));
      assert.equal((await readFile(join(local, 'down', 'empty'))).length, 0);
    });

    it('replaces an existing file (writeFile and upload)', async () => {
      await target.writeFile('rp/x', 'first version, longer');
      await target.writeFile('rp/x', Buffer.from('second'));
      assert.equal((await target.readFile('rp/x')).toString(), 'second');
      await target.upload([{ local: await localFile('rp', Buffer.from('third!!')), remote: 'rp/x' }]);
      assert.equal((await target.readFile('rp/x')).toString(), 'third!!');
      assert.deepEqual(
        (await target.list('rp')).map((f) => [f.path, f.size]),
        [['x', 7]],
      );
    });

    it('lists no temporary files', async () => {
      await target.writeFile('tmp/a', 'a');
      await target.upload([{ local: await localFile('tmp-b', Buffer.from('bb')), remote: 'tmp/sub/b' }]);
      if (env.plant) {
        await env.plant('tmp/.tmp-0123456789abcdef', Buffer.from('left by an interrupted upload'));
        await env.plant('tmp/sub/.tmp-fedcba9876543210', Buffer.from('partial'));
      }
      assert.deepEqual(
        byPath(await target.list('tmp')).map((f) => f.path),
        ['a', 'sub/b'],
      );
      const everything = await target.list('');
      assert.ok(!everything.some((f) => f.path.split('/').some((n) => n.startsWith('.tmp-'))), JSON.stringify(everything));
    });

    it('cleanTemporaries removes what interrupted uploads left, and nothing else', async () => {
      assert.ok(env.plant, 'the setup must give plant() for this test');
      await target.writeFile('clean/a', 'a');
      await env.plant('clean/.tmp-0123456789abcdef', Buffer.from('left by an interrupted upload'));
      await env.plant('clean/deep/er/.tmp-fedcba9876543210', Buffer.from('partial'));
      await env.plant('elsewhere/.tmp-00112233445566aa', Buffer.from('not under clean/'));
      assert.equal(await target.cleanTemporaries('clean'), 2);
      assert.equal(await target.cleanTemporaries('clean'), 0);
      assert.equal(await target.cleanTemporaries('missing-folder'), 0);
      assert.deepEqual(byPath(await target.list('clean')).map((f) => f.path), ['a']);
      assert.ok((await target.cleanTemporaries('')) >= 1, 'the one left outside clean/ (and any earlier test left)');
      assert.equal(await target.cleanTemporaries(''), 0);
    });

    it('lists a missing folder as empty', async () => {
      assert.deepEqual(await target.list('no-such-folder'), []);
      assert.deepEqual(await target.list('no-such-folder/deeper/still'), []);
    });

    it('fails with ERR_TARGET_NOT_FOUND reading a missing file', async () => {
      await expectCode(target.readFile('missing-file'), 'ERR_TARGET_NOT_FOUND', TargetError);
      await expectCode(target.readFile('missing-folder/missing-file'), 'ERR_TARGET_NOT_FOUND', TargetError);
      await expectCode(target.download([{ remote: 'missing-file', local: join(local, 'never') }]), 'ERR_TARGET_NOT_FOUND', TargetError);
    });

    it('removes files; removing a missing file succeeds', async () => {
      await target.writeFile('rm/x', 'x');
      await target.remove('rm/x');
      assert.equal(await target.stat('rm/x'), undefined);
      await target.remove('rm/x');
      await target.remove('rm-missing-folder/x');
    });

    it('removes a folder tree', async () => {
      await target.writeFile('tree/a', 'a');
      await target.writeFile('tree/b/c', 'c');
      await target.writeFile('tree/b/d/e', 'e');
      await target.writeFile('tree-sibling/kept', 'kept');
      await target.removeDir('tree');
      assert.deepEqual(await target.list('tree'), []);
      assert.equal(await target.stat('tree/b/d/e'), undefined);
      assert.equal((await target.stat('tree-sibling/kept'))?.size, 4);
      await target.removeDir('tree'); // missing: fine
    });

    it('tells the time by its own clock', async () => {
      const t = await target.now();
      assert.ok(Math.abs(t - Date.now()) < CLOCK_SLACK_MS, `now() ${new Date(t).toISOString()} vs ${new Date().toISOString()}`);
      const t0 = await target.now();
      await target.writeFile('clock/f', 'f');
      const t1 = await target.now();
      const m = (await target.stat('clock/f'))!.mtimeMs;
      assert.ok(t0 <= m + 1000 && m <= t1 + 1000, `mtime ${m} not within [${t0}, ${t1}]`);
      assert.ok(!(await target.list('')).some((f) => f.path.includes('clock-')), 'no clock probe left');
    });

    /** Every operation given `path`: the ones that were not refused with a TargetError. */
    const notRefused = async (path: string, ops: { dirs: boolean }): Promise<string[]> => {
      const src = await localFile('bad', Buffer.from('x'));
      const calls: [string, () => Promise<unknown>][] = [
        ['writeFile', () => target.writeFile(path, 'x')],
        ['readFile', () => target.readFile(path)],
        ['stat', () => target.stat(path)],
        ['remove', () => target.remove(path)],
        ['upload', () => target.upload([{ local: src, remote: path }])],
        ['download', () => target.download([{ remote: path, local: join(local, 'bad-down') }])],
      ];
      if (ops.dirs) calls.push(['list', () => target.list(path)], ['removeDir', () => target.removeDir(path)]);
      const missed: string[] = [];
      for (const [name, call] of calls) {
        const refused = await call().then(
          () => false,
          (e: unknown) => e instanceof TargetError,
        );
        if (!refused) missed.push(`${name}(${JSON.stringify(path)})`);
      }
      return missed;
    };

    it('refuses paths that leave the target or are not plain', async () => {
      await target.writeFile('kept/file', 'kept');
      const bad = ['../escape', 'a/../../escape', '/etc/passwd', 'a\\b', 'a"b', "a'b", 'a;b', 'a b', 'a/./b', 'a//b', '..', '.', 'a*', 'a/'];
      const missed: string[] = [];
      for (const p of bad) missed.push(...(await notRefused(p, { dirs: true })));
      assert.deepEqual(missed, [], `not refused: ${missed.join(', ')}`);
      assert.ok(!(await target.list('')).some((f) => f.path.includes('escape')));
      assert.equal((await target.stat('kept/file'))?.size, 4);
    });

    it('refuses the empty path for a file', async () => {
      await target.writeFile('kept/file', 'kept');
      const missed = await notRefused('', { dirs: false });
      assert.deepEqual(missed, [], `not refused: ${missed.join(', ')}`);
      assert.equal((await target.stat('kept/file'))?.size, 4);
    });

    it('stops an upload at the first error', async () => {
      await assert.rejects(
        target.upload([
          { local: await localFile('stop-1', Buffer.from('1')), remote: 'stop/1' },
          { local: join(local, 'no-such-local-file'), remote: 'stop/2' },
          { local: await localFile('stop-3', Buffer.from('3')), remote: 'stop/3' },
        ]),
        (e: unknown) => e instanceof TargetError,
      );
      // Nothing from the failing file on may appear; the files before it may (one by one) or may not (all or nothing).
      const listed = (await target.list('stop')).map((f) => f.path);
      assert.ok(listed.length === 0 || (listed.length === 1 && listed[0] === '1'), `listed ${JSON.stringify(listed)}`);
    });

    it('uploads 300 small files in one call', async () => {
      const files = [];
      for (let i = 0; i < 300; i++) {
        const remote = `many/${(i % 16).toString(16).padStart(2, '0')}/obj-${i}`;
        files.push({ local: await localFile(`many/${i}`, patternBytes(i * 3, i)), remote });
      }
      await target.upload(files);
      const listed = await target.list('many');
      assert.equal(listed.length, 300);
      const sizes = new Map(listed.map((f) => [f.path, f.size]));
      for (let i = 0; i < 300; i++) assert.equal(sizes.get(`${(i % 16).toString(16).padStart(2, '0')}/obj-${i}`), i * 3, `obj-${i}`);
      assert.ok((await target.readFile('many/0b/obj-299')).equals(patternBytes(299 * 3, 299)));
    });
  });
}
