import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { renderJunit, renderMarkdown, renderTable } from '../../src/scenarios/report.js';
import { claimAlive, claimLab, markInterrupted, readClaim, releaseLab, type JobClaim } from '../../src/scenarios/job.js';
import type { SuiteReport } from '../../src/scenarios/results.js';

/**
 * A run's claim on a lab: a claim left by a killed process marks its report interrupted and has
 * the lab put back before the next run; a claim whose process runs refuses a second run.
 */
let state: string;
let results: string;
const saved = process.env.BRICK_LAB_STATE;

/** The pid of a process that has ended. */
function deadPid(): number {
  const r = spawnSync('sh', ['-c', 'echo $$']);
  return Number(r.stdout.toString().trim());
}

const running = (pid: number): SuiteReport => ({
  lab: 'unit', state: 'running', pid, current: 'orphan-multipath-path-fails', accel: 'tcg', kernel: '6.1.0-56-amd64',
  startedAt: '2026-12-03T04:00:00.000Z', durationMs: 1000, scenarios: [], passed: 0, failed: 0,
});

beforeEach(async () => {
  state = await mkdtemp(join(tmpdir(), 'brick-job-'));
  results = join(state, 'results');
  process.env.BRICK_LAB_STATE = state;
  await mkdir(join(state, 'labs', 'unit'), { recursive: true });
});

afterEach(async () => {
  if (saved === undefined) delete process.env.BRICK_LAB_STATE;
  else process.env.BRICK_LAB_STATE = saved;
  await rm(state, { recursive: true, force: true });
});

async function leaveClaim(pid: number, startTicks: string | null = null): Promise<JobClaim> {
  const c: JobClaim = { pid, startTicks, tag: 'run', startedAt: '2026-12-03T04:00:00.000Z', resultsDir: results };
  await writeFile(join(state, 'labs', 'unit', 'job.json'), JSON.stringify(c));
  await mkdir(results, { recursive: true });
  await writeFile(join(results, 'report.json'), JSON.stringify(running(pid)));
  return c;
}

describe('a claim left by a run that was killed', () => {
  it('marks its report interrupted, has the lab put back, and takes the lab', async () => {
    const pid = deadPid();
    await leaveClaim(pid);
    const said: string[] = [];
    let restored = 0;
    const mine = await claimLab('unit', { tag: 'run', resultsDir: join(state, 'next') }, async () => (restored++, ['every node: outages ended']), (l) => said.push(l));
    expect(restored).toBe(1);
    expect(said[0]).toMatch(new RegExp(`the run started at 2026-12-03T04:00:00.000Z \\(pid ${pid}\\) on this lab was interrupted; its report now says so: .*report.json; putting the lab back first`));
    expect(said[1]).toBe('  every node: outages ended');
    const report = JSON.parse(await readFile(join(results, 'report.json'), 'utf8')) as SuiteReport;
    expect(report).toMatchObject({ state: 'interrupted', current: 'orphan-multipath-path-fails', interrupted: { by: 'a run on lab unit' } });
    expect(await readFile(join(results, 'summary.md'), 'utf8')).toMatch(/^## brick-lab: interrupted\n\n\*\*INTERRUPTED during orphan-multipath-path-fails: the run's process \(pid \d+\) ended without finishing/);
    expect(await readClaim('unit')).toEqual(mine);
    expect(mine.pid).toBe(process.pid);
    await releaseLab('unit');
    expect(await readClaim('unit')).toBeNull();
  });

  it('is not taken for alive when its pid now belongs to another process', async () => {
    const c = await leaveClaim(process.ppid, '1');
    expect(claimAlive(c)).toBe(false);
    expect(claimAlive({ ...c, startTicks: null })).toBe(true);
  });

  it('leaves a finished report, and one another run has overwritten, as they are', async () => {
    const pid = deadPid();
    const c = await leaveClaim(pid);
    await writeFile(join(results, 'report.json'), JSON.stringify({ ...running(pid), state: 'finished' }));
    expect(await markInterrupted(c, 'brick-lab down')).toBeNull();
    await writeFile(join(results, 'report.json'), JSON.stringify(running(pid + 1)));
    expect(await markInterrupted(c, 'brick-lab down')).toBeNull();
    expect(JSON.parse(await readFile(join(results, 'report.json'), 'utf8'))).toMatchObject({ state: 'running' });
  });
});

describe('a claim whose process still runs', () => {
  it('refuses a second run on the lab (LAB_BUSY) and touches nothing', async () => {
    const stat = await readFile(`/proc/${process.ppid}/stat`, 'utf8');
    await leaveClaim(process.ppid, stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!);
    let restored = 0;
    await expect(claimLab('unit', { tag: 'run', resultsDir: join(state, 'next') }, async () => (restored++, []), () => undefined)).rejects.toMatchObject({ code: 'LAB_BUSY', message: expect.stringContaining(`(pid ${process.ppid})`) });
    expect(restored).toBe(0);
    expect(JSON.parse(await readFile(join(results, 'report.json'), 'utf8'))).toMatchObject({ state: 'running' });
    expect((await readClaim('unit'))!.pid).toBe(process.ppid);
    // Not ours: release leaves it.
    await releaseLab('unit');
    expect((await readClaim('unit'))!.pid).toBe(process.ppid);
  });
});

describe('an unfinished report, rendered', () => {
  it('never reads as green: the table, the summary and JUnit say it did not finish', () => {
    const r: SuiteReport = { ...running(42), state: 'interrupted', interrupted: { detectedAt: '2026-12-03T05:00:00.000Z', by: 'brick-lab down' } };
    expect(renderTable(r)).toContain('INTERRUPTED during orphan-multipath-path-fails');
    expect(renderMarkdown(r)).toMatch(/^## brick-lab: interrupted/);
    const junit = renderJunit(r);
    expect(junit).toContain('errors="1"');
    expect(junit).toMatch(/<testcase classname="brick-lab.run" name="orphan-multipath-path-fails" time="0"><error message="INTERRUPTED/);
    expect(renderMarkdown({ ...r, state: 'finished', current: null })).toMatch(/^## brick-lab: no orphans/);
  });
});
