/** SHA-256 and size of a local file, as a manifest lists them. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';

const WHOLE_READ = 8 * 1024 * 1024;

export async function hashFile(file: string): Promise<{ size: number; sha256: string }> {
  const fh = await open(file, 'r');
  try {
    // Most objects are small: one read, one hash update.
    const { size } = await fh.stat();
    if (size <= WHOLE_READ) {
      const data = await fh.readFile();
      return { size: data.length, sha256: createHash('sha256').update(data).digest('hex') };
    }
  } finally {
    await fh.close();
  }
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, sha256: hash.digest('hex') };
}
