/**
 * The console's audit trail as the web page shows it: the records of the
 * hash-chained file (policy/audit/log.ts), newest first, one page at a
 * time. The file is read backwards in 64 KiB chunks, so the first pages of
 * a long trail cost the same as of a short one.
 *
 * Security considerations: the records' values (actors, targets, reasons)
 * come from PCs and users; they are returned as data and escaped by the
 * page. A line that is not a record (damage) is shown as such, not skipped:
 * `mydoc console audit verify` tells where the chain breaks.
 */
import { open } from 'node:fs/promises';
import type { AuditRecord } from '../../../policy/audit/log.js';

const CHUNK = 64 * 1024;

export type TrailEntry = { record: AuditRecord } | { damaged: string };

/** Lines `offset` to `offset + limit - 1` counted from the end, and whether older ones remain. */
export async function readTrailPage(file: string, offset: number, limit: number): Promise<{ entries: TrailEntry[]; more: boolean }> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { entries: [], more: false };
    throw err;
  }
  try {
    const lines: string[] = [];
    let position = (await fh.stat()).size;
    let carry = Buffer.alloc(0);
    let skipped = 0;
    while (position > 0 && lines.length <= limit) {
      const size = Math.min(CHUNK, position);
      position -= size;
      const buf = Buffer.alloc(size);
      await fh.read(buf, 0, size, position);
      let data = Buffer.concat([buf, carry]);
      let end = data.length;
      for (let i = data.length - 1; i >= 0 && lines.length <= limit; i--) {
        if (data[i] !== 0x0a) continue;
        const line = data.subarray(i + 1, end).toString('utf8');
        end = i;
        if (line === '') continue;
        if (skipped < offset) skipped++;
        else lines.push(line);
      }
      carry = data.subarray(0, end);
      data = Buffer.alloc(0);
    }
    if (position === 0 && carry.length > 0 && lines.length <= limit) {
      if (skipped < offset) skipped++;
      else lines.push(carry.toString('utf8'));
    }
    const more = lines.length > limit;
    return { entries: lines.slice(0, limit).map(parse), more };
  } finally {
    await fh.close();
  }
}

function parse(line: string): TrailEntry {
  try {
    const record = JSON.parse(line) as AuditRecord;
    if (typeof record.seq === 'number' && typeof record.action === 'string') return { record };
  } catch {
    // shown as damaged below
  }
  return { damaged: line.slice(0, 200) };
}
