/**
 * Provider benchmark: the same three-node lab (one target, two computes, two data networks)
 * brought up with every node on the qemu provider and with every node on the docker provider,
 * alternating in one run on one machine. Per round: seconds from `up` to every agent ready, each
 * node's ready time, the memory of each node's processes (QEMU, plus the container's relay for
 * docker nodes), and the seconds `down` takes. Needs a running Docker Engine.
 *
 *   node dist/bench/providers.js [--rounds N]
 */
import { readFile, mkdtemp, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { down } from '../src/lab/lab.js';
import { dockerClient, requireEngine } from '../src/lab/providers/docker/engine.js';
import { ensureNodeImage } from '../src/lab/providers/docker/image.js';
import { findQemuProcesses } from '../src/lab/providers/qemu/processes.js';
import { loadTopology, renderTopology, type ProviderName } from '../src/lab/topology.js';
import { up } from '../src/lab/up.js';
import { setQuiet } from '../src/system/log.js';

interface Round {
  provider: ProviderName;
  upSeconds: number;
  downSeconds: number;
  ready: Record<string, number>;
  qemuRssMiB: Record<string, number>;
}

async function rssMiB(pid: number): Promise<number> {
  const s = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Math.round(Number(/^VmRSS:\s+(\d+)/m.exec(s)?.[1] ?? 0) / 1024);
}

async function round(provider: ProviderName, dir: string): Promise<Round> {
  const name = `bench-${provider}`;
  const file = join(dir, `${provider}.yaml`);
  await writeFile(
    file,
    renderTopology({
      name,
      nodes: [
        { name: 'target-1', role: 'target', provider },
        { name: 'compute-1', role: 'compute', provider },
        { name: 'compute-2', role: 'compute', provider },
      ],
    }),
  );
  const topology = await loadTopology(file);
  const t0 = Date.now();
  const rec = await up(topology, { topologyFile: file, name });
  const upSeconds = (Date.now() - t0) / 1000;
  const ready: Record<string, number> = {};
  const qemuRssMiB: Record<string, number> = {};
  let downSeconds = 0;
  try {
    for (const n of rec.nodes) ready[n.name] = (Date.parse(n.readyAt!) - t0) / 1000;
    for (const p of await findQemuProcesses(name)) qemuRssMiB[p.node] = await rssMiB(p.pid);
  } finally {
    const t1 = Date.now();
    await down(name, { quiet: true, keepLogs: false });
    downSeconds = (Date.now() - t1) / 1000;
  }
  return { provider, upSeconds, downSeconds, ready, qemuRssMiB };
}

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '2' } } });
const rounds = Math.max(1, Number(values.rounds));
setQuiet(true);
const engine = await requireEngine();
process.stdout.write(`provider benchmark: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), Docker Engine ${engine.version}, ${rounds} round(s) each, alternating\n`);
const ti = Date.now();
const image = await ensureNodeImage(dockerClient());
process.stdout.write(`node image ${image.tag} ready in ${((Date.now() - ti) / 1000).toFixed(1)} s (built or imported only when missing)\n`);

const dir = await mkdtemp(join(tmpdir(), 'brick-bench-providers-'));
const all: Round[] = [];
for (let i = 1; i <= rounds; i++) {
  for (const provider of (i % 2 ? ['qemu', 'docker'] : ['docker', 'qemu']) as ProviderName[]) {
    const r = await round(provider, dir);
    all.push(r);
    const nodes = Object.keys(r.ready)
      .map((n) => `${n} ${r.ready[n]!.toFixed(1)} s/${r.qemuRssMiB[n] ?? '?'} MiB`)
      .join(', ');
    process.stdout.write(`round ${i} ${provider.padEnd(6)} up ${r.upSeconds.toFixed(1)} s, down ${r.downSeconds.toFixed(1)} s; ready/QEMU RSS: ${nodes}\n`);
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
process.stdout.write('\nprovider  up_median_s  up_min_s  down_median_s  qemu_rss_median_MiB\n');
const summary: Record<string, number> = {};
for (const p of ['qemu', 'docker'] as ProviderName[]) {
  const rs = all.filter((r) => r.provider === p);
  const up = median(rs.map((r) => r.upSeconds));
  summary[p] = up;
  const rss = median(rs.flatMap((r) => Object.values(r.qemuRssMiB)));
  process.stdout.write(
    `${p.padEnd(8)}  ${up.toFixed(1).padStart(11)}  ${Math.min(...rs.map((r) => r.upSeconds)).toFixed(1).padStart(8)}  ${median(rs.map((r) => r.downSeconds)).toFixed(1).padStart(13)}  ${String(rss).padStart(19)}\n`,
  );
}
process.stdout.write(`\ndocker / qemu lab up: ${(summary.docker! / summary.qemu!).toFixed(2)}x\n`);
