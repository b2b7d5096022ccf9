/**
 * Vault write and read of a 1 GiB file against plain file I/O on the same
 * disk: a 1 MiB write loop with fsync, a 1 MiB read loop, and a plain copy
 * (1 MiB read/write loop with fsync). Reads are cache-warm: the file was just
 * written and the page cache cannot be dropped here.
 */
import { randomBytes } from 'node:crypto';
import { open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Vault } from '../../shares/vault/vault.js';
import { randomDataKey, tempDir } from '../helpers/keys.js';
import { MiB, alternating, emit, progress, scaledBytes, throughputFigure, timed } from './measure.js';

const RUNS = 5;
const PIECE = MiB;
const bytes = scaledBytes(1024 * MiB);
const VAULT_PATH = '/Documents/bench.bin';

const block = randomBytes(PIECE);

async function* source(total: number): AsyncGenerator<Buffer> {
  for (let done = 0; done < total; done += PIECE) yield total - done >= PIECE ? block : block.subarray(0, total - done);
}

async function plainWrite(file: string): Promise<void> {
  const fh = await open(file, 'w', 0o600);
  try {
    for (let done = 0; done < bytes; done += PIECE) await fh.write(block, 0, Math.min(PIECE, bytes - done));
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function plainRead(file: string): Promise<void> {
  const fh = await open(file, 'r');
  const buf = Buffer.allocUnsafe(PIECE);
  let total = 0;
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, PIECE, null);
      if (bytesRead === 0) break;
      total += bytesRead;
    }
  } finally {
    await fh.close();
  }
  if (total !== bytes) throw new Error(`plain read got ${total} bytes, expected ${bytes}`);
}

/** A real copy in user space (no copy_file_range, no reflink), made durable like a vault write. */
async function plainCopy(src: string, dst: string): Promise<void> {
  const input = await open(src, 'r');
  const output = await open(dst, 'w', 0o600);
  const buf = Buffer.allocUnsafe(PIECE);
  try {
    for (;;) {
      const { bytesRead } = await input.read(buf, 0, PIECE, null);
      if (bytesRead === 0) break;
      await output.write(buf, 0, bytesRead);
    }
    await output.sync();
  } finally {
    await input.close();
    await output.close();
  }
}

async function vaultWrite(vault: Vault): Promise<void> {
  const { entry } = await vault.write(VAULT_PATH, source(bytes));
  if (entry.size !== bytes) throw new Error(`vault wrote ${entry.size} bytes, expected ${bytes}`);
}

async function vaultRead(vault: Vault, check = false): Promise<void> {
  const { stream } = await vault.read(VAULT_PATH);
  let total = 0;
  for await (const piece of stream as AsyncIterable<Buffer>) {
    if (check) {
      const at = total % PIECE; // vault pieces never straddle a 1 MiB boundary (64 KiB chunks)
      if (!piece.equals(block.subarray(at, at + piece.length))) throw new Error(`vault read differs near byte ${total}`);
    }
    total += piece.length;
  }
  if (total !== bytes) throw new Error(`vault read got ${total} bytes, expected ${bytes}`);
}

const { dir, cleanup } = await tempDir('mydoc-bench-');
try {
  if ((await stat(dir)).dev !== (await stat(process.cwd())).dev) progress(`warning: ${dir} is not on the same file system as ${process.cwd()}`);
  const vault = await Vault.open(join(dir, 'vault'), randomDataKey());
  const plainFile = join(dir, 'plain.bin');
  const copyFile = join(dir, 'copy.bin');
  try {
    progress(`vault: ${bytes} bytes, ${RUNS} runs in ${dir}`);
    // Untimed check that the vault round-trips the bytes (also warms up).
    await vaultWrite(vault);
    await vaultRead(vault, true);

    const write = { candidate: [] as number[], baseline: [] as number[] };
    const read = { candidate: [] as number[], baseline: [] as number[] };
    const both = { candidate: [] as number[], baseline: [] as number[] };
    for (let run = 0; run < RUNS; run++) {
      await alternating(
        run,
        async () => {
          write.baseline.push(await timed(() => plainWrite(plainFile)));
          read.baseline.push(await timed(() => plainRead(plainFile)));
          both.baseline.push(await timed(() => plainCopy(plainFile, copyFile)));
          await rm(copyFile);
        },
        async () => {
          const w = await timed(() => vaultWrite(vault));
          const r = await timed(() => vaultRead(vault));
          write.candidate.push(w);
          read.candidate.push(r);
          both.candidate.push(w + r);
        },
      );
      progress(`vault: run ${run + 1}/${RUNS} done`);
    }

    emit(throughputFigure('vault.write', bytes, write, { piece: PIECE, baselineOp: 'plain 1 MiB write loop + fsync', fsync: true }));
    emit(throughputFigure('vault.read', bytes, read, { piece: PIECE, baselineOp: 'plain 1 MiB read loop', cache: 'warm' }));
    emit(
      throughputFigure('vault.write+read', bytes, both, {
        piece: PIECE,
        baselineOp: 'plain copy: 1 MiB read/write loop in user space + fsync (not copyFile/copy_file_range)',
        candidateOp: 'vault write then vault read; MB/s = bytes / (write + read seconds)',
        cache: 'warm',
      }),
    );
  } finally {
    vault.close();
  }
} finally {
  await cleanup();
}
