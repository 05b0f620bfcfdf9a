import { evidenceOf } from '../../src/inventory/things.js';
import { describe, expect, it } from 'vitest';
import { hostWideView } from '../../src/inventory/hostwide.js';
import { verdictWithTools } from '../../src/inventory/oracle.js';
import { judgeVolume } from '../../src/inventory/orphans.js';
import { staleReferences, stackedOn, stackIndex } from '../../src/inventory/stack.js';
import type { VolumeIdentity } from '../../src/volume/identity.js';
import { FIXTURE_KERNELS, fixtureTools, loadInventoryFixture, replaySnapshot, fixtureIdentity } from './inventory-fixtures.js';

const identity = fixtureIdentity;

/**
 * The oracle's rules about stacks, stale references, map states, discovery records and ifaces,
 * and the host-wide view, on inventory-stacked.json: the leftovers state of the capture plus, made
 * with the guest's own tools (scripts/capture-inventory-fixtures.mjs says how), on each captured kernel:
 * - a DOS partition table on fm's multipath map and `kpartx -a` over it (a partition map);
 * - `multipathd fail path` on both of fm's paths (all paths failed);
 * - `dmsetup create brick-lin` (linear) over fbig's disk, then that disk deleted through sysfs;
 * - `dmsetup create brick-susp` over the scsi_debug disk, then `dmsetup suspend brick-susp`;
 * - `iscsiadm -m discovery -t sendtargets -p 10.10.1.10:3260` and `iscsiadm -m iface -I brick0 -o new`.
 */
describe.each(FIXTURE_KERNELS)('captured on guest kernel %s', (kernel) => {
  const STACKED = loadInventoryFixture('inventory-stacked.json', kernel);
  const LEFTOVERS = loadInventoryFixture('inventory-leftovers.json', kernel);
  const st = replaySnapshot(STACKED);
  const D = STACKED.devices!;

  const M = identity(STACKED, 'm');
  const BIG = identity(STACKED, 'big');
  const A = identity(STACKED, 'a');
  const LOCAL: VolumeIdentity = { protocol: 'local', local: { device: D.disk.device!, wwid: D.disk.wwid! } };
  const dmNamed = (name: string): string => st.blockDevices.find((b) => b.dm?.name === name)!.name;
  const devtOf = (dev: string): string => st.blockDevices.find((b) => b.name === dev)!.devt!;

  describe('holders: everything stacked on a volume, up to the top', () => {
    const wwid = M.iscsi!.wwid!;
    const map = D.dm.path!.slice(5);

    it('names the partition map kpartx made on fm\'s multipath map, with its uuid, table and chain', () => {
      const v = judgeVolume(st, M, []);
      const part = dmNamed(`${wwid}-part1`);
      expect(v.orphans.filter((o) => o.kind === 'holder')).toEqual([
        { kind: 'holder', id: `${wwid}-part1`, evidence: `${part} (name ${wwid}-part1, uuid part1-mpath-${wwid}); table "0 8192 linear ${devtOf(map)} 2048"; chain ${D.dm.devices![0]} <- ${map} <- ${part}` },
      ]);
      expect(v.orphans.filter((o) => o.kind === 'multipath-map').map((o) => o.id)).toEqual([wwid]);
      // udev's links to the partition map are the volume's too.
      expect(v.orphans.filter((o) => o.kind === 'by-id-link' && o.evidence.endsWith(`-> ${part}`)).length).toBeGreaterThan(0);
    });

    it('walks partitions and holders breadth first, each device once', () => {
      const idx = stackIndex(st);
      expect(stackedOn(idx, D.dm.devices![1]!).map((x) => x.chain)).toEqual([
        [D.dm.devices![1], map],
        [D.dm.devices![1], map, dmNamed(`${wwid}-part1`)],
      ]);
    });

    it('says on the map that every path failed, from dmsetup status', () => {
      const v = verdictWithTools(st, M, [], fixtureTools(STACKED));
      const [p1, p2] = D.dm.devices!.map((d) => devtOf(d));
      expect(v.orphans.find((o) => o.kind === 'multipath-map')!.evidence).toContain(`all paths failed (dmsetup status: ${p1} F, ${p2} F)`);
    });
  });

  describe('stale references: a map that still names a removed device', () => {
    const big = D.dbig.devices![0]!;
    const lin = dmNamed('brick-lin');

    it('finds brick-lin by its dangling slave link and its table', () => {
      const [r] = staleReferences(st);
      expect(r).toMatchObject({ dev: lin, slaves: [big] });
      expect(r!.devts).toHaveLength(1);
      expect(r!.evidence).toBe(
        `${lin} (name brick-lin); table "0 16384 linear ${r!.devts[0]} 0"; slaves/${big} points at a removed device; its table names ${r!.devts[0]}, which no live slave has; no device has ${r!.devts[0]} now`,
      );
    });

    it('is fbig\'s holder when the attach said fbig was that disk', () => {
      const v = judgeVolume(st, BIG, [], { devices: [big] });
      expect(v.orphans.filter((o) => o.kind === 'holder').map((o) => [o.id, o.evidence.split(';')[0]])).toEqual([['brick-lin', `stale reference: ${lin} (name brick-lin)`]]);
      // Without that knowledge the volume-scoped view cannot tie it to fbig (the host-wide view can, below).
      expect(judgeVolume(st, BIG, []).orphans.some((o) => o.kind === 'holder')).toBe(false);
    });

    it('says which device a reload would open when another disk has the number now', () => {
      // The capture's host, with the scsi_debug disk given the removed disk's number by hand (the
      // kernel keeps a number while a map holds it, so this is the state after the map's reload).
      const edited = structuredClone(st);
      const [r] = staleReferences(st);
      edited.blockDevices.find((b) => b.name === D.disk.device!.slice(5))!.devt = r!.devts[0]!;
      expect(staleReferences(edited)[0]!.evidence).toContain(`${r!.devts[0]} is now ${D.disk.device!.slice(5)} (WWID ${D.disk.wwid}): a reload of this table would open that device`);
    });
  });

  describe('iSCSI state beyond sessions', () => {
    it('names the discovery record of the volume\'s portal once nothing attached uses it, and keeps it otherwise', () => {
      const alone = judgeVolume(st, A, []);
      expect(alone.orphans.filter((o) => o.kind === 'iscsi-discovery-record').map((o) => o.id)).toEqual(['sendtargets 10.10.1.10:3260']);
      const shared = judgeVolume(st, A, [M]);
      expect(shared.orphans.some((o) => o.kind === 'iscsi-discovery-record')).toBe(false);
      expect(shared.kept.find((o) => o.kind === 'iscsi-discovery-record')!.evidence).toContain(`kept: ${M.iscsi!.iqn} LUN ${M.iscsi!.lun} declared attached through 10.10.1.10:3260`);
    });
  });

  describe('ifaces', () => {
    it('names an iface only the volume\'s leftover records use, and not one another record uses', () => {
      // The capture's host with fa's discovered records bound to the brick0 iface (edited by hand,
      // as `iscsiadm -m node -T ... -I brick0 --op new` would make them).
      const edited = structuredClone(st);
      for (const n of edited.iscsiNodes) if (n.iqn === A.iscsi!.iqn) n.iface = 'brick0';
      expect(judgeVolume(edited, A, []).orphans.filter((o) => o.kind === 'iscsi-iface').map((o) => o.id)).toEqual(['brick0']);
      edited.iscsiNodes.find((n) => n.iqn === M.iscsi!.iqn)!.iface = 'brick0';
      expect(judgeVolume(edited, A, []).orphans.some((o) => o.kind === 'iscsi-iface')).toBe(false);
    });
  });

  describe('the host-wide view', () => {
    const view = hostWideView({ baseline: LEFTOVERS.snapshot, now: st, tools: fixtureTools(STACKED), stillAttached: [M] });

    it('reports what appeared that no attached volume accounts for: the maps made by hand, the iface, the discovery record once nothing uses its portal', () => {
      const found = view.orphans.map((o) => `${o.kind} ${o.id}`);
      for (const x of ['holder brick-lin', 'holder brick-susp', `holder ${M.iscsi!.wwid}-part1`, 'iscsi-iface brick0']) expect(found).toContain(x);
      // The discovery record of fm's portal is accounted for while fm is attached through it; not otherwise.
      expect(found).not.toContain('iscsi-discovery-record sendtargets 10.10.1.10:3260');
      const none = hostWideView({ baseline: LEFTOVERS.snapshot, now: st }).orphans.map((o) => `${o.kind} ${o.id}`);
      expect(none).toContain('iscsi-discovery-record sendtargets 10.10.1.10:3260');
      expect(view.orphans.find((o) => o.id === 'brick-susp')!.evidence).toContain('SUSPENDED');
      expect(view.orphans.find((o) => o.id === 'brick-lin')!.evidence).toContain('stale reference');
      // fm is attached: its map and path devices are accounted for.
      expect(found.some((x) => x.startsWith('multipath-map') || x === `block-device ${D.dm.devices![0]}`)).toBe(false);
    });

    it('reports the disk deleted from under brick-lin as collateral unless fbig was the volume detached', () => {
      const big = D.dbig.devices![0]!;
      expect(view.collateral.map((o) => `${o.kind} ${o.id}`)).toContain(`block-device ${big}`);
      const detached = hostWideView({ baseline: LEFTOVERS.snapshot, now: st, stillAttached: [M], detached: [{ volume: BIG, known: { devices: [big] } }] });
      expect(detached.collateral.some((o) => o.id === big)).toBe(false);
    });

    it('takes a session the detached volumes shared among themselves as theirs, and one a still-attached volume uses as collateral', () => {
      // attached -> leftovers: fa's device deleted, fb detached, their shared session logged out.
      const ATTACHED = loadInventoryFixture('inventory-attached.json', kernel);
      const [fa, fb] = [ATTACHED.devices!.da.devices![0]!, ATTACHED.devices!.db.devices![0]!];
      const both = hostWideView({ baseline: ATTACHED.snapshot, now: LEFTOVERS.snapshot, detached: [{ volume: A }, { volume: identity(ATTACHED, 'b') }] });
      expect(both.collateral.filter((o) => o.kind.startsWith('iscsi-') || o.id === fa || o.id === fb)).toEqual([]);
      // Had fb been declared still attached, its session, record and device going are collateral.
      const one = hostWideView({ baseline: ATTACHED.snapshot, now: LEFTOVERS.snapshot, stillAttached: [identity(ATTACHED, 'b')], detached: [{ volume: A }] });
      expect(one.collateral.map((o) => o.kind)).toEqual(expect.arrayContaining(['iscsi-session', 'iscsi-node-record', 'scsi-device', 'block-device']));
      expect(one.collateral.some((o) => o.id === fa)).toBe(false);
    });

    it('says when a map is back after a flush (the same uuid under another name)', () => {
      // The capture's host with fm's map renamed by hand from dm-N to dm-9, as multipathd re-adding
      // a flushed map whose paths are still there would number it.
      const map = D.dm.path!.slice(5);
      const again = structuredClone(st);
      for (const b of again.blockDevices) if (b.name === map) b.name = 'dm-9';
      const view = hostWideView({ baseline: st, now: again });
      expect(view.orphans.find((o) => o.kind === 'multipath-map')!.evidence).toContain(`back after a flush: the baseline had this map as ${map}, and it was made again as dm-9`);
    });

    it('finds nothing between a snapshot and itself', () => {
      expect(hostWideView({ baseline: st, now: st, stillAttached: [M] })).toEqual({ baselineTakenAt: st.takenAt, orphans: [], collateral: [] });
    });

    it('a local disk\'s own holders are the host\'s: the volume-scoped view of the local volume names none', () => {
      expect(judgeVolume(st, LOCAL, []).orphans).toEqual([]);
    });
  });
});

describe('a map whose forced remove waits for its last close', () => {
  // `dmsetup remove --force --deferred` on a map held open leaves it with this table (dmsetup table, guest 6.1.0-56-amd64).
  const held = { name: 'dm-0', dm: { name: 'mp', uuid: 'mpath-mp', suspended: false, table: ['0 16384 error'] }, slaves: [], staleSlaves: [] };

  it('says that its table fails every I/O, and says nothing of the kind for a multipath table', () => {
    expect(evidenceOf.map(held)).toContain('its table fails every I/O');
    const live = { ...held, dm: { ...held.dm, table: ['0 16384 multipath 0 0 1 1 service-time 0 1 1 8:0 1'] }, slaves: ['sda'] };
    expect(evidenceOf.map(live)).not.toContain('fails every I/O');
  });
});
