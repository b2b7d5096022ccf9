/**
 * One fsync serving many waiters (the "group" of a group commit).
 *
 * `sync()` resolves once an fsync that *started after the call* has
 * completed; callers arriving while one runs share the next one. So a change
 * made to the file (or folder) before calling `sync()` is on the disk when it
 * resolves, whatever other changes were made in between, and N concurrent
 * changes cost about two fsyncs, not N.
 *
 * Security considerations:
 * - Durability only: an fsync covers everything written to the file before
 *   it started, whichever file descriptor wrote it (fsync acts on the inode),
 *   so a shared one is exactly as durable as one per change.
 * - A failed fsync rejects every waiter of that round (their changes may not
 *   be on the disk); a later round tries again.
 */
export class GroupSync {
  /** Calls so far; a round started after call n covers it. */
  private asked = 0;
  /** Every call up to this one is covered by a completed fsync. */
  private done = 0;
  private running: Promise<void> | undefined;

  constructor(
    private readonly fsync: () => Promise<void>,
    private readonly fsyncNow?: () => void,
  ) {}


  /** Records that a change was made, without waiting; a later `sync()` (by anyone) covers it. */
  changed(): void {
    this.asked++;
  }

  /** Resolves once every change recorded before this call (and this call's own) is on the disk. */
  async sync(): Promise<void> {
    const ticket = ++this.asked;
    while (this.done < ticket) {
      if (!this.running) this.running = this.round().finally(() => (this.running = undefined));
      await this.running;
    }
  }

  /** Resolves once every change recorded so far is on the disk; at once when there is none. */
  async flushed(): Promise<void> {
    if (this.done < this.asked) await this.sync();
  }

  /** Puts every change recorded so far on the disk now, on this thread (blocking it for one fsync); at once when there is none. */
  syncNow(): void {
    if (this.done >= this.asked) return;
    if (!this.fsyncNow) throw new Error('GroupSync.syncNow needs a synchronous fsync');
    const covers = this.asked;
    this.fsyncNow();
    if (covers > this.done) this.done = covers;
  }

  /** Whether an fsync is running now. */
  get busy(): boolean {
    return this.running !== undefined;
  }

  /** Resolves once no fsync is running (for closing the descriptor). */
  settled(): Promise<void> {
    return (this.running ?? Promise.resolve()).catch(() => undefined);
  }

  private async round(): Promise<void> {
    const covers = this.asked;
    await this.fsync();
    if (covers > this.done) this.done = covers;
  }
}
