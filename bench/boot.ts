/**
 * Boot benchmark: seconds from `up` to each node's agent answering "ready", the guest's own boot
 * timeline (what dominates), and each QEMU process's RSS. The default three-node lab is measured
 * against a one-node lab in the same run, which shows what running three TCG guests on this
 * host's cores costs over one.
 *
 *   node dist/bench/boot.js [--rounds N]
 */
import { readFile, mkdtemp, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { probeBoot, type Accel } from '../src/lab/accel.js';
import { ensureImage } from '../src/lab/image/build.js';
import { DEFAULT_TOPOLOGY, down, labClient } from '../src/lab/lab.js';
import { loadTopology, renderTopology } from '../src/lab/topology.js';
import { up } from '../src/lab/up.js';
import { setQuiet } from '../src/system/log.js';

interface NodeFigure {
  node: string;
  readySeconds: number;
  rssMiB: number;
  hwmMiB: number;
  timeline: Record<string, number>;
}

async function rss(pid: number): Promise<{ rss: number; hwm: number }> {
  const s = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? 0);
  return { rss: Math.round(kb('VmRSS') / 1024), hwm: Math.round(kb('VmHWM') / 1024) };
}

async function round(name: string, topologyFile: string): Promise<{ total: number; nodes: NodeFigure[]; accel: Accel }> {
  const topology = await loadTopology(topologyFile);
  const t0 = Date.now();
  const rec = await up(topology, { topologyFile, name });
  const total = (Date.now() - t0) / 1000;
  try {
    const nodes: NodeFigure[] = [];
    for (const n of rec.nodes) {
      const client = await labClient(rec, n.name);
      const h = await client.health();
      const mem = await rss(n.pid!);
      nodes.push({
        node: n.name,
        readySeconds: (Date.parse(n.readyAt!) - t0) / 1000,
        rssMiB: mem.rss,
        hwmMiB: mem.hwm,
        timeline: Object.fromEntries(h.timeline.map((t) => [t.step, t.uptimeSeconds])),
      });
    }
    return { total, nodes, accel: rec.accel };
  } finally {
    await down(rec.name, { quiet: true, keepLogs: false });
  }
}

function print(label: string, r: { total: number; nodes: NodeFigure[]; accel: string }): void {
  process.stdout.write(`\n${label} (${r.accel.toUpperCase()}): all nodes ready ${r.total.toFixed(1)} s after up\n`);
  process.stdout.write('  node        ready_s  rss_MiB  peak_MiB  guest uptime at: stage2 network agent listening udev role ready\n');
  for (const n of r.nodes) {
    const t = n.timeline;
    const f = (k: string): string => (t[k] === undefined ? '-' : t[k]!.toFixed(1)).padStart(6);
    process.stdout.write(
      `  ${n.node.padEnd(11)} ${n.readySeconds.toFixed(1).padStart(7)}  ${String(n.rssMiB).padStart(7)}  ${String(n.hwmMiB).padStart(8)}  ${' '.repeat(16)}${f('stage2')}${f('network')}${f('agent-started')}${f('agent-listening')}${f('udev')}${f('role')}${f('ready')}\n`,
    );
  }
}

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '2' } } });
const rounds = Math.max(1, Number(values.rounds));
setQuiet(true);
process.stdout.write(`boot benchmark: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), ${rounds} round(s)\n`);

const dir = await mkdtemp(join(tmpdir(), 'brick-bench-'));
const single = join(dir, 'single.yaml');
await writeFile(single, renderTopology({ name: 'bench-one', nodes: [{ name: 'compute-1', role: 'compute' }] }));

const totals: number[] = [];
for (let i = 1; i <= rounds; i++) {
  const r = await round('bench-three', DEFAULT_TOPOLOGY);
  totals.push(r.total);
  print(`three-node default lab, round ${i}`, r);
}
const one = await round('bench-one', single);
print('one-node lab (same host, same run)', one);
// The floor: the same kernel and initramfs, three at once as in the lab, with nothing to do but
// reach stage 1's userland (its modules loaded) and power off: what no change to stage 2, udev or
// the agent can go below. QEMU start to end, under the lab's accelerator.
const image = await ensureImage();
const floors = await Promise.all([1, 2, 3].map(() => probeBoot(image, one.accel, 120_000)));
const floor = Math.max(...floors.map((f) => f.seconds));
const mean = totals.reduce((a, b) => a + b, 0) / totals.length;
process.stdout.write(
  `\nfloor (kernel + initramfs to stage 1's userland, three at once, ${one.accel.toUpperCase()}): ${floors.map((f) => (f.ok ? `${f.seconds.toFixed(1)} s` : `failed (${f.detail})`)).join(', ')}\n`,
);
process.stdout.write(`\nsummary: three nodes ready in ${mean.toFixed(1)} s (mean of ${rounds}; min ${Math.min(...totals).toFixed(1)}), one node alone ${one.total.toFixed(1)} s; the lab at ${(mean / floor).toFixed(1)}x the floor (${floor.toFixed(1)} s)\n`);
