import { readFileSync } from 'node:fs';
import { poll, type Clock } from '../system/wait.js';

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

function signalAll(pids: readonly number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

/** SIGTERM, a grace period, then SIGKILL; resolves when every process is gone (or 5 s after the SIGKILL). */
export async function stopProcesses(pids: readonly number[], graceMs = 5000, clock?: Clock): Promise<void> {
  const allGone = (): boolean => !pids.some(processAlive);
  signalAll(pids, 'SIGTERM');
  await poll(allGone, { timeoutMs: graceMs, intervalMs: 100, ...(clock ? { clock } : {}) });
  signalAll(pids.filter(processAlive), 'SIGKILL');
  await poll(allGone, { timeoutMs: 5000, intervalMs: 50, ...(clock ? { clock } : {}) });
}
