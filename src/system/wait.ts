/**
 * The one poll loop: ask until there is an answer or the time is up. Every wait for the kernel
 * (a device, a session, a map), a process, a lock or a node goes through it, so that timeouts,
 * intervals and what a timeout says are alike everywhere. The clock is injected so that the loop
 * itself is tested without waiting.
 */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

export interface PollOptions {
  /** Give up after this long (from the first ask). */
  timeoutMs: number;
  /** Between asks; a function of the attempt number (1-based) for a back-off. */
  intervalMs?: number | ((attempt: number) => number);
  clock?: Clock;
  /** Stop early (Ctrl-C during `up`): the wait rejects with the signal's reason. */
  signal?: AbortSignal;
}

export type PollResult<T> = { ok: true; value: T; attempts: number; elapsedMs: number } | { ok: false; attempts: number; elapsedMs: number };

/**
 * Ask `probe` until it returns a value other than null, undefined or false, or `timeoutMs` has
 * passed; the probe is asked at least once, and once more at the deadline's edge is not promised.
 * Never throws for a timeout: the caller says what a timeout means (see `waitFor`).
 */
export async function poll<T>(probe: (attempt: number) => T | null | undefined | false | Promise<T | null | undefined | false>, opts: PollOptions): Promise<PollResult<T>> {
  const clock = opts.clock ?? realClock;
  const start = clock.now();
  for (let attempt = 1; ; attempt++) {
    opts.signal?.throwIfAborted();
    const v = await probe(attempt);
    const elapsedMs = clock.now() - start;
    if (v !== null && v !== undefined && v !== false) return { ok: true, value: v, attempts: attempt, elapsedMs };
    if (elapsedMs >= opts.timeoutMs) return { ok: false, attempts: attempt, elapsedMs };
    const step = typeof opts.intervalMs === 'function' ? opts.intervalMs(attempt) : opts.intervalMs ?? 100;
    await clock.sleep(Math.max(0, Math.min(step, opts.timeoutMs - elapsedMs)));
  }
}

/** `poll`, with a timeout turned into the caller's error. */
export async function waitFor<T>(
  probe: (attempt: number) => T | null | undefined | false | Promise<T | null | undefined | false>,
  opts: PollOptions & { onTimeout: (r: { attempts: number; elapsedMs: number }) => Error },
): Promise<T> {
  const r = await poll(probe, opts);
  if (r.ok) return r.value;
  throw opts.onTimeout(r);
}

/** A pause that is not a wait for something (a back-off between retries), through the same clock. */
export function sleep(ms: number, clock: Clock = realClock): Promise<void> {
  return clock.sleep(ms);
}

/** A clock for tests: time moves only when someone sleeps. */
export function fakeClock(startMs = 0): Clock & { slept: number[] } {
  let t = startMs;
  const slept: number[] = [];
  return {
    slept,
    now: () => t,
    sleep: async (ms) => {
      slept.push(ms);
      t += ms;
    },
  };
}
