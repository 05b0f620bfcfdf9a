import { readdir, readFile } from 'node:fs/promises';
import { processAlive, stopProcesses } from '../../../system/process.js';
import type { LabRecord } from '../../state.js';
import { qemuName } from './argv.js';

export interface QemuProcess {
  pid: number;
  lab: string;
  node: string;
}

/** Every running lab VM on this host (any lab), read from /proc so it works after a crash. */
export async function findQemuProcesses(lab?: string): Promise<QemuProcess[]> {
  const out: QemuProcess[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0');
    } catch {
      continue;
    }
    if (!argv[0]?.includes('qemu-system')) continue;
    const i = argv.indexOf('-name');
    const m = i >= 0 ? /^brick-lab:([^:]+):(.+)$/.exec(argv[i + 1] ?? '') : null;
    if (!m) continue;
    if (lab && m[1] !== lab) continue;
    out.push({ pid: Number(entry), lab: m[1]!, node: m[2]! });
  }
  return out;
}

/**
 * Stop every VM of a lab: the record's pids whose command line is still that lab's VM (pids are
 * reused), and every QEMU carrying the lab's -name. A QEMU still daemonizing (after a killed `up`)
 * can fork its child after the scan: stop what was found, then look again, until a scan finds
 * nothing new. Returns what it stopped.
 */
export async function stopLabVms(name: string, rec: LabRecord | null): Promise<string[]> {
  const removed: string[] = [];
  const pids = new Set<number>();
  for (const n of rec?.nodes ?? []) if (n.pid && processAlive(n.pid)) {
    const cmd = await readFile(`/proc/${n.pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(qemuName(name, n.name))) pids.add(n.pid);
  }
  for (const p of await findQemuProcesses(name)) pids.add(p.pid);
  const stopped = new Set<number>();
  for (let round = 0; pids.size > 0 && round < 5; round++) {
    await stopProcesses([...pids]);
    for (const p of pids) {
      stopped.add(p);
      removed.push(`qemu pid ${p}`);
    }
    pids.clear();
    for (const p of await findQemuProcesses(name)) if (!stopped.has(p.pid)) pids.add(p.pid);
  }
  return removed;
}
