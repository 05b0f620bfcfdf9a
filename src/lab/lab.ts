import { DEFAULT_GUEST } from './image/recipe.js';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { BrickError } from '../system/errors.js';
import { progress } from '../system/log.js';
import { labDir, PROJECT_ROOT, stateDir } from '../system/paths.js';
import { AgentClient } from '../agent/api/client.js';
import { NodeClient } from '../agent/api/node-client.js';
import type { Leftovers } from './provider.js';
import { PROVIDER_ORDER, providerOf } from './providers/registry.js';
import { readRecord, recordPath, type DockerLabRecord, type LabRecord } from './state.js';
import { LAB_NAME } from './topology.js';

export const DEFAULT_TOPOLOGY = join(PROJECT_ROOT, 'lab', 'default.yaml');

export function checkLabName(name: string): string {
  if (!LAB_NAME.test(name)) {
    throw new BrickError('LAB_NAME_INVALID', `lab name ${JSON.stringify(name)} is not valid`, {
      hint: 'use 1-20 characters: lowercase letters, digits and dashes, starting with a letter',
    });
  }
  return name;
}

/** A node of the lab still runs: by the record's pids, or found by a provider without the record. */
export async function isUp(name: string): Promise<boolean> {
  const rec = await readRecord(name).catch(() => null);
  if (rec?.nodes.some((n) => providerOf(n).alive(n))) return true;
  for (const p of PROVIDER_ORDER) if (await p.running?.(name)) return true;
  return false;
}

export interface DownReport {
  name: string;
  removed: string[];
}

/**
 * Take a lab down and remove everything it made. Works from any process, with or without the
 * record (after a crash, or a corrupt record): each provider finds what it made by name (QEMU's
 * -name, tap prefixes, the namespace, Docker labels); then the lab's state goes.
 */
export async function down(name: string, opts: { quiet?: boolean; keepLogs?: boolean } = { keepLogs: true }): Promise<DownReport> {
  checkLabName(name);
  const removed: string[] = [];
  const rec = await readRecord(name).catch(() => null);
  const client = (node: string): Promise<NodeClient> => (rec ? labClient(rec, node) : Promise.reject(new BrickError('LAB_NOT_UP', `lab ${name} has no record`)));
  for (const p of PROVIDER_ORDER) removed.push(...(await p.remove({ name, rec, client })));
  const dir = labDir(name);
  if (existsSync(dir)) {
    for (const entry of await readdir(dir)) {
      if (opts.keepLogs !== false && entry === 'logs') continue;
      await rm(join(dir, entry), { recursive: true, force: true });
    }
    if (opts.keepLogs === false) await rm(dir, { recursive: true, force: true });
    removed.push(`state ${dir}${opts.keepLogs !== false ? ' (console logs kept)' : ''}`);
  }
  if (!opts.quiet) progress('down', removed.length ? `lab ${name}: removed ${removed.join(', ')}` : `lab ${name}: nothing to remove`);
  return { name, removed };
}

export interface NodeStatus {
  name: string;
  role: string;
  provider: 'qemu' | 'docker';
  /** A docker node's container: its name and whether it boots its own kernel or uses the host's. */
  container: { name: string; mode: 'guest' | 'host-kernel' } | null;
  state: 'ready' | 'booting' | 'unreachable' | 'stopped';
  /** The guest it runs (images/guests/<guest>.json). */
  guest: string;
  kernel: string | null;
  /** The os-brick the node has (Debian's python3-os-brick, from its agent), null when unknown. */
  osBrick: string | null;
  url: string;
  pid: number | null;
  consoleLog: string;
  addresses: Record<string, string>;
  /** Each time the agent ended this boot and the node's agent loop started it again (not a restart asked for). */
  agentDeaths: AgentDeath[];
}

export interface AgentDeath {
  /** The shell's status for the agent: 137 is SIGKILL (the OOM killer, kill -9), 134 SIGABRT. */
  status: number;
  uptimeSeconds: number;
}

/** The agent-died-<status> marks of a node's boot timeline. */
export function agentDeaths(timeline: Array<{ step: string; uptimeSeconds: number }>): AgentDeath[] {
  return timeline.flatMap((t) => {
    const m = /^agent-died-(\d+)$/.exec(t.step);
    return m ? [{ status: Number(m[1]), uptimeSeconds: t.uptimeSeconds }] : [];
  });
}

/** "status 137 (SIGKILL: the OOM killer or kill -9)". */
export function describeAgentDeath(d: AgentDeath): string {
  const signal = d.status > 128 ? signalName(d.status - 128) : null;
  const how = signal === 'SIGKILL' ? 'SIGKILL: the OOM killer or kill -9' : signal ?? 'its own exit';
  return `status ${d.status} (${how}) at ${d.uptimeSeconds.toFixed(1)} s of uptime`;
}

function signalName(n: number): string | null {
  for (const [name, value] of Object.entries(osConstants.signals)) if (value === n) return name;
  return null;
}

export interface LabStatus {
  name: string;
  phase: LabRecord['phase'] | 'down';
  accel: string | null;
  accelReason: string | null;
  tokenFile: string | null;
  netns: string | null;
  image: LabRecord['image'] | null;
  /** Every guest's image the nodes run, by guest (null for a lab down or recorded before guests). */
  images?: LabRecord['images'] | null;
  /** What the docker provider chose, when the lab has docker nodes. */
  docker: DockerLabRecord | null;
  nodes: NodeStatus[];
}

export async function labClient(rec: LabRecord, node: string): Promise<NodeClient> {
  const n = rec.nodes.find((x) => x.name === node);
  if (!n) {
    throw new BrickError('NODE_UNKNOWN', `lab ${rec.name} has no node ${node}`, { hint: `nodes: ${rec.nodes.map((x) => x.name).join(', ')}` });
  }
  const token = (await readFile(rec.tokenFile, 'utf8')).trim();
  return new NodeClient(n.name, n.url, token);
}

export async function requireLab(name: string): Promise<LabRecord> {
  checkLabName(name);
  const rec = await readRecord(name);
  if (!rec || rec.phase !== 'up') {
    throw new BrickError('LAB_NOT_UP', `lab ${name} is not up`, { hint: `start it with \`brick-lab up --name ${name}\`` });
  }
  return rec;
}

export async function status(name: string): Promise<LabStatus> {
  checkLabName(name);
  const rec = await readRecord(name);
  if (!rec) return { name, phase: 'down', accel: null, accelReason: null, tokenFile: null, netns: null, image: null, docker: null, nodes: [] };
  const token = (await readFile(rec.tokenFile, 'utf8').catch(() => '')).trim();
  const nodes = await Promise.all(
    rec.nodes.map(async (n): Promise<NodeStatus> => {
      const base = {
        name: n.name,
        role: n.role,
        provider: n.provider ?? 'qemu',
        container: n.container ? { name: n.container.name, mode: n.container.mode } : null,
        url: n.url,
        pid: n.pid,
        consoleLog: n.consoleLog,
        addresses: n.addresses,
        guest: n.guest ?? DEFAULT_GUEST,
      };
      if (!providerOf(n).alive(n)) return { ...base, state: 'stopped', kernel: null, osBrick: null, agentDeaths: [] };
      try {
        const h = await new AgentClient(n.name, n.url, token).health(3000);
        return { ...base, state: h.state, kernel: h.kernel, osBrick: h.tools['python3-os-brick'] ?? null, agentDeaths: agentDeaths(h.timeline) };
      } catch {
        return { ...base, state: 'unreachable', kernel: null, osBrick: null, agentDeaths: [] };
      }
    }),
  );
  return { name, phase: rec.phase, accel: rec.accel, accelReason: rec.accelReason, tokenFile: rec.tokenFile, netns: rec.docker ? null : rec.netns, image: rec.image, images: rec.images ?? null, docker: rec.docker ?? null, nodes };
}

export async function listLabs(): Promise<string[]> {
  try {
    const names = await readdir(join(stateDir(), 'labs'));
    return names.filter((n) => existsSync(recordPath(n))).sort();
  } catch {
    return [];
  }
}

/** What a lab (or every lab) still holds on this host, asked of every provider: used by tests and `doctor`. */
export async function leftovers(name?: string): Promise<Leftovers> {
  const found: Partial<Leftovers> = {};
  for (const p of [...PROVIDER_ORDER].reverse()) Object.assign(found, await p.leftovers(name));
  return { qemu: found.qemu ?? [], taps: found.taps ?? [], netns: found.netns ?? [], containers: found.containers ?? [], networks: found.networks ?? [], rules: found.rules ?? [] };
}

export async function readLabOrNull(name: string): Promise<LabRecord | null> {
  return readRecord(checkLabName(name));
}

/**
 * Each node's guest, kernel and os-brick, as its agent says, and the kernel a report heads with:
 * the first compute's (else its guest's image's).
 */
export async function labVersions(rec: LabRecord): Promise<{ nodes: Array<{ name: string; role: string; guest: string; kernel: string | null; osBrick: string | null }>; kernel: string }> {
  const nodes = await Promise.all(
    rec.nodes.map(async (n) => {
      const h = await (await labClient(rec, n.name)).health().catch(() => null);
      return { name: n.name, role: n.role, guest: n.guest ?? DEFAULT_GUEST, kernel: h?.kernel ?? null, osBrick: h?.tools['python3-os-brick'] ?? null };
    }),
  );
  const first = nodes.find((n) => n.role === 'compute');
  return { nodes, kernel: first?.kernel ?? (first ? rec.images?.[first.guest]?.kernelRelease : undefined) ?? rec.image.kernelRelease };
}
