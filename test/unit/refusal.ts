import { expect } from 'vitest';
import { BrickError } from '../../src/system/errors.js';

/** Refused with a 400 BrickError of this code whose message starts with "field: " and names it. */
export function expectRefused(fn: () => unknown, code: string, field: string): BrickError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  if (caught === undefined) throw new Error(`expected a ${code} refusal for ${field}, but the value was accepted`);
  expect(caught).toBeInstanceOf(BrickError);
  const err = caught as BrickError;
  expect({ code: err.code, status: err.statusCode, field: err.message.split(': ')[0] }).toEqual({ code, status: 400, field });
  expect(err.message.startsWith(`${field}: `)).toBe(true);
  expect(err.details).toEqual({ field });
  return err;
}

/** The BrickError a promise is rejected with (failing the test when it resolves). */
export async function rejection(p: Promise<unknown>): Promise<BrickError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(BrickError);
    return e as BrickError;
  }
  throw new Error('expected a refusal, but the call succeeded');
}
