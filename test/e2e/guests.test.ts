import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRecipe } from '../../src/lab/image/recipe.js';
import { renderTopology } from '../../src/lab/topology.js';
import type { SuiteReport } from '../../src/scenarios/runner.js';
import { NOTHING, cli, hostTraces } from './helpers.js';

/**
 * A second guest: Debian trixie's kernel and tools beside bookworm's, chosen per lab and per node.
 * One mixed lab (a trixie target and compute, a bookworm compute) runs the quick set on both.
 */
describe('guests', () => {
  it('refuses a guest it has no recipe for before anything is built or booted, naming the guests', async () => {
    const r = await cli(['up', '--name', 'e2e-noguest', '--guest', 'sid']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/UNKNOWN_GUEST: --guest: no guest called "sid"; the guests are bookworm, trixie/);
    expect(r.stderr).not.toMatch(/\[image\]|\[boot\]/);
    expect(await hostTraces('e2e-noguest')).toEqual(NOTHING);
  });

  it('runs a trixie target and compute beside a bookworm compute, each on its own kernel (status, doctor and the report name them), and passes the quick set on them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'brick-e2e-'));
    const topo = join(dir, 'e2e-guests.yaml');
    await writeFile(
      topo,
      renderTopology({
        name: 'e2e-guests',
        guest: 'trixie',
        nodes: [
          { name: 'target-1', role: 'target' },
          { name: 'compute-1', role: 'compute' },
          { name: 'compute-2', role: 'compute', guest: 'bookworm' },
        ],
      }),
    );
    try {
      const up = await cli(['up', '--topology', topo, '--json'], { timeoutMs: 20 * 60_000 });
      expect(up.exitCode, up.stderr).toBe(0);
      const kernels = Object.fromEntries(
        await Promise.all(['target-1', 'compute-1', 'compute-2'].map(async (n) => [n, (await cli(['exec', '--name', 'e2e-guests', n, '--', 'uname', '-r'])).stdout.trim()] as const)),
      );
      const trixie = loadRecipe('trixie').recipe.kernel.release;
      const bookworm = loadRecipe('bookworm').recipe.kernel.release;
      expect(trixie).toMatch(/^6\.12\./);
      expect(kernels).toEqual({ 'target-1': trixie, 'compute-1': trixie, 'compute-2': bookworm });
      // Each guest's own tools: trixie's open-iscsi keeps its database under /var/lib/iscsi.
      const tools = await cli(['exec', '--name', 'e2e-guests', 'compute-1', '--', 'sh', '-c', 'nvme version | head -1; iscsiadm --version; python3 -c "import importlib.metadata as m; print(m.version(\'os-brick\'))"']);
      expect(tools.stdout.trim().split('\n')).toEqual([expect.stringMatching(/^nvme version 2\.1\d/), expect.stringMatching(/^iscsiadm version 2\.1\.1\d/), expect.stringMatching(/^6\.11\./)]);
      // status names each node's guest, kernel and os-brick; doctor each guest's image.
      const status = JSON.parse((await cli(['status', '--name', 'e2e-guests', '--json'])).stdout) as { nodes: Array<{ name: string; guest: string; kernel: string; osBrick: string }> };
      expect(status.nodes.map((n) => [n.name, n.guest, n.kernel, n.osBrick.split('.').slice(0, 2).join('.')])).toEqual([
        ['target-1', 'trixie', trixie, '6.11'],
        ['compute-1', 'trixie', trixie, '6.11'],
        ['compute-2', 'bookworm', bookworm, '6.1'],
      ]);
      const doctor = JSON.parse((await cli(['doctor', '--json'])).stdout) as { checks: Array<{ name: string; detail: string }> };
      for (const [g, k] of [['bookworm', bookworm], ['trixie', trixie]] as const) {
        expect(doctor.checks.find((c) => c.name === `image ${g}`)?.detail).toMatch(new RegExp(`^${g}.*kernel ${k.replace(/[.+]/g, '\\$&')}, built: `));
      }
      const results = join(dir, 'results');
      const r = await cli(['run', '--name', 'e2e-guests', '--scenario', 'quick', '--jobs', '2', '--results', results], { timeoutMs: 15 * 60_000 });
      expect(r.exitCode, `${r.stdout}\n${r.stderr.slice(-3000)}`).toBe(0);
      const report = JSON.parse(await readFile(join(results, 'report.json'), 'utf8')) as SuiteReport;
      expect(report.scenarios.map((s) => [s.name, s.status])).toEqual([
        ['round-trip-iscsi-1path', 'passed'],
        ['round-trip-nvme-1path', 'passed'],
        ['round-trip-fc-1path', 'passed'],
        ['round-trip-local', 'passed'],
      ]);
      // Both computes ran scenarios: the quick set went over both guests.
      expect(new Set(report.scenarios.flatMap((s) => s.hostWide.map((h) => h.node)))).toEqual(new Set(['compute-1', 'compute-2']));
      expect(report.nodes!.map((n) => [n.name, n.guest, n.kernel])).toEqual([
        ['target-1', 'trixie', trixie],
        ['compute-1', 'trixie', trixie],
        ['compute-2', 'bookworm', bookworm],
      ]);
      expect(r.stdout).toMatch(/^nodes: target-1 trixie 6\.12\.\S+ os-brick 6\.11\.\S+, compute-1 trixie .*, compute-2 bookworm 6\.1\.0-\S+ os-brick 6\.1\./m);
    } finally {
      const d = await cli(['down', '--name', 'e2e-guests']);
      expect(d.exitCode, d.stderr).toBe(0);
    }
    expect(await hostTraces('e2e-guests')).toEqual(NOTHING);
  }, 40 * 60_000);
});
