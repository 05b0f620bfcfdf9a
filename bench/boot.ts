/**
 * Boot benchmark: seconds from `up` to each node's agent answering "ready", the guest's own boot
 * timeline (what dominates), and each QEMU process's RSS. The default three-node lab started from
 * its templates (src/lab/providers/qemu/template.ts) is measured against the same lab booted
 * (BRICK_LAB_TEMPLATES=0) and a one-node lab in the same run, and all against a floor.
 *
 *   node dist/bench/boot.js [--rounds N] [--guest bookworm|trixie]
 */
import { readFile, readdir, mkdtemp, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { probeBoot, type Accel } from '../src/lab/accel.js';
import { ensureImage } from '../src/lab/image/build.js';
import { DEFAULT_TOPOLOGY, down, labClient } from '../src/lab/lab.js';
import { loadTopology, renderTopology, withGuest } from '../src/lab/topology.js';
import { checkGuest, DEFAULT_GUEST, loadRecipe } from '../src/lab/image/recipe.js';
import { up } from '../src/lab/up.js';
import { setQuiet } from '../src/system/log.js';
import { cacheDir } from '../src/system/paths.js';

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

// --guest: the guest every node runs (default bookworm).
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '2' }, guest: { type: 'string', default: DEFAULT_GUEST } } });
checkGuest(values.guest, '--guest');

async function round(name: string, topologyFile: string): Promise<{ total: number; nodes: NodeFigure[]; accel: Accel }> {
  const topology = withGuest(await loadTopology(topologyFile), values.guest);
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
  process.stdout.write('  node        ready_s  rss_MiB  peak_MiB  guest uptime at: stage2 udev template restored network agent listening role ready\n');
  for (const n of r.nodes) {
    const t = n.timeline;
    const restored = Object.keys(t).find((k) => k.startsWith('restored:'));
    const f = (k: string | undefined): string => (k === undefined || t[k] === undefined ? '-' : t[k]!.toFixed(1)).padStart(6);
    process.stdout.write(
      `  ${n.node.padEnd(11)} ${n.readySeconds.toFixed(1).padStart(7)}  ${String(n.rssMiB).padStart(7)}  ${String(n.hwmMiB).padStart(8)}  ${' '.repeat(16)}${f('stage2')}${f('udev')}${f('template')}${f(restored)}${f('network')}${f(restored ? 'agent-woken' : 'agent-started')}${f('agent-listening')}${f('role')}${f('ready')}\n`,
    );
  }
}

/** The templates in the cache (their state files), to tell whether a round made some. */
async function templateStates(): Promise<string[]> {
  const dir = join(cacheDir(), 'templates');
  const shapes = await readdir(dir).catch(() => [] as string[]);
  const out: string[] = [];
  for (const s of shapes) for (const f of await readdir(join(dir, s)).catch(() => [] as string[])) if (f.endsWith('.state')) out.push(`${s}/${f}`);
  return out.sort();
}

const rounds = Math.max(1, Number(values.rounds));
setQuiet(true);
process.stdout.write(`boot benchmark: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), ${rounds} round(s), guest ${values.guest} (kernel ${loadRecipe(values.guest).recipe.kernel.release})\n`);

const dir = await mkdtemp(join(tmpdir(), 'brick-bench-'));
const single = join(dir, 'single.yaml');
await writeFile(single, renderTopology({ name: 'bench-one', nodes: [{ name: 'compute-1', role: 'compute' }] }));

// First a round that makes the lab's templates if the cache has none (what a first `up` on a
// machine pays once), then the measured rounds from templates, then the same lab booted.
const before = await templateStates();
const first = await round('bench-three', DEFAULT_TOPOLOGY);
const made = (await templateStates()).filter((t) => !before.includes(t));
print(made.length > 0 ? `three-node default lab, first up (made ${made.length} template(s): ${made.join(', ')})` : 'three-node default lab, first up (templates already in the cache)', first);
const totals: number[] = [];
for (let i = 1; i <= rounds; i++) {
  const r = await round('bench-three', DEFAULT_TOPOLOGY);
  totals.push(r.total);
  print(`three-node default lab from its templates, round ${i}`, r);
}
const bootedTotals: number[] = [];
process.env.BRICK_LAB_TEMPLATES = '0';
for (let i = 1; i <= rounds; i++) {
  const r = await round('bench-three', DEFAULT_TOPOLOGY);
  bootedTotals.push(r.total);
  print(`three-node default lab booted (BRICK_LAB_TEMPLATES=0), round ${i}`, r);
}
const one = await round('bench-one', single);
print('one-node lab (same host, same run)', one);
// The floor: the same kernel and initramfs, three at once as in the lab, with nothing to do but
// reach stage 1's userland (its modules loaded) and power off: what no change to stage 2, udev or
// the agent can go below. QEMU start to end, under the lab's accelerator.
const image = await ensureImage({ guest: values.guest });
const floors = await Promise.all([1, 2, 3].map(() => probeBoot(image, one.accel, 120_000)));
const floor = Math.max(...floors.map((f) => f.seconds));
const avg = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const mean = avg(totals);
process.stdout.write(
  `\nfloor (kernel + initramfs to stage 1's userland, three at once, ${one.accel.toUpperCase()}): ${floors.map((f) => (f.ok ? `${f.seconds.toFixed(1)} s` : `failed (${f.detail})`)).join(', ')}\n`,
);
process.stdout.write(
  `\nsummary: three nodes ready in ${mean.toFixed(1)} s from their templates (mean of ${rounds}; min ${Math.min(...totals).toFixed(1)}), ${avg(bootedTotals).toFixed(1)} s booted (min ${Math.min(...bootedTotals).toFixed(1)}), first up ${first.total.toFixed(1)} s${made.length > 0 ? ' (templates made)' : ''}; one node booted alone ${one.total.toFixed(1)} s; from templates at ${(mean / floor).toFixed(1)}x the floor (${floor.toFixed(1)} s), booted at ${(avg(bootedTotals) / floor).toFixed(1)}x\n`,
);
