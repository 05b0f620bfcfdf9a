import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderTopology } from '../../src/lab/topology.js';
import type { SuiteReport } from '../../src/scenarios/runner.js';
import { exec } from '../../src/system/exec.js';
import { CLI, NOTHING, ROOT, cli, hostTraces, recipeKernel, waitFor } from './helpers.js';

/** The main job through the real CLI, as the README's first command runs it, and as the reusable action runs it. */
describe('brick-lab run', () => {
  it('brings a lab up, runs the quick set, prints the table, writes the reports; a run killed mid-scenario is found, reported and cleaned by the next', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'brick-e2e-'));
    const topo = join(dir, 'e2e-run.yaml');
    // The compute's data NICs are vmxnet3 (lab/pci-nics.yaml's): the quick set runs over them, and
    // os-brick's FC connector is judged on them at the end. A mixed lab: the target and compute-2
    // run the second guest (trixie, kernel 6.12), compute-1 the default (bookworm, 6.1); the quick
    // set runs over both computes, each served by the trixie target.
    await writeFile(
      topo,
      renderTopology({
        name: 'e2e-run',
        nodes: [
          { name: 'target-1', role: 'target', guest: 'trixie' },
          { name: 'compute-1', role: 'compute', nicModel: 'vmxnet3' },
          { name: 'compute-2', role: 'compute', guest: 'trixie' },
        ],
      }),
    );

    // First a run killed (SIGKILL) in the middle of a scenario: a volume attached over two paths,
    // one path down for 300 s. A failpoint holds it there.
    const killed = join(dir, 'killed');
    const child = spawn(process.execPath, [CLI, 'run', '--topology', topo, '--scenario', 'orphan-multipath-path-fails', '--results', killed], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, BRICK_LAB_FAILPOINT: 'scenario:outage' },
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exit = new Promise<string | null>((resolve) => child.on('exit', (_c, signal) => resolve(signal)));
    await waitFor('the run to reach the outage', async () => stderr.includes('failpoint scenario:outage reached'), 10 * 60_000);
    const during = JSON.parse(await readFile(join(killed, 'report.json'), 'utf8')) as SuiteReport;
    expect(during).toMatchObject({ state: 'running', current: 'orphan-multipath-path-fails', pid: child.pid });
    const sessions = await cli(['exec', '--name', 'e2e-run', 'compute-1', '--', 'iscsiadm', '-m', 'session']);
    expect(sessions.stdout.trim().split('\n')).toHaveLength(2);
    const link = await cli(['exec', '--name', 'e2e-run', 'compute-1', '--', 'ip', '-br', 'link', 'show', 'path-b']);
    expect(link.stdout).toMatch(/^path-b\s+DOWN/);
    child.kill('SIGKILL');
    expect(await exit).toBe('SIGKILL');

    // The next run on the lab finds the claim of a process that is gone: it marks that report
    // interrupted, puts the lab back (outage ended, volume detached, target emptied), then runs.
    // This run goes through the reusable action's own steps (action.yml), as a connector
    // repository's workflow runs them: its inputs as INPUT_* variables into scripts/action/run.mjs
    // (the CLI, in that process), then scripts/action/summary.mjs onto the job summary.
    const results = join(dir, 'results');
    const outputs = join(dir, 'github-output');
    const jobSummary = join(dir, 'step-summary.md');
    await writeFile(outputs, '');
    await writeFile(jobSummary, '');
    const github = { ...process.env, GITHUB_OUTPUT: outputs, GITHUB_STEP_SUMMARY: jobSummary };
    const r = await exec([process.execPath, join(ROOT, 'scripts', 'action', 'run.mjs')], {
      timeoutMs: 15 * 60_000,
      reject: false,
      env: { ...github, INPUT_COMMAND: 'run', INPUT_TOPOLOGY: topo, INPUT_SCENARIOS: 'quick', INPUT_JOBS: '2', INPUT_RESULTS: results },
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe(`brick-lab run --results ${results} --topology ${topo} --jobs 2 --scenario quick`);
    expect(await readFile(outputs, 'utf8')).toBe(`results=${results}\nexit-code=0\n`);
    const summaryStep = await exec([process.execPath, join(ROOT, 'scripts', 'action', 'summary.mjs'), results], { env: github, reject: false });
    expect(summaryStep.exitCode).toBe(0);
    expect(await readFile(jobSummary, 'utf8')).toMatch(/^## brick-lab: no orphans/);
    // Two at once, one on each compute (bookworm's and trixie's).
    expect(r.stderr).not.toContain('scenario at once');
    expect(r.stderr).toMatch(new RegExp(`the run started at \\S+ \\(pid ${child.pid}\\) on this lab was interrupted; its report now says so: ${join(killed, 'report.json')}; putting the lab back first`));
    const after = JSON.parse(await readFile(join(killed, 'report.json'), 'utf8')) as SuiteReport;
    expect(after).toMatchObject({ state: 'interrupted', current: 'orphan-multipath-path-fails', interrupted: { by: 'a run on lab e2e-run' } });
    expect(await readFile(join(killed, 'summary.md'), 'utf8')).toMatch(/^## brick-lab: interrupted/);
    expect(await readFile(join(killed, 'junit.xml'), 'utf8')).toMatch(/errors="1"/);
    for (const name of ['round-trip-iscsi-1path', 'round-trip-nvme-1path', 'round-trip-fc-1path', 'round-trip-local']) {
      expect(r.stdout).toMatch(new RegExp(`PASS  ${name}`));
      expect(r.stderr).toMatch(new RegExp(`\\[scenario\\] \\d/4 ${name}`));
    }
    expect(r.stdout).toMatch(/4 passed, 0 failed/);
    const report = JSON.parse(await readFile(join(results, 'report.json'), 'utf8')) as SuiteReport;
    expect(report.state).toBe('finished');
    expect(report.scenarios.map((s) => s.status)).toEqual(['passed', 'passed', 'passed', 'passed']);
    expect(report.scenarios[0]!.rows[0]!.device).toMatch(/^\/dev\/sd[a-z]+$/);
    // Each node on its own guest's kernel, as the report names them and as the nodes say.
    const kernels = { trixie: recipeKernel('trixie'), bookworm: recipeKernel('bookworm') };
    expect(report.nodes!.map((n) => [n.name, n.guest, n.kernel])).toEqual([['target-1', 'trixie', kernels.trixie], ['compute-1', 'bookworm', kernels.bookworm], ['compute-2', 'trixie', kernels.trixie]]);
    expect(new Set(report.scenarios.flatMap((s) => s.hostWide.map((h) => h.node)))).toEqual(new Set(['compute-1', 'compute-2']));
    for (const [n, k] of [['target-1', kernels.trixie], ['compute-1', kernels.bookworm], ['compute-2', kernels.trixie]] as const) {
      expect((await cli(['exec', '--name', 'e2e-run', n, '--', 'uname', '-r'])).stdout.trim(), n).toBe(k);
    }
    const junit = await readFile(join(results, 'junit.xml'), 'utf8');
    expect(junit).toMatch(/<testsuite [^>]*tests="4" failures="0" errors="0"/);
    expect((junit.match(/<testcase /g) ?? []).length).toBe(4);
    expect(await readFile(join(results, 'summary.md'), 'utf8')).toMatch(/^## brick-lab: no orphans/);
    // The lab as the guests' own tools see it: nothing of the killed run.
    const check = await cli(['exec', '--name', 'e2e-run', 'compute-1', '--', 'sh', '-c', 'iscsiadm -m session; iscsiadm -m node; dmsetup ls; ip -br link show path-b']);
    expect(check.stdout).toMatch(/No devices found/);
    expect(check.stdout).toMatch(/^path-b\s+UP/m);
    expect(check.stderr).toMatch(/No active sessions/);
    expect(check.stderr).toMatch(/No records found/);
    const target = await cli(['exec', '--name', 'e2e-run', 'target-1', '--', 'sh', '-c', 'ls /sys/kernel/config/target/iscsi | grep -c ^iqn; ls /sys/kernel/config/nvmet/subsystems | wc -l']);
    expect(target.stdout.trim().split('\n')).toEqual(['0', '0']);
    // Its data NICs are vmxnet3, each interface right under its PCI function (no virtioN between).
    const nics = await cli(['exec', '--name', 'e2e-run', 'compute-1', '--', 'sh', '-c', 'for n in path-a path-b; do basename $(readlink -f /sys/class/net/$n/device/driver); readlink -f /sys/class/net/$n; done']);
    expect(nics.stdout.trim().split('\n')).toEqual([
      'vmxnet3', expect.stringMatching(/^\/sys\/devices\/pci0000:00\/0000:00:[0-9a-f]{2}\.0\/net\/path-a$/),
      'vmxnet3', expect.stringMatching(/^\/sys\/devices\/pci0000:00\/0000:00:[0-9a-f]{2}\.0\/net\/path-b$/),
    ]);
    // os-brick 6.1's FC connector on them (docs/os-brick.md): it attaches, finds its by-path link
    // and detaches leaving nothing; its get_volume_paths, asked in a process of its own as a gate
    // job asks it, fails for want of the 'targets' its connect_volume adds to the properties.
    const vr = join(dir, 'validate-fc');
    const fc = await cli(['validate', '--name', 'e2e-run', '--connector', 'os-brick', '--protocol', 'fc', '--check', 'round-trip-fc-1path', '--check', 'agreement-fc', '--results', vr], { timeoutMs: 15 * 60_000 });
    expect(fc.exitCode, fc.stderr).toBe(1);
    const judged = JSON.parse(await readFile(join(vr, 'report.json'), 'utf8')) as SuiteReport;
    expect(Object.fromEntries(judged.scenarios.map((s) => [s.name, s.status]))).toEqual({ 'round-trip-fc-1path': 'passed', 'agreement-fc': 'failed' });
    expect(judged.scenarios[1]!.failure).toMatch(/get_volume_paths: KeyError: 'targets'/);
    expect(judged.scenarios.flatMap((s) => s.problems)).toEqual([]);
    // The lab the killed run brought up was left to the next, which reused it: down takes it.
    expect(r.stderr).toContain('reusing running lab e2e-run');
    const d = await cli(['down', '--name', 'e2e-run']);
    expect(d.exitCode, d.stderr).toBe(0);
    expect(await hostTraces('e2e-run')).toEqual(NOTHING);
  }, 1_800_000);

  it('prints the usage for --help after any verb, and lists the scenarios', async () => {
    for (const verb of ['run', 'exec', 'logs']) {
      const r = await cli([verb, '--help']);
      expect(r.exitCode, verb).toBe(0);
      expect(r.stdout).toContain('brick-lab run [--topology FILE] [--name NAME] [--guest GUEST] [--scenario NAME|SET]...');
    }
    const list = await cli(['run', '--list']);
    expect(list.exitCode).toBe(0);
    for (const name of ['round-trip-local', 'orphan-lun-reuse', 'orphan-multipath-path-fails']) expect(list.stdout).toMatch(new RegExp(`^${name} `, 'm'));
  });

  it('refuses an unknown scenario before anything boots', async () => {
    const r = await cli(['run', '--name', 'e2e-bad', '--scenario', 'round-trip-fc']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/UNKNOWN_SCENARIO: no scenario or set is called "round-trip-fc"/);
    expect(r.stderr).toMatch(/scenarios: round-trip-iscsi-1path/);
    expect(r.stderr).not.toMatch(/\[boot\]/);
    expect(await hostTraces('e2e-bad')).toEqual(NOTHING);
  });

  it('refuses a topology that lacks what a scenario needs, before anything boots', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'brick-e2e-'));
    const topo = join(dir, 'e2e-small.yaml');
    await writeFile(topo, renderTopology({ name: 'e2e-small', networks: [{ name: 'path-a', subnet: '10.10.1.0/24' }], nodes: [{ name: 'target-1', role: 'target' }, { name: 'compute-1', role: 'compute' }] }));
    const r = await cli(['run', '--topology', topo, '--scenario', 'live-migration-iscsi,round-trip-iscsi-2path']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/TOPOLOGY_LACKS/);
    expect(r.stderr).toMatch(/live-migration-iscsi needs 2 compute nodes; the topology has 1/);
    expect(r.stderr).toMatch(/round-trip-iscsi-2path needs 2 data networks shared by the target and the computes; the topology has 1/);
    expect(existsSync(join(dir, 'results'))).toBe(false);
    expect(await hostTraces('e2e-small')).toEqual(NOTHING);
  });
});
