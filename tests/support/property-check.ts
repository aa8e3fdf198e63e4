/**
 * Assertions for property tests: a thousand runs of dozens of steps make hundreds of thousands of
 * checks, and expect() costs microseconds a call. These compare first and call expect() only to
 * report a failure (with its diff), so a passing run pays for a comparison and nothing more.
 */
import { isDeepStrictEqual } from 'node:util';
import { expect } from 'vitest';

/** `actual` equals `expected` (as toEqual has it; strictly equal values skip expect altogether). */
export function expectSame<T>(actual: T, expected: T, message: string | (() => string)): void {
  if (!isDeepStrictEqual(actual, expected)) expect(actual, typeof message === 'string' ? message : message()).toEqual(expected);
}

/** `ok` holds; the message is built only when it does not. */
export function expectThat(ok: boolean, message: () => string): void {
  if (!ok) expect.fail(message());
}
