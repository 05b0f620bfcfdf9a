/**
 * Soak: attach and detach cycles over both computes of the default lab, mixing iSCSI and NVMe/TCP
 * on one and two paths, the host-wide oracle after every cycle (bench/soak-cycles.ts). Prints the
 * cycles done, the orphans found (goal 0), p50 and p99 cycle time, and each agent's resident
 * memory and open files at the start and the end (goal: flat within 10%).
 *
 *   npm run bench:soak -- [--cycles 500] [--name LAB]
 *
 * With --name of a running lab it runs there and leaves it up; without, it brings up the default
 * lab as bench-soak and takes it down at the end.
 */
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { down, isUp, readLabOrNull } from '../src/lab/lab.js';
import { loadTopology } from '../src/lab/topology.js';
import { up } from '../src/lab/up.js';
import { setQuiet } from '../src/system/log.js';
import { PROJECT_ROOT } from '../src/system/paths.js';
import { runSoak, soakReport } from './soak-cycles.js';

const { values } = parseArgs({ options: { cycles: { type: 'string', default: '500' }, name: { type: 'string' } } });
const cycles = Number(values.cycles);
if (!Number.isInteger(cycles) || cycles < 1) {
  process.stderr.write(`bench:soak: --cycles must be a whole number of at least 1 (got ${values.cycles})\n`);
  process.exit(2);
}
setQuiet(true);
const reuse = values.name !== undefined && (await isUp(values.name));
const name = values.name ?? 'bench-soak';
const topologyFile = join(PROJECT_ROOT, 'lab', 'default.yaml');
const rec = reuse ? (await readLabOrNull(name))! : await up(await loadTopology(topologyFile), { topologyFile, name });
const t0 = performance.now();
try {
  const r = await runSoak(rec, {
    cycles,
    // The agent closes sysfs descriptors unread for 10-20 s: measured again once that has passed.
    settleMs: 25_000,
    onCycle: (c) => {
      if (c.findings.length > 0 || (c.index + 1) % 25 === 0) process.stderr.write(`[soak] ${c.index + 1}/${cycles} ${c.kind} on ${c.node}: ${(c.ms / 1000).toFixed(2)} s${c.findings.length ? `, ${c.findings.length} FOUND` : ''}\n`);
    },
  });
  process.stdout.write(`soak on lab ${rec.name} (${rec.accel.toUpperCase()}, ${cpus().length} host cores), ${((performance.now() - t0) / 1000).toFixed(0)} s in all\n`);
  for (const line of soakReport(r)) process.stdout.write(`${line}\n`);
  process.exitCode = r.cycles.some((c) => c.findings.length > 0) ? 1 : 0;
} finally {
  if (!reuse) await down(name, { quiet: true });
}
