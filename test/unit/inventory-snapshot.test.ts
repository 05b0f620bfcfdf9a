import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { normaliseNguid, scsiWwid, takeSnapshot, type HostSnapshot } from '../../src/inventory/snapshot.js';
import { replayHostFs, type HostFsRecording } from '../../src/system/hostfs.js';

/** A fixture captured through the compute agent's `GET /v1/inventory?record=1` (see test/fixtures/README.md). */
interface InventoryFixture {
  volumes: Record<string, { name: string; protocol: string; iscsi?: { iqn: string; lun: number; wwid: string }; nvme?: { nqn: string; nsid: number; uuid: string; nguid: string } }>;
  devices?: Record<string, { path?: string; devices?: string[]; multipath?: boolean; identity?: string; host?: number; hctl?: string; device?: string; wwid?: string; sizeBytes?: number }>;
  snapshot: HostSnapshot;
  recording: HostFsRecording;
  tools: { iscsiadmSession: string; nvmeListSubsys: string };
}

const load = (name: string): InventoryFixture => JSON.parse(readFileSync(new URL(`../fixtures/guest-6.1.0-56/${name}`, import.meta.url), 'utf8')) as InventoryFixture;
const ATTACHED = load('inventory-attached.json');
const LEFTOVERS = load('inventory-leftovers.json');

const withoutTime = ({ takenAt: _t, ...rest }: HostSnapshot): Omit<HostSnapshot, 'takenAt'> => rest;

describe('takeSnapshot replayed on the reads of a real guest', () => {
  it.each([
    ['attached', ATTACHED],
    ['leftovers', LEFTOVERS],
  ])('rebuilds the %s snapshot the guest took, all but takenAt', async (_name, fx) => {
    const snap = await takeSnapshot(replayHostFs(fx.recording));
    expect(withoutTime(snap)).toEqual(withoutTime(fx.snapshot));
    expect(Number.isNaN(Date.parse(snap.takenAt))).toBe(false);
  });

  it('is deterministic: two replays give the same snapshot', async () => {
    const a = await takeSnapshot(replayHostFs(ATTACHED.recording));
    const b = await takeSnapshot(replayHostFs(ATTACHED.recording));
    expect(withoutTime(a)).toEqual(withoutTime(b));
  });

  it('reads nothing the recording does not hold (a stale fixture fails loudly)', async () => {
    const recording: HostFsRecording = { ...ATTACHED.recording, list: { ...ATTACHED.recording.list } };
    delete recording.list['/sys/class/nvme'];
    await expect(takeSnapshot(replayHostFs(recording))).rejects.toThrow(/fixture has no listing of \/sys\/class\/nvme/);
  });
});

describe('the attached snapshot against the connect results and the target', () => {
  const s = ATTACHED.snapshot;
  const v = ATTACHED.volumes;
  const d = ATTACHED.devices!;
  const iscsiVolumes = Object.values(v).filter((x) => x.iscsi);
  const session = (sid: number | null) => s.iscsiSessions.find((x) => x.sid === sid);

  it('gives every iSCSI device the WWID the target answered for its target and LUN', () => {
    const iscsiDevices = s.scsiDevices.filter((x) => x.session !== null);
    expect(iscsiDevices).toHaveLength(5);
    for (const dev of iscsiDevices) {
      const iqn = session(dev.session)?.targetIqn;
      const vol = iscsiVolumes.find((x) => x.iscsi!.iqn === iqn && x.iscsi!.lun === dev.lun);
      expect(vol, `${dev.hctl} (${iqn} LUN ${dev.lun})`).toBeDefined();
      expect(dev.wwid).toBe(vol!.iscsi!.wwid);
      expect(dev.vendor).toBe('LIO-ORG');
      expect(dev.state).toBe('running');
    }
  });

  it('finds each connect result on the device it named, with the same identity', () => {
    const byBlock = (b: string) => s.scsiDevices.find((x) => x.block === b);
    expect(d.da).toMatchObject({ path: '/dev/sda', identity: v.a!.iscsi!.wwid });
    expect(byBlock('sda')).toMatchObject({ hctl: '6:0:0:0', lun: 0, wwid: v.a!.iscsi!.wwid, session: 1 });
    expect(d.db).toMatchObject({ path: '/dev/sdb', identity: v.b!.iscsi!.wwid });
    expect(byBlock('sdb')).toMatchObject({ hctl: '6:0:0:1', lun: 1, wwid: v.b!.iscsi!.wwid, session: 1 });
    expect(d.dbig).toMatchObject({ path: '/dev/sde', identity: v.big!.iscsi!.wwid });
    expect(byBlock('sde')?.wwid).toBe(v.big!.iscsi!.wwid);
    // fa and fb are two LUNs of one target: one session, one SCSI host.
    expect(byBlock('sda')!.host).toBe(byBlock('sdb')!.host);
  });

  it("shows fm as a dm-multipath map named by its WWID over its two paths, one per portal's session", () => {
    const wwid = v.m!.iscsi!.wwid;
    expect(d.dm).toMatchObject({ path: '/dev/dm-0', multipath: true, identity: wwid });
    expect(s.multipathMaps).toEqual([{ dm: 'dm-0', name: wwid, wwid, slaves: ['sdc', 'sdd'] }]);
    expect([...d.dm!.devices!].sort()).toEqual(['sdc', 'sdd']);
    const paths = s.scsiDevices.filter((x) => x.wwid === wwid);
    expect(paths.map((x) => x.block).sort()).toEqual(['sdc', 'sdd']);
    for (const p of paths) {
      expect(p.holders).toEqual(['dm-0']);
      expect(session(p.session)?.targetIqn).toBe(v.m!.iscsi!.iqn);
    }
    expect(paths.map((x) => session(x.session)?.portal).sort()).toEqual(['10.10.1.10:3260', '10.10.2.10:3260']);
    expect(s.blockDevices.find((b) => b.name === 'dm-0')).toMatchObject({ holders: [], slaves: ['sdc', 'sdd'], dm: { name: wwid, uuid: `mpath-${wwid}` } });
  });

  it('reads LUN 300 as 300 from the H:C:T:L and finds its by-path link in the 0x... form', () => {
    const big = s.scsiDevices.find((x) => x.wwid === v.big!.iscsi!.wwid)!;
    expect(big).toMatchObject({ hctl: '9:0:0:300', lun: 300, block: 'sde' });
    const links = s.links.filter((l) => l.dir === 'by-path' && l.target === 'sde');
    expect(links).toHaveLength(1);
    expect(links[0]!.name).toBe(`ip-10.10.1.10:3260-iscsi-${v.big!.iscsi!.iqn}-lun-0x012c000000000000`);
    expect(links[0]!.name.endsWith('-lun-0x012c000000000000')).toBe(true);
  });

  it('reads each iSCSI session logged in, with its target, portal and SCSI host', () => {
    expect(s.iscsiSessions.map((x) => [x.sid, x.targetIqn, x.portal, x.state, x.host])).toEqual([
      [1, 'iqn.2026-11.io.brick-lab:fixture.shared', '10.10.1.10:3260', 'LOGGED_IN', 6],
      [2, 'iqn.2026-11.io.brick-lab:dev.fm', '10.10.1.10:3260', 'LOGGED_IN', 7],
      [3, 'iqn.2026-11.io.brick-lab:dev.fm', '10.10.2.10:3260', 'LOGGED_IN', 8],
      [4, 'iqn.2026-11.io.brick-lab:fixture.big', '10.10.1.10:3260', 'LOGGED_IN', 9],
    ]);
    // The session's host is the host its devices hang under.
    for (const dev of s.scsiDevices.filter((x) => x.session !== null)) expect(session(dev.session)?.host).toBe(dev.host);
  });

  it("reads iscsid's node records named 'ip,port' (made by --op new) with tpgt -1", () => {
    expect(s.iscsiNodes.map((n) => [n.iqn, n.portal, n.tpgt])).toEqual([
      ['iqn.2026-11.io.brick-lab:dev.fm', '10.10.1.10:3260', '-1'],
      ['iqn.2026-11.io.brick-lab:dev.fm', '10.10.2.10:3260', '-1'],
      ['iqn.2026-11.io.brick-lab:fixture.big', '10.10.1.10:3260', '-1'],
      ['iqn.2026-11.io.brick-lab:fixture.shared', '10.10.1.10:3260', '-1'],
    ]);
    for (const n of s.iscsiNodes) expect(n.path).toBe(`/etc/iscsi/nodes/${n.iqn}/${n.portal.replace(':', ',')}`);
  });

  it("reads node records named 'ip,port,tpgt' (as discovery writes them) too", async () => {
    // The guest had none of these (the connector creates records with --op new): the real
    // recording with one entry renamed by hand, to the form sendtargets discovery writes.
    const r = ATTACHED.recording;
    const dir = '/etc/iscsi/nodes/iqn.2026-11.io.brick-lab:dev.fm';
    expect(r.list[dir]).toEqual(['10.10.1.10,3260', '10.10.2.10,3260']);
    const edited: HostFsRecording = { ...r, list: { ...r.list, [dir]: ['10.10.1.10,3260,1', '10.10.2.10,3260'] } };
    const nodes = (await takeSnapshot(replayHostFs(edited))).iscsiNodes.filter((n) => n.iqn === 'iqn.2026-11.io.brick-lab:dev.fm');
    expect(nodes).toEqual([
      { iqn: 'iqn.2026-11.io.brick-lab:dev.fm', portal: '10.10.1.10:3260', tpgt: '1', path: `${dir}/10.10.1.10,3260,1` },
      { iqn: 'iqn.2026-11.io.brick-lab:dev.fm', portal: '10.10.2.10:3260', tpgt: '-1', path: `${dir}/10.10.2.10,3260` },
    ]);
  });

  it('reads both NVMe/TCP controllers live, one per portal, in the volume subsystem', () => {
    expect(s.nvmeControllers).toEqual([
      { name: 'nvme0', subsysNqn: v.n!.nvme!.nqn, transport: 'tcp', traddr: '10.10.1.10', trsvcid: '4420', state: 'live', sysfs: '/sys/class/nvme/nvme0' },
      { name: 'nvme1', subsysNqn: v.n!.nvme!.nqn, transport: 'tcp', traddr: '10.10.2.10', trsvcid: '4420', state: 'live', sysfs: '/sys/class/nvme/nvme1' },
    ]);
    // sysfs' address also carries src_addr, which must not leak into trsvcid.
    expect(ATTACHED.recording.text['/sys/class/nvme/nvme0/address']).toContain(',src_addr=');
  });

  it("reads the namespace head with the target's uuid, nguid and nsid, and its two path devices", () => {
    expect(s.nvmeNamespaces).toHaveLength(1);
    const ns = s.nvmeNamespaces[0]!;
    expect(ns).toMatchObject({
      name: 'nvme0n1',
      nsid: v.n!.nvme!.nsid,
      uuid: v.n!.nvme!.uuid,
      nguid: v.n!.nvme!.nguid,
      wwid: `uuid.${v.n!.nvme!.uuid}`,
      subsysNqn: v.n!.nvme!.nqn,
      paths: ['nvme0c0n1', 'nvme0c1n1'],
      holders: [],
    });
    expect(ns.nsid).toBe(1);
    // sysfs shows the NGUID dashed; the snapshot keeps 32 hex digits like the target's answer.
    expect(ATTACHED.recording.text['/sys/block/nvme0n1/nguid']).toBe('9d996e72-b896-413e-a157-43162a07de87');
    expect(d.dn).toMatchObject({ path: '/dev/nvme0n1', multipath: true, identity: v.n!.nvme!.uuid });
    expect([...d.dn!.devices!].sort()).toEqual(['nvme0c0n1', 'nvme0c1n1', 'nvme0n1']);
  });

  it('reads the local scsi_debug disk as a SCSI device under no session', () => {
    const local = s.scsiDevices.find((x) => x.hctl === d.disk!.hctl)!;
    expect(local).toMatchObject({ host: d.disk!.host, lun: 0, vendor: 'Linux', model: 'scsi_debug', wwid: d.disk!.wwid, block: 'sdf', session: null });
    expect(`/dev/${local.block}`).toBe(d.disk!.device);
    expect(s.blockDevices.find((b) => b.name === 'sdf')?.sizeBytes).toBe(d.disk!.sizeBytes);
  });

  it('keeps dangling out of a snapshot whose links all resolve', () => {
    expect(s.links.filter((l) => l.dangling)).toEqual([]);
  });
});

describe('the leftovers snapshot', () => {
  const s = LEFTOVERS.snapshot;

  it('reads the hand-made by-path link to a device that does not exist as dangling, with no target', () => {
    expect(LEFTOVERS.recording.link['/dev/disk/by-path/ip-10.10.1.10:3260-iscsi-iqn.2026-11.io.brick-lab:fixture.gone-lun-4']).toBe('../../sdz');
    expect(s.links.filter((l) => l.dangling)).toEqual([{ dir: 'by-path', name: 'ip-10.10.1.10:3260-iscsi-iqn.2026-11.io.brick-lab:fixture.gone-lun-4', target: null, dangling: true }]);
  });

  it('keeps the NVMe controllers after the namespace went away on the target', () => {
    expect(s.nvmeNamespaces).toEqual([]);
    expect(s.nvmeControllers.map((c) => [c.name, c.state])).toEqual([
      ['nvme0', 'live'],
      ['nvme1', 'live'],
    ]);
    expect(s.blockDevices.some((b) => b.name.startsWith('nvme'))).toBe(false);
  });
});

describe('scsiWwid and normaliseNguid', () => {
  it('writes sysfs SCSI designators the way scsi_id does', () => {
    expect(scsiWwid('naa.6001405abc')).toBe('36001405abc');
    expect(scsiWwid('naa.6001405ABC')).toBe('36001405abc');
    expect(scsiWwid('eui.0123ABCD')).toBe('20123abcd');
    expect(scsiWwid('t10.LIO-ORG  FILEIO')).toBe('1LIO-ORG_FILEIO');
    expect(scsiWwid(null)).toBeNull();
    expect(scsiWwid('')).toBeNull();
    // The real reads: an LIO LUN and scsi_debug's locally assigned NAA.
    expect(scsiWwid(ATTACHED.recording.text['/sys/class/scsi_device/6:0:0:0/device/wwid']!)).toBe(ATTACHED.volumes.a!.iscsi!.wwid);
    expect(scsiWwid(ATTACHED.recording.text['/sys/class/scsi_device/10:0:0:0/device/wwid']!)).toBe('333333330000055f0');
  });

  it('turns a dashed NGUID into 32 lowercase hex digits and refuses anything else', () => {
    expect(normaliseNguid('9D996E72-B896-413E-A157-43162A07DE87')).toBe('9d996e72b896413ea15743162a07de87');
    expect(normaliseNguid('9d996e72b896413ea15743162a07de87')).toBe('9d996e72b896413ea15743162a07de87');
    expect(normaliseNguid('9d996e72-b896')).toBeNull();
    expect(normaliseNguid(null)).toBeNull();
  });
});
