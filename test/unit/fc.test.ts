import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FcConnector } from '../../src/connectors/fc.js';
import { hostConnectorProperties, initiatorNameOf } from '../../src/connectors/host-properties.js';
import { IscsiConnector } from '../../src/connectors/iscsi.js';
import { pathsView } from '../../src/inventory/paths-view.js';
import type { HostFs } from '../../src/system/hostfs.js';
import { UEVENT_SEQNUM } from '../../src/system/sysfs-read.js';
import { reaches } from '../../src/targets/fc-volume.js';
import { fcInitiatorsOf } from '../../src/targets/volumes.js';
import type { HostSnapshot } from '../../src/inventory/model.js';
import { verdictWithTools } from '../../src/inventory/oracle.js';
import { fcDevicesOf, judgeVolume } from '../../src/inventory/orphans.js';
import { wwnOf } from '../../src/inventory/read-fc.js';
import { takeSnapshotSync } from '../../src/inventory/snapshot.js';
import { parseDmsetup, parseMultipathdPaths } from '../../src/inventory/tools.js';
import { normalise } from '../../src/osbrick/index.js';
import { fcoeWwnn, fcoeWwpn } from '../../src/system/fcoe.js';
import { replayHostFs, type HostFsRecording } from '../../src/system/hostfs-record.js';
import { identityFromProperties, type VolumeIdentity } from '../../src/volume/identity.js';
import type { FcProperties } from '../../src/volume/properties.js';
import { FIXTURE_KERNELS, guestFixtureUrl } from './inventory-fixtures.js';

/**
 * Fibre Channel on a real compute, replayed: test/fixtures/guest-KERNEL/inventory-fc.json was
 * captured by scripts/capture-fc-fixtures.mjs on compute-1 of a lab (kernels 6.1.0-56-amd64 and
 * 6.12.117+deb13-amd64, FCoE VN2VN ports on both data networks, the target's LIO tcm_fc ports): `m` at
 * LUN 3 over both fabrics with dm-multipath, `s` at LUN 7 over the first; then (`leftover`) `m`
 * detached and `s` still attached. The tests take names and identities from the fixture's own
 * `volumes` and `devices`, never from literals.
 */
interface Capture {
  snapshot: HostSnapshot;
  recording: HostFsRecording;
  dmsetupTable: string;
  multipathdPaths: string;
}
interface FcFixtureVolume {
  name: string;
  connectionInfo: unknown;
  fc: { wwpns: string[]; lun: number; wwid: string; initiators: string[] };
}
interface FcFixture {
  volumes: { m: FcFixtureVolume; s: FcFixtureVolume };
  devices: { dm: { path: string; devices: string[]; identity: string }; ds: { path: string; devices: string[]; identity: string } };
  attached: Capture;
  leftover: Capture;
}

/** The snapshot rebuilt from the guest's reads, with the dm tables `dmsetup table` printed (as the agent takes it). */
const replay = (c: Capture): HostSnapshot => takeSnapshotSync(replayHostFs(c.recording), { dmTables: parseDmsetup(c.dmsetupTable) });
const props = (v: FcFixtureVolume): FcProperties => normalise('fc', v.connectionInfo) as FcProperties;
const identity = (v: FcFixtureVolume, wwid: string | null = v.fc.wwid): VolumeIdentity => identityFromProperties(props(v), wwid);
const tools = (c: Capture) => ({ multipathPaths: parseMultipathdPaths(c.multipathdPaths), multipathMaps: [], dmStatus: [] });

describe.each(FIXTURE_KERNELS)('captured on guest kernel %s', (kernel) => {
  const fx = JSON.parse(readFileSync(guestFixtureUrl('inventory-fc.json', kernel), 'utf8')) as FcFixture;

  describe('the FC transport in a snapshot', () => {
    const snap = replay(fx.attached);

    it('is rebuilt from the guest\'s reads as the guest took it, all but takenAt', () => {
      for (const c of [fx.attached, fx.leftover]) expect({ ...replay(c), takenAt: '' }).toEqual({ ...c.snapshot, takenAt: '' });
    });

    it('reads the host ports (online, named after their NICs\' MACs) and the remote ports they see', () => {
      const [m, s] = [fx.volumes.m, fx.volumes.s];
      expect(snap.fcHosts!.map((h) => h.portState)).toEqual(['Online', 'Online']);
      // The target zoned each host port to its own fabric's target port.
      const zoned = props(m).initiatorTargetMap!;
      for (const h of snap.fcHosts!) expect(zoned[h.portName!]).toHaveLength(1);
      expect(snap.fcHosts!.map((h) => h.nodeName)).toEqual(snap.fcHosts!.map((h) => `1000${h.portName!.slice(4)}`));
      // Each host port sees the target's port on its fabric with a SCSI target id, and the other
      // compute's port as an initiator without one.
      for (const h of snap.fcHosts!) {
        const seen = snap.fcRemotePorts!.filter((r) => r.host === h.host);
        const target = seen.find((r) => m.fc.wwpns.includes(r.portName!))!;
        expect(target.roles).toContain('FCP Target');
        expect(target.scsiTargetId).toBeGreaterThanOrEqual(0);
        expect(seen.filter((r) => r !== target).every((r) => r.roles === 'FCP Initiator' && r.scsiTargetId === -1)).toBe(true);
      }
      expect(s.fc.wwpns).toEqual([m.fc.wwpns[0]]);
    });

    it('hangs each FC disk under its remote port', () => {
      const byDev = new Map(snap.scsiDevices.map((d) => [d.block, d]));
      for (const dev of [...fx.devices.dm.devices, ...fx.devices.ds.devices]) expect(byDev.get(dev)?.rport).toMatch(/^rport-\d+:0-\d+$/);
      expect(snap.scsiDevices.every((d) => d.session === null)).toBe(true);
    });

    it('finds a volume\'s disks by its target ports and LUN, and by its WWID', () => {
      expect(fcDevicesOf(snap, identity(fx.volumes.m).fc!).map((d) => d.block).sort()).toEqual([...fx.devices.dm.devices].sort());
      expect(fcDevicesOf(snap, identity(fx.volumes.s).fc!).map((d) => d.block)).toEqual(fx.devices.ds.devices);
      // Without the WWID, by target port and LUN alone.
      expect(fcDevicesOf(snap, identity(fx.volumes.s, null).fc!).map((d) => d.block)).toEqual(fx.devices.ds.devices);
    });
  });

  describe('the orphan oracle on FC', () => {
    it('names every disk, link and map of a volume whose detach was reported but not done', () => {
      const snap = replay(fx.attached);
      const v = verdictWithTools(snap, identity(fx.volumes.m), [identity(fx.volumes.s)], tools(fx.attached), { devices: fx.devices.dm.devices });
      const kinds = v.orphans.map((o) => `${o.kind} ${o.id}`);
      for (const dev of fx.devices.dm.devices) expect(kinds).toContain(`block-device ${dev}`);
      expect(kinds.filter((k) => k.startsWith('scsi-device'))).toHaveLength(2);
      expect(kinds.filter((k) => k.startsWith('by-path-link')).map((k) => k.replace(/^by-path-link pci-[^-]+-/, ''))).toEqual(expect.arrayContaining(fx.volumes.m.fc.wwpns.map((w) => `fc-0x${w}-lun-${fx.volumes.m.fc.lun}`)));
      expect(kinds).toContain(`multipath-map ${fx.volumes.m.fc.wwid}`);
      // The still-attached volume's disk, on the same target port, is not this volume's.
      for (const dev of fx.devices.ds.devices) expect(kinds).not.toContain(`block-device ${dev}`);
    });

    it('finds nothing of the volume detached, and all of the one still attached when it is judged as detached', () => {
      const snap = replay(fx.leftover);
      expect(verdictWithTools(snap, identity(fx.volumes.m), [], tools(fx.leftover)).orphans).toEqual([]);
      const left = verdictWithTools(snap, identity(fx.volumes.s), [], tools(fx.leftover), { devices: fx.devices.ds.devices }).orphans;
      const kinds = new Set(left.map((o) => o.kind));
      // multipathd watches every SCSI disk, in a map or not.
      expect([...kinds].sort()).toEqual(['block-device', 'by-id-link', 'by-path-link', 'multipathd-path', 'scsi-device']);
      // Declared attached, it is kept out of the verdict entirely.
      expect(judgeVolume(snap, identity(fx.volumes.s), [identity(fx.volumes.s)]).orphans).toEqual([]);
    });

    it('calls a disk at the volume\'s port and LUN that reads another WWID an identity mismatch (a reused LUN id)', () => {
      const snap = replay(fx.leftover);
      // The detached volume had another WWID than the one the disk at its port and LUN reads now.
      const gone = identity(fx.volumes.s, `36001405${'0'.repeat(25)}`);
      const left = judgeVolume(snap, gone).orphans;
      const disk = left.find((o) => o.kind === 'scsi-device')!;
      expect(disk.evidence).toMatch(/identity mismatch: LUN 7 of target port 0x[0-9a-f]{16} now reads WWID /);
      expect(disk.evidence).toContain(fx.volumes.s.fc.wwid);
    });
  });

  describe('brick-lab\'s FC connector on the replayed host', () => {
    it('gives each volume\'s by-path links and disks (and its map) as get_volume_paths', async () => {
      const c = new FcConnector(replayHostFs(fx.attached.recording));
      const m = await c.getVolumePaths(props(fx.volumes.m), replay(fx.attached));
      expect(m.paths).toHaveLength(2);
      expect(m.paths.every((p) => p.startsWith('/dev/disk/by-path/pci-') && p.endsWith(`-lun-${fx.volumes.m.fc.lun}`))).toBe(true);
      expect(m.devices).toEqual([...fx.devices.dm.devices, fx.devices.dm.path.slice(5)].sort());
      const s = await c.getVolumePaths(props(fx.volumes.s), replay(fx.attached));
      expect(s.devices).toEqual(fx.devices.ds.devices);
    });

    it('lists the FC volumes the host sees, one per WWID, each with its target ports (get_all_available_volumes)', async () => {
      const c = new FcConnector(replayHostFs(fx.attached.recording));
      const all = await c.getAllAvailableVolumes();
      expect(all.map((a) => a.identity.wwid).sort()).toEqual([fx.volumes.m.fc.wwid, fx.volumes.s.fc.wwid].sort());
      const m = all.find((a) => a.identity.wwid === fx.volumes.m.fc.wwid)!;
      expect([...m.identity.portals!].sort()).toEqual([...fx.volumes.m.fc.wwpns].sort());
      expect(m.identity.lun).toBe(fx.volumes.m.fc.lun);
      expect(m.devices.sort()).toEqual([...fx.devices.dm.devices].sort());
      const after = await new FcConnector(replayHostFs(fx.leftover.recording)).getAllAvailableVolumes();
      expect(after.map((a) => a.identity.wwid)).toEqual([fx.volumes.s.fc.wwid]);
    });

    it('answers its own available volumes from a view the iSCSI connector answered from first', async () => {
      // A live host's view is kept while the uevent counter stands still, and every connector
      // answers from it: iSCSI's empty list must not be taken for FC's (it was, seen in the lab).
      const replayed = replayHostFs(fx.attached.recording);
      const fs: HostFs = { ...replayed, readText: (p) => (p === UEVENT_SEQNUM ? '100' : replayed.readText(p)) };
      const view = pathsView(fs);
      view.take();
      await new Promise((r) => setTimeout(r, 1100)); // quiet for the view's 1 s: the next read is kept
      view.take();
      const iscsi = await new IscsiConnector(fs).getAllAvailableVolumes();
      expect(iscsi).toEqual([]);
      const fc = await new FcConnector(fs).getAllAvailableVolumes();
      expect(fc.map((a) => a.identity.wwid).sort()).toEqual([fx.volumes.m.fc.wwid, fx.volumes.s.fc.wwid].sort());
      expect(view.stats.hits).toBeGreaterThanOrEqual(2);
    });

    it('reports the host\'s connector properties as os-brick does: its online ports\' WWPNs and WWNNs, its initiator name and host NQN', () => {
      const replayed = replayHostFs(fx.attached.recording);
      const etc = new Map([
        ['/etc/iscsi/initiatorname.iscsi', '## DO NOT EDIT OR REMOVE THIS FILE!\n# comment\nInitiatorName=iqn.2026-11.io.brick-lab:dev:compute-1\n'],
        ['/etc/nvme/hostnqn', 'nqn.2014-08.org.nvmexpress:uuid:0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f\n'],
      ]);
      const fs: HostFs = { ...replayed, readText: (p) => etc.get(p) ?? (p.startsWith('/etc/') ? null : replayed.readText(p)) };
      const p = hostConnectorProperties(fs, { ip: '10.10.1.11', host: 'compute-1', platform: 'x86_64' });
      const ports = replay(fx.attached).fcHosts!;
      expect(p).toEqual({
        platform: 'x86_64', os_type: 'linux', host: 'compute-1', ip: '10.10.1.11', multipath: false, enforce_multipath: false, do_local_attach: false,
        initiator: 'iqn.2026-11.io.brick-lab:dev:compute-1',
        nqn: 'nqn.2014-08.org.nvmexpress:uuid:0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f',
        wwpns: ports.map((h) => h.portName), wwnns: ports.map((h) => h.nodeName),
      });
      expect(p.wwpns!.every((w) => /^2000[0-9a-f]{12}$/.test(w))).toBe(true);
      // A host with no FC port online and no NVMe or iSCSI names: those keys are left out, as os-brick leaves them.
      const bare: HostFs = { ...fs, readText: (p) => (p.startsWith('/etc/') ? null : p.endsWith('/port_state') ? 'Linkdown' : replayed.readText(p)) };
      expect(Object.keys(hostConnectorProperties(bare, { ip: null })).sort()).toEqual(['do_local_attach', 'enforce_multipath', 'host', 'ip', 'multipath', 'os_type', 'platform']);
      expect(initiatorNameOf('InitiatorName = iqn.x:y  \n')).toBe('iqn.x:y');
      expect(initiatorNameOf('# InitiatorName=iqn.commented\n')).toBeNull();
    });

    it('searches /dev/disk/by-path, as os-brick\'s FC connector does', () => {
      expect(new FcConnector(replayHostFs(fx.attached.recording)).getSearchPath()).toBe('/dev/disk/by-path');
    });
  });
});

describe('FC names', () => {
  it('takes sysfs port names as os-brick writes WWPNs, and names FCoE ports after the MAC', () => {
    expect(wwnOf('0x20005254004c0101')).toBe('20005254004c0101');
    expect(wwnOf('0x5005076300c7')).toBe('00005005076300c7');
    expect(wwnOf('20005254004c0101')).toBeNull();
    expect(fcoeWwpn('52:54:00:4C:01:01')).toBe('20005254004c0101');
    expect(fcoeWwnn('52:54:00:4c:01:01')).toBe('10005254004c0101');
  });
});

describe('the target\'s zoning of the lab\'s compute ports', () => {
  it('reads BRICK_FC_INITIATORS, each port with its fabric or none, and lets a port reach its own fabric\'s target port only', () => {
    const known = fcInitiatorsOf(' path-a=20005254004c0101  path-b=20005254004c0102 20005254004c0301 ');
    expect(known).toEqual([
      { network: 'path-a', wwpn: '20005254004c0101' },
      { network: 'path-b', wwpn: '20005254004c0102' },
      { network: null, wwpn: '20005254004c0301' },
    ]);
    expect(fcInitiatorsOf('')).toEqual([]);
    expect(reaches(known, '20005254004c0101', 'path-a')).toBe(true);
    expect(reaches(known, '20005254004c0101', 'path-b')).toBe(false);
    // A port the lab did not place (named in a request) may reach every target port.
    expect(reaches(known, '20005254004c0301', 'path-b')).toBe(true);
    expect(reaches(known, '20005254004c0999', 'path-a')).toBe(true);
  });
});
