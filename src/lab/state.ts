import { existsSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BrickError } from '../system/errors.js';
import { labDir } from '../system/paths.js';
import type { Accel } from './accel.js';
import type { NodeRole, Topology } from './topology.js';

export interface NodeRecord {
  name: string;
  role: NodeRole;
  index: number;
  memoryMiB: number;
  mgmtPort: number;
  url: string;
  pid: number | null;
  consoleLog: string;
  taps: Array<{ name: string; network: string; mac: string }>;
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
  image: { key: string; kernelRelease: string; dir: string };
  netns: string;
  dir: string;
  tokenFile: string;
  shareDir: string;
  nodes: NodeRecord[];
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
