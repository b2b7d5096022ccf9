import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Vault } from '../shares/vault/vault.js';
import { patternBytes, randomDataKey, tempDir } from './helpers/keys.js';

const child = fileURLToPath(new URL('./fixtures/write-loop.js', import.meta.url));
const manyChild = fileURLToPath(new URL('./fixtures/write-many.js', import.meta.url));
const versionSize = (seed: number): number => (seed * 7919) % 300_000;

interface Run {
  acked: Map<string, number>; // name -> seed of the last acknowledged version
  begun: Map<string, number>; // name -> seed of a write begun but not acknowledged
  lastSeed: number;
  /** The most writes begun and not yet acknowledged at one time. */
  maxInFlight: number;
  acks: number;
}

/** Runs the writer until it has acknowledged `minAcks` writes, then waits a random moment and SIGKILLs it. */
function runAndKill(dir: string, dekEnv: string, firstSeed: number, minAcks: number, writer: string[] = [child, dir, String(firstSeed)]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, writer, { env: { ...process.env, MYDOC_TEST_DEK: dekEnv }, stdio: ['ignore', 'pipe', 'inherit'] });
    const run: Run = { acked: new Map(), begun: new Map(), lastSeed: firstSeed, maxInFlight: 0, acks: 0 };
    let acks = 0;
    let buffered = '';
    let killTimer: NodeJS.Timeout | undefined;
    proc.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        const [kind, name, seedText] = line.split(' ') as [string, string, string];
        const seed = Number(seedText);
        run.lastSeed = Math.max(run.lastSeed, seed);
        if (kind === 'BEGIN') {
          run.begun.set(name, seed);
          run.maxInFlight = Math.max(run.maxInFlight, run.begun.size);
        }
        if (kind === 'ACK') {
          run.acked.set(name, seed);
          run.begun.delete(name);
          run.acks++;
          if (++acks === minAcks) killTimer = setTimeout(() => proc.kill('SIGKILL'), Math.floor(Math.random() * 150));
        }
      }
    });
    proc.on('error', reject);
    proc.on('exit', (code, signal) => {
      clearTimeout(killTimer);
      if (signal !== 'SIGKILL') reject(new Error(`writer exited early: code ${code}`));
      else resolve(run);
    });
  });
}

async function readAll(vault: Vault, path: string): Promise<Buffer> {
  const { stream } = await vault.read(path);
  const out: Buffer[] = [];
  for await (const c of stream) out.push(c as Buffer);
  return Buffer.concat(out);
}

test('SIGKILL at random moments: every acknowledged write is intact, no partial file is visible, nothing is left over', async () => {
  const { dir, cleanup } = await tempDir();
  const dek = randomDataKey();
  const dekEnv = `${dek.id.toString('hex')}:${dek.key.export().toString('hex')}`;
  const expected = new Map<string, number>(); // survives across runs
  try {
    let seed = 0;
    let killedMidWrite = 0;
    for (let round = 0; round < 8; round++) {
      const run = await runAndKill(dir, dekEnv, seed, 3 + Math.floor(Math.random() * 10));
      if (run.begun.size > 0) killedMidWrite++;
      const vault = await Vault.open(dir, dek);
      try {
        for (const [name, s] of run.acked) expected.set(name, s);
        const present = new Map(vault.list('/Documents').map((e) => [e.path, e]));
        for (const [name, ackedSeed] of expected) {
          const entry = present.get(name);
          assert.ok(entry, `round ${round}: acknowledged ${name} is missing`);
          const content = await readAll(vault, name);
          const inflight = run.begun.get(name);
          const candidates = [ackedSeed, ...(inflight !== undefined ? [inflight] : [])];
          const match = candidates.find((s) => content.equals(patternBytes(versionSize(s), s % 251)));
          assert.notEqual(match, undefined, `round ${round}: ${name} holds neither its acknowledged version nor the complete in-flight one`);
          expected.set(name, match!);
        }
        for (const [name] of present) {
          if (expected.has(name)) continue;
          const inflight = run.begun.get(name);
          assert.notEqual(inflight, undefined, `round ${round}: unexpected file ${name}`);
          assert.ok((await readAll(vault, name)).equals(patternBytes(versionSize(inflight!), inflight! % 251)), `round ${round}: partial ${name}`);
          expected.set(name, inflight!);
        }
        // Reopening cleaned up: no temp files, and exactly one object per file.
        assert.deepEqual(await readdir(join(dir, 'tmp')), []);
        let objects = 0;
        for (const fan of await readdir(join(dir, 'objects'))) objects += (await readdir(join(dir, 'objects', fan))).length;
        assert.equal(objects, present.size, `round ${round}: orphaned objects left`);
      } finally {
        vault.close();
      }
      seed = run.lastSeed + 1;
    }
    assert.ok(expected.size >= 6, 'the writer got far enough to matter');
    assert.ok(killedMidWrite >= 4, `most kills landed during a write (${killedMidWrite} of 8)`);
  } finally {
    await cleanup();
  }
});

test('group commit: SIGKILL while 16 writers commit at once: every acknowledged write is there and whole, no partial file, nothing left over', async () => {
  const { dir, cleanup } = await tempDir();
  const dek = randomDataKey();
  const dekEnv = `${dek.id.toString('hex')}:${dek.key.export().toString('hex')}`;
  const manySize = (seed: number): number => (seed * 7919) % 20_011;
  const expected = new Map<string, number>(); // survives across runs
  try {
    let seed = 0;
    let killedMidWrite = 0;
    let acknowledged = 0;
    let maxInFlight = 0;
    for (let round = 0; round < 6; round++) {
      const run = await runAndKill(dir, dekEnv, seed, 40 + Math.floor(Math.random() * 80), [manyChild, dir, String(seed), '16']);
      if (run.begun.size > 0) killedMidWrite++;
      acknowledged += run.acks;
      maxInFlight = Math.max(maxInFlight, run.maxInFlight);
      const vault = await Vault.open(dir, dek);
      try {
        for (const [name, s] of run.acked) expected.set(name, s);
        const present = new Map(vault.list('/Documents').map((e) => [e.path, e]));
        for (const [name, ackedSeed] of expected) {
          assert.ok(present.get(name), `round ${round}: acknowledged ${name} is missing`);
          const content = await readAll(vault, name);
          const inflight = run.begun.get(name);
          const candidates = [ackedSeed, ...(inflight !== undefined ? [inflight] : [])];
          const match = candidates.find((s) => content.equals(patternBytes(manySize(s), s % 251)));
          assert.notEqual(match, undefined, `round ${round}: ${name} holds neither its acknowledged version (seed ${ackedSeed}) nor the complete in-flight one`);
          expected.set(name, match!);
        }
        for (const [name] of present) {
          if (expected.has(name)) continue;
          const inflight = run.begun.get(name);
          assert.notEqual(inflight, undefined, `round ${round}: unexpected file ${name}`);
          assert.ok((await readAll(vault, name)).equals(patternBytes(manySize(inflight!), inflight! % 251)), `round ${round}: partial ${name}`);
          expected.set(name, inflight!);
        }
        assert.deepEqual(await readdir(join(dir, 'tmp')), []);
        let objects = 0;
        for (const fan of await readdir(join(dir, 'objects'))) objects += (await readdir(join(dir, 'objects', fan))).length;
        assert.equal(objects, present.size, `round ${round}: orphaned or missing objects`);
      } finally {
        vault.close();
      }
      seed = run.lastSeed + 1;
    }
    assert.ok(expected.size >= 30, `the writers got far enough to matter (${expected.size} files)`);
    assert.ok(maxInFlight >= 8, `writes were concurrent (at most ${maxInFlight} at once)`);
    assert.ok(killedMidWrite >= 5, `the kills landed while writes were in flight (${killedMidWrite} of 6)`);
    assert.ok(acknowledged >= 240, `enough writes were acknowledged (${acknowledged})`);
  } finally {
    await cleanup();
  }
});
