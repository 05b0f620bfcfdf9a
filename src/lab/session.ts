import { BrickError } from '../system/errors.js';
import { progress } from '../system/log.js';
import { down, isUp, readLabOrNull } from './lab.js';
import type { LabRecord } from './state.js';
import { nodeGuest, type Topology } from './topology.js';
import { DEFAULT_GUEST } from './image/recipe.js';
import { up, type UpOptions } from './up.js';

/** What a lab session does to labs: the real thing by default, a fake in unit tests. */
export interface LabOps {
  isUp(name: string): Promise<boolean>;
  read(name: string): Promise<LabRecord | null>;
  up(topology: Topology, opts: UpOptions): Promise<LabRecord>;
  down(name: string): Promise<unknown>;
}

export const realLab: LabOps = { isUp, read: readLabOrNull, up, down: (name) => down(name) };

export interface LabSessionOptions {
  name: string;
  /** The topology the CLI loaded, and where from (kept in the lab's record). */
  topology: Topology;
  topologyFile: string;
  /** The progress tag ('run', 'validate'). */
  tag: string;
  /** Leave a lab this session brought up running. A lab that was already up is always left running. */
  keep: boolean;
  /** Ctrl-C: `up` stops and removes what it made (the job watches it too). */
  signal?: AbortSignal;
  /** The guest --guest asked for: a running lab whose nodes run another is refused, not reused. */
  guest?: string;
  /** Refuses, before anything boots, a lab that cannot do the job (a reused lab's own topology is checked). */
  check?: (topology: Topology) => void;
  /** Before a lab is left running: take back what the job put into it. */
  beforeKeep?: (rec: LabRecord) => Promise<void>;
  ops?: LabOps;
}

/**
 * The lab a job runs on (`brick-lab run`, `brick-lab validate`): a running lab is reused, else one
 * is brought up, after `check` passed. The job gets the lab's record; afterwards the lab is taken
 * down, unless it was reused or kept.
 */
export async function labFor<T>(o: LabSessionOptions, job: (rec: LabRecord) => Promise<T>): Promise<T> {
  const lab = o.ops ?? realLab;
  const reused = await lab.isUp(o.name);
  const running = reused ? await lab.read(o.name) : null;
  if (running && o.guest !== undefined) refuseOtherGuests(running, o.guest);
  o.check?.(running ? running.topology : o.topology);
  if (reused) progress(o.tag, `reusing running lab ${o.name}`);
  else await lab.up(o.topology, { topologyFile: o.topologyFile, name: o.name, ...(o.signal ? { signal: o.signal } : {}) });
  let rec: LabRecord | null = null;
  try {
    rec = await lab.read(o.name);
    if (!rec) throw new BrickError('LAB_NOT_UP', `lab ${o.name} has no record`);
    return await job(rec);
  } finally {
    if (!o.keep && !reused) await lab.down(o.name);
    else {
      if (rec && o.beforeKeep) await o.beforeKeep(rec);
      progress(o.tag, `lab ${o.name} kept running (brick-lab down --name ${o.name} removes it)`);
    }
  }
}

/** A running lab asked for with --guest: each node must run what --guest gives it (a node's own guest: stays). */
function refuseOtherGuests(rec: LabRecord, guest: string): void {
  const other = rec.nodes.filter((n) => {
    const spec = rec.topology.nodes.find((x) => x.name === n.name);
    return (n.guest ?? DEFAULT_GUEST) !== nodeGuest({ guest }, { guest: spec?.guest, provider: n.provider ?? 'qemu' });
  });
  if (other.length > 0) {
    throw new BrickError('LAB_GUEST_MISMATCH', `lab ${rec.name} is up with ${other.map((n) => `${n.name} on ${n.guest ?? DEFAULT_GUEST}`).join(', ')}; --guest ${guest} asks for another guest`, {
      hint: `take it down first (brick-lab down --name ${rec.name}), or give the run another --name`,
    });
  }
}
