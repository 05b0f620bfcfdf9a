import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { down, readLabOrNull } from '../../src/lab/lab.js';
import type { LabRecord } from '../../src/lab/state.js';
import { renderTopology } from '../../src/lab/topology.js';
import type { Scenario } from '../../src/scenarios/catalog.js';
import { writeReport } from '../../src/scenarios/report.js';
import { runScenario, type ScenarioResult } from '../../src/scenarios/runner.js';
import { ROOT, cli } from './helpers.js';

/**
 * Scenarios of the suite on one lab of a target and `computes` compute nodes on two data
 * networks, one test each. Each orphan pair must show the oracle catching the faulty sequence's
 * leftovers (red) before the correct sequence comes out clean (green); after each scenario the
 * runner checks that target and computes are as they were and that no guest logged a kernel
 * warning. The suite's report (JSON, JUnit, markdown) goes to results/scenarios/<part>/.
 */
export function describeScenarios(part: string, lab: string, scenarios: Scenario[], computes: number, more?: (rec: () => LabRecord) => void): void {
describe(`the scenario suite: ${part}`, () => {
  let rec: LabRecord;
  const results: ScenarioResult[] = [];
  const started = Date.now();
  const resultsDir = join(ROOT, 'results', 'scenarios', part);

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'brick-e2e-'));
    const topo = join(dir, `${lab}.yaml`);
    const nodes = [{ name: 'target-1', role: 'target' as const }, ...Array.from({ length: computes }, (_, i) => ({ name: `compute-${i + 1}`, role: 'compute' as const }))];
    await writeFile(topo, renderTopology({ name: lab, nodes }));
    const r = await cli(['up', '--topology', topo]);
    if (r.exitCode !== 0) throw new Error(`brick-lab up failed (exit ${r.exitCode}):\n${r.stderr}`);
    rec = (await readLabOrNull(lab))!;
  }, 600_000);

  afterAll(async () => {
    if (rec && results.length > 0) {
      const passed = results.filter((r) => r.status === 'passed').length;
      await writeReport({ lab, accel: rec.accel, kernel: rec.image.kernelRelease, startedAt: new Date(started).toISOString(), durationMs: Date.now() - started, scenarios: results, passed, failed: results.length - passed }, resultsDir);
    }
    await down(lab, { quiet: true, keepLogs: true });
  }, 120_000);

  it.each(scenarios.map((s) => [s.name, s] as const))('%s', async (_name, s) => {
    const r = await runScenario(rec, s, { resultsDir });
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

  more?.(() => rec);
});
}
