import { describe, expect, it } from 'vitest';
import { fakeClock, poll, waitFor } from '../../src/system/wait.js';

describe('poll', () => {
  it('returns the first answer and counts the asks', async () => {
    const clock = fakeClock();
    const r = await poll((n) => (n === 3 ? 'there' : null), { timeoutMs: 1000, intervalMs: 10, clock });
    expect(r).toEqual({ ok: true, value: 'there', attempts: 3, elapsedMs: 20 });
    expect(clock.slept).toEqual([10, 10]);
  });

  it('asks once even with no time, and gives up at the deadline without overshooting it', async () => {
    const clock = fakeClock();
    let asks = 0;
    const r = await poll(() => (asks++, false), { timeoutMs: 250, intervalMs: 100, clock });
    expect(r.ok).toBe(false);
    expect(clock.slept).toEqual([100, 100, 50]);
    expect(asks).toBe(4);
    const once = await poll(() => (asks++, null), { timeoutMs: 0, clock: fakeClock() });
    expect(once).toMatchObject({ ok: false, attempts: 1 });
  });

  it('takes 0 as an answer (only null, undefined and false mean "not yet")', async () => {
    const r = await poll(() => 0, { timeoutMs: 10, clock: fakeClock() });
    expect(r).toMatchObject({ ok: true, value: 0 });
  });

  it('backs off with an interval per attempt', async () => {
    const clock = fakeClock();
    await poll(() => null, { timeoutMs: 700, intervalMs: (n) => 100 * n, clock });
    expect(clock.slept).toEqual([100, 200, 300, 100]);
  });

  it('stops when its signal is aborted', async () => {
    const ac = new AbortController();
    const p = poll((n) => (n === 2 ? ac.abort(new Error('stop')) : null), { timeoutMs: 1000, clock: fakeClock(), signal: ac.signal });
    await expect(p).rejects.toThrow('stop');
  });
});

describe('waitFor', () => {
  it("throws the caller's error on timeout, with what the wait saw", async () => {
    const p = waitFor(() => null, { timeoutMs: 300, intervalMs: 100, clock: fakeClock(), onTimeout: (r) => new Error(`none after ${r.attempts} asks in ${r.elapsedMs} ms`) });
    await expect(p).rejects.toThrow('none after 4 asks in 300 ms');
  });

  it('waits on real time when no clock is given', async () => {
    let n = 0;
    await expect(waitFor(() => (++n >= 2 ? n : null), { timeoutMs: 2000, intervalMs: 5, onTimeout: () => new Error('late') })).resolves.toBe(2);
  });
});
