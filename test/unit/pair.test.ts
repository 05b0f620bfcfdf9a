import { describe, expect, it } from 'vitest';
import type { TargetClient } from '../../src/agent/api/target-client.js';
import type { IscsiVolumeRequest, TargetVolume } from '../../src/agent/api/types.js';
import type { LabRecord } from '../../src/lab/state.js';
import { ScenarioContext, type ComputeHandle, type TargetHandle } from '../../src/scenarios/context.js';
import { orphanPair } from '../../src/scenarios/pair.js';

/**
 * The pair runner's own order, on a context whose target only records what it is asked (the
 * runner's logic; the pairs themselves run against real kernels in test/e2e).
 */
function recordingContext(log: string[], scenario: string): ScenarioContext {
  let lun = 0;
  const client = {
    async createIscsiVolume(req: IscsiVolumeRequest): Promise<TargetVolume> {
      log.push(`create ${req.name}`);
      return { name: req.name, protocol: 'iscsi', iscsi: { iqn: 'iqn.2026-11.io.brick-lab:t.x', lun: lun++, wwid: 'w' } } as TargetVolume;
    },
    async deleteVolume(name: string) {
      log.push(`delete ${name}`);
      return { deleted: name };
    },
  } as unknown as TargetClient;
  const target = { name: 'target-1', client } as unknown as TargetHandle;
  const compute = { name: 'compute-1', initiatorIqn: 'iqn.2026-11.io.brick-lab:c' } as unknown as ComputeHandle;
  return new ScenarioContext({ name: 'lab' } as LabRecord, target, [compute], scenario, 1);
}

describe('orphanPair', () => {
  it('runs the faulty half before the correct one, each with its own volumes, deleted last made first', async () => {
    const log: string[] = [];
    const s = orphanPair<{ v: string }>('p', {
      title: 't',
      refs: [],
      async setup(h) {
        log.push(`setup ${h.phase}`);
        const a = await h.ctx.createIscsi({ name: `${h.phase}-a` });
        await h.ctx.createIscsi({ name: `${h.phase}-b` });
        return { v: a.name };
      },
      async faulty(h, st) {
        log.push(`faulty ${st.v}`);
      },
      async correct(h, st) {
        log.push(`correct ${st.v}`);
        await h.ctx.deleteVolume(h.ctx.volumes.get(st.v)!);
      },
      async teardown(h) {
        log.push(`teardown ${h.phase}`);
      },
    });
    expect(s).toMatchObject({ name: 'p', kind: 'orphan-pair', needs: { computes: 1, dataNetworks: 1 } });
    const ctx = recordingContext(log, 'p');
    await s.run(ctx);
    expect(log).toEqual([
      'setup faulty', 'create p-faulty-a', 'create p-faulty-b', 'faulty p-faulty-a', 'teardown faulty', 'delete p-faulty-b', 'delete p-faulty-a',
      'setup correct', 'create p-correct-a', 'create p-correct-b', 'correct p-correct-a', 'delete p-correct-a', 'teardown correct', 'delete p-correct-b',
    ]);
    expect(ctx.volumes.size).toBe(0);
  });

  it("'continued' sets up once and lets the correct half repair what the faulty half left", async () => {
    const log: string[] = [];
    const s = orphanPair('q', {
      title: 't',
      refs: [],
      dataNetworks: 2,
      halves: 'continued',
      prepare: () => (log.push('prepare'), 'p'),
      async setup(h, prepared) {
        log.push(`setup ${h.phase} ${prepared}`);
        return h.ctx.createIscsi({ name: 'v' });
      },
      async faulty(_h, v) {
        log.push(`faulty ${v.name}`);
      },
      async correct(h, v) {
        log.push(`correct ${v.name} (${h.phase})`);
      },
    });
    expect(s.needs).toEqual({ computes: 1, dataNetworks: 2 });
    await s.run(recordingContext(log, 'q'));
    expect(log).toEqual(['prepare', 'setup faulty p', 'create q-v', 'faulty q-v', 'correct q-v (correct)', 'delete q-v']);
  });

  it('stops at a failed half and leaves its volumes to the suite runner (which detaches and deletes whatever remains)', async () => {
    const log: string[] = [];
    const s = orphanPair('r', {
      title: 't',
      refs: [],
      setup: (h) => h.ctx.createIscsi({ name: 'v' }),
      async faulty() {
        throw new Error('the oracle did not see the orphan');
      },
      async correct() {
        log.push('correct');
      },
    });
    const ctx = recordingContext(log, 'r');
    await expect(s.run(ctx)).rejects.toThrow('did not see the orphan');
    expect(log).toEqual(['create r-v']);
    expect([...ctx.volumes.keys()]).toEqual(['r-v']);
  });
});
