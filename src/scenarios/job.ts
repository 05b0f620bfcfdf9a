/**
 * A run's claim on a lab (`brick-lab run`, `brick-lab validate`): while scenarios run, the lab's
 * state directory holds job.json naming the process and where its report goes, and the report is
 * rewritten as each scenario ends (state "running"). A run killed in the middle of a scenario
 * (volumes attached, a path down) leaves both behind. What finds them after the process is gone,
 * the next run on the lab or `down`, marks the report interrupted; the next run also puts the lab
 * back as a fresh one is (restoreLab in runner.ts) before it starts. A claim whose process still
 * runs makes a second run refuse the lab rather than pull volumes from under the first.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BrickError } from '../system/errors.js';
import { labDir } from '../system/paths.js';
import { writeReport } from './report.js';
import type { SuiteReport } from './results.js';

export interface JobClaim {
  pid: number;
  /** The process's start time (field 22 of /proc/PID/stat): a pid reused by another process is not this one. */
  startTicks: string | null;
  tag: string;
  startedAt: string;
  resultsDir: string;
}

const claimFile = (lab: string): string => join(labDir(lab), 'job.json');

function startTicks(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** True when the process that made the claim is still running. */
export function claimAlive(c: JobClaim): boolean {
  const ticks = startTicks(c.pid);
  return ticks !== null && (c.startTicks === null || ticks === c.startTicks);
}

export async function readClaim(lab: string): Promise<JobClaim | null> {
  const file = claimFile(lab);
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(await readFile(file, 'utf8')) as JobClaim;
  } catch {
    return null;
  }
}

/**
 * The report of a claim's run, marked interrupted when it still says running (a finished report,
 * or one another run has since overwritten, is left alone). Returns the report file, or null.
 */
export async function markInterrupted(c: JobClaim, by: string): Promise<string | null> {
  const file = join(c.resultsDir, 'report.json');
  let report: SuiteReport;
  try {
    report = JSON.parse(await readFile(file, 'utf8')) as SuiteReport;
  } catch {
    return null;
  }
  if (report.state !== 'running' || report.pid !== c.pid) return null;
  report.state = 'interrupted';
  report.interrupted = { detectedAt: new Date().toISOString(), by };
  await writeReport(report, c.resultsDir);
  return file;
}

/**
 * Claim a lab for a run. A claim left by a process that is gone: its report is marked
 * interrupted, and `restore` puts the lab back before this run starts (what it did is said
 * through `say`). A claim whose process runs: LAB_BUSY.
 */
export async function claimLab(lab: string, claim: Omit<JobClaim, 'pid' | 'startTicks' | 'startedAt'>, restore: () => Promise<string[]>, say: (line: string) => void): Promise<JobClaim> {
  const old = await readClaim(lab);
  if (old && old.pid !== process.pid) {
    if (claimAlive(old)) {
      throw new BrickError('LAB_BUSY', `lab ${lab} is in use by a ${old.tag} started at ${old.startedAt} (pid ${old.pid})`, {
        hint: `wait for it to end, or run on another lab (--name); brick-lab down --name ${lab} takes the lab from under it`,
      });
    }
    const report = await markInterrupted(old, `a ${claim.tag} on lab ${lab}`);
    say(`the ${old.tag} started at ${old.startedAt} (pid ${old.pid}) on this lab was interrupted${report ? `; its report now says so: ${report}` : ''}; putting the lab back first`);
    for (const line of await restore()) say(`  ${line}`);
  }
  const mine: JobClaim = { pid: process.pid, startTicks: startTicks(process.pid), startedAt: new Date().toISOString(), ...claim };
  await writeFile(claimFile(lab), `${JSON.stringify(mine, null, 2)}\n`);
  return mine;
}

/** Give a lab back at the end of a run (only this process's own claim). */
export async function releaseLab(lab: string): Promise<void> {
  const c = await readClaim(lab);
  if (c && c.pid === process.pid) await rm(claimFile(lab), { force: true });
}
