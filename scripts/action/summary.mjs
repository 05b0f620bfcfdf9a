#!/usr/bin/env node
// The action's summary step: the verdicts brick-lab wrote (RESULTS/summary.md) onto the job's
// summary page ($GITHUB_STEP_SUMMARY), or a line saying there is no report (the run stopped
// before writing one: its log says why). Usage: summary.mjs RESULTS
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const results = process.argv[2];
const target = process.env.GITHUB_STEP_SUMMARY;
if (!results || !target) {
  process.stderr.write('usage: GITHUB_STEP_SUMMARY=FILE summary.mjs RESULTS\n');
  process.exit(2);
}
const summary = join(results, 'summary.md');
appendFileSync(target, existsSync(summary) ? `${readFileSync(summary, 'utf8').trimEnd()}\n` : `**brick-lab**: no report in \`${results}\`: the run stopped before writing one (see the step's log).\n`);
