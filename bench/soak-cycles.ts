/**
 * Attach and detach cycles on a running lab, judged by the host-wide oracle after every one: the
 * soak benchmark (bench/soak.ts) and its CI-sized run in the e2e tests share this loop.
 *
 * The computes churn at once, each through its own share of the cycles: cycle i runs on compute
 * i mod n (n computes), and each compute takes the four kinds in turn (cycle i is kind
 * floor(i / n) mod 4): iSCSI on one path, iSCSI on two (dm-multipath), NVMe/TCP on one path,
 * NVMe/TCP on two (native multipath). The target serves both at once. Each cycle: a new volume on the target, a baseline kept on the compute, connect,
 * the volume's paths (must come within 60 s: by-path links are udev's), disconnect, the oracle with the baseline (volume-scoped and
 * host-wide: nothing may be left, nothing else may have gone), the volume deleted. The cycle's
 * time is from connect to the oracle's answer.
 *
 * Two things the soak keeps apart, as `run --jobs` does (src/scenarios/login-guard.ts): an iSCSI
 * login on one compute and an LIO target made or deleted for the other's cycle. LIO aborts a login
 * on a portal whose thread is told of another target's change; a 200-cycle soak without the guard
 * met it once, and that connect took 122 s (iscsid's retries) while the caller had given up at
 * 120 s. That is the target's doing, not the connector's, and what the soak measures is the
 * connector and the oracle. A connect that fails is still undone by the volume's properties: the
 * agent may finish it after the caller stopped waiting, and its disconnect runs after it.
 */
import type { ComputeClient } from '../src/agent/api/compute-client.js';
import type { TargetClient } from '../src/agent/api/target-client.js';
import type { AgentMemoryReply, DeviceInfo, Orphan, TargetVolume } from '../src/agent/api/types.js';
import { labClient } from '../src/lab/lab.js';
import { LoginGuard } from '../src/scenarios/login-guard.js';
import { poll } from '../src/system/wait.js';
import type { LabRecord } from '../src/lab/state.js';

export const SOAK_KINDS = [
  { protocol: 'iscsi', paths: 1 },
  { protocol: 'iscsi', paths: 2 },
  { protocol: 'nvmeof', paths: 1 },
  { protocol: 'nvmeof', paths: 2 },
] as const;

export interface AgentUse {
  node: string;
  pid: number;
  rssKiB: number;
  openFiles: number;
  /** The JavaScript heap the agent holds: in use after a full collection (POST /v1/agent/memory). */
  heapUsedKiB: number;
  /** What V8 has taken for its heap spaces (in use or not), after that collection; the new space on its own. */
  heapTotalKiB: number;
  newSpaceKiB: number;
  /** Held in the old space (objects that lived) and in the code space (compiled code, which grows as V8 optimises more of the agent). */
  oldHeldKiB: number;
  codeHeldKiB: number;
}

export interface SoakCycle {
  index: number;
  node: string;
  kind: string;
  ms: number;
  /** What the oracle found: orphans of the volume, then host-wide orphans and collateral. */
  findings: string[];
}

export interface SoakResult {
  cycles: SoakCycle[];
  agentsBefore: AgentUse[];
  /** Right after the last cycle. */
  agentsAfter: AgentUse[];
  /** After settleMs with nothing asked (the agent's sysfs descriptors unread 10-20 s are closed by then); null without. */
  agentsSettled: AgentUse[] | null;
  settleMs: number;
}

interface Node {
  name: string;
  run: (argv: string[]) => Promise<{ stdout: string }>;
  health: () => Promise<{ agent: { pid: number } }>;
  memory: () => Promise<AgentMemoryReply>;
}

/**
 * The agent's resident memory and open files, read from /proc in its node as it runs, then the
 * JavaScript heap it holds (in use after a full collection, which the RSS read comes before).
 */
export async function agentUse(n: Node): Promise<AgentUse> {
  const { pid } = (await n.health()).agent;
  const out = (await n.run(['sh', '-c', `grep '^VmRSS:' /proc/${pid}/status; ls /proc/${pid}/fd | wc -l`])).stdout;
  const rss = /VmRSS:\s+(\d+) kB/.exec(out);
  const files = out.trim().split('\n').pop();
  const m = await n.memory();
  const kib = (bytes: number): number => Math.round(bytes / 1024);
  const space = (name: string): { sizeBytes: number; usedBytes: number } => m.heapSpaces.find((x) => x.name === name) ?? { sizeBytes: 0, usedBytes: 0 };
  return {
    node: n.name,
    pid,
    rssKiB: rss ? Number(rss[1]) : Number.NaN,
    openFiles: Number(files),
    heapUsedKiB: kib(m.memory.heapUsed),
    heapTotalKiB: kib(m.memory.heapTotal),
    newSpaceKiB: kib(space('new_space').sizeBytes),
    oldHeldKiB: kib(space('old_space').usedBytes),
    codeHeldKiB: kib(space('code_space').usedBytes),
  };
}

const kindName = (k: (typeof SOAK_KINDS)[number]): string => `${k.protocol === 'iscsi' ? 'iSCSI' : 'NVMe/TCP'} ${k.paths} path${k.paths > 1 ? 's' : ''}`;

/** One percentile of a list of numbers (nearest rank). */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export async function runSoak(rec: LabRecord, opts: { cycles: number; prefix?: string; settleMs?: number; onCycle?: (c: SoakCycle) => void }): Promise<SoakResult> {
  const targetRec = rec.nodes.find((n) => n.role === 'target');
  if (!targetRec) throw new Error(`lab ${rec.name} has no target`);
  const target: TargetClient = (await labClient(rec, targetRec.name)).target;
  const computes: Array<{ name: string; client: ComputeClient }> = [];
  for (const n of rec.nodes.filter((x) => x.role === 'compute')) computes.push({ name: n.name, client: (await labClient(rec, n.name)).compute });
  if (computes.length === 0) throw new Error(`lab ${rec.name} has no compute`);
  const nodes: Node[] = [
    { name: targetRec.name, run: (argv) => target.run(argv), health: () => target.health(), memory: () => target.memory() },
    ...computes.map((c) => ({ name: c.name, run: (argv: string[]) => c.client.run(argv), health: () => c.client.health(), memory: () => c.client.memory() })),
  ];
  const agentsBefore = await Promise.all(nodes.map(agentUse));
  const cycles: SoakCycle[] = [];
  const prefix = opts.prefix ?? 'soak';
  const guard = new LoginGuard();
  const one = async (i: number): Promise<void> => {
    const kind = SOAK_KINDS[Math.floor(i / computes.length) % SOAK_KINDS.length]!;
    const c = computes[i % computes.length]!;
    const name = `${prefix}-${i}`;
    const iscsi = kind.protocol === 'iscsi';
    // iSCSI volumes are LIO targets (a change on the portal) and their connects log in; NVMe/TCP needs no guard.
    const lio = <T>(fn: () => Promise<T>, hold: 'change' | 'login'): Promise<T> => (iscsi ? guard[hold](fn) : fn());
    const v: TargetVolume = await lio(() => (iscsi ? target.createIscsiVolume({ name, sizeMiB: 8 }) : target.createNvmeVolume({ name, sizeMiB: 8 })), 'change');
    let device: DeviceInfo | null = null;
    let attaching = false;
    const t0 = performance.now();
    try {
      const baseline = await c.client.takeBaseline();
      attaching = true;
      device = await lio(() => c.client.connect(kind.protocol, v.connectionInfo, { multipath: kind.paths > 1 }), 'login');
      attaching = false;
      // The by-path links volume-paths answers with are udev's, made after connect returns. Asked
      // until they are there (60 s at most), not after one `udevadm settle`: settle looks at
      // udevd's queue only, and returns at once while udevd has not yet read the device's event
      // (seen twice in soaks under TCG: `udevadm info` showed the disk without links, and the
      // path was there 2 s later).
      const found = await poll(async () => {
        const p = await c.client.volumePaths(kind.protocol, v.connectionInfo);
        return p.paths.length > 0 ? p : null;
      }, { timeoutMs: 60_000, intervalMs: 200 });
      if (!found.ok) {
        // What the node shows, for the report: the links udev made and what udev knows of the device.
        const dev = device.path;
        const seen = await c.client.run(['sh', '-c', `ls -l /dev/disk/by-path; udevadm info --query=all --name=${dev}`]);
        throw new Error(`${name} attached as ${dev}, but volume-paths answered no path within 60 s\n${seen.stdout}${seen.stderr}`);
      }
      await c.client.disconnect(kind.protocol, v.connectionInfo, device);
      const answer = await c.client.orphans({ protocol: kind.protocol, properties: v.connectionInfo, devices: device.devices, baselineId: baseline.id, ...(v.iscsi ? { wwid: v.iscsi.wwid } : {}) });
      const ms = performance.now() - t0;
      const say = (label: string, xs: Orphan[]): string[] => xs.map((o) => `${label}${o.kind} ${o.id}: ${o.evidence}`);
      const findings = [...say('', answer.orphans), ...say('host-wide ', answer.hostWide?.orphans ?? []), ...say('collateral ', answer.hostWide?.collateral ?? [])];
      const cycle = { index: i, node: c.name, kind: kindName(kind), ms, findings };
      cycles.push(cycle);
      opts.onCycle?.(cycle);
      device = null;
    } catch (e) {
      // A cycle that fails is a finding of the soak, with what the node showed; the soak goes on.
      const cycle = { index: i, node: c.name, kind: kindName(kind), ms: performance.now() - t0, findings: [`cycle failed: ${(e as Error).message}`] };
      cycles.push(cycle);
      opts.onCycle?.(cycle);
    } finally {
      // After a failure: undone by what the attach gave, or by the properties alone when the
      // connect itself failed (the agent runs this disconnect after a connect it is still in).
      if (device || attaching) await c.client.disconnect(kind.protocol, v.connectionInfo, device, { force: true, ignoreErrors: true, timeoutMs: 600_000 }).catch(() => undefined);
      await lio(() => target.deleteVolume(name), 'change');
    }
  };
  await Promise.all(
    computes.map(async (_c, k) => {
      for (let i = k; i < opts.cycles; i += computes.length) await one(i);
    }),
  );
  cycles.sort((a, b) => a.index - b.index);
  const agentsAfter = await Promise.all(nodes.map(agentUse));
  const settleMs = opts.settleMs ?? 0;
  if (settleMs > 0) await new Promise((r) => setTimeout(r, settleMs));
  const agentsSettled = settleMs > 0 ? await Promise.all(nodes.map(agentUse)) : null;
  return { cycles, agentsBefore, agentsAfter, agentsSettled, settleMs };
}

/** The figures a soak prints, as lines. */
export function soakReport(r: SoakResult): string[] {
  const ms = r.cycles.map((c) => c.ms);
  const found = r.cycles.filter((c) => c.findings.length > 0);
  const lines = [
    `cycles done: ${r.cycles.length}`,
    `orphans found: ${found.reduce((n, c) => n + c.findings.length, 0)} (in ${found.length} cycles; goal 0)`,
    `cycle time (connect to the oracle's answer): p50 ${(percentile(ms, 50) / 1000).toFixed(2)} s, p99 ${(percentile(ms, 99) / 1000).toFixed(2)} s`,
    ...[...new Set(r.cycles.map((c) => c.kind))].map((k) => {
      const xs = r.cycles.filter((c) => c.kind === k).map((c) => c.ms);
      return `  ${k}: ${xs.length} cycles, p50 ${(percentile(xs, 50) / 1000).toFixed(2)} s, p99 ${(percentile(xs, 99) / 1000).toFixed(2)} s`;
    }),
    `agents at the start -> right after the last cycle${r.agentsSettled ? ` -> ${(r.settleMs / 1000).toFixed(0)} s later, nothing asked` : ''} (goal: flat within 10%):`,
  ];
  const pct = (x: number, y: number): string => `${y >= x ? '+' : ''}${(((y - x) / x) * 100).toFixed(1)}%`;
  for (const b of r.agentsBefore) {
    const a = r.agentsAfter.find((x) => x.node === b.node)!;
    const s = r.agentsSettled?.find((x) => x.node === b.node);
    const rss = [b, a, ...(s ? [s] : [])].map((x) => (x.rssKiB / 1024).toFixed(1)).join(' -> ');
    const files = [b, a, ...(s ? [s] : [])].map((x) => x.openFiles).join(' -> ');
    const last = s ?? a;
    // The JavaScript heap held beside the RSS: a held heap that stays flat while the RSS grows is V8's
    // or the allocator's keeping of free memory, not a leak of the agent's.
    const mib = (f: (x: AgentUse) => number): string => [b, a, ...(s ? [s] : [])].map((x) => (f(x) / 1024).toFixed(1)).join(' -> ');
    const heap = `, JS heap held ${mib((x) => x.heapUsedKiB)} MiB (${pct(b.heapUsedKiB, last.heapUsedKiB)}) of ${mib((x) => x.heapTotalKiB)} MiB taken (held in old space ${mib((x) => x.oldHeldKiB)}, in code ${mib((x) => x.codeHeldKiB)}; new space ${mib((x) => x.newSpaceKiB)})`;
    lines.push(`  ${b.node.padEnd(10)} RSS ${rss} MiB (${pct(b.rssKiB, last.rssKiB)}), open files ${files} (${pct(b.openFiles, last.openFiles)})${heap}${last.pid !== b.pid ? `, RESTARTED (pid ${b.pid} -> ${last.pid})` : ''}`);
  }
  for (const c of found) for (const f of c.findings) lines.push(`  cycle ${c.index} (${c.kind} on ${c.node}): ${f}`);
  return lines;
}
