import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { poll, type Clock } from './wait.js';

/** Alive and not a zombie (a zombie no longer holds taps or files; its parent just has not reaped it). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Send a signal to each pid; one that is gone already is no error. */
export function signalAll(pids: readonly number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // gone already
    }
  }
}

export interface TerminateOptions {
  /** Between SIGTERM and SIGKILL. */
  graceMs: number;
  /** How long to wait for SIGKILL to take effect. */
  killWaitMs: number;
  intervalMs: number;
  clock?: Clock;
}

/**
 * The one way brick-lab ends processes: SIGTERM to what `find` returns, up to `graceMs` for it to
 * go, then SIGKILL to what is left and up to `killWaitMs` more. `find` is asked again at every
 * look, so processes forked meanwhile are caught too. Returns every pid seen before the SIGKILL
 * and what outlived it (a process in uninterruptible sleep).
 */
export async function terminate(find: () => number[] | Promise<number[]>, o: TerminateOptions): Promise<{ seen: Set<number>; left: number[] }> {
  let left = await find();
  const seen = new Set(left);
  let record = true;
  const gone = async (): Promise<boolean> => {
    left = await find();
    if (record) for (const p of left) seen.add(p);
    return left.length === 0;
  };
  signalAll(left, 'SIGTERM');
  const clock = o.clock ? { clock: o.clock } : {};
  if (!(await poll(gone, { timeoutMs: o.graceMs, intervalMs: o.intervalMs, ...clock })).ok) {
    record = false;
    signalAll(left, 'SIGKILL');
    await poll(gone, { timeoutMs: o.killWaitMs, intervalMs: o.intervalMs, ...clock });
  }
  return { seen, left };
}

/** Stop these processes: SIGTERM, a grace period, then SIGKILL; resolves when all are gone (or 5 s after the SIGKILL). */
export async function stopProcesses(pids: readonly number[], graceMs = 5000, clock?: Clock): Promise<void> {
  await terminate(() => pids.filter(processAlive), { graceMs, killWaitMs: 5000, intervalMs: 50, ...(clock ? { clock } : {}) });
}

/**
 * The pids of every process whose environment holds `name=value` (zombies hold none): the whole
 * tree of a program started with that variable set, also what left its process group or session.
 */
export async function processesWithEnv(name: string, value: string): Promise<number[]> {
  const needle = Buffer.from(`\0${name}=${value}\0`);
  const out: number[] = [];
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return out;
  }
  await Promise.all(
    entries.map(async (e) => {
      if (!/^\d+$/.test(e) || Number(e) === process.pid) return;
      const env = await readFile(`/proc/${e}/environ`).catch(() => null);
      if (env && Buffer.concat([Buffer.from([0]), env]).includes(needle)) out.push(Number(e));
    }),
  );
  return out.sort((a, b) => a - b);
}

/**
 * End a process tree marked by an environment variable (see processesWithEnv): SIGTERM, up to
 * `graceMs` to go, then SIGKILL and up to 1 s more. Returns how many processes there were and
 * which (if any) outlived SIGKILL.
 */
export async function killProcessTree(envName: string, envValue: string, graceMs: number): Promise<{ ended: number; left: number[] }> {
  const { seen, left } = await terminate(() => processesWithEnv(envName, envValue), { graceMs, killWaitMs: 1000, intervalMs: 25 });
  return { ended: seen.size, left };
}
