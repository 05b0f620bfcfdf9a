import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { down, readLabOrNull } from '../../src/lab/lab.js';
import type { LabRecord } from '../../src/lab/state.js';
import { renderTopology } from '../../src/lab/topology.js';
import type { Scenario } from '../../src/scenarios/catalog.js';
import { writeReport } from '../../src/scenarios/report.js';
import { runSuite, type ScenarioResult } from '../../src/scenarios/runner.js';
import { ROOT, cli } from './helpers.js';

/**
 * Scenarios of the suite on one lab of a target and `computes` compute nodes on two data
 * networks, one test each. Each orphan pair must show the oracle catching the faulty sequence's
 * leftovers (red) before the correct sequence comes out clean (green); after each scenario the
 * runner checks that target and computes are as they were and that no guest logged a kernel
 * warning. The suite's report (JSON, JUnit, markdown) goes to results/scenarios/<part>/.
 */
/** A promise with its resolve and reject (Promise.withResolvers is Node 22's); its rejection counts as handled until awaited. */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: Error) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((a, b) => {
    resolve = a;
    reject = b;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

export function describeScenarios(part: string, lab: string, scenarios: Scenario[], computes: number, more?: (rec: () => LabRecord) => void): void {
describe(`the scenario suite: ${part}`, () => {
  let rec: LabRecord;
  const results: ScenarioResult[] = [];
  const started = Date.now();
  const resultsDir = join(ROOT, 'results', 'scenarios', part);

  // Each scenario's result, as the suite run (started once the lab is up) hears of it.
  // BRICK_E2E_SCENARIOS=a,b runs only those (with -t, vitest would skip the others' tests, but the
  // suite run would still run every scenario).
  const only = process.env.BRICK_E2E_SCENARIOS?.split(',').filter(Boolean);
  const chosen = only ? scenarios.filter((s) => only.includes(s.name)) : scenarios;
  const waiting = new Map(chosen.map((s) => [s.name, deferred<ScenarioResult>()] as const));
  let suite: Promise<unknown> = Promise.resolve();

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'brick-e2e-'));
    const topo = join(dir, `${lab}.yaml`);
    const nodes = [{ name: 'target-1', role: 'target' as const }, ...Array.from({ length: computes }, (_, i) => ({ name: `compute-${i + 1}`, role: 'compute' as const }))];
    await writeFile(topo, renderTopology({ name: lab, nodes }));
    const r = await cli(['up', '--topology', topo]);
    if (r.exitCode !== 0) throw new Error(`brick-lab up failed (exit ${r.exitCode}):\n${r.stderr}`);
    rec = (await readLabOrNull(lab))!;
    // The scenarios run as `brick-lab run --jobs N` runs them (runSuite: one compute each, those
    // that need the whole lab alone); each test below waits for its own scenario's result.
    suite = runSuite(rec, chosen, { resultsDir, tag: 'scenario', kernel: rec.image.kernelRelease, jobs: computes, onProgress: () => {}, onResult: (x) => waiting.get(x.name)?.resolve(x) }).then(
      () => {
        for (const [name, w] of waiting) w.reject(new Error(`the suite ended without a result for ${name}`));
      },
      (e: Error) => {
        for (const w of waiting.values()) w.reject(e);
      },
    );
  }, 600_000);

  afterAll(async () => {
    await suite.catch(() => undefined);
    if (rec && results.length > 0) {
      const passed = results.filter((r) => r.status === 'passed').length;
      await writeReport({ lab, accel: rec.accel, kernel: rec.image.kernelRelease, startedAt: new Date(started).toISOString(), durationMs: Date.now() - started, scenarios: results, passed, failed: results.length - passed }, resultsDir);
    }
    await down(lab, { quiet: true, keepLogs: true });
  }, 120_000);

  it.each(chosen.map((s) => [s.name, s] as const))('%s', async (_name, s) => {
    const r = await waiting.get(s.name)!.promise;
    results.push(r);
    const story = [...r.steps, ...r.problems].join('\n');
    expect(r.failure, story).toBeNull();
    expect(r.problems, story).toEqual([]);
    expect(r.status).toBe('passed');
    expect(r.rows.length, 'the scenario asked the oracle nothing').toBeGreaterThan(0);
    // Every verdict on an iSCSI or NVMe volume had its second opinion from the guest's own tools,
    // and it agreed (a local disk stays the host's after its detach: there is nothing to inspect).
    for (const row of r.rows.filter((x) => x.protocol !== 'local')) expect(row.inspected, `${row.node} ${row.phase}: no inspection`).toBeDefined();
    if (s.kind === 'orphan-pair') {
      const faulty = r.rows.filter((x) => x.phase.startsWith('faulty'));
      const correct = r.rows.filter((x) => x.phase.startsWith('correct'));
      expect(faulty.length).toBeGreaterThan(0);
      expect(correct.length).toBeGreaterThan(0);
      // Red first: the faulty sequence's leftovers, each with its evidence ...
      expect(r.rows.indexOf(faulty[0]!)).toBeLessThan(r.rows.indexOf(correct[0]!));
      for (const f of faulty) {
        // What the volume left, or (a cleanup that took another volume's) the host-wide collateral.
        const found = [...f.left, ...(f.hostWide?.orphans ?? []), ...(f.hostWide?.collateral ?? [])];
        expect(found.length, `${f.phase}: the oracle found nothing`).toBeGreaterThan(0);
        expect(f.inspected!.length, `${f.phase}: the guest's tools show nothing`).toBeGreaterThan(0);
        for (const o of found) expect(o.evidence.length).toBeGreaterThan(0);
      }
      // ... then green: nothing left by the correct sequence.
      for (const c of correct) {
        expect(c.left, c.phase).toEqual([]);
        expect(c.inspected, c.phase).toEqual([]);
      }
    } else {
      for (const row of r.rows) expect(row.left, `${row.node} ${row.phase}`).toEqual([]);
    }
  }, 900_000);

  // What follows uses the lab as a whole: after the suite's last scenario (and its clean-up).
  describe('then', () => {
    beforeAll(async () => {
      await suite;
    });
    more?.(() => rec);
  });
});
}
