import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderTopology } from '../../src/lab/topology.js';
import type { SuiteReport } from '../../src/scenarios/runner.js';
import { NOTHING, cli, hostTraces } from './helpers.js';

/** The main job through the real CLI, as the README's first command runs it. */
describe('brick-lab run', () => {
  it('brings a lab up, runs the quick set, prints the table, writes the reports, tears down', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'brick-e2e-'));
    const topo = join(dir, 'e2e-run.yaml');
    await writeFile(topo, renderTopology({ name: 'e2e-run', nodes: [{ name: 'target-1', role: 'target' }, { name: 'compute-1', role: 'compute' }] }));
    const results = join(dir, 'results');
    const r = await cli(['run', '--topology', topo, '--scenario', 'quick', '--results', results]);
    expect(r.exitCode, r.stderr).toBe(0);
    for (const name of ['round-trip-iscsi-1path', 'round-trip-nvme-1path', 'round-trip-local']) {
      expect(r.stdout).toMatch(new RegExp(`PASS  ${name}`));
      expect(r.stderr).toMatch(new RegExp(`\\[scenario\\] \\d/3 ${name}`));
    }
    expect(r.stdout).toMatch(/3 passed, 0 failed/);
    const report = JSON.parse(await readFile(join(results, 'report.json'), 'utf8')) as SuiteReport;
    expect(report.scenarios.map((s) => s.status)).toEqual(['passed', 'passed', 'passed']);
    expect(report.scenarios[0]!.rows[0]!.device).toMatch(/^\/dev\/sd[a-z]+$/);
    const junit = await readFile(join(results, 'junit.xml'), 'utf8');
    expect(junit).toMatch(/<testsuite [^>]*tests="3" failures="0"/);
    expect((junit.match(/<testcase /g) ?? []).length).toBe(3);
    expect(await readFile(join(results, 'summary.md'), 'utf8')).toMatch(/^## brick-lab: no orphans/);
    expect(await hostTraces('e2e-run')).toEqual(NOTHING);
  }, 900_000);

  it('prints the usage for --help after any verb, and lists the scenarios', async () => {
    for (const verb of ['run', 'exec', 'logs']) {
      const r = await cli([verb, '--help']);
      expect(r.exitCode, verb).toBe(0);
      expect(r.stdout).toContain('brick-lab run [--topology FILE] [--name NAME] [--scenario NAME|SET]...');
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
