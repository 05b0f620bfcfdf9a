import { BrickError } from './system/errors.js';
import { progress } from './system/log.js';
import { down, isUp, labClient, readLabOrNull, status, up } from './lab/lab.js';

export interface RunOptions {
  topologyFile: string;
  name: string;
  keep: boolean;
  json: boolean;
  signal?: AbortSignal;
}

/**
 * The main job. For now: bring the lab up (or reuse a running one), show every node healthy with
 * its kernel, tear down unless --keep. Later issues add the attach / paths / detach / orphan
 * scenarios and their report.
 */
export async function runMain(o: RunOptions): Promise<number> {
  const reused = await isUp(o.name);
  if (reused) progress('run', `reusing running lab ${o.name}`);
  else await up({ topologyFile: o.topologyFile, name: o.name, ...(o.signal ? { signal: o.signal } : {}) });
  let code = 0;
  try {
    const rec = await readLabOrNull(o.name);
    if (!rec) throw new BrickError('LAB_NOT_UP', `lab ${o.name} has no record`);
    const rows: Array<{ node: string; role: string; state: string; kernel: string; uname: string }> = [];
    for (const n of rec.nodes) {
      const client = await labClient(rec, n.name);
      const h = await client.health();
      const u = await client.exec(['uname', '-r']);
      rows.push({ node: n.name, role: n.role, state: h.state, kernel: h.kernel, uname: u.stdout.trim() });
      if (h.state !== 'ready' || u.exitCode !== 0) code = 1;
    }
    const s = await status(o.name);
    if (o.json) process.stdout.write(`${JSON.stringify({ lab: o.name, accel: s.accel, nodes: rows }, null, 2)}\n`);
    else {
      process.stdout.write(`lab ${o.name} (${s.accel?.toUpperCase()}):\n`);
      for (const r of rows) process.stdout.write(`  ${r.node.padEnd(12)} ${r.role.padEnd(8)} ${r.state.padEnd(8)} kernel ${r.kernel}\n`);
      process.stdout.write(code === 0 ? 'all nodes healthy\n' : 'some nodes are not healthy\n');
    }
  } finally {
    if (!o.keep && !reused) await down(o.name);
    else progress('run', `lab ${o.name} kept running (brick-lab down --name ${o.name} removes it)`);
  }
  return code;
}
