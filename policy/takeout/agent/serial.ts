/** Runs jobs one after another: every change of the take-out state is serialized. */
export class Serial {
  private queue: Promise<unknown> = Promise.resolve();

  run<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
