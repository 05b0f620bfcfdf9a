import { describe, expect, it } from 'vitest';
import { diffSnapshots, type DiffEntry } from '../../src/inventory/diff.js';
import { blockOf, hctlOf, iscsiadmSid, loadInventoryFixture, portalOf } from './inventory-fixtures.js';

/** Snapshots captured through the compute agent's `GET /v1/inventory?record=1` (see test/fixtures/README.md). */
const ATTACHED_FX = loadInventoryFixture('inventory-attached.json');
const ATTACHED = ATTACHED_FX.snapshot;
const LEFTOVERS = loadInventoryFixture('inventory-leftovers.json').snapshot;
const V = ATTACHED_FX.volumes;
const D = ATTACHED_FX.devices!;

const keys = (entries: DiffEntry[], kind: string): string[] => entries.filter((e) => e.kind === kind).map((e) => e.key);

describe('diffSnapshots between the attached and the leftovers captures', () => {
  const d = diffSnapshots(ATTACHED, LEFTOVERS);

  it('adds only the hand-made dangling by-path link', () => {
    expect(d.added).toEqual([
      {
        kind: 'links',
        key: 'by-path/ip-10.10.1.10:3260-iscsi-iqn.2026-11.io.brick-lab:fixture.gone-lun-4 -> (nothing)',
        item: { dir: 'by-path', name: 'ip-10.10.1.10:3260-iscsi-iqn.2026-11.io.brick-lab:fixture.gone-lun-4', target: null, dangling: true },
      },
    ]);
  });

  it("removes fa's and fb's SCSI devices and the NVMe namespace head", () => {
    const [fa, fb, head] = [blockOf(D.da), blockOf(D.db), blockOf(D.dn)];
    expect(keys(d.removed, 'scsiDevices')).toEqual([`${hctlOf(ATTACHED, fa)} ${V.a.iscsi!.wwid} ${fa}`, `${hctlOf(ATTACHED, fb)} ${V.b.iscsi!.wwid} ${fb}`]);
    expect(keys(d.removed, 'nvmeNamespaces')).toEqual([`${head} ${V.n.nvme!.uuid}`]);
    expect(d.removed.find((e) => e.kind === 'nvmeNamespaces')!.item).toEqual(ATTACHED.nvmeNamespaces[0]);
  });

  it('removes the shared session and its node record, which fb’s disconnect logged out and deleted', () => {
    const { iqn } = V.a.iscsi!;
    const portal = portalOf(V.a, 0);
    expect(iqn).toBe('iqn.2026-11.io.brick-lab:fixture.shared');
    expect(keys(d.removed, 'iscsiSessions')).toEqual([`session${iscsiadmSid(ATTACHED_FX, iqn, portal)} ${iqn} ${portal}`]);
    expect(keys(d.removed, 'iscsiNodes')).toEqual([`${iqn} ${portal}`]);
  });

  it('removes the block devices and the links of what went, and nothing of fm, fbig, the local disk or the controllers', () => {
    const gone = [blockOf(D.da), blockOf(D.db), blockOf(D.dn)];
    // The NVMe head and its two path devices (the connect result names all three), fa's and fb's disks.
    expect(D.dn.devices).toHaveLength(3);
    expect(keys(d.removed, 'blockDevices')).toEqual([...D.dn.devices!, blockOf(D.da), blockOf(D.db)].sort());
    const links = keys(d.removed, 'links');
    // fa and fb: one by-path and four by-id links each; the head: three by-id links.
    expect(links).toHaveLength(13);
    for (const l of links) expect(gone.some((g) => l.endsWith(`-> ${g}`)), l).toBe(true);
    expect(keys(d.removed, 'nvmeControllers')).toEqual([]);
    expect(keys(d.removed, 'multipathMaps')).toEqual([]);
    const all = JSON.stringify(d.removed);
    const kept = [...D.dm.devices!, blockOf(D.dm), blockOf(D.dbig), blockOf(D.disk.device), 'dev.fm', 'fixture.big', V.m.iscsi!.wwid, V.big.iscsi!.wwid];
    for (const k of kept) expect(all).not.toContain(k);
  });

  it('is the reverse the other way round', () => {
    const back = diffSnapshots(LEFTOVERS, ATTACHED);
    expect(back.added).toEqual(d.removed);
    expect(back.removed).toEqual(d.added);
  });
});

describe('diffSnapshots of a snapshot with itself', () => {
  it.each([
    ['attached', ATTACHED],
    ['leftovers', LEFTOVERS],
  ])('is empty for the %s capture, whatever takenAt says', (_name, s) => {
    expect(diffSnapshots(s, s)).toEqual({ added: [], removed: [] });
    expect(diffSnapshots(s, { ...structuredClone(s), takenAt: '2030-01-01T00:00:00.000Z' })).toEqual({ added: [], removed: [] });
  });
});

describe('diffSnapshots with a baseline from an agent that read fewer lists', () => {
  it('takes a list the baseline lacks (iSCSI discovery records, ifaces) as empty, not as an error', () => {
    const { iscsiDiscovery: _d, iscsiIfaces: _i, ...older } = ATTACHED;
    const withRecord = { ...ATTACHED, iscsiDiscovery: [{ type: 'sendtargets' as const, portal: '10.10.1.10:3260', targets: [], path: '/etc/iscsi/send_targets/10.10.1.10,3260' }] };
    const d = diffSnapshots(older as typeof ATTACHED, withRecord);
    expect(d.added.map((e) => e.key)).toEqual(['sendtargets 10.10.1.10:3260']);
    expect(d.removed).toEqual([]);
  });
});
