import { describe, expect, it } from 'vitest';
import { serialQueue } from '../../src/system/serial.js';

describe('serialQueue', () => {
  it('runs calls one at a time in the order they came; a failure reaches its caller and the chain goes on', async () => {
    const q = serialQueue();
    const seen: string[] = [];
    let running = 0;
    const call = (name: string, ms: number, fail = false) =>
      q(async () => {
        running++;
        expect(running).toBe(1);
        seen.push(`${name} start`);
        await new Promise((r) => setTimeout(r, ms));
        seen.push(`${name} end`);
        running--;
        if (fail) throw new Error(`${name} failed`);
        return name;
      });
    const results = await Promise.allSettled([call('a', 30), call('b', 5, true), call('c', 1)]);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual(['a', 'b failed', 'c']);
    expect(seen).toEqual(['a start', 'a end', 'b start', 'b end', 'c start', 'c end']);
  });
});
