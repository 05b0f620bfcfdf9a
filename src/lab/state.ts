import { existsSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BrickError } from '../system/errors.js';
import { labDir } from '../system/paths.js';
import type { Accel } from './accel.js';
import type { NicModel, NodeRole, ProviderName, Topology } from './topology.js';

export interface NodeRecord {
  name: string;
  role: NodeRole;
  /** Absent in records written before the docker provider: qemu. */
  provider?: ProviderName;
  /**
   * A docker node's container. `guest`: QEMU boots the guest kernel inside it; `host-kernel`: a
   * target on the host's own LIO and nvmet.
   */
  container?: { id: string; name: string; mode: 'guest' | 'host-kernel'; mgmtAddress: string };
  index: number;
  memoryMiB: number;
  /** From the topology, so that a provider needs nothing but the record (absent in records written before). */
  cpus: number;
  /** From the topology: how long `up` waits for this node's agent. */
  bootTimeoutSeconds: number;
  /** From the topology: its data NICs' model (absent in records written before: virtio). */
  nicModel?: NicModel;
  /** From the topology: the guest it runs (absent in records written before: bookworm). */
  guest?: string;
  mgmtPort: number;
  url: string;
  pid: number | null;
  consoleLog: string;
  /** One per data network, in the node's order; prefixLength is the network's (its subnet's /N). */
  taps: Array<{ name: string; network: string; mac: string; prefixLength: number }>;
  addresses: Record<string, string>;
  initiatorIqn: string;
  hostNqn: string;
  startedAt: string | null;
  readyAt: string | null;
}

/** Written before each step that makes something, so `down` can undo a crashed `up`. */
export interface LabRecord {
  name: string;
  phase: 'starting' | 'up' | 'failed';
  topologyFile: string;
  topology: Topology;
  createdAt: string;
  ownerPid: number;
  accel: Accel;
  accelReason: string;
  /** The lab-wide guest's image. */
  image: { key: string; kernelRelease: string; dir: string };
  /** Every guest's image the nodes run, by guest (absent in records written before guests). */
  images?: Record<string, { key: string; kernelRelease: string; dir: string }>;
  netns: string;
  dir: string;
  tokenFile: string;
  shareDir: string;
  nodes: NodeRecord[];
  /** Set when any node runs in a container: the engine, image and privileges chosen, and the networks made. */
  docker?: DockerLabRecord;
}

export interface DockerLabRecord {
  engine: string;
  image: string;
  privileges: { mode: 'privileged' | 'capabilities'; summary: string; reason: string };
  /** Whether the host kernel has LIO and nvmet, and what the probe found. */
  hostStorage: { ok: boolean; detail: string };
  /** Docker networks by lab network name ('mgmt' for management). */
  networks: Record<string, { name: string; bridge: string; subnet: string }>;
}

/**
 * A node's disk state on the host (what a real host keeps on disk across a reboot: its iSCSI node
 * records, multipath bindings and WWIDs, NVMe host files): under the lab's directory, so `down`
 * removes it with the lab.
 */
export function nodeDiskDir(rec: Pick<LabRecord, 'dir'>, node: string): string {
  return join(rec.dir, 'disks', node);
}

export function recordPath(name: string): string {
  return join(labDir(name), 'lab.json');
}

export async function readRecord(name: string): Promise<LabRecord | null> {
  const p = recordPath(name);
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(await readFile(p, 'utf8')) as LabRecord;
  } catch (e) {
    throw new BrickError('LAB_RECORD_CORRUPT', `lab record ${p} cannot be read: ${(e as Error).message}`, {
      hint: `run \`brick-lab down --name ${name}\`: it cleans up by name even without a record`,
    });
  }
}

export async function writeRecord(rec: LabRecord): Promise<void> {
  const p = recordPath(rec.name);
  const tmp = `${p}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(rec, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, p);
}
