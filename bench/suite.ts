/**
 * The whole scenario suite as users run it (`brick-lab run`), first with a cold cache (a new,
 * empty BRICK_LAB_CACHE: image build and KVM probe included) and then warm (the same cache):
 * wall time, time to a ready lab, and each scenario's time, from the run's own report. With
 * `--jobs 1,2` the warm run is made once per value (`run --jobs N`: scenarios side by side, each
 * on a compute of its own), so that the gain is measured in the same run on the same machine.
 *
 *   node dist/bench/suite.js [--scenario standard] [--warm-only] [--jobs 1,2]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { SuiteReport } from '../src/scenarios/runner.js';
import { exec } from '../src/system/exec.js';
import { cacheDir, PROJECT_ROOT } from '../src/system/paths.js';

const { values } = parseArgs({ options: { scenario: { type: 'string', default: 'standard' }, 'warm-only': { type: 'boolean', default: false }, jobs: { type: 'string', default: '1' } } });
const jobs = values.jobs.split(',').map(Number);
if (jobs.some((j) => !Number.isInteger(j) || j < 1)) {
  process.stderr.write(`bench:suite: --jobs takes whole numbers from 1, comma-separated (got ${values.jobs})\n`);
  process.exit(2);
}
const work = await mkdtemp(join(tmpdir(), 'brick-bench-suite-'));
const cold = join(work, 'cache');

interface Run {
  label: string;
  wallS: number;
  upS: number | null;
  report: SuiteReport;
}

async function runSuite(label: string, cache: string, j: number): Promise<Run> {
  const results = join(work, label);
  const t0 = performance.now();
  const r = await exec([process.execPath, join(PROJECT_ROOT, 'bin', 'brick-lab.js'), 'run', '--name', 'bench-suite', '--scenario', values.scenario, '--jobs', String(j), '--results', results], {
    timeoutMs: 3 * 3600_000,
    reject: false,
    env: { ...process.env, BRICK_LAB_CACHE: cache },
  });
  const wallS = (performance.now() - t0) / 1000;
  if (r.exitCode !== 0) process.stderr.write(`[bench] ${label} run exited ${r.exitCode}:\n${r.stderr.split('\n').slice(-20).join('\n')}\n`);
  const up = /\[up\] lab bench-suite is up in ([\d.]+) s/.exec(r.stderr);
  const report = JSON.parse(await readFile(join(results, 'report.json'), 'utf8')) as SuiteReport;
  return { label, wallS, upS: up ? Number(up[1]) : null, report };
}

try {
  const runs: Run[] = [];
  const label = (what: string, j: number): string => (jobs.length > 1 ? `${what} -j${j}` : what);
  if (!values['warm-only']) runs.push(await runSuite(label('cold', jobs[0]!), cold, jobs[0]!));
  for (const j of jobs) runs.push(await runSuite(label('warm', j), values['warm-only'] ? cacheDir() : cold, j));
  process.stdout.write(`scenario suite (${values.scenario}): ${cpus().length} cores, ${runs[0]!.report.accel.toUpperCase()}, guest kernel ${runs[0]!.report.kernel}\n`);
  const head = ['', ...runs.map((r) => r.label)];
  const rows: string[][] = [
    ['wall time (brick-lab run, all included)', ...runs.map((r) => `${(r.wallS / 60).toFixed(1)} min`)],
    ['  image build, probe, boot until ready (up)', ...runs.map((r) => (r.upS === null ? '-' : `${r.upS.toFixed(1)} s`))],
    ['  scenarios', ...runs.map((r) => `${(r.report.durationMs / 1000).toFixed(1)} s`)],
    ['  passed / failed', ...runs.map((r) => `${r.report.passed} / ${r.report.failed}`)],
  ];
  for (const s of runs[0]!.report.scenarios) {
    rows.push([`    ${s.name}`, ...runs.map((r) => {
      const x = r.report.scenarios.find((y) => y.name === s.name);
      return x ? `${(x.durationMs / 1000).toFixed(1)} s` : '-';
    })]);
  }
  const w = Math.max(...rows.map((r) => r[0]!.length));
  process.stdout.write(`  ${''.padEnd(w)}  ${head.slice(1).map((h) => h.padStart(10)).join('  ')}\n`);
  for (const r of rows) process.stdout.write(`  ${r[0]!.padEnd(w)}  ${r.slice(1).map((c) => c.padStart(10)).join('  ')}\n`);
} finally {
  await rm(work, { recursive: true, force: true });
}
