import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { rehearsalVolumes, rehearseOn } from '../../src/agent/rehearse.js';
import { buildAgent } from '../../src/agent/server.js';
import { ConnectorBase } from '../../src/connectors/base.js';
import { inRehearsal, pathsView } from '../../src/inventory/paths-view.js';
import type { HostSnapshot } from '../../src/inventory/model.js';
import { replayHostFs } from '../../src/system/hostfs-record.js';
import type { HostFs } from '../../src/system/hostfs.js';
import { UEVENT_SEQNUM } from '../../src/system/sysfs-read.js';
import { loadInventoryFixture } from './inventory-fixtures.js';

/**
 * The compute agent's rehearsal after a change (src/agent/rehearse.ts), on the reads a real guest
 * answered (the attached capture, test/fixtures/README.md: iSCSI volumes on one and two paths, a
 * LUN from 256, a dm-multipath map, an NVMe/TCP namespace) with the uevent counter played by the
 * test, through a real agent app whose connectors read that host. e2e (the connector bench, the
 * scenarios) runs it on live guests.
 */
const ATTACHED = loadInventoryFixture('inventory-attached.json');
const volumes = ATTACHED.volumes as Record<string, { connectionInfo: { driver_volume_type: string; data: Record<string, unknown> } }>;

function host(): HostFs {
  const replay = replayHostFs(ATTACHED.recording);
  // The capture predates the NVMe connector's check that the namespace's device node exists: it
  // did (the namespace is in the capture's sysfs, and its by-id links point at it).
  return { ...replay, readText: (p) => (p === UEVENT_SEQNUM ? '100' : replay.readText(p)), exists: (p) => p === '/dev/nvme0n1' || replay.exists(p) };
}

/**
 * The fixture's volumes as the host shows them: each on the portals it is logged in through. The
 * target hands every volume out with both portals (TARGET_ENCODING); a, b and big were attached on
 * the first only, m on both.
 */
const ON_ONE_PATH = ['a', 'b', 'big'];
function asAttached(name: string): { driver_volume_type: string; data: Record<string, unknown> } {
  const ci = volumes[name]!.connectionInfo;
  if (!ON_ONE_PATH.includes(name)) return ci;
  const d = ci.data;
  return { ...ci, data: { ...d, target_portals: [d.target_portal], target_iqns: [d.target_iqn], target_luns: [d.target_lun] } };
}

describe('the agent\'s rehearsal', () => {
  const fs = host();
  const view = pathsView(fs);
  let app: FastifyInstance;
  let kept: HostSnapshot;
  beforeAll(async () => {
    app = await buildAgent({ lab: 't', node: 't', role: 'compute', token: 'tok', compute: true, connectorFs: fs, requestLog: true });
    await app.ready();
    // A kept view: the counter quiet for a second before it is read.
    view.take();
    await new Promise((r) => setTimeout(r, 1050));
    kept = view.take().snapshot;
    expect(view.take().kept).toBe(true);
  });
  afterAll(async () => {
    view.rehearse(null);
    view.stop();
    await app.close();
  });

  it('asks about every volume the view shows, in the shape Cinder (and brick-lab\'s target) hands volumes out', () => {
    const by = rehearsalVolumes(kept);
    const wanted = Object.keys(volumes).map(asAttached);
    const key = (ci: { driver_volume_type: string; data: Record<string, unknown> }): string => {
      const d = ci.data;
      return ci.driver_volume_type === 'iscsi'
        ? `iscsi ${String(d.target_iqn)} ${String(d.target_lun)} ${[...((d.target_portals as string[] | undefined) ?? [d.target_portal as string])].sort().join(',')}`
        : `nvmeof ${String(d.target_nqn)} ${String(d.vol_uuid)} ${String(d.volume_nguid)}`;
    };
    expect([...by.iscsi, ...by.nvmeof].map((ci) => key(ci as never)).sort()).toEqual(wanted.map(key).sort());
    // The same keys in the same order as the target's own connection_info (one encoder), the volume's id aside.
    for (const ci of [...by.iscsi, ...by.nvmeof]) {
      const twin = wanted.find((w) => key(w) === key(ci as never))!;
      expect(Object.keys(ci.data)).toEqual(Object.keys(twin.data).filter((k) => k !== 'host_nqn' || k in ci.data));
    }
  });

  it('keeps the answers callers will ask for with the view, answered 200, without counting as calls or logging them', async () => {
    rehearseOn(view, app, 'tok', 2);
    const inject = vi.spyOn(app, 'inject');
    const log = vi.spyOn(process.stderr, 'write');
    const before = view.stats;
    expect(ConnectorBase.keptAnswers(kept)).toBe(0);
    await view.rehearseOn(kept);
    const logged = log.mock.calls.map((c) => String(c[0])).filter((l) => l.includes('brick-lab agent: POST'));
    log.mockRestore();
    const results = await Promise.all(inject.mock.results.map((r) => r.value as Promise<{ statusCode: number; body: string }>));
    inject.mockRestore();
    // Per protocol and round: the batch, one volume, the available volumes.
    expect(results).toHaveLength(2 * 3 * 2);
    expect(results.filter((r) => r.statusCode !== 200).map((r) => r.body)).toEqual([]);
    expect(results.some((r) => r.body.includes('/dev/disk/by-path/'))).toBe(true);
    expect(logged).toEqual([]);
    expect(view.stats).toEqual({ ...before, rehearsals: before.rehearsals + 1 });
    const made = ConnectorBase.keptAnswers(kept);
    // One per iSCSI volume and the available volumes (NVMe's answers check the namespace's device
    // node at every call and are not kept; its rehearsal runs the code only).
    expect(made).toBe(4 + 1);

    // A caller's batch of the volumes as the target hands them out (every portal, also for the
    // three attached through one) and on the paths they are attached through: every answer was kept.
    const given = Object.values(volumes).map((v) => v.connectionInfo).filter((ci) => ci.driver_volume_type === 'iscsi');
    const iscsi = [...given, ...Object.keys(volumes).map(asAttached).filter((ci) => ci.driver_volume_type === 'iscsi')];
    expect(iscsi).toHaveLength(8);
    const r = await app.inject({ method: 'POST', url: '/v1/connectors/iscsi/volume-paths-batch', headers: { authorization: 'Bearer tok' }, payload: { volumes: iscsi } });
    expect(r.statusCode).toBe(200);
    expect((JSON.parse(r.body) as { results: Array<{ paths: string[] }> }).results.every((x) => x.paths.length > 0)).toBe(true);
    expect(ConnectorBase.keptAnswers(kept)).toBe(made);
    expect(view.stats.hits).toBe(before.hits + 1);
    expect(inRehearsal()).toBe(false);
  });

  it('runs one rehearsal at a time, the view read meanwhile after it, and goes on past a rehearsal that throws', async () => {
    let running = 0;
    let most = 0;
    const seen: HostSnapshot[] = [];
    view.rehearse(async (s) => {
      running++;
      most = Math.max(most, running);
      seen.push(s);
      await new Promise((r) => setTimeout(r, 20));
      running--;
      if (seen.length === 1) throw new Error('boom');
    });
    const n = view.stats.rehearsals;
    // The second comes while the first runs: rehearsed after it, as it is the kept view; a third
    // that is no longer the kept one by then is dropped.
    const other = { ...kept };
    await Promise.all([view.rehearseOn(kept), view.rehearseOn(other), view.rehearseOn(kept)]);
    expect(most).toBe(1);
    expect(seen).toEqual([kept, kept]);
    expect(view.stats.rehearsals).toBe(n + 2);
  });
});
