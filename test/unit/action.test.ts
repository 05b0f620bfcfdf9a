/**
 * The reusable action (action.yml) and the workflow a connector repository copies
 * (examples/github-workflow/): valid per action-validator, the shape we rely on (every step a
 * script of this repository, inputs only through the environment), and the scripts themselves,
 * run for real where they need no lab. The e2e suite runs scripts/action/run.mjs against a lab.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
// @ts-expect-error: a plain ES module of the action's scripts, without types
import { actionArgv, InputError, PROTOCOLS as ACTION_PROTOCOLS } from '../../scripts/action/inputs.mjs';
import { PROTOCOLS } from '../../src/volume/protocol.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ACTION = join(ROOT, 'action.yml');
const EXAMPLE = join(ROOT, 'examples', 'github-workflow', 'brick-lab.yml');
const validator = createRequire(import.meta.url)('@action-validator/core') as {
  validateAction(src: string): { actionType: string; errors: unknown[] };
  validateWorkflow(src: string): { actionType: string; errors: unknown[] };
};
const source = readFileSync(ACTION, 'utf8');
const action = parse(source) as {
  inputs: Record<string, { default?: string }>;
  outputs: Record<string, { value: string }>;
  runs: { using: string; steps: Array<{ name: string; id?: string; uses?: string; run?: string; shell?: string; if?: string; env?: Record<string, string>; with?: Record<string, unknown> }> };
};
const argvOf = (env: Record<string, string>): { argv: string[]; results: string } => actionArgv(env) as { argv: string[]; results: string };

const tmp = mkdtempSync(join(tmpdir(), 'brick-lab-action-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('action.yml', () => {
  it('is a valid action (action-validator, core API and CLI) and a broken one is not', () => {
    expect(validator.validateAction(source)).toMatchObject({ actionType: 'action', errors: [] });
    const cli = spawnSync(process.execPath, [join(ROOT, 'node_modules', '.bin', 'action-validator'), ACTION], { encoding: 'utf8', timeout: 30_000 });
    expect([cli.status, cli.stderr]).toEqual([0, '']);
    for (const [from, to] of [['using: composite', 'using: compost'], ['    - name: Enable KVM\n      shell: bash\n', '    - name: Enable KVM\n']] as const) {
      const broken = source.replace(from, to);
      expect(broken).not.toBe(source);
      expect(validator.validateAction(broken).errors.length, from).toBeGreaterThan(0);
    }
  });

  it('runs scripts of this repository only, and never puts an input inside a shell line', () => {
    expect(action.runs.using).toBe('composite');
    for (const step of action.runs.steps.filter((s) => s.run !== undefined)) {
      expect(step.run, step.name).not.toMatch(/\$\{\{/);
      expect(step.run, step.name).toMatch(/\$GITHUB_ACTION_PATH\/scripts\/(action\/|bootstrap)|chown/);
    }
    for (const script of action.runs.steps.flatMap((s) => [...(s.run ?? '').matchAll(/\$GITHUB_ACTION_PATH\/(scripts\/[\w./-]+)/g)].map((m) => m[1]!))) {
      expect(() => readFileSync(join(ROOT, script)), script).not.toThrow();
    }
  });

  it('hands every input to the run step, and only inputs that exist', () => {
    const run = action.runs.steps.find((s) => s.id === 'run')!;
    const passed = Object.entries(run.env ?? {}).filter(([k]) => k.startsWith('INPUT_'));
    expect(passed.map(([k]) => k.slice('INPUT_'.length).toLowerCase()).sort()).toEqual(Object.keys(action.inputs).sort());
    for (const [k, v] of passed) expect(v, k).toBe(`\${{ inputs.${k.slice('INPUT_'.length).toLowerCase()} }}`);
    expect(Object.values(action.outputs).map((o) => o.value)).toEqual(['${{ steps.run.outputs.results }}', '${{ steps.run.outputs.exit-code }}']);
  });

  it('caches the guest image, and writes the summary and uploads the reports and console logs even when the run failed', () => {
    const steps = action.runs.steps;
    expect(steps.find((s) => s.uses?.startsWith('actions/cache@'))?.with?.key).toBe('${{ steps.key.outputs.key }}');
    const runAt = steps.findIndex((s) => s.id === 'run');
    for (const s of steps.slice(runAt + 1)) expect(s.if, s.name).toBe('always()');
    const upload = steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'))!;
    expect(String(upload.with?.path)).toContain('brick-lab-state/labs/*/logs/');
  });
});

describe('the example workflow', () => {
  const text = readFileSync(EXAMPLE, 'utf8');
  it('is a valid workflow that uses the action with inputs it has', () => {
    expect(validator.validateWorkflow(text)).toMatchObject({ actionType: 'workflow', errors: [] });
    const wf = parse(text) as { jobs: Record<string, { steps: Array<{ uses?: string; with?: Record<string, unknown> }> }> };
    const uses = Object.values(wf.jobs).flatMap((j) => j.steps).filter((s) => s.uses?.includes('/brick-lab@'));
    expect(uses.length).toBe(2);
    for (const s of uses) {
      for (const k of Object.keys(s.with ?? {})) expect(Object.keys(action.inputs), k).toContain(k);
      // What the action would run for it: a command line the inputs turn into without error.
      const env = Object.fromEntries(Object.entries(s.with ?? {}).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, String(v)]));
      expect(() => actionArgv(env)).not.toThrow();
    }
  });
});

describe("the action's inputs (scripts/action/inputs.mjs)", () => {
  it('turn into a brick-lab command line, one argument per word', () => {
    expect(argvOf({})).toEqual({ argv: ['run', '--results', 'brick-lab-results'], results: 'brick-lab-results' });
    expect(argvOf({ INPUT_COMMAND: 'run', INPUT_SCENARIOS: 'quick, orphan-lun-reuse\nfield', INPUT_TOPOLOGY: 'lab/mine.yaml', INPUT_JOBS: '2', INPUT_RESULTS: 'out' }).argv).toEqual([
      'run', '--results', 'out', '--topology', 'lab/mine.yaml', '--jobs', '2', '--scenario', 'quick', '--scenario', 'orphan-lun-reuse', '--scenario', 'field',
    ]);
    expect(argvOf({ INPUT_COMMAND: 'validate', INPUT_CONNECTOR: './my connector.py', INPUT_PROTOCOLS: 'iscsi nvmeof', INPUT_MULTIPATH: 'true' }).argv).toEqual([
      'validate', '--results', 'brick-lab-results', '--connector', './my connector.py', '--protocol', 'iscsi', '--protocol', 'nvmeof', '--multipath',
    ]);
    // A value with shell characters stays one argument: nothing here goes through a shell.
    expect(argvOf({ INPUT_COMMAND: 'validate', INPUT_CONNECTOR: '$(id); rm -rf /' }).argv).toContain('$(id); rm -rf /');
  });

  it('know the protocols brick-lab knows', () => {
    expect(ACTION_PROTOCOLS).toEqual([...PROTOCOLS]);
  });

  it('refuse what does not fit, naming the input and what is wrong', () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ INPUT_COMMAND: 'deploy' }, 'input command: "deploy" is not one of run, validate'],
      [{ INPUT_COMMAND: 'validate' }, 'input connector: validate needs one (a path in your repository, os-brick or builtin)'],
      [{ INPUT_COMMAND: 'run', INPUT_CONNECTOR: 'x' }, "input connector: only the validate command takes a connector (run runs brick-lab's scenarios with its own)"],
      [{ INPUT_COMMAND: 'run', INPUT_MULTIPATH: 'true' }, 'inputs protocols and multipath: only the validate command takes them (pick scenarios for run)'],
      [{ INPUT_COMMAND: 'validate', INPUT_CONNECTOR: 'x', INPUT_SCENARIOS: 'quick' }, 'input scenarios: only the run command takes scenarios (validate runs the checks of its protocols)'],
      [{ INPUT_COMMAND: 'validate', INPUT_CONNECTOR: 'x', INPUT_PROTOCOLS: 'iscsi rbd' }, 'input protocols: "rbd" is not one of iscsi, nvmeof, fc, local'],
      [{ INPUT_MULTIPATH: 'yes' }, 'input multipath: "yes" is not true or false'],
      [{ INPUT_JOBS: '0' }, 'input jobs: "0" is not a whole number from 1 to 64'],
      [{ INPUT_JOBS: '65' }, 'input jobs: "65" is not a whole number from 1 to 64'],
    ];
    for (const [env, message] of cases) {
      let caught: unknown;
      try {
        actionArgv(env);
      } catch (e) {
        caught = e;
      }
      expect(caught, message).toBeInstanceOf(InputError);
      expect((caught as Error).message).toBe(message);
    }
  });
});

describe("the action's scripts, run", () => {
  const node = (script: string, args: string[], env: Record<string, string>) =>
    spawnSync(process.execPath, [join(ROOT, 'scripts', 'action', script), ...args], { encoding: 'utf8', timeout: 60_000, cwd: tmp, env: { PATH: process.env.PATH ?? '', ...env } });

  it('run.mjs refuses a bad input before anything runs (exit 2, a GitHub error line)', () => {
    const out = join(tmp, 'out-bad');
    writeFileSync(out, '');
    const r = node('run.mjs', [], { INPUT_COMMAND: 'validate', GITHUB_OUTPUT: out });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('::error title=brick-lab::input connector: validate needs one (a path in your repository, os-brick or builtin)\n');
    expect(readFileSync(out, 'utf8')).toBe('');
  });

  it("run.mjs runs the CLI with the inputs' command line and hands its exit code on as an output", () => {
    const out = join(tmp, 'out-run');
    writeFileSync(out, '');
    // A scenario that does not exist: the CLI refuses it before it makes a lab.
    const r = node('run.mjs', [], { INPUT_COMMAND: 'run', INPUT_SCENARIOS: 'no-such-scenario', INPUT_RESULTS: 'res', GITHUB_OUTPUT: out });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('brick-lab run --results res --scenario no-such-scenario');
    expect(r.stderr).toContain('UNKNOWN_SCENARIO: no scenario or set is called "no-such-scenario"');
    expect(readFileSync(out, 'utf8')).toBe('results=res\nexit-code=1\n');
  });

  it("summary.mjs puts the run's summary.md on the job summary, or says there is none", () => {
    const summary = join(tmp, 'step-summary.md');
    writeFileSync(summary, '');
    expect(node('summary.mjs', [join(tmp, 'nothing')], { GITHUB_STEP_SUMMARY: summary }).status).toBe(0);
    expect(readFileSync(summary, 'utf8')).toBe(`**brick-lab**: no report in \`${join(tmp, 'nothing')}\`: the run stopped before writing one (see the step's log).\n`);
    const results = mkdtempSync(join(tmp, 'results-'));
    writeFileSync(join(results, 'summary.md'), '## brick-lab run\n\n| scenario | verdict |\n|---|---|\n| round-trip-iscsi-1path | passed |\n\n');
    expect(node('summary.mjs', [results], { GITHUB_STEP_SUMMARY: summary }).status).toBe(0);
    expect(readFileSync(summary, 'utf8')).toContain('| round-trip-iscsi-1path | passed |\n');
    expect(node('summary.mjs', [], { GITHUB_STEP_SUMMARY: summary }).status).toBe(2);
  });

  it("cache-key.mjs gives the same recipe the same key, written as a step output", () => {
    const a = node('cache-key.mjs', [], {});
    const b = node('cache-key.mjs', [], {});
    expect(a.stdout).toMatch(/^key=brick-lab-image-linux-[0-9a-f]{32}\n$/);
    expect(b.stdout).toBe(a.stdout);
    const out = join(tmp, 'out-key');
    writeFileSync(out, '');
    node('cache-key.mjs', [], { GITHUB_OUTPUT: out });
    expect(readFileSync(out, 'utf8')).toBe(a.stdout);
  });
});
