import { resolve } from 'node:path';
import { labVersions } from '../lab/lab.js';
import { labFor } from '../lab/session.js';
import type { Topology } from '../lab/topology.js';
import type { Scenario } from './catalog.js';
import { emitReport } from './report.js';
import { ALL_SCENARIOS, checkNeeds, runSuite, selectScenarios } from './runner.js';
import { runsAlone } from './schedule.js';
import { BrickError } from '../system/errors.js';

export interface RunOptions {
  /** The topology the CLI loaded (used when the lab is brought up), and where from. */
  topology: Topology;
  /** --guest: a running lab of another guest is refused. */
  guest?: string;
  topologyFile: string;
  name: string;
  keep: boolean;
  json: boolean;
  /** Scenario or set names; default: the "standard" set of lab/scenarios.yaml. */
  scenarios?: string[];
  resultsDir?: string;
  /** "K/N": run only the K-th of N interleaved shares of the chosen scenarios (CI matrices). */
  shard?: string;
  /** At most this many scenarios at once, each on a compute of its own (default 1). */
  jobs?: number;
  signal?: AbortSignal;
}

/** The K-th of N shares of a list, interleaved so that each share gets a mix of scenario kinds. */
export function shardOf<T>(items: T[], shard: string): T[] {
  const m = /^(\d+)\/(\d+)$/.exec(shard);
  const k = m ? Number(m[1]) : NaN;
  const n = m ? Number(m[2]) : NaN;
  if (!m || n < 1 || k < 1 || k > n) {
    throw new BrickError('USAGE', `--shard must be K/N with 1 <= K <= N (got ${JSON.stringify(shard)})`, { hint: 'for example --shard 1/2 and --shard 2/2 in two CI jobs' });
  }
  return items.filter((_, i) => i % n === k - 1);
}

export const DEFAULT_RESULTS = 'results/run';

/** When a scenario runs alone with --jobs (schedule.ts): on a lab of any size, or on the default lab of two computes. */
function alone(s: Scenario): string {
  if (runsAlone(s, Number.POSITIVE_INFINITY)) return ', runs alone with --jobs';
  return runsAlone(s) ? `, runs alone with --jobs on a lab of ${s.needs.computes} computes` : '';
}

/** `brick-lab run --list`: every scenario with what it needs, and where its sequence comes from. */
export function listScenarios(): string {
  const w = Math.max(...ALL_SCENARIOS.map((s) => s.name.length));
  const indent = ' '.repeat(w + 2);
  const lines = (s: Scenario): string[] => [
    `${s.name.padEnd(w)}  ${s.kind.padEnd(12)} computes ${s.needs.computes}, data networks ${s.needs.dataNetworks}${alone(s)}`,
    `${indent}${s.title}`,
    ...(s.refs.length > 0 ? [`${indent}see: ${s.refs.join('; ')}`] : []),
  ];
  return `${ALL_SCENARIOS.flatMap(lines).join('\n')}\n`;
}

/**
 * The main job: bring the lab up (or reuse a running one), run the chosen scenarios with
 * progress per scenario, print the table, write report.json / junit.xml / summary.md, tear
 * down unless --keep. Non-zero when any scenario failed or left something behind.
 */
export async function runMain(o: RunOptions): Promise<number> {
  const chosen = selectScenarios(o.scenarios?.length ? o.scenarios : ['standard']);
  const scenarios = o.shard ? shardOf(chosen, o.shard) : chosen;
  const resultsDir = resolve(o.resultsDir ?? DEFAULT_RESULTS);
  const session = { name: o.name, topology: o.topology, topologyFile: o.topologyFile, tag: 'run', keep: o.keep, check: (t: Topology) => checkNeeds(t, scenarios), ...(o.guest ? { guest: o.guest } : {}), ...(o.signal ? { signal: o.signal } : {}) };
  return labFor(session, async (rec) => {
    const { nodes, kernel } = await labVersions(rec);
    const report = await runSuite(rec, scenarios, { resultsDir, tag: 'scenario', kernel, nodes, ...(o.jobs ? { jobs: o.jobs } : {}), ...(o.signal ? { signal: o.signal } : {}) });
    return emitReport(report, resultsDir, o.json, 'run');
  });
}
