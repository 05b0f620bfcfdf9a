import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { exec, type ExecResult } from '../../src/system/exec.js';
import type { AgentClient } from '../../src/agent/api/client.js';
import type { ComputeClient } from '../../src/agent/api/compute-client.js';
import type { NodeClient } from '../../src/agent/api/node-client.js';
import type { TargetClient } from '../../src/agent/api/target-client.js';
import { down, labClient, leftovers, readLabOrNull } from '../../src/lab/lab.js';
import { renderTopology } from '../../src/lab/topology.js';
import { labContainers } from '../../src/lab/providers/docker/container.js';
import { labNetworks, labRules } from '../../src/lab/providers/docker/networks.js';
import { findQemuProcesses } from '../../src/lab/providers/qemu/processes.js';
import { labDir, stateDir } from '../../src/system/paths.js';
import { DEFAULT_GUEST, loadRecipe } from '../../src/lab/image/recipe.js';
import { mountsBelow } from '../../src/system/mounts.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'bin', 'brick-lab.js');
/** Every lab an e2e test makes is named e2e-*, so a sweep never touches a developer's own labs. */
export const TEST_PREFIX = 'e2e-';

/** The real CLI in a child process, as a user runs it. */
export function cli(args: string[], opts: { timeoutMs?: number; env?: Record<string, string | undefined> } = {}): Promise<ExecResult> {
  return exec([process.execPath, CLI, ...args], {
    timeoutMs: opts.timeoutMs ?? 15 * 60_000,
    reject: false,
    ...(opts.env ? { env: opts.env } : {}),
  });
}

/** Labs named e2e-* that left anything behind: records, VMs, namespaces. */
export async function testLabsPresent(): Promise<string[]> {
  const names = new Set<string>();
  const labsDir = join(stateDir(), 'labs');
  if (existsSync(labsDir)) {
    for (const n of readdirSync(labsDir)) if (n.startsWith(TEST_PREFIX) && existsSync(join(labsDir, n, 'lab.json'))) names.add(n);
  }
  for (const p of await findQemuProcesses()) if (p.lab.startsWith(TEST_PREFIX)) names.add(p.lab);
  if (existsSync('/run/netns')) {
    for (const ns of readdirSync('/run/netns')) if (ns.startsWith(`brick-${TEST_PREFIX}`)) names.add(ns.slice('brick-'.length));
  }
  // Containers and Docker networks (when an engine answers), by their lab label.
  for (const c of await labContainers()) if (c.lab.startsWith(TEST_PREFIX)) names.add(c.lab);
  for (const n of await labNetworks()) if (n.lab.startsWith(TEST_PREFIX)) names.add(n.lab);
  for (const r of await labRules()) if (r.lab.startsWith(TEST_PREFIX)) names.add(r.lab);
  return [...names].sort();
}

/**
 * Remove everything any e2e lab made (used before and after the suite, and on Ctrl-C). Console
 * logs stay: CI uploads them when a run fails.
 */
export async function sweepTestLabs(): Promise<string[]> {
  const names = await testLabsPresent();
  for (const n of names) await down(n, { quiet: true, keepLogs: true });
  return names;
}

/** Everything a lab can leave on the host, for assertions that it left nothing. */
export async function hostTraces(name: string): Promise<{ qemu: number[]; taps: string[]; netns: string[]; containers: string[]; networks: string[]; rules: string[]; mounts: string[]; record: boolean }> {
  const l = await leftovers(name);
  return { ...l, mounts: await mountsBelow(labDir(name)), record: existsSync(join(labDir(name), 'lab.json')) };
}

export const NOTHING = { qemu: [], taps: [], netns: [], containers: [], networks: [], rules: [], mounts: [], record: false };

/** The kernel release a guest's recipe pins (default: the default guest's). */
export function recipeKernel(guest = DEFAULT_GUEST): string {
  return loadRecipe(guest).recipe.kernel.release;
}


export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Bring up a lab of one target and one compute, both on path-a and path-b, through the CLI, and
 * hand back agent clients and the compute's initiator names.
 */
export async function upTargetAndCompute(lab: string): Promise<{ target: TargetClient; compute: ComputeClient; computeIqn: string; computeNqn: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'brick-e2e-'));
  const topo = join(dir, `${lab}.yaml`);
  await writeFile(topo, renderTopology({ name: lab, nodes: [{ name: 'target-1', role: 'target' }, { name: 'compute-1', role: 'compute' }] }));
  const r = await cli(['up', '--topology', topo]);
  if (r.exitCode !== 0) throw new Error(`brick-lab up of ${lab} failed (exit ${r.exitCode}):\n${r.stderr}`);
  const rec = (await readLabOrNull(lab))!;
  const node = rec.nodes.find((n) => n.name === 'compute-1')!;
  return { target: (await labClient(rec, 'target-1')).target, compute: (await labClient(rec, 'compute-1')).compute, computeIqn: node.initiatorIqn, computeNqn: node.hostNqn };
}

/** An agent client for every node of a lab that is up. */
export async function labClients(lab: string): Promise<Map<string, NodeClient>> {
  const rec = await readLabOrNull(lab);
  if (!rec) throw new Error(`lab ${lab} has no record`);
  const out = new Map<string, NodeClient>();
  for (const n of rec.nodes) out.set(n.name, await labClient(rec, n.name));
  return out;
}

/** Every (node, node, network) pair that does not answer one ping, with ping's words: [] when all do. */
export async function unreachablePairs(
  nodes: ReadonlyArray<{ name: string; addresses: Record<string, string> }>,
  clients: Map<string, AgentClient>,
  networks: readonly string[] = ['path-a', 'path-b'],
): Promise<string[]> {
  const failures: string[] = [];
  await Promise.all(
    nodes.map(async (src) => {
      for (const dst of nodes) {
        if (dst.name === src.name) continue;
        for (const net of networks) {
          const r = await clients.get(src.name)!.exec(['ping', '-c', '1', '-W', '5', '-I', net, dst.addresses[net]!]);
          if (r.exitCode !== 0) failures.push(`${src.name} -> ${dst.name} over ${net} (${dst.addresses[net]}): ${r.stdout}${r.stderr}`);
        }
      }
    }),
  );
  return failures;
}
