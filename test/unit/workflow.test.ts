/**
 * The CI workflow is checked here, not just on GitHub: it must be a valid workflow
 * (per action-validator's JSON schemas), it must have the shape we rely on (cancelled
 * superseded runs, per-step timeouts, cached images, logs on failure), and it must
 * run exactly .ci/run, which in turn runs the README's test command.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DEFAULT_GUEST, guestNames } from '../../src/lab/image/recipe.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const WORKFLOW = join(ROOT, '.github', 'workflows', 'e2e.yml');
const CI_RUN = join(ROOT, '.ci', 'run');
const README = join(ROOT, 'README.md');
const TEST_COMMAND = 'scripts/bootstrap && npm test';
/** The test command .ci/run would run with these variables (BRICK_LAB_CI_DRY prints it). */
const dry = (env: Record<string, string>) =>
  spawnSync('bash', [CI_RUN], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, BRICK_LAB_SHARD: '', BRICK_LAB_CI_GUEST: '', ...env, BRICK_LAB_CI_DRY: '1' } });

// @action-validator/core is a CommonJS wrapper around a WASM build of the validator.
type ValidationState = { actionType: string; errors: unknown[] };
const validator = createRequire(import.meta.url)('@action-validator/core') as {
  validateWorkflow(src: string): ValidationState;
};

const source = readFileSync(WORKFLOW, 'utf8');

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
  'timeout-minutes'?: unknown;
}

/** The valid workflow with one mistake spliced in; fails loudly if the splice misses. */
function breakWorkflow(search: string | RegExp, replacement: string): string {
  const broken = source.replace(search, replacement);
  expect(broken, `could not splice a mistake at ${String(search)}`).not.toBe(source);
  return broken;
}

const BROKEN: Array<[string, () => string]> = [
  ['a non-numeric step timeout', () => breakWorkflow(/timeout-minutes: 5\n/, 'timeout-minutes: "abc"\n')],
  ['a misspelled runs-on', () => breakWorkflow('runs-on: ubuntu-latest', 'run-on: ubuntu-latest')],
  ['an unknown top-level key', () => breakWorkflow('concurrency:', 'concurency:')],
];

describe('e2e workflow validates with action-validator', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'brick-lab-workflow-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('has no errors (core API)', () => {
    const result = validator.validateWorkflow(source);
    expect(result.actionType).toBe('workflow');
    expect(result.errors).toEqual([]);
  });

  it.each(BROKEN)('rejects %s (core API)', (_what, make) => {
    expect(validator.validateWorkflow(make()).errors.length).toBeGreaterThan(0);
  });

  // The same checks through the CLI on files, as a pre-commit hook would run it.
  const cli = join(ROOT, 'node_modules', '.bin', 'action-validator');
  const runCli = (file: string) =>
    spawnSync(process.execPath, [cli, file], { encoding: 'utf8', timeout: 30_000 });

  it('has no errors (CLI)', () => {
    const r = runCli(WORKFLOW);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it.each(BROKEN)('rejects %s (CLI, temp file)', (what, make) => {
    const file = join(tmp, `${what.replace(/\W+/g, '-')}.yml`);
    writeFileSync(file, make());
    const r = runCli(file);
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stderr).errors.length).toBeGreaterThan(0);
  });
});

describe('e2e workflow shape', () => {
  const wf = parse(source);
  const steps: Step[] = wf.jobs.e2e.steps;

  it('runs on push and pull_request', () => {
    expect(Object.keys(wf.on)).toEqual(expect.arrayContaining(['push', 'pull_request']));
  });

  it('cancels superseded runs per workflow and ref', () => {
    expect(wf.concurrency['cancel-in-progress']).toBe(true);
    expect(wf.concurrency.group).toContain('github.workflow');
    expect(wf.concurrency.group).toContain('github.ref');
  });

  it('bounds the job and every step in time', () => {
    expect(wf.jobs.e2e['timeout-minutes']).toBe(90);
    for (const step of steps) {
      expect(step['timeout-minutes'], `step ${step.name ?? step.uses}`).toEqual(expect.any(Number));
    }
  });

  it('pins cache and state directories because the tests run as root', () => {
    expect(wf.env.BRICK_LAB_CACHE).toBe('${{ github.workspace }}/.brick-lab-cache');
    expect(wf.env.BRICK_LAB_STATE).toBe('${{ github.workspace }}/.brick-lab-state');
  });

  it('caches guest images keyed on the image recipe', () => {
    const cache = steps.find((s) => s.uses?.startsWith('actions/cache@'));
    expect(cache, 'an actions/cache step').toBeDefined();
    expect(cache!.with!.path).toBe('${{ env.BRICK_LAB_CACHE }}');
    expect(String(cache!.with!.key)).toMatch(/hashFiles\('images\/\*\*'/);
  });

  it('uploads console logs on failure and results always', () => {
    const uploads = steps.filter((s) => s.uses?.startsWith('actions/upload-artifact@'));
    expect(uploads.length).toBeGreaterThan(0);
    for (const u of uploads) expect(u.if).toMatch(/^(failure|always)\(\)$/);
    const logs = uploads.find((u) => String(u.with?.path).includes('/labs/*/logs/'));
    expect(logs?.if).toBe('failure()');
    const results = uploads.find((u) => u.with?.path === 'results/');
    expect(results?.with?.['if-no-files-found']).toBe('ignore');
  });

  it('runs the tests with .ci/run and nothing else, one leg per guest', () => {
    const runs = steps.filter((s) => s.run?.includes('.ci/run'));
    expect(runs).toHaveLength(1);
    expect(runs[0]!.run!.trim()).toBe('sudo -E env "PATH=$PATH" bash .ci/run');
    expect(String(runs[0]!.env?.CI)).toBe('true');
    // A leg for every guest the project has a recipe for, each naming its leg to .ci/run, each
    // with its own image cache and artifacts.
    expect(wf.jobs.e2e.strategy.matrix.guest).toEqual(guestNames());
    expect(wf.jobs.e2e.strategy['fail-fast']).toBe(false);
    expect(runs[0]!.env?.BRICK_LAB_CI_GUEST).toBe('${{ matrix.guest }}');
    expect(String(steps.find((s) => s.uses?.startsWith('actions/cache@'))!.with!.key)).toContain('${{ matrix.guest }}');
    for (const u of steps.filter((s) => s.uses?.startsWith('actions/upload-artifact@'))) expect(String(u.with?.name)).toContain('${{ matrix.guest }}');
    // No other step sneaks in its own copy of the test command.
    for (const s of steps) expect(s.run ?? '').not.toMatch(/npm (test|run test)|vitest|scripts\/bootstrap/);
  });
});

describe('the job summary and the sharded job', () => {
  const wf = parse(source);

  it('puts every scenario report and the test counts into the job summary, even when the tests failed', () => {
    for (const job of ['e2e', 'e2e-sharded']) {
      const summary = (wf.jobs[job].steps as Step[]).find((s) => s.run?.includes('GITHUB_STEP_SUMMARY'));
      expect(summary, `${job}: a job summary step`).toBeDefined();
      expect(summary!.if).toBe('always()');
      expect(summary!.run).toContain('results/scenarios/*/summary.md');
      expect(summary!.run).toContain('node scripts/test-summary.mjs results/tests.json');
    }
  });

  it('shards over a matrix, each job running .ci/run on its share', () => {
    const job = wf.jobs['e2e-sharded'];
    expect(job.strategy.matrix.shard).toEqual(['1/2', '2/2']);
    expect(job.strategy['fail-fast']).toBe(false);
    const runs = (job.steps as Step[]).filter((s) => s.run?.includes('.ci/run'));
    expect(runs).toHaveLength(1);
    expect(runs[0]!.run!.trim()).toBe('sudo -E env "PATH=$PATH" bash .ci/run');
    expect(runs[0]!.env?.BRICK_LAB_SHARD).toBe('${{ matrix.shard }}');
    for (const s of job.steps as Step[]) {
      expect(s['timeout-minutes'], `step ${s.name ?? s.uses}`).toEqual(expect.any(Number));
      expect(s.run ?? '').not.toMatch(/npm (test|run test)|vitest|scripts\/bootstrap/);
    }
    // Each shard's results under its own artifact name.
    const upload = (job.steps as Step[]).find((s) => s.uses?.startsWith('actions/upload-artifact@'));
    expect(String(upload?.with?.name)).toContain('${{ strategy.job-index }}');
  });

  it('.ci/run hands BRICK_LAB_SHARD to vitest as --shard', () => {
    expect(dry({ BRICK_LAB_SHARD: '2/2' }).stdout).toBe(`${TEST_COMMAND} -- --shard=2/2\n`);
  });
});

describe('.ci/run is the README test command', () => {
  const ciRun = readFileSync(CI_RUN, 'utf8');

  it('runs the whole suite when no leg is named; the guest legs split it in two that together are the whole', () => {
    expect(dry({}).stdout).toBe(`${TEST_COMMAND}\n`);
    const second = guestNames().filter((g) => g !== DEFAULT_GUEST);
    expect(second).toEqual(['trixie']);
    expect(dry({ BRICK_LAB_CI_GUEST: DEFAULT_GUEST }).stdout).toBe(`${TEST_COMMAND} -- --exclude test/e2e/guests.test.ts\n`);
    expect(dry({ BRICK_LAB_CI_GUEST: 'trixie' }).stdout).toBe(`${TEST_COMMAND} -- test/e2e/guests.test.ts\n`);
    expect(existsSync(join(ROOT, 'test/e2e/guests.test.ts'))).toBe(true);
    expect(dry({ BRICK_LAB_CI_GUEST: 'trixie', BRICK_LAB_SHARD: '1/2' }).stdout).toBe(`${TEST_COMMAND} -- --shard=1/2 test/e2e/guests.test.ts\n`);
  });

  it("splits the test files so that each runs in exactly one leg (vitest's own selection, listed)", () => {
    const files = (leg: string): string[] => {
      const args = dry({ BRICK_LAB_CI_GUEST: leg }).stdout.trim().split(' -- ')[1]?.split(' ') ?? [];
      const r = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'list', '--filesOnly', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout.trim().split('\n').filter(Boolean).sort();
    };
    const all = files('');
    const bookworm = files(DEFAULT_GUEST);
    const trixie = files('trixie');
    expect(trixie).toEqual(['[e2e] test/e2e/guests.test.ts']);
    expect(bookworm).not.toContain('[e2e] test/e2e/guests.test.ts');
    expect([...bookworm, ...trixie].sort()).toEqual(all);
    expect(all.filter((f) => f.startsWith('[e2e]')).length).toBeGreaterThan(5);
  }, 120_000);

  it('refuses a leg it has no guest for, naming the guests', () => {
    const r = dry({ BRICK_LAB_CI_GUEST: 'sid' });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('.ci/run: BRICK_LAB_CI_GUEST=sid: no such leg; the guests are bookworm (the default) and trixie (images/guests/)\n');
  });

  it('is a strict bash script that runs bootstrap then npm test from the repo root', () => {
    expect(ciRun.startsWith('#!/usr/bin/env bash\n')).toBe(true);
    expect(ciRun).toContain('set -euo pipefail');
    expect(ciRun).toContain('cd "$(dirname "$0")/.."');
    expect(ciRun).toContain('scripts/bootstrap');
    expect(ciRun).toContain('npm test');
    expect(ciRun).toContain(TEST_COMMAND);
  });

  it(`matches the command the README documents first (${TEST_COMMAND})`, () => {
    const readme = readFileSync(README, 'utf8');
    const firstBlock = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    expect(firstBlock).toContain(TEST_COMMAND);
  });
});
