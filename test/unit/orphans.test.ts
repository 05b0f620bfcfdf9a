import { describe, expect, it } from 'vitest';
import { identityFromProperties, type VolumeIdentity } from '../../src/volume/identity.js';
import { normalise } from '../../src/osbrick/index.js';
import { findOrphans, iscsiDevicesOf, judgeVolume, nvmeNamespacesOf, type Orphan } from '../../src/inventory/orphans.js';
import type { HostSnapshot } from '../../src/inventory/model.js';
import { blockOf, dashedNguid, FIXTURE_ISCSI_DB, FIXTURE_KERNELS, hctlOf, iscsiadmSid, lioByIdLinks, loadInventoryFixture, nvmeCliControllers, portalOf, type FixtureVolume, type InventoryFixture, fixtureIdentity, FIXTURE_LAB } from './inventory-fixtures.js';

const identity = fixtureIdentity;

const kinds = (orphans: Orphan[]): string[] => [...new Set(orphans.map((o) => o.kind))].sort();
const ids = (orphans: Orphan[], kind: Orphan['kind']): string[] => orphans.filter((o) => o.kind === kind).map((o) => o.id).sort();
/** "sessionN" for the session iscsiadm printed for a volume's target at its i-th portal. */
const sessionId = (fx: InventoryFixture, v: FixtureVolume, i = 0): string => `session${iscsiadmSid(fx, v.iscsi!.iqn, portalOf(v, i))}`;
/** A controller's evidence, from what nvme-cli printed for it. */
const controllerOrphans = (fx: InventoryFixture, nqn: string): Orphan[] =>
  nvmeCliControllers(fx, nqn).map((c) => ({ kind: 'nvme-controller', id: c.name, evidence: `/sys/class/nvme/${c.name} (${nqn} at ${c.traddr}:${c.trsvcid}, ${c.state})` }));

describe.each(FIXTURE_KERNELS)('captured on guest kernel %s', (kernel) => {
  /** Fixtures captured through the compute agent's `GET /v1/inventory?record=1` (see test/fixtures/README.md). */
  const ATTACHED = loadInventoryFixture('inventory-attached.json', kernel);
  const LEFTOVERS = loadInventoryFixture('inventory-leftovers.json', kernel);
  const V = ATTACHED.volumes;
  /** The connect results (only the attached capture has them; fm, fbig and the disk stay attached). */
  const D = ATTACHED.devices!;

  const A = identity(ATTACHED, 'a');
  const B = identity(ATTACHED, 'b');
  const M = identity(ATTACHED, 'm');
  const BIG = identity(ATTACHED, 'big');
  const N = identity(ATTACHED, 'n');
  const LOCAL: VolumeIdentity = identityFromProperties(normalise('local', { device_path: D.disk.device }), D.disk.wwid);

  describe('identities built from the fixtures', () => {
    it('carry the target, both portals, the LUN and the WWID', () => {
      // The WWID the target answered is the one the connect found on the host.
      expect(D.da.identity).toBe(V.a.iscsi!.wwid);
      expect(A).toEqual({
        protocol: 'iscsi',
        iscsi: { iqn: 'iqn.2026-11.io.brick-lab:fixture.shared', portals: ['10.10.1.10:3260', '10.10.2.10:3260'], lun: 0, wwid: D.da.identity },
      });
      expect(BIG.iscsi).toMatchObject({ iqn: 'iqn.2026-11.io.brick-lab:fixture.big', lun: 300, wwid: D.dbig.identity });
      // uuid and nguid come from connection_info (vol_uuid, volume_nguid): the target's own answer.
      expect(D.dn.identity).toBe(V.n.nvme!.uuid);
      expect(V.n.nvme!.nqn).toBe(`nqn.2026-11.io.brick-lab:${FIXTURE_LAB[kernel]}.fn`);
      expect(N).toEqual({
        protocol: 'nvmeof',
        nvme: {
          // The target's default name, LAB.fn: "dev" for 6.1's capture, "fx" for 6.12's.
          nqn: V.n.nvme!.nqn,
          portals: ['10.10.1.10:4420', '10.10.2.10:4420'],
          nsid: 1,
          uuid: V.n.nvme!.uuid,
          nguid: V.n.nvme!.nguid,
        },
      });
    });
  });

  describe('findOrphans on the attached snapshot (what would be left if the volume were detached now)', () => {
    const s = ATTACHED.snapshot;
    const fa = blockOf(D.da);
    const fb = blockOf(D.db);

    it('fa with fb still attached: its device, block device and links, but not the session or node record fb shares', () => {
      const out = findOrphans(s, A, [B]);
      expect(kinds(out)).toEqual(['block-device', 'by-id-link', 'by-path-link', 'scsi-device']);
      expect(ids(out, 'scsi-device')).toEqual([hctlOf(s, fa)]);
      expect(ids(out, 'block-device')).toEqual([fa]);
      expect(ids(out, 'by-path-link')).toEqual(['ip-10.10.1.10:3260-iscsi-iqn.2026-11.io.brick-lab:fixture.shared-lun-0']);
      expect(ids(out, 'by-id-link')).toEqual(lioByIdLinks(V.a, kernel));
      // Nothing of fb's is claimed for fa.
      expect(out.some((o) => o.id === fb || o.id === hctlOf(s, fb) || o.evidence.includes(fb))).toBe(false);
      expect(out.find((o) => o.kind === 'scsi-device')!.evidence).toBe(`/sys/class/scsi_device/${hctlOf(s, fa)} (wwid ${V.a.iscsi!.wwid}, state running, ${sessionId(ATTACHED, V.a)})`);
    });

    it('fa with nothing else declared: the session and record carry fb\'s LUN, so they are kept, naming it with its WWID', () => {
      const v = judgeVolume(s, A, []);
      expect(kinds(v.orphans)).toEqual(['block-device', 'by-id-link', 'by-path-link', 'scsi-device']);
      expect(v.kept.map((k) => [k.kind, k.id])).toEqual([
        ['iscsi-session', sessionId(ATTACHED, V.a)],
        ['iscsi-node-record', 'iqn.2026-11.io.brick-lab:fixture.shared 10.10.1.10:3260'],
      ]);
      const fb = blockOf(D.db);
      for (const k of v.kept) expect(k.evidence).toContain(`kept: it carries LUN ${V.b.iscsi!.lun} (WWID ${V.b.iscsi!.wwid}, ${fb}), which no volume named as attached`);
      // The connector's record logs in again at boot, and the evidence says so.
      // In open-iscsi's database: /etc/iscsi on 6.1 (2.1.8), /var/lib/iscsi on 6.12 (2.1.11).
      const record = `${FIXTURE_ISCSI_DB[kernel]}/nodes/iqn.2026-11.io.brick-lab:fixture.shared/10.10.1.10,3260, node.startup = automatic: iscsid logs in again at boot: kept`;
      expect(v.kept[1]!.evidence.slice(0, record.length)).toBe(record);
      // Still only fa's own device: fb's LUN on the same session is not fa's.
      expect(ids(v.orphans, 'scsi-device')).toEqual([hctlOf(s, fa)]);
    });

    it('fa with fb declared attached: kept for fb, said so', () => {
      const v = judgeVolume(s, A, [B]);
      expect(v.kept.map((k) => k.kind)).toEqual(['iscsi-session', 'iscsi-node-record']);
      for (const k of v.kept) expect(k.evidence).toContain(`kept: it carries LUN ${V.b.iscsi!.lun} of iqn.2026-11.io.brick-lab:fixture.shared, declared attached`);
    });

    it('fm: the multipath map, both path devices, both sessions and both node records', () => {
      const out = findOrphans(s, M, [A, B, BIG, N]);
      const wwid = V.m.iscsi!.wwid;
      const paths = [...D.dm.devices!].sort();
      expect(ids(out, 'multipath-map')).toEqual([wwid]);
      expect(out.find((o) => o.kind === 'multipath-map')!.evidence).toBe(`/sys/block/${blockOf(D.dm)}/dm (name ${wwid}, uuid mpath-${wwid}, slaves ${paths.join(' ')})`);
      expect(ids(out, 'scsi-device')).toEqual(paths.map((p) => hctlOf(s, p)).sort());
      expect(ids(out, 'block-device')).toEqual(paths);
      expect(ids(out, 'iscsi-session')).toEqual([sessionId(ATTACHED, V.m, 0), sessionId(ATTACHED, V.m, 1)].sort());
      const iqn = V.m.iscsi!.iqn;
      expect(ids(out, 'iscsi-node-record')).toEqual([`${iqn} 10.10.1.10:3260`, `${iqn} 10.10.2.10:3260`]);
      expect(ids(out, 'by-path-link')).toEqual([`ip-10.10.1.10:3260-iscsi-${iqn}-lun-0`, `ip-10.10.2.10:3260-iscsi-${iqn}-lun-0`]);
      // udev gave the WWID names to the map, and on 6.1 the T10 and serial names to one path
      // device (6.12's udev made none of those): the oracle lists the links to the path devices
      // and to the map.
      expect(ids(out, 'by-id-link')).toEqual([`dm-name-${wwid}`, `dm-uuid-mpath-${wwid}`, ...lioByIdLinks(V.m, kernel)].sort());
    });

    it('fn: the namespace head and both controllers', () => {
      const out = findOrphans(s, N, [A, B, M, BIG]);
      const nv = V.n.nvme!;
      const head = blockOf(D.dn);
      expect(kinds(out)).toEqual(['by-id-link', 'nvme-controller', 'nvme-namespace']);
      expect(ids(out, 'nvme-namespace')).toEqual([head]);
      expect(out.find((o) => o.kind === 'nvme-namespace')!.evidence).toBe(`/sys/block/${head} (nsid ${nv.nsid}, uuid ${nv.uuid})`);
      // The controllers nvme-cli listed for the subsystem, with what sysfs says of them.
      expect(out.filter((o) => o.kind === 'nvme-controller')).toEqual(controllerOrphans(ATTACHED, nv.nqn));
      expect(ids(out, 'nvme-controller')).toHaveLength(2);
      // udev's names for the head: model and serial (the target's random serial), with and without
      // the nsid, and the uuid.
      const byId = ids(out, 'by-id-link');
      const serial = /^nvme-Linux_([0-9a-f]+)$/.exec(byId[0]!)?.[1];
      expect(serial).toBeDefined();
      expect(byId).toEqual([`nvme-Linux_${serial}`, `nvme-Linux_${serial}_${nv.nsid}`, `nvme-uuid.${nv.uuid}`]);
    });

    it('finds the namespace by uuid, by nguid, or by subsystem and nsid', () => {
      const nv = N.nvme!;
      const head = [blockOf(D.dn)];
      expect(nvmeNamespacesOf(s, { nqn: nv.nqn, uuid: nv.uuid }).map((n) => n.name)).toEqual(head);
      // The NGUID as some callers write it: dashed, upper case.
      expect(nvmeNamespacesOf(s, { nqn: 'nqn.2026-11.io.brick-lab:other', nguid: dashedNguid(V.n.nvme!.nguid).toUpperCase() }).map((n) => n.name)).toEqual(head);
      expect(nvmeNamespacesOf(s, { nqn: nv.nqn, nsid: 1 }).map((n) => n.name)).toEqual(head);
      // Same subsystem and nsid, another uuid: a later namespace that reuses the nsid.
      expect(nv.uuid).not.toBe('00000000-0000-4000-8000-000000000001');
      expect(nvmeNamespacesOf(s, { nqn: nv.nqn, nsid: 1, uuid: '00000000-0000-4000-8000-000000000001' })).toEqual([]);
    });

    it('the local disk: nothing, since nothing was built on it', () => {
      expect(findOrphans(s, LOCAL, [])).toEqual([]);
    });

    it('refuses a snapshot taken with scope "paths": it leaves out what could be left over', () => {
      // A copy of the real snapshot, relabelled: the guest's capture is a full one.
      const paths: HostSnapshot = { ...s, scope: 'paths' };
      expect(() => findOrphans(paths, A, [])).toThrow(/needs a full snapshot, not a 'paths' one/);
    });
  });

  describe('a reused LUN id (same target and LUN, another WWID) on the attached snapshot', () => {
    const s = ATTACHED.snapshot;
    const REUSED: VolumeIdentity = { protocol: 'iscsi', iscsi: { ...A.iscsi!, wwid: '36001405000000000000000000000dead' } };

    it("claims neither fa's nor fb's device", () => {
      expect(Object.values(V).map((v) => v.iscsi?.wwid)).not.toContain(REUSED.iscsi!.wwid);
      expect(iscsiDevicesOf(s, REUSED.iscsi!)).toEqual([]);
      // Without a WWID the session and LUN are all there is to go by: fa's device.
      expect(iscsiDevicesOf(s, { ...A.iscsi!, wwid: null }).map((d) => d.block)).toEqual([blockOf(D.da)]);
      expect(iscsiDevicesOf(s, A.iscsi!).map((d) => d.block)).toEqual([blockOf(D.da)]);
      expect(iscsiDevicesOf(s, B.iscsi!).map((d) => d.block)).toEqual([blockOf(D.db)]);
    });

    it('reports the device now at that LUN as an identity mismatch when no attached volume claims it (CVE-2023-2088)', () => {
      const out = findOrphans(s, REUSED, []);
      const fa = blockOf(D.da);
      // fa's device answers at the reused volume's target and LUN with fa's WWID: a stale path.
      expect(ids(out, 'scsi-device')).toEqual([hctlOf(s, fa)]);
      const ev = out.find((o) => o.kind === 'scsi-device')!.evidence;
      expect(ev).toContain('identity mismatch');
      expect(ev).toContain(`now reads WWID ${V.a.iscsi!.wwid}, not the detached volume's ${REUSED.iscsi!.wwid}`);
      expect(ids(out, 'block-device')).toEqual([fa]);
      expect(out.find((o) => o.kind === 'block-device')!.evidence).toContain('identity mismatch');
      // Its by-path link is the reused volume's name, so it is reported too; fb's LUN 1 is not.
      expect(ids(out, 'by-path-link')).toEqual([`ip-${portalOf(V.a, 0)}-iscsi-${V.a.iscsi!.iqn}-lun-${V.a.iscsi!.lun}`]);
      expect(out.some((o) => o.id === blockOf(D.db))).toBe(false);
      // The session carries fb's LUN 1 besides: kept, not fa's to log out.
      expect(ids(out, 'iscsi-session')).toEqual([]);
      expect(judgeVolume(s, REUSED, []).kept.map((k) => k.id)).toEqual([sessionId(ATTACHED, V.a), `iqn.2026-11.io.brick-lab:fixture.shared ${portalOf(V.a, 0)}`]);
    });

    it('reports nothing once the volume now at that LUN is declared attached (it is that volume\'s device)', () => {
      expect(findOrphans(s, REUSED, [A, B])).toEqual([]);
    });
  });

  describe('findOrphans on the leftovers snapshot', () => {
    const s = LEFTOVERS.snapshot;
    const LA = identity(LEFTOVERS, 'a');
    const LB = identity(LEFTOVERS, 'b');
    const LM = identity(LEFTOVERS, 'm');
    const LBIG = identity(LEFTOVERS, 'big');
    const LN = identity(LEFTOVERS, 'n');

    it('uses the same volumes as the attached fixture', () => {
      expect(LEFTOVERS.volumes).toEqual(ATTACHED.volumes);
      expect([LA, LB, LM, LBIG, LN]).toEqual([A, B, M, BIG, N]);
    });

    it('fa: nothing is left, because fb’s disconnect logged out the session fa left behind', () => {
      // fa's SCSI device was deleted by hand (echo 1 > .../delete) with no logout, so right then
      // fa's session still served fb's LUN 1. Then the connector disconnected fb: it deleted fb's
      // device, saw no SCSI device left on the session and logged it out and deleted the node
      // record. The snapshot shows exactly that: no fixture.shared session, node record, device or link.
      const { unitSerial, wwid } = V.a.iscsi!;
      expect(s.iscsiSessions.some((x) => x.targetIqn === LA.iscsi!.iqn)).toBe(false);
      expect(s.iscsiNodes.some((x) => x.iqn === LA.iscsi!.iqn)).toBe(false);
      expect(s.scsiDevices.some((x) => x.wwid === wwid || x.wwid === V.b.iscsi!.wwid)).toBe(false);
      expect(s.links.some((l) => l.name.includes('fixture.shared') || l.name.includes(unitSerial) || l.name.includes(wwid.slice(1)))).toBe(false);
      expect(findOrphans(s, LA, [])).toEqual([]);
    });

    it('fb: clean', () => {
      expect(findOrphans(s, LB, [])).toEqual([]);
      expect(findOrphans(s, LB, [LM, LBIG])).toEqual([]);
    });

    it('fn: the two controllers and no namespace (it went away on the target)', () => {
      const out = findOrphans(s, LN, [LM, LBIG]);
      expect(out.every((o) => o.kind === 'nvme-controller')).toBe(true);
      expect(out).toHaveLength(2);
      const nqn = V.n.nvme!.nqn;
      expect(out).toEqual(controllerOrphans(LEFTOVERS, nqn));
      expect(out.map((o) => o.evidence.replace(/^\S+ /, '')).sort()).toEqual([`(${nqn} at 10.10.1.10:4420, live)`, `(${nqn} at 10.10.2.10:4420, live)`]);
    });

    it('the hand-made dangling by-path link, for a volume at LUN 4 of fixture.gone', () => {
      const gone: VolumeIdentity = { protocol: 'iscsi', iscsi: { iqn: 'iqn.2026-11.io.brick-lab:fixture.gone', portals: ['10.10.1.10:3260'], lun: 4 } };
      const out = findOrphans(s, gone, []);
      expect(out).toEqual([
        {
          kind: 'by-path-link',
          id: 'ip-10.10.1.10:3260-iscsi-iqn.2026-11.io.brick-lab:fixture.gone-lun-4',
          evidence: '/dev/disk/by-path/ip-10.10.1.10:3260-iscsi-iqn.2026-11.io.brick-lab:fixture.gone-lun-4 -> (nothing)',
        },
      ]);
      expect(out[0]!.evidence).toContain('(nothing)');
      // Another LUN of that target does not own it.
      expect(findOrphans(s, { protocol: 'iscsi', iscsi: { ...gone.iscsi!, lun: 5 } }, [])).toEqual([]);
    });

    it('fm, still attached and not detached: lists its live map, devices, sessions and records (the oracle answers "what would be left if this volume were detached")', () => {
      const out = findOrphans(s, LM, [LBIG]);
      expect(kinds(out)).toEqual(['block-device', 'by-id-link', 'by-path-link', 'iscsi-node-record', 'iscsi-session', 'multipath-map', 'scsi-device']);
      expect(ids(out, 'multipath-map')).toEqual([V.m.iscsi!.wwid]);
      expect(ids(out, 'scsi-device')).toEqual(D.dm.devices!.map((p) => hctlOf(s, p)).sort());
      expect(ids(out, 'iscsi-session')).toEqual([sessionId(LEFTOVERS, V.m, 0), sessionId(LEFTOVERS, V.m, 1)].sort());
      // Nothing about the volume changed between the two captures.
      expect(out).toEqual(findOrphans(ATTACHED.snapshot, M, [BIG]));
    });

    it('fbig, still attached and not detached: lists its live LUN-300 device and session (the oracle answers "what would be left if this volume were detached")', () => {
      const out = findOrphans(s, LBIG, [LM]);
      const big = blockOf(D.dbig);
      expect(ids(out, 'scsi-device')).toEqual([hctlOf(s, big)]);
      expect(hctlOf(s, big)).toMatch(/^\d+:0:0:300$/);
      expect(ids(out, 'block-device')).toEqual([big]);
      expect(ids(out, 'iscsi-session')).toEqual([sessionId(LEFTOVERS, V.big)]);
      expect(ids(out, 'iscsi-node-record')).toEqual(['iqn.2026-11.io.brick-lab:fixture.big 10.10.1.10:3260']);
      expect(ids(out, 'by-path-link')).toEqual(['ip-10.10.1.10:3260-iscsi-iqn.2026-11.io.brick-lab:fixture.big-lun-0x012c000000000000']);
      expect(ids(out, 'by-id-link')).toEqual(lioByIdLinks(V.big, kernel));
      expect(out).toEqual(findOrphans(ATTACHED.snapshot, BIG, [M]));
    });

    it('the local disk: still nothing', () => {
      expect(findOrphans(s, LOCAL, [])).toEqual([]);
    });
  });
});
