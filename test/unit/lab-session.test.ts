import { describe, expect, it } from 'vitest';
import { labFor, type LabOps, type LabSessionOptions } from '../../src/lab/session.js';
import type { LabRecord } from '../../src/lab/state.js';
import { parseTopology, renderTopology, type Topology } from '../../src/lab/topology.js';
import type { UpOptions } from '../../src/lab/up.js';
import { BrickError } from '../../src/system/errors.js';

function topo(name: string, computes: number): Topology {
  return parseTopology(renderTopology({ name, nodes: [{ name: 'target-1', role: 'target' }, ...Array.from({ length: computes }, (_, i) => ({ name: `compute-${i + 1}`, role: 'compute' as const }))] }), `${name}.yaml`);
}

function record(name: string, topology: Topology): LabRecord {
  return { name, topology, phase: 'up' } as LabRecord;
}

/** A lab that only records what was asked of it. */
function fakeLab(running: LabRecord | null, opts: { upFails?: boolean; noRecordAfterUp?: boolean } = {}): LabOps & { calls: string[]; ups: Array<[Topology, UpOptions]> } {
  let current = running;
  const calls: string[] = [];
  const ups: Array<[Topology, UpOptions]> = [];
  return {
    calls,
    ups,
    isUp: async (name) => (calls.push(`isUp ${name}`), current !== null),
    read: async (name) => (calls.push(`read ${name}`), current),
    up: async (t, o) => {
      calls.push(`up ${o.name}`);
      ups.push([t, o]);
      if (opts.upFails) throw new BrickError('LAB_INTERRUPTED', 'interrupted');
      if (!opts.noRecordAfterUp) current = record(o.name!, t);
      return record(o.name!, t);
    },
    down: async (name) => {
      calls.push(`down ${name}`);
      current = null;
    },
  };
}

function options(ops: LabOps, over: Partial<LabSessionOptions> = {}): LabSessionOptions {
  return { name: 'unit', topology: topo('unit', 2), topologyFile: '/t/unit.yaml', tag: 'run', keep: false, ops, ...over };
}

describe('labFor: one lab session for run and validate', () => {
  it('brings a lab up from the loaded topology, runs the job on its record, and takes it down', async () => {
    const lab = fakeLab(null);
    const ac = new AbortController();
    const o = options(lab, { signal: ac.signal });
    const seen: string[] = [];
    const out = await labFor(o, async (rec) => (seen.push(rec.name), 7));
    expect(out).toBe(7);
    expect(seen).toEqual(['unit']);
    expect(lab.calls).toEqual(['isUp unit', 'up unit', 'read unit', 'down unit']);
    expect(lab.ups).toHaveLength(1);
    expect(lab.ups[0]![0]).toBe(o.topology);
    expect(lab.ups[0]![1]).toEqual({ topologyFile: '/t/unit.yaml', name: 'unit', signal: ac.signal });
  });

  it('keeps a lab it brought up with keep, and takes back what the job put in first', async () => {
    const lab = fakeLab(null);
    const kept: string[] = [];
    await labFor(options(lab, { keep: true, beforeKeep: async (rec) => void kept.push(rec.name) }), async () => 0);
    expect(lab.calls).toEqual(['isUp unit', 'up unit', 'read unit']);
    expect(kept).toEqual(['unit']);
  });

  it('reuses a running lab: checks its own topology, never brings it up or down', async () => {
    const running = record('unit', topo('unit', 1));
    const lab = fakeLab(running);
    const checked: Topology[] = [];
    const kept: string[] = [];
    await labFor(options(lab, { check: (t) => void checked.push(t), beforeKeep: async (rec) => void kept.push(rec.name) }), async (rec) => expect(rec).toBe(running));
    expect(checked).toEqual([running.topology]);
    expect(lab.calls).toEqual(['isUp unit', 'read unit', 'read unit']);
    expect(kept).toEqual(['unit']);
  });

  it('refuses a running lab whose nodes run another guest than --guest asks for, and reuses one that runs it', async () => {
    // A bookworm lab up; a trixie run asked for under the same name.
    const t = topo('unit', 1);
    const running = { ...record('unit', t), nodes: [{ name: 'target-1', role: 'target', guest: 'bookworm' }, { name: 'compute-1', role: 'compute' }] } as unknown as LabRecord;
    const lab = fakeLab(running);
    let ran = false;
    const err = await labFor(options(lab, { guest: 'trixie' }), async () => void (ran = true)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'LAB_GUEST_MISMATCH', message: 'lab unit is up with target-1 on bookworm, compute-1 on bookworm; --guest trixie asks for another guest' });
    expect(ran).toBe(false);
    expect(lab.calls).toEqual(['isUp unit', 'read unit']);
    // The same lab asked for with its own guest, or without --guest, is reused.
    await labFor(options(fakeLab(running), { guest: 'bookworm' }), async () => void (ran = true));
    expect(ran).toBe(true);
    // A node whose topology entry names its own guest keeps it under --guest.
    const mixed = parseTopology(renderTopology({ name: 'unit', nodes: [{ name: 'target-1', role: 'target', guest: 'bookworm' }, { name: 'compute-1', role: 'compute' }] }), 'unit.yaml');
    const up = { ...record('unit', mixed), nodes: [{ name: 'target-1', role: 'target', guest: 'bookworm' }, { name: 'compute-1', role: 'compute', guest: 'trixie' }] } as unknown as LabRecord;
    await expect(labFor(options(fakeLab(up), { guest: 'trixie' }), async () => 'ok')).resolves.toBe('ok');
  });

  it('refuses before anything boots when the check fails', async () => {
    const lab = fakeLab(null);
    const o = options(lab, {
      check: () => {
        throw new BrickError('TOPOLOGY_LACKS', 'no');
      },
    });
    await expect(labFor(o, async () => 0)).rejects.toMatchObject({ code: 'TOPOLOGY_LACKS' });
    expect(lab.calls).toEqual(['isUp unit']);
  });

  it('takes the lab down when the job fails, and leaves a failed up to clean itself', async () => {
    const lab = fakeLab(null);
    await expect(labFor(options(lab), async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(lab.calls).toEqual(['isUp unit', 'up unit', 'read unit', 'down unit']);
    const failing = fakeLab(null, { upFails: true });
    await expect(labFor(options(failing), async () => 0)).rejects.toMatchObject({ code: 'LAB_INTERRUPTED' });
    expect(failing.calls).toEqual(['isUp unit', 'up unit']);
  });

  it('a lab without a record after up is LAB_NOT_UP, and is still taken down', async () => {
    const lab = fakeLab(null, { noRecordAfterUp: true });
    const ran: unknown[] = [];
    await expect(labFor(options(lab), async (rec) => ran.push(rec))).rejects.toMatchObject({ code: 'LAB_NOT_UP', message: 'lab unit has no record' });
    expect(ran).toEqual([]);
    expect(lab.calls).toEqual(['isUp unit', 'up unit', 'read unit', 'down unit']);
  });
});
