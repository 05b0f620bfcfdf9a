import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { identityFromProperties } from '../../src/agent/compute.js';
import { normalise } from '../../src/connectors/properties.js';
import { findOrphans, iscsiDevicesOf, nvmeNamespacesOf, type Orphan, type VolumeIdentity } from '../../src/inventory/orphans.js';
import type { HostSnapshot } from '../../src/inventory/snapshot.js';

/** Fixtures captured through the compute agent's `GET /v1/inventory?record=1` (see test/fixtures/README.md). */
interface InventoryFixture {
  volumes: Record<string, { name: string; protocol: 'iscsi' | 'nvmeof'; connectionInfo: unknown; iscsi?: { iqn: string; lun: number; wwid: string } }>;
  devices?: Record<string, { devices?: string[]; device?: string; wwid?: string }>;
  snapshot: HostSnapshot;
}

const load = (name: string): InventoryFixture => JSON.parse(readFileSync(new URL(`../fixtures/guest-6.1.0-56/${name}`, import.meta.url), 'utf8')) as InventoryFixture;
const ATTACHED = load('inventory-attached.json');
const LEFTOVERS = load('inventory-leftovers.json');

/** As the agent's /v1/inventory/orphans builds it: normalised connection_info plus the target's WWID. */
function identity(fx: InventoryFixture, key: string): VolumeIdentity {
  const v = fx.volumes[key]!;
  return identityFromProperties(normalise(v.protocol, v.connectionInfo), v.iscsi?.wwid ?? null);
}

const kinds = (orphans: Orphan[]): string[] => [...new Set(orphans.map((o) => o.kind))].sort();
const ids = (orphans: Orphan[], kind: Orphan['kind']): string[] => orphans.filter((o) => o.kind === kind).map((o) => o.id).sort();

const A = identity(ATTACHED, 'a');
const B = identity(ATTACHED, 'b');
const M = identity(ATTACHED, 'm');
const BIG = identity(ATTACHED, 'big');
const N = identity(ATTACHED, 'n');
const LOCAL: VolumeIdentity = identityFromProperties(normalise('local', { device_path: ATTACHED.devices!.disk!.device }), ATTACHED.devices!.disk!.wwid);

describe('identities built from the fixtures', () => {
  it('carry the target, both portals, the LUN and the WWID', () => {
    expect(A).toEqual({
      protocol: 'iscsi',
      iscsi: { iqn: 'iqn.2026-11.io.brick-lab:fixture.shared', portals: ['10.10.1.10:3260', '10.10.2.10:3260'], lun: 0, wwid: '360014055d801e3efcf54267a15a3e2f7' },
    });
    expect(BIG.iscsi).toMatchObject({ iqn: 'iqn.2026-11.io.brick-lab:fixture.big', lun: 300 });
    expect(N).toEqual({
      protocol: 'nvmeof',
      nvme: {
        nqn: 'nqn.2026-11.io.brick-lab:dev.fn',
        portals: ['10.10.1.10:4420', '10.10.2.10:4420'],
        nsid: 1,
        uuid: '9d996e72-b896-413e-a157-43162a07de87',
        nguid: '9d996e72b896413ea15743162a07de87',
      },
    });
  });
});

describe('findOrphans on the attached snapshot (what would be left if the volume were detached now)', () => {
  const s = ATTACHED.snapshot;

  it('fa with fb still attached: its device, block device and links, but not the session or node record fb shares', () => {
    const out = findOrphans(s, A, [B]);
    expect(kinds(out)).toEqual(['block-device', 'by-id-link', 'by-path-link', 'scsi-device']);
    expect(ids(out, 'scsi-device')).toEqual(['6:0:0:0']);
    expect(ids(out, 'block-device')).toEqual(['sda']);
    expect(ids(out, 'by-path-link')).toEqual(['ip-10.10.1.10:3260-iscsi-iqn.2026-11.io.brick-lab:fixture.shared-lun-0']);
    expect(ids(out, 'by-id-link')).toEqual([
      'scsi-1LIO-ORG_FILEIO:5d801e3e-fcf5-4267-a15a-3e2f72a8a65f',
      'scsi-360014055d801e3efcf54267a15a3e2f7',
      'scsi-SLIO-ORG_FILEIO_5d801e3e-fcf5-4267-a15a-3e2f72a8a65f',
      'wwn-0x60014055d801e3efcf54267a15a3e2f7',
    ]);
    // Nothing of fb's (sdb) is claimed for fa.
    expect(out.some((o) => o.id === 'sdb' || o.id === '6:0:0:1' || o.evidence.includes('sdb'))).toBe(false);
    expect(out.find((o) => o.kind === 'scsi-device')!.evidence).toBe('/sys/class/scsi_device/6:0:0:0 (wwid 360014055d801e3efcf54267a15a3e2f7, state running, session1)');
  });

  it('fa with nothing else attached: also the session and the node record', () => {
    const out = findOrphans(s, A, []);
    expect(kinds(out)).toEqual(['block-device', 'by-id-link', 'by-path-link', 'iscsi-node-record', 'iscsi-session', 'scsi-device']);
    expect(ids(out, 'iscsi-session')).toEqual(['session1']);
    expect(ids(out, 'iscsi-node-record')).toEqual(['iqn.2026-11.io.brick-lab:fixture.shared 10.10.1.10:3260']);
    expect(out.find((o) => o.kind === 'iscsi-node-record')!.evidence).toBe('/etc/iscsi/nodes/iqn.2026-11.io.brick-lab:fixture.shared/10.10.1.10,3260');
    // Still only fa's own device: fb's LUN on the same session is not fa's.
    expect(ids(out, 'scsi-device')).toEqual(['6:0:0:0']);
  });

  it('fm: the multipath map, both path devices, both sessions and both node records', () => {
    const out = findOrphans(s, M, [A, B, BIG, N]);
    expect(ids(out, 'multipath-map')).toEqual(['36001405b8e9a583dfe34ccfa40d7642c']);
    expect(out.find((o) => o.kind === 'multipath-map')!.evidence).toBe('/sys/block/dm-0/dm (name 36001405b8e9a583dfe34ccfa40d7642c, uuid mpath-36001405b8e9a583dfe34ccfa40d7642c, slaves sdc sdd)');
    expect(ids(out, 'scsi-device')).toEqual(['7:0:0:0', '8:0:0:0']);
    expect(ids(out, 'block-device')).toEqual(['sdc', 'sdd']);
    expect(ids(out, 'iscsi-session')).toEqual(['session2', 'session3']);
    expect(ids(out, 'iscsi-node-record')).toEqual(['iqn.2026-11.io.brick-lab:dev.fm 10.10.1.10:3260', 'iqn.2026-11.io.brick-lab:dev.fm 10.10.2.10:3260']);
    expect(ids(out, 'by-path-link')).toEqual([
      'ip-10.10.1.10:3260-iscsi-iqn.2026-11.io.brick-lab:dev.fm-lun-0',
      'ip-10.10.2.10:3260-iscsi-iqn.2026-11.io.brick-lab:dev.fm-lun-0',
    ]);
    // udev gave the shared by-id names to one path (sdd) and the WWID names to the map (dm-0):
    // the oracle lists the links to the path devices and to the map.
    expect(ids(out, 'by-id-link')).toEqual([
      'dm-name-36001405b8e9a583dfe34ccfa40d7642c',
      'dm-uuid-mpath-36001405b8e9a583dfe34ccfa40d7642c',
      'scsi-1LIO-ORG_FILEIO:b8e9a583-dfe3-4ccf-a40d-7642cd4a1078',
      'scsi-36001405b8e9a583dfe34ccfa40d7642c',
      'scsi-SLIO-ORG_FILEIO_b8e9a583-dfe3-4ccf-a40d-7642cd4a1078',
      'wwn-0x6001405b8e9a583dfe34ccfa40d7642c',
    ]);
  });

  it('fn: the namespace head and both controllers', () => {
    const out = findOrphans(s, N, [A, B, M, BIG]);
    expect(kinds(out)).toEqual(['by-id-link', 'nvme-controller', 'nvme-namespace']);
    expect(ids(out, 'nvme-namespace')).toEqual(['nvme0n1']);
    expect(out.find((o) => o.kind === 'nvme-namespace')!.evidence).toBe('/sys/block/nvme0n1 (nsid 1, uuid 9d996e72-b896-413e-a157-43162a07de87)');
    expect(ids(out, 'nvme-controller')).toEqual(['nvme0', 'nvme1']);
    expect(ids(out, 'by-id-link')).toEqual(['nvme-Linux_414dc4d2cf96f4de6f41', 'nvme-Linux_414dc4d2cf96f4de6f41_1', 'nvme-uuid.9d996e72-b896-413e-a157-43162a07de87']);
  });

  it('finds the namespace by uuid, by nguid, or by subsystem and nsid', () => {
    const nv = N.nvme!;
    expect(nvmeNamespacesOf(s, { nqn: nv.nqn, uuid: nv.uuid }).map((n) => n.name)).toEqual(['nvme0n1']);
    expect(nvmeNamespacesOf(s, { nqn: 'nqn.2026-11.io.brick-lab:other', nguid: '9D996E72-B896-413E-A157-43162A07DE87' }).map((n) => n.name)).toEqual(['nvme0n1']);
    expect(nvmeNamespacesOf(s, { nqn: nv.nqn, nsid: 1 }).map((n) => n.name)).toEqual(['nvme0n1']);
    // Same subsystem and nsid, another uuid: a later namespace that reuses the nsid.
    expect(nvmeNamespacesOf(s, { nqn: nv.nqn, nsid: 1, uuid: '00000000-0000-4000-8000-000000000001' })).toEqual([]);
  });

  it('the local disk: nothing, since nothing was built on it', () => {
    expect(findOrphans(s, LOCAL, [])).toEqual([]);
  });
});

describe('a reused LUN id (same target and LUN, another WWID) on the attached snapshot', () => {
  const s = ATTACHED.snapshot;
  const REUSED: VolumeIdentity = { protocol: 'iscsi', iscsi: { ...A.iscsi!, wwid: '36001405000000000000000000000dead' } };

  it("claims neither fa's nor fb's device", () => {
    expect(iscsiDevicesOf(s, REUSED.iscsi!)).toEqual([]);
    // Without a WWID the session and LUN are all there is to go by: fa's device.
    expect(iscsiDevicesOf(s, { ...A.iscsi!, wwid: null }).map((d) => d.block)).toEqual(['sda']);
    expect(iscsiDevicesOf(s, A.iscsi!).map((d) => d.block)).toEqual(['sda']);
    expect(iscsiDevicesOf(s, B.iscsi!).map((d) => d.block)).toEqual(['sdb']);
  });

  it("reports no device or link of the volume now at that LUN, only the session and node record nobody else declared", () => {
    const out = findOrphans(s, REUSED, []);
    expect(out.filter((o) => ['scsi-device', 'block-device', 'by-path-link', 'by-id-link', 'multipath-map'].includes(o.kind))).toEqual([]);
    expect(out.map((o) => o.id).sort()).toEqual(['iqn.2026-11.io.brick-lab:fixture.shared 10.10.1.10:3260', 'session1']);
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
    expect([LA, LB, LM, LBIG, LN]).toEqual([A, B, M, BIG, N]);
  });

  it('fa: nothing is left, because fb’s disconnect logged out the session fa left behind', () => {
    // fa's SCSI device was deleted by hand (echo 1 > .../delete) with no logout, so right then
    // session1 still served fb's LUN 1. Then the connector disconnected fb: it deleted sdb, saw
    // no SCSI device left on session1 and logged it out and deleted the node record. The
    // snapshot shows exactly that: no fixture.shared session, node record, device or link.
    expect(s.iscsiSessions.some((x) => x.targetIqn === LA.iscsi!.iqn)).toBe(false);
    expect(s.iscsiNodes.some((x) => x.iqn === LA.iscsi!.iqn)).toBe(false);
    expect(s.links.some((l) => l.name.includes('fixture.shared') || l.name.includes('5d801e3e'))).toBe(false);
    expect(findOrphans(s, LA, [])).toEqual([]);
  });

  it('fb: clean', () => {
    expect(findOrphans(s, LB, [])).toEqual([]);
    expect(findOrphans(s, LB, [LM, LBIG])).toEqual([]);
  });

  it('fn: the two controllers and no namespace (it went away on the target)', () => {
    const out = findOrphans(s, LN, [LM, LBIG]);
    expect(out.every((o) => o.kind === 'nvme-controller')).toBe(true);
    expect(out).toEqual([
      { kind: 'nvme-controller', id: 'nvme0', evidence: '/sys/class/nvme/nvme0 (nqn.2026-11.io.brick-lab:dev.fn at 10.10.1.10:4420, live)' },
      { kind: 'nvme-controller', id: 'nvme1', evidence: '/sys/class/nvme/nvme1 (nqn.2026-11.io.brick-lab:dev.fn at 10.10.2.10:4420, live)' },
    ]);
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
    expect(ids(out, 'multipath-map')).toEqual(['36001405b8e9a583dfe34ccfa40d7642c']);
    expect(ids(out, 'scsi-device')).toEqual(['7:0:0:0', '8:0:0:0']);
    expect(ids(out, 'iscsi-session')).toEqual(['session2', 'session3']);
    // Nothing about the volume changed between the two captures.
    expect(out).toEqual(findOrphans(ATTACHED.snapshot, M, [BIG]));
  });

  it('fbig, still attached and not detached: lists its live LUN-300 device and session (the oracle answers "what would be left if this volume were detached")', () => {
    const out = findOrphans(s, LBIG, [LM]);
    expect(ids(out, 'scsi-device')).toEqual(['9:0:0:300']);
    expect(ids(out, 'block-device')).toEqual(['sde']);
    expect(ids(out, 'iscsi-session')).toEqual(['session4']);
    expect(ids(out, 'iscsi-node-record')).toEqual(['iqn.2026-11.io.brick-lab:fixture.big 10.10.1.10:3260']);
    expect(ids(out, 'by-path-link')).toEqual(['ip-10.10.1.10:3260-iscsi-iqn.2026-11.io.brick-lab:fixture.big-lun-0x012c000000000000']);
    expect(ids(out, 'by-id-link')).toEqual([
      'scsi-1LIO-ORG_FILEIO:02e4c8c4-c46b-4ab0-bb22-5bd52422eef9',
      'scsi-3600140502e4c8c4c46b4ab0bb225bd52',
      'scsi-SLIO-ORG_FILEIO_02e4c8c4-c46b-4ab0-bb22-5bd52422eef9',
      'wwn-0x600140502e4c8c4c46b4ab0bb225bd52',
    ]);
    expect(out).toEqual(findOrphans(ATTACHED.snapshot, BIG, [M]));
  });

  it('the local disk: still nothing', () => {
    expect(findOrphans(s, LOCAL, [])).toEqual([]);
  });
});
