/**
 * Group commit of the vault's file writes: the index changes of the writes
 * that finish their object in the same turn of the event loop, or while the
 * WAL's previous fsync runs (they would wait for the next one anyway), run in
 * one `BEGIN IMMEDIATE` transaction (each in its own savepoint, so one
 * refused change, e.g. ERR_EXISTS, leaves the others alone), and one fsync of
 * the WAL (index-db.ts `durable`, group-sync.ts) makes that transaction, and
 * every one before it, durable. A write is acknowledged only after that fsync.
 *
 * Security considerations:
 * - Why this is still durable: a job's promise resolves only after (1) its
 *   own changes were committed (the outer transaction's COMMIT returned) and
 *   (2) an fsync of the `-wal` file that started after that COMMIT has
 *   completed. That is what `synchronous = FULL` does at each commit, done
 *   once for many. Before (1) the caller has made its object durable (data
 *   fsynced, renamed, folder fsynced: object-store.ts), so a durable row
 *   never points to a missing object.
 * - A batch's changes are visible to readers from its COMMIT, a moment before
 *   they are durable; a power cut in that moment loses only changes nobody
 *   was told were done. Objects dropped by a change are deleted only once it
 *   is durable (object-store.ts `collect` waits for `durable`).
 * - A failed COMMIT or fsync fails every job of its batch (none is
 *   acknowledged); a refused job fails alone, at once.
 */
import type Database from 'better-sqlite3-multiple-ciphers';
import type { IndexDb } from './index-db.js';

interface Job {
  fn: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

export class GroupCommit {
  private queue: Job[] = [];
  private scheduled = false;
  private readonly batch: Database.Transaction<(jobs: Job[]) => { job: Job; value: unknown }[]>;

  constructor(private readonly index: IndexDb) {
    // A transaction function called inside another runs in a savepoint (better-sqlite3).
    const one = index.db.transaction((fn: () => unknown) => fn());
    this.batch = index.db.transaction((jobs: Job[]) => {
      const done: { job: Job; value: unknown }[] = [];
      for (const job of jobs) {
        try {
          done.push({ job, value: one(job.fn) });
        } catch (err) {
          job.reject(err);
        }
      }
      return done;
    });
  }

  /** Runs `fn` (index changes only, synchronous) in the next batch; resolves with its result once it is durable. */
  run<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    const busy = this.index.isClosed ? undefined : this.index.walBusy();
    if (busy) {
      void busy.then(() => this.flush());
      return;
    }
    this.scheduled = false;
    const jobs = this.queue;
    this.queue = [];
    let done: { job: Job; value: unknown }[];
    try {
      this.index.assertOpen();
      done = this.batch.immediate(jobs);
      this.index.committed();
    } catch (err) {
      for (const job of jobs) job.reject(err);
      return;
    }
    if (done.length === 0) return;
    this.index.durable().then(
      () => done.forEach(({ job, value }) => job.resolve(value)),
      (err: unknown) => done.forEach(({ job }) => job.reject(err)),
    );
  }
}
