import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { HostSnapshot } from '../../src/inventory/model.js';
import { labClient } from '../../src/lab/lab.js';
import type { Scenario } from '../../src/scenarios/catalog.js';
import { ALL_SCENARIOS, runScenario } from '../../src/scenarios/runner.js';
import { ROOT } from './helpers.js';
import { describeScenarios } from './scenario-suite.js';

// Every scenario of the suite on one lab of a target and two computes: the round trips per
// protocol and path count, shared targets and live migration (two computes), then the orphan
// pairs, domain.md's and the field's (each on the first compute). Then a scenario that does not
// clean up after itself, to show the runner failing it, collecting the nodes' evidence and
// leaving the lab clean for the next one.
const sloppy: Scenario = {
  name: 'sloppy',
  title: 'attaches a volume and walks away',
  kind: 'round-trip',
  needs: { computes: 1, dataNetworks: 1 },
  refs: [],
  async run(ctx) {
    const v = await ctx.createIscsi({ name: 'vol', networks: ctx.networks(1) });
    await ctx.connect(ctx.compute, v);
  },
};

describeScenarios('suite', 'e2e-scen', ALL_SCENARIOS, 2, (lab) => {
  it('fails a scenario that does not clean up after itself, keeps the evidence, and cleans the lab', async () => {
    const resultsDir = join(ROOT, 'results', 'scenarios', 'sloppy');
    const r = await runScenario(lab(), sloppy, { resultsDir });
    expect(r.status).toBe('failed');
    expect(r.failure).toBeNull();
    expect(r.problems[0]).toMatch(/^did not clean up: sloppy-vol still attached on compute-1; volume sloppy-vol still on the target$/);
    expect(r.evidenceDir).toBe(join(resultsDir, 'evidence', 'sloppy'));
    for (const f of ['compute-1/iscsiadm-session-P3.txt', 'compute-1/dmesg.txt', 'compute-1/console.log', 'target-1/targetcli-ls.txt']) {
      expect(existsSync(join(r.evidenceDir!, f)), f).toBe(true);
    }
    const snap = await (await labClient(lab(), 'compute-1')).compute.inventory();
    expect(snap.iscsiSessions).toEqual([]);
    expect(snap.iscsiNodes).toEqual([]);
  }, 600_000);
});
