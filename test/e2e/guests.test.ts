import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderTopology } from '../../src/lab/topology.js';
import type { SuiteReport } from '../../src/scenarios/runner.js';
import { NOTHING, cli, hostTraces, recipeKernel } from './helpers.js';

/**
 * A second guest: a lab of Debian trixie nodes (kernel 6.12, os-brick 6.11) through the CLI, as
 * `.ci/run` runs it beside the suite on the default guest (the workflow's trixie leg runs this file
 * alone): `run --guest trixie` on the quick set, brick-lab's own connector on every conformance
 * check of every protocol, and os-brick 6.11's NVMe/TCP checks as docs/os-brick.md records them.
 * A mixed lab (a trixie target serving a bookworm compute) is run.test.ts's.
 */
const LAB = 'e2e-trixie';
const COMPUTES = ['compute-1', 'compute-2'];
const NODES = ['target-1', ...COMPUTES];
const statuses = (r: SuiteReport): Record<string, string> => Object.fromEntries(r.scenarios.map((s) => [s.name, s.status]));

async function report(dir: string): Promise<SuiteReport> {
  return JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')) as SuiteReport;
}

describe('guests', () => {
  it('refuses a guest it has no recipe for before anything is built or booted, naming the guests', async () => {
    const r = await cli(['up', '--name', 'e2e-noguest', '--guest', 'sid']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/UNKNOWN_GUEST: --guest: no guest called "sid"; the guests are bookworm, trixie/);
    expect(r.stderr).not.toMatch(/\[image\]|\[boot\]/);
    expect(await hostTraces('e2e-noguest')).toEqual(NOTHING);
  });

  it('runs the quick set on a trixie lab (run --guest trixie), then passes every conformance check of every protocol with brick-lab\'s connector, and judges os-brick 6.11 on NVMe/TCP as recorded', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'brick-e2e-'));
    const trixie = recipeKernel('trixie');
    expect(trixie).toMatch(/^6\.12\./);
    try {
      // A topology that names no guest (the default lab's shape): --guest puts every node on trixie.
      // The lab is kept for the checks below.
      const topo = join(dir, `${LAB}.yaml`);
      await writeFile(topo, renderTopology({ name: LAB, nodes: [{ name: 'target-1', role: 'target' }, ...COMPUTES.map((name) => ({ name, role: 'compute' as const }))] }));
      const quick = join(dir, 'quick');
      const r = await cli(['run', '--topology', topo, '--guest', 'trixie', '--scenario', 'quick', '--jobs', '2', '--keep', '--results', quick], { timeoutMs: 20 * 60_000 });
      expect(r.exitCode, `${r.stdout}\n${r.stderr.slice(-3000)}`).toBe(0);
      const q = await report(quick);
      expect(statuses(q)).toEqual({ 'round-trip-iscsi-1path': 'passed', 'round-trip-nvme-1path': 'passed', 'round-trip-fc-1path': 'passed', 'round-trip-local': 'passed' });
      expect(new Set(q.scenarios.flatMap((s) => s.hostWide.map((h) => h.node)))).toEqual(new Set(COMPUTES));
      expect(q.nodes!.map((n) => [n.name, n.guest, n.kernel, n.osBrick?.split('.').slice(0, 2).join('.')])).toEqual(
        NODES.map((n) => [n, 'trixie', trixie, '6.11']),
      );
      expect(r.stdout).toMatch(/^nodes: target-1 trixie 6\.12\.\S+ os-brick 6\.11\.\S+, compute-1 trixie .*, compute-2 trixie /m);

      // Each node on trixie's kernel and tools (open-iscsi 2.1.11 keeps its database under /var/lib/iscsi).
      for (const n of NODES) expect((await cli(['exec', '--name', LAB, n, '--', 'uname', '-r'])).stdout.trim(), n).toBe(trixie);
      const tools = await cli(['exec', '--name', LAB, 'compute-1', '--', 'sh', '-c', 'nvme version | head -1; iscsiadm --version; multipath -h 2>&1 | head -1; python3 -c "import importlib.metadata as m; print(m.version(\'os-brick\'))"']);
      expect(tools.stdout.trim().split('\n')).toEqual([
        expect.stringMatching(/^nvme version 2\.1\d/),
        expect.stringMatching(/^iscsiadm version 2\.1\.1\d/),
        expect.stringMatching(/^multipath-tools v0\.11\./),
        expect.stringMatching(/^6\.11\./),
      ]);
      const status = JSON.parse((await cli(['status', '--name', LAB, '--json'])).stdout) as { nodes: Array<{ name: string; guest: string; kernel: string }> };
      expect(status.nodes.map((n) => [n.name, n.guest, n.kernel])).toEqual(NODES.map((n) => [n, 'trixie', trixie]));
      const doctor = JSON.parse((await cli(['doctor', '--json'])).stdout) as { checks: Array<{ name: string; detail: string }> };
      expect(doctor.checks.find((c) => c.name === 'image trixie')?.detail).toMatch(new RegExp(`^trixie.*kernel ${trixie.replace(/[.+]/g, '\\$&')}, built: `));
      // And the default guest's row, built or not (this file alone, as the workflow's trixie leg runs it, builds no bookworm image).
      const bookworm = recipeKernel('bookworm');
      expect(doctor.checks.find((c) => c.name === 'image bookworm')?.detail).toMatch(new RegExp(`^bookworm \\(the default\\): Debian bookworm, kernel ${bookworm.replace(/[.+]/g, '\\$&')}, (built: |not built yet \\(recipe [0-9a-f]+\\))`));

      // brick-lab's own connector: every check of every protocol, on the same lab.
      const own = join(dir, 'builtin');
      const v = await cli(['validate', '--name', LAB, '--guest', 'trixie', '--connector', 'builtin', '--protocol', 'iscsi', '--protocol', 'nvmeof', '--protocol', 'fc', '--protocol', 'local', '--jobs', '2', '--results', own], { timeoutMs: 30 * 60_000 });
      const vr = await report(own);
      const listed = (await cli(['validate', '--list', '--protocol', 'iscsi', '--protocol', 'nvmeof', '--protocol', 'fc', '--protocol', 'local'])).stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]);
      expect(Object.keys(statuses(vr))).toEqual(listed);
      expect(Object.entries(statuses(vr)).filter(([, s]) => s !== 'passed'), `${v.stdout}\n${v.stderr.slice(-3000)}`).toEqual([]);
      expect(v.exitCode).toBe(0);

      // os-brick 6.11 on NVMe/TCP: it attaches where 6.1 could not (bug 2035811 fixed); it leaves
      // both controllers when the namespace went first, and still lists /dev as volumes.
      const ob = join(dir, 'os-brick');
      const o = await cli(['validate', '--name', LAB, '--guest', 'trixie', '--connector', 'os-brick', '--protocol', 'nvmeof', '--jobs', '2', '--results', ob], { timeoutMs: 30 * 60_000 });
      expect(o.exitCode, `${o.stdout}\n${o.stderr.slice(-3000)}`).toBe(1);
      const or = await report(ob);
      expect(Object.entries(statuses(or)).filter(([, s]) => s !== 'passed').map(([n]) => n).sort()).toEqual(['agreement-nvme', 'orphan-nvme-namespace-gone']);
      expect(or.scenarios.filter((s) => s.status === 'passed').map((s) => s.name)).toEqual(expect.arrayContaining(['round-trip-nvme-1path', 'live-migration-nvme', 'field-nvme-ctrl-loss']));
      const gone = or.scenarios.find((s) => s.name === 'orphan-nvme-namespace-gone')!;
      // The half that must come out clean is os-brick's own disconnect: both controllers stay, the oracle names them.
      const itsHalf = gone.rows.filter((x) => x.expected === 'clean');
      expect(itsHalf.length).toBeGreaterThan(0);
      expect(itsHalf.flatMap((x) => x.left.map((l) => l.kind)).filter((k) => k === 'nvme-controller').length).toBeGreaterThanOrEqual(1);
      expect(or.scenarios.find((s) => s.name === 'agreement-nvme')!.failure).toMatch(/get_all_available_volumes lists \d+ entries that are not volumes: .*\/dev\//);
      // Whatever it left, the runner took away: the computes are clean for whoever comes next.
      for (const n of COMPUTES) {
        const c = await cli(['exec', '--name', LAB, n, '--', 'sh', '-c', 'ls /sys/class/nvme | wc -l; iscsiadm -m session 2>&1 | grep -c ^tcp || true; dmsetup ls | grep -vc "No devices" || true']);
        expect(c.stdout.trim().split('\n'), n).toEqual(['0', '0', '0']);
      }
    } finally {
      const d = await cli(['down', '--name', LAB]);
      expect(d.exitCode, d.stderr).toBe(0);
    }
    expect(await hostTraces(LAB)).toEqual(NOTHING);
  }, 60 * 60_000);
});
