import { describe, expect, it } from 'vitest';
import { runScheduled, runsAlone, type Schedulable, type Turn } from '../../src/scenarios/schedule.js';

/** A scenario for the scheduler: how long it runs (in event-loop turns), whether it needs the whole lab. */
const item = (name: string, ticks: number, needs: Schedulable['needs'] = { computes: 1 }): Schedulable & { ticks: number } => ({ name, ticks, needs });

async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

/** Runs `items` and records, at each start, what else was running and on which computes. */
async function trace(items: Array<Schedulable & { ticks: number }>, computes: string[], jobs: number) {
  const running = new Map<string, Turn<string>>();
  const log: string[] = [];
  let most = 0;
  const results = await runScheduled(
    items,
    computes,
    jobs,
    async (s, turn) => {
      for (const [other, t] of running) {
        // Never two on one compute, and nothing beside one that runs alone.
        expect(t.computes.some((c) => turn.computes.includes(c)), `${s.name} shares a compute with ${other}`).toBe(false);
        expect(t.alone || turn.alone, `${s.name} started beside ${other}`).toBe(false);
      }
      running.set(s.name, turn);
      most = Math.max(most, running.size);
      log.push(`start ${s.name} on ${turn.computes.join('+')}`);
      await turns(s.ticks);
      running.delete(s.name);
      log.push(`end ${s.name}`);
      return `${s.name}@${turn.index}`;
    },
    async () => {
      expect(running.size, 'quiet while something runs').toBe(0);
      log.push('quiet');
    },
  );
  return { results, log, most };
}

describe('scenarios side by side (schedule.ts)', () => {
  it('runs up to `jobs` at once, each on a compute of its own, and returns results in catalogue order', async () => {
    const items = [item('a', 30), item('b', 5), item('c', 5), item('d', 5)];
    const { results, log, most } = await trace(items, ['compute-1', 'compute-2'], 2);
    expect(results).toEqual(['a@0', 'b@1', 'c@2', 'd@3']);
    expect(most).toBe(2);
    // b ends before a, and c takes the compute b gave back while a still runs.
    expect(log.slice(0, 4)).toEqual(['start a on compute-1', 'start b on compute-2', 'end b', 'start c on compute-2']);
    expect(log.at(-1)).toBe('quiet');
  });

  it('runs the scenarios that need every compute or the whole target first, alone, each after the quiet turn, then the rest side by side', async () => {
    const items = [item('a', 10), item('both', 3, { computes: 2 }), item('b', 1), item('offline', 3, { computes: 1, wholeLab: true }), item('c', 1)];
    const { results, log, most } = await trace(items, ['compute-1', 'compute-2'], 2);
    // Results in catalogue order, whatever order they ran in.
    expect(results).toEqual(['a@0', 'both@1', 'b@2', 'offline@3', 'c@4']);
    // No lane waits for the others to end before a scenario that runs alone: those go first.
    expect(log.slice(0, 6)).toEqual(['quiet', 'start both on compute-1+compute-2', 'end both', 'quiet', 'start offline on compute-1+compute-2', 'end offline']);
    expect(log.slice(6, 8)).toEqual(['start a on compute-1', 'start b on compute-2']);
    expect(log.at(-1)).toBe('quiet');
    expect(most).toBe(2);
    expect(runsAlone(items[1]!)).toBe(true);
    expect(runsAlone(items[3]!)).toBe(true);
    expect(runsAlone(items[0]!)).toBe(false);
  });

  it('on a lab with more computes than a live migration needs, runs it on two of them beside a scenario on the third', async () => {
    const items = [item('a', 10), item('both', 3, { computes: 2 }), item('b', 1), item('offline', 2, { computes: 1, wholeLab: true })];
    const { results, log, most } = await trace(items, ['compute-1', 'compute-2', 'compute-3'], 3);
    expect(results).toEqual(['a@0', 'both@1', 'b@2', 'offline@3']);
    expect(runsAlone(items[1]!, 3)).toBe(false);
    expect(runsAlone(items[3]!, 3)).toBe(true);
    expect(log.slice(0, 6)).toEqual(['quiet', 'start offline on compute-1+compute-2+compute-3', 'end offline', 'start a on compute-1', 'start both on compute-2+compute-3', 'end both']);
    // b waits for a compute of its own: both gives back two.
    expect(log[6]).toBe('start b on compute-2');
    expect(most).toBe(2);
  });

  it('at jobs 2 on three computes runs at most two at once, and a scenario waiting for two computes is not overtaken', async () => {
    const items = [item('a', 20), item('b', 2), item('both', 3, { computes: 2 }), item('c', 1)];
    const { log, most } = await trace(items, ['compute-1', 'compute-2', 'compute-3'], 2);
    expect(most).toBe(2);
    expect(log.indexOf('start both on compute-2+compute-3')).toBeLessThan(log.indexOf('start c on compute-2'));
    expect(log.indexOf('start both on compute-2+compute-3')).toBeGreaterThan(log.indexOf('end b'));
  });

  it('with jobs 1 (or one compute) runs one after another, each with every compute', async () => {
    for (const [computes, jobs] of [[['compute-1', 'compute-2'], 1], [['compute-1'], 4]] as const) {
      const { results, most, log } = await trace([item('a', 3), item('b', 1)], [...computes], jobs);
      expect(results).toEqual(['a@0', 'b@1']);
      expect(most).toBe(1);
      expect(log).toEqual(['quiet', `start a on ${computes.join('+')}`, 'end a', 'quiet', `start b on ${computes.join('+')}`, 'end b', 'quiet']);
    }
  });

  it('stops starting new scenarios when one throws, waits for those under way, then throws its error', async () => {
    const started: string[] = [];
    const ended: string[] = [];
    const run = runScheduled([item('long', 20), item('boom', 1), item('never', 1)], ['compute-1', 'compute-2'], 2, async (s) => {
      started.push(s.name);
      await turns((s as { ticks: number }).ticks);
      if (s.name === 'boom') throw new Error('aborted');
      ended.push(s.name);
      return s.name;
    });
    await expect(run).rejects.toThrow('aborted');
    expect(started).toEqual(['long', 'boom']);
    expect(ended).toEqual(['long']);
  });
});
