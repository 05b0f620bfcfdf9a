/**
 * A chain of calls that run one at a time, in the order they came, each after the one before has
 * ended whatever its outcome; a call's own failure reaches its caller and does not stop the chain.
 */
export type Serial = <T>(fn: () => Promise<T>) => Promise<T>;

export function serialQueue(): Serial {
  let last: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const run = last.then(fn, fn);
    last = run.catch(() => undefined);
    return run;
  };
}
