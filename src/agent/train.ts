import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { IscsiConnector } from '../connectors/iscsi.js';
import { pathsView } from '../inventory/paths-view.js';
import type { HostSnapshot } from '../inventory/model.js';
import { replayHostFs, type HostFsRecording } from '../system/hostfs-record.js';
import type { VolumePaths } from '../connectors/types.js';
import { paths } from './api/paths.js';

/**
 * A compute template's training, before its machine is saved (and at build time, for the code
 * cache): the fetch-paths answers' code run until V8 has optimised it, on the shapes a gate job
 * sends and on a host that really holds volumes, so that a node restored from the template answers
 * its first calls with that code instead of bytecode.
 *
 * Why: under TCG the agent's JavaScript runs as bytecode 30-50x slower than on the host until V8
 * optimises it, which takes a route's first hundred or so calls, and an optimised function that
 * meets a shape it has not seen (a multipath volume's lists after single-path ones) is thrown away
 * and made again. Measured on a restored compute (16 dm-multipath volumes, after single-path
 * calls): the first batch call took 34-36 ms of the agent's time, 19-21 of them the multipath
 * answer, against 1.8 warm.
 *
 * Two parts, neither touching the template's own host:
 * - the requests: the routes, through `inject`, with volumes of every shape (single path and
 *   multipath, os-brick's `{driver_volume_type, data}` and the bare properties, iSCSI and NVMe);
 *   the template's host holds no volume, so the answers are empty, but the body's parsing, its
 *   schema, the properties' checks and the reply's writing are what they are on any host;
 * - the answers: the iSCSI connector's volume paths and available volumes on views read from a
 *   real compute's recording (`test/fixtures/guest-6.1.0-56/inventory-attached.json`: volumes on
 *   one and two paths, a LUN from 256, a dm-multipath map), each view a new object so that no
 *   kept answer stands in for the work. The views come from a replayed host, but their objects
 *   are made by the same code as the node's own, so the optimised code fits them.
 * Nothing is attached, written or kept: the connector, the view and the app made here are dropped.
 */
export interface TrainingFile {
  volumes: Record<string, { connectionInfo: { driver_volume_type: string; data: Record<string, unknown> } }>;
  recording: HostFsRecording;
}

/** Where the training file sits beside the agent's bundle (scripts/bundle-agent.mjs puts it there). */
export const TRAINING_FILE = 'agent-training.json';

export function loadTraining(dir = process.env.BRICK_AGENT_DIR): TrainingFile | null {
  const file = dir ? join(dir, TRAINING_FILE) : null;
  if (!file || !existsSync(file)) return null;
  return JSON.parse(readFileSync(file, 'utf8')) as TrainingFile;
}

/** How long each part runs at least, and the calls it makes at least. */
const MIN_MS = 1500;
const MIN_ROUNDS = 40;

async function forAWhile(round: (n: number) => Promise<void> | void, minMs: number): Promise<number> {
  const from = performance.now();
  let n = 0;
  while (n < MIN_ROUNDS || performance.now() - from < minMs) {
    await round(n);
    n++;
  }
  return n;
}

/** The volumes of the file by protocol, as a caller sends them. */
function bodies(t: TrainingFile): { iscsi: Array<Record<string, unknown>>; nvmeof: Array<Record<string, unknown>> } {
  const iscsi: Array<Record<string, unknown>> = [];
  const nvmeof: Array<Record<string, unknown>> = [];
  for (const v of Object.values(t.volumes)) {
    const ci = v.connectionInfo;
    if (ci.driver_volume_type === 'iscsi') {
      // The file's volumes name both portals; a volume on one path names one.
      const one = { ...ci.data, target_portals: (ci.data.target_portals as unknown[]).slice(0, 1), target_iqns: (ci.data.target_iqns as unknown[]).slice(0, 1), target_luns: (ci.data.target_luns as unknown[]).slice(0, 1) };
      iscsi.push(ci, ci.data, { driver_volume_type: 'iscsi', data: one });
    }
    else if (ci.driver_volume_type === 'nvmeof') nvmeof.push(ci, ci.data);
  }
  return { iscsi, nvmeof };
}

/** The requests part, through an agent app (the template's warm-up app, with the lab's token). */
export async function trainRequests(app: FastifyInstance, t: TrainingFile, token: string, minMs = MIN_MS): Promise<number> {
  const headers = { authorization: `Bearer ${token}` };
  const by = bodies(t);
  let rounds = 0;
  for (const [protocol, vols] of [['iscsi', by.iscsi], ['nvmeof', by.nvmeof]] as const) {
    if (vols.length === 0) continue;
    // A gate job's batch: as many volumes as the bench's multipath row.
    const batch = Array.from({ length: 16 }, (_, i) => vols[i % vols.length]!);
    const calls = [
      { url: paths.volumePathsBatch(protocol), payload: { volumes: batch } },
      { url: paths.volumePaths(protocol), payload: vols[0]! },
      { url: paths.availableVolumes(protocol), payload: {} },
    ];
    // Training a refusal's path instead of the answer's would be worse than none: checked once.
    for (const c of calls) {
      const r = await app.inject({ method: 'POST', headers, ...c });
      if (r.statusCode !== 200) throw new Error(`training: POST ${c.url} answered ${r.statusCode}: ${r.body.slice(0, 300)}`);
    }
    rounds += await forAWhile(async () => {
      for (const c of calls) await app.inject({ method: 'POST', headers, ...c });
    }, minMs);
  }
  return rounds;
}

/**
 * The answers part: the iSCSI connector's answers on views of the recorded host. Returns the
 * rounds made and the first round's answers (which a test checks are the recorded volumes' paths
 * and devices: training on empty answers would train the wrong branches).
 */
export async function trainAnswers(t: TrainingFile, minMs = MIN_MS): Promise<{ rounds: number; first: VolumePaths[] }> {
  const fs = replayHostFs(t.recording);
  const c = new IscsiConnector(fs);
  const view = pathsView(fs);
  const base: HostSnapshot = view.take().snapshot;
  const props = bodies(t).iscsi.map((b) => c.normalise(b));
  let first: VolumePaths[] = [];
  const rounds = await forAWhile(async (n) => {
    // A new object each round: the indexes and answers kept per view are made again.
    const s = { ...base };
    view.prepareOn(s);
    const answers: VolumePaths[] = [];
    for (const p of props) answers.push(await c.getVolumePaths(p, s));
    if (n === 0) first = answers;
  }, minMs);
  return { rounds, first };
}
