/** Bounded concurrency for file work (copies, hashes) that waits on the disk. */

/** Runs `fn` over `items`, at most `limit` at a time; once all have settled, rejects with the first error. */
export async function inParallel<T>(items: readonly T[], fn: (item: T) => Promise<void>, limit = 8): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item).catch((err: unknown) => {
        failure ??= err;
        next = items.length;
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure;
}
