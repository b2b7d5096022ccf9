import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GroupSync } from '../shares/vault/group-sync.js';
import { GroupCommit } from '../shares/vault/group-commit.js';
import { IndexDb, ROOT_ID } from '../shares/vault/index-db.js';
import { Vault } from '../shares/vault/vault.js';
import { VaultError } from '../shares/vault/errors.js';
import { patternBytes, randomDataKey, tempDir } from './helpers/keys.js';

test('GroupSync: one fsync serves every caller waiting meanwhile, and never one that started before the change', async () => {
  let state = 0; // what "the file" holds
  const rounds: number[] = []; // the state each fsync covered (read when it started)
  const sync = new GroupSync(async () => {
    rounds.push(state);
    await sleep(20);
  });
  const callers = Array.from({ length: 50 }, async (_, i) => {
    await sleep(i % 5); // arrive while rounds run
    state = Math.max(state, i + 1); // the change
    const mine = state;
    await sync.sync();
    assert.ok(rounds.some((covered) => covered >= mine), `caller ${i}: no completed fsync started after its change`);
  });
  await Promise.all(callers);
  assert.ok(rounds.length <= 4, `50 callers took ${rounds.length} fsyncs`);
  await sync.flushed(); // nothing pending: at once
  const before = rounds.length;
  await sync.flushed();
  assert.equal(rounds.length, before);
});

test('GroupSync: a failed fsync fails every waiter of its round; the next round tries again', async () => {
  let fail = true;
  const sync = new GroupSync(async () => {
    await sleep(5);
    if (fail) throw new Error('EIO');
  });
  const results = await Promise.allSettled([sync.sync(), sync.sync(), sync.sync()]);
  assert.ok(results.every((r) => r.status === 'rejected'));
  fail = false;
  await sync.sync();
});

test('GroupCommit: writes queued at once share one transaction; a refused one fails alone; all are in the index after reopening', async () => {
  const { dir, cleanup } = await tempDir();
  const dek = randomDataKey();
  const file = join(dir, 'index.db');
  try {
    let index = IndexDb.open(file, dek, false);
    index.db.prepare("INSERT INTO node (id, parent, name, fold, is_dir, created, modified, accessed, attributes) VALUES (?, NULL, '', '', 1, 0, 0, 0, 16)").run(ROOT_ID);
    const commits: number[] = [];
    const committed = index.committed.bind(index);
    index.committed = () => {
      commits.push(Date.now());
      committed();
    };
    const group = new GroupCommit(index);
    const insert = index.db.prepare("INSERT INTO node (parent, name, fold, is_dir, created, modified, accessed, attributes) VALUES (1, ?, ?, 0, 0, 0, 0, 32)");
    const jobs = Array.from({ length: 30 }, (_, i) =>
      group.run(() => {
        if (i === 7) throw new VaultError('ERR_EXISTS', 'refused');
        insert.run(`f${i}`, `f${i}`);
        if (i === 12) insert.run('f3', 'f3'); // UNIQUE (parent, fold): fails, and only job 12's changes roll back
        return i;
      }),
    );
    const results = await Promise.allSettled(jobs);
    assert.equal(commits.length, 1, 'one transaction for the 30 writes');
    assert.deepEqual(
      results.map((r, i) => (r.status === 'fulfilled' ? r.value : i === 7 || i === 12 ? 'refused' : r.reason)),
      results.map((_, i) => (i === 7 || i === 12 ? 'refused' : i)),
    );
    index.close();
    index = IndexDb.open(file, dek, false);
    const names = (index.db.prepare('SELECT name FROM node WHERE parent = 1 ORDER BY id').pluck().all() as string[]);
    assert.deepEqual(names, Array.from({ length: 30 }, (_, i) => `f${i}`).filter((n) => n !== 'f7' && n !== 'f12'));
    index.close();
  } finally {
    await cleanup();
  }
});

test('GroupCommit: a batch queued after the vault closed fails with ERR_VAULT_CLOSED', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const index = IndexDb.open(join(dir, 'index.db'), randomDataKey(), false);
    const group = new GroupCommit(index);
    const job = group.run(() => 1);
    index.close();
    await assert.rejects(job, (err: unknown) => err instanceof VaultError && err.code === 'ERR_VAULT_CLOSED');
  } finally {
    await cleanup();
  }
});

test('vault: 40 writes at once are all acknowledged, whole, and there after reopening; a removed fan-out folder is made again', async () => {
  const { dir, cleanup } = await tempDir();
  const dek = randomDataKey();
  try {
    let vault = await Vault.open(dir, dek);
    await Promise.all(Array.from({ length: 40 }, (_, i) => vault.write(`/Documents/f${i}.bin`, [patternBytes(1000 + i, i)])));
    // Every fan-out folder removed under the open vault (its objects with it), then written into again.
    await Promise.all(Array.from({ length: 40 }, (_, i) => vault.delete(`/Documents/f${i}.bin`)));
    for (const fan of await readdir(join(dir, 'objects'))) await rm(join(dir, 'objects', fan), { recursive: true });
    await Promise.all(Array.from({ length: 40 }, (_, i) => vault.write(`/Documents/f${i}.bin`, [patternBytes(2000 + i, i)])));
    vault.close();
    vault = await Vault.open(dir, dek);
    try {
      for (let i = 0; i < 40; i++) {
        const { stream } = await vault.read(`/Documents/f${i}.bin`);
        const chunks: Buffer[] = [];
        for await (const c of stream) chunks.push(c as Buffer);
        assert.ok(Buffer.concat(chunks).equals(patternBytes(2000 + i, i)), `f${i} whole`);
      }
    } finally {
      vault.close();
    }
  } finally {
    await cleanup();
  }
});
