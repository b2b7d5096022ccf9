/** Test helper: an action fails with an error of the expected class and `code` (callers switch on codes, so tests check them). */
import assert from 'node:assert/strict';

/**
 * Asserts that `action` (a promise, or a function, which may also throw at
 * once) fails with an instance of `type` (default any Error) whose `code` is
 * `code`; returns that error for further checks.
 */
export async function expectCode<E extends Error = Error>(
  action: Promise<unknown> | (() => unknown),
  code: E extends { code: infer C } ? C : string,
  type?: abstract new (...args: never[]) => E,
): Promise<E> {
  let caught: unknown;
  await assert.rejects(
    async () => (typeof action === 'function' ? action() : action),
    (error: unknown) => {
      caught = error;
      return true;
    },
  );
  const expected = type ?? Error;
  assert.ok(caught instanceof expected, `expected a ${expected.name}, got ${String(caught)}`);
  assert.equal((caught as { code?: unknown }).code, code, (caught as Error).message);
  return caught as E;
}
