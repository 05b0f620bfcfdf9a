import { describe, expect, it } from 'vitest';
import { partitionTable } from '../../src/inventory/read-block.js';
import { takeSnapshot, takeSnapshotSync } from '../../src/inventory/snapshot.js';
import type { HostSnapshot } from '../../src/inventory/model.js';
import { nguidHex as normaliseNguid, scsiWwid } from '../../src/volume/ids.js';
import type { HostFs } from '../../src/system/hostfs.js';
import { replayHostFs, type HostFsRecording } from '../../src/system/hostfs-record.js';
import { fillScsiDetails } from '../../src/inventory/read-scsi.js';
import { blockOf, dashedNguid, FIXTURE_ISCSI_DB, FIXTURE_KERNELS, iscsiadmSid, loadInventoryFixture, replaySnapshot, nvmeCliControllers, portalOf, recordedAttribute, type FixtureVolume, FIXTURE_LAB } from './inventory-fixtures.js';

const withoutTime = ({ takenAt: _t, ...rest }: HostSnapshot): Omit<HostSnapshot, 'takenAt'> => rest;

describe.each(FIXTURE_KERNELS)('captured on guest kernel %s', (kernel) => {
  /** Fixtures captured through the compute agent's `GET /v1/inventory?record=1` (see test/fixtures/README.md). */
  const ATTACHED = loadInventoryFixture('inventory-attached.json', kernel);
  const LEFTOVERS = loadInventoryFixture('inventory-leftovers.json', kernel);

  describe('takeSnapshot replayed on the reads of a real guest', () => {
    it.each([
      ['attached', ATTACHED],
      ['leftovers', LEFTOVERS],
      ['stacked', loadInventoryFixture('inventory-stacked.json', kernel)],
    ])('rebuilds the %s snapshot the guest took, all but takenAt', async (_name, fx) => {
      const snap = replaySnapshot(fx);
      // 6.1's recordings predate the FC transport's place in snapshots: replayed, they are a host
      // without FC ports, and no disk hangs under a remote port. 6.12's agent read them: as taken.
      const then = kernel === '6.1.0-56' ? { ...fx.snapshot, fcHosts: [], fcRemotePorts: [], scsiDevices: fx.snapshot.scsiDevices.map((d) => ({ ...d, rport: null })) } : fx.snapshot;
      expect(withoutTime(snap)).toEqual(withoutTime(then));
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

    it("fails as loudly on a missing listing of the guest's iSCSI database (/etc/iscsi on 6.1, /var/lib/iscsi on 6.12)", async () => {
      const nodes = `${FIXTURE_ISCSI_DB[kernel]}/nodes`;
      expect(ATTACHED.recording.list[nodes]!.length).toBeGreaterThan(0);
      for (const dir of [nodes, `${nodes}/${ATTACHED.volumes.a.iscsi!.iqn}`]) {
        const recording: HostFsRecording = { ...ATTACHED.recording, list: { ...ATTACHED.recording.list } };
        delete recording.list[dir];
        await expect(takeSnapshot(replayHostFs(recording)), dir).rejects.toThrow(`fixture has no listing of ${dir}`);
      }
    });

    it('reads the binary attributes from the recording too, and fails loudly on a recording without them', async () => {
      // A copy of the real recording without its binary reads (as a fixture from before readBinary).
      const { binary: _b, ...textOnly } = ATTACHED.recording;
      await expect(takeSnapshot(replayHostFs(textOnly))).rejects.toThrow(/fixture has no binary read of \/sys\/devices\/.*\/inquiry/);
    });
  });

  describe('the attached snapshot against the connect results and the target', () => {
    const s = ATTACHED.snapshot;
    const r = ATTACHED.recording;
    const v = ATTACHED.volumes;
    const d = ATTACHED.devices!;
    const iscsiVolumes = Object.values(v).filter((x) => x.iscsi);
    const session = (sid: number | null) => s.iscsiSessions.find((x) => x.sid === sid);
    /** The session iscsiadm printed for a volume's target at its i-th portal. */
    const sessionOf = (vol: FixtureVolume, i = 0) => session(iscsiadmSid(ATTACHED, vol.iscsi!.iqn, portalOf(vol, i)));
    const byBlock = (b: string) => s.scsiDevices.find((x) => x.block === b);

    it('gives every iSCSI device the WWID the target answered for its target and LUN', () => {
      const iscsiDevices = s.scsiDevices.filter((x) => x.session !== null);
      expect(iscsiDevices).toHaveLength(5);
      for (const dev of iscsiDevices) {
        const iqn = session(dev.session)?.targetIqn;
        const vol = iscsiVolumes.find((x) => x.iscsi!.iqn === iqn && x.iscsi!.lun === dev.lun);
        expect(vol, `${dev.hctl} (${iqn} LUN ${dev.lun})`).toBeDefined();
        expect(dev.wwid).toBe(vol!.iscsi!.wwid);
        expect(dev.vendor).toBe('LIO-ORG');
        expect(dev.model).toBe('FILEIO');
        expect(dev.state).toBe('running');
      }
    });

    it('finds each connect result on the device it named, with the same identity', () => {
      // Single path: each on the session iscsiadm showed for its target at the first portal.
      for (const [dev, vol] of [[d.da, v.a], [d.db, v.b], [d.dbig, v.big]] as const) {
        const block = blockOf(dev);
        expect(dev).toMatchObject({ type: 'block', devices: [block], multipath: false, identity: vol.iscsi!.wwid });
        const sess = sessionOf(vol)!;
        expect(sess).toMatchObject({ targetIqn: vol.iscsi!.iqn, portal: portalOf(vol, 0) });
        expect(byBlock(block), `${vol.name} on ${block}`).toMatchObject({ hctl: `${sess.host}:0:0:${vol.iscsi!.lun}`, host: sess.host, lun: vol.iscsi!.lun, wwid: vol.iscsi!.wwid, session: sess.sid });
      }
      // fa and fb are two LUNs of one target: one session, one SCSI host.
      expect(byBlock(blockOf(d.da))!.session).toBe(byBlock(blockOf(d.db))!.session);
      expect(byBlock(blockOf(d.da))!.host).toBe(byBlock(blockOf(d.db))!.host);
      expect(blockOf(d.da)).not.toBe(blockOf(d.db));
    });

    it("shows fm as a dm-multipath map named by its WWID over its two paths, one per portal's session", () => {
      const wwid = v.m!.iscsi!.wwid;
      const dm = blockOf(d.dm);
      const slaves = [...d.dm!.devices!].sort();
      expect(dm).toMatch(/^dm-\d+$/);
      expect(slaves).toHaveLength(2);
      expect(d.dm).toMatchObject({ multipath: true, identity: wwid });
      expect(s.multipathMaps).toEqual([{ dm, name: wwid, wwid, slaves }]);
      const paths = s.scsiDevices.filter((x) => x.wwid === wwid);
      expect(paths.map((x) => x.block).sort()).toEqual(slaves);
      for (const p of paths) {
        expect(p.holders).toEqual([dm]);
        expect(session(p.session)?.targetIqn).toBe(v.m!.iscsi!.iqn);
      }
      expect(paths.map((x) => session(x.session)?.portal).sort()).toEqual([portalOf(v.m!, 0), portalOf(v.m!, 1)]);
      expect(paths.map((x) => x.session).sort()).toEqual([sessionOf(v.m!, 0)!.sid, sessionOf(v.m!, 1)!.sid].sort());
      expect(s.blockDevices.find((b) => b.name === dm)).toMatchObject({ holders: [], slaves, dm: { name: wwid, uuid: `mpath-${wwid}` } });
      // The holders come from the map's slaves, turned around.
      for (const p of slaves) expect(s.blockDevices.find((b) => b.name === p)).toMatchObject({ holders: [dm], slaves: [] });
      expect(r.list[`/sys/block/${dm}/slaves`]).toEqual(slaves);
    });

    it('reads LUN 300 as 300 from the H:C:T:L and finds its by-path link in the 0x... form', () => {
      const big = s.scsiDevices.find((x) => x.wwid === v.big!.iscsi!.wwid)!;
      const host = sessionOf(v.big!)!.host;
      expect(big).toMatchObject({ hctl: `${host}:0:0:300`, lun: 300, block: blockOf(d.dbig) });
      const links = s.links.filter((l) => l.dir === 'by-path' && l.target === big.block);
      expect(links).toHaveLength(1);
      expect(links[0]!.name).toBe(`ip-${portalOf(v.big!, 0)}-iscsi-${v.big!.iscsi!.iqn}-lun-0x012c000000000000`);
      expect(links[0]!.name.endsWith('-lun-0x012c000000000000')).toBe(true);
    });

    it('reads each iSCSI session logged in, with its target, portal and SCSI host', () => {
      // One per login: fa and fb share one on the first portal, fm has one per portal, fbig one on the first.
      const logins = [[v.a!, 0], [v.m!, 0], [v.m!, 1], [v.big!, 0]] as const;
      const bySid = [...s.iscsiSessions].sort((x, y) => x.sid - y.sid);
      expect(bySid.map((x) => [x.targetIqn, x.portal, x.state])).toEqual(logins.map(([vol, i]) => [vol.iscsi!.iqn, portalOf(vol, i), 'LOGGED_IN']));
      expect(v.a!.iscsi!.iqn).toBe('iqn.2026-11.io.brick-lab:fixture.shared');
      // fm and fn have targets of their own, named by the target as LAB.NAME: the lab of the
      // capture ("dev" for 6.1's, "fx" for 6.12's), the same for both.
      expect(v.m!.iscsi!.iqn).toBe(`iqn.2026-11.io.brick-lab:${FIXTURE_LAB[kernel]}.fm`);
      expect(v.n!.nvme!.nqn).toBe(`nqn.${v.m!.iscsi!.iqn.slice('iqn.'.length, -'.fm'.length)}.fn`);
      expect(v.big!.iscsi!.iqn).toBe('iqn.2026-11.io.brick-lab:fixture.big');
      for (const x of s.iscsiSessions) {
        // Numbered as iscsiadm numbered them at the same moment...
        expect(x.sid).toBe(iscsiadmSid(ATTACHED, x.targetIqn!, x.portal!));
        // ...and each on the SCSI host its sysfs directory hangs under.
        expect(x.sysfs).toBe(`/sys/class/iscsi_session/session${x.sid}`);
        expect(r.link[x.sysfs]).toMatch(new RegExp(`/host${x.host}/session${x.sid}/iscsi_session/session${x.sid}$`));
      }
      expect(new Set(s.iscsiSessions.map((x) => x.host)).size).toBe(s.iscsiSessions.length);
      // The session's host is the host its devices hang under.
      for (const dev of s.scsiDevices.filter((x) => x.session !== null)) expect(session(dev.session)?.host).toBe(dev.host);
    });

    it("reads iscsid's node records named 'ip,port' (made by --op new) with tpgt -1", () => {
      // In the database's order, by target name: fm's target, named after the capture's lab, comes
      // first in 6.1's (lab "dev") and last in 6.12's (lab "fx").
      const byTarget = (x: string[], y: string[]): number => x[0]!.localeCompare(y[0]!) || x[1]!.localeCompare(y[1]!);
      expect(s.iscsiNodes.map((n) => [n.iqn, n.portal, n.tpgt])).toEqual(
        [
          [v.m!.iscsi!.iqn, '10.10.1.10:3260', '-1'],
          [v.m!.iscsi!.iqn, '10.10.2.10:3260', '-1'],
          ['iqn.2026-11.io.brick-lab:fixture.big', '10.10.1.10:3260', '-1'],
          ['iqn.2026-11.io.brick-lab:fixture.shared', '10.10.1.10:3260', '-1'],
        ].sort(byTarget),
      );
      // Under /etc/iscsi on 6.1 (open-iscsi 2.1.8), /var/lib/iscsi on 6.12 (2.1.11).
      for (const n of s.iscsiNodes) expect(n.path).toBe(`${FIXTURE_ISCSI_DB[kernel]}/nodes/${n.iqn}/${n.portal.replace(':', ',')}`);
    });

    it("reads node records named 'ip,port,tpgt' (as discovery writes them), with their startup mode and iface", () => {
      // The stacked capture ran `iscsiadm -m discovery -t sendtargets -p 10.10.1.10:3260`: each
      // record is a directory holding one record file per iface.
      const st = loadInventoryFixture('inventory-stacked.json', kernel).snapshot;
      const dir = `${FIXTURE_ISCSI_DB[kernel]}/nodes/iqn.2026-11.io.brick-lab:fixture.shared`;
      expect(st.iscsiNodes.filter((n) => n.iqn === 'iqn.2026-11.io.brick-lab:fixture.shared')).toEqual([
        { iqn: 'iqn.2026-11.io.brick-lab:fixture.shared', portal: '10.10.1.10:3260', tpgt: '1', path: `${dir}/10.10.1.10,3260,1`, startup: 'manual', iface: 'default' },
        { iqn: 'iqn.2026-11.io.brick-lab:fixture.shared', portal: '10.10.2.10:3260', tpgt: '1', path: `${dir}/10.10.2.10,3260,1`, startup: 'manual', iface: 'default' },
      ]);
      // The connector's own records (`--op new`) are files, set to log in again at boot.
      expect(s.iscsiNodes.every((n) => n.startup === 'automatic' && n.iface === 'default')).toBe(true);
    });

    it('reads discovery records with the targets they made records for, and ifaces', () => {
      const st = loadInventoryFixture('inventory-stacked.json', kernel).snapshot;
      expect(st.iscsiDiscovery).toEqual([
        { type: 'sendtargets', portal: '10.10.1.10:3260', targets: [v.m!.iscsi!.iqn, 'iqn.2026-11.io.brick-lab:fixture.big', 'iqn.2026-11.io.brick-lab:fixture.shared'].sort(), path: `${FIXTURE_ISCSI_DB[kernel]}/send_targets/10.10.1.10,3260` },
      ]);
      expect(st.iscsiIfaces).toEqual([{ name: 'brick0', path: `${FIXTURE_ISCSI_DB[kernel]}/ifaces/brick0` }]);
      expect(s.iscsiDiscovery).toEqual([]);
      expect(s.iscsiIfaces).toEqual([]);
    });

    it('reads both NVMe/TCP controllers live, one per portal, in the volume subsystem', () => {
      const nqn = v.n!.nvme!.nqn;
      // The controllers nvme-cli listed at the same moment, at the same addresses.
      const cli = nvmeCliControllers(ATTACHED, nqn);
      expect(cli).toHaveLength(2);
      expect(s.nvmeControllers).toEqual(
        cli.map((c) => ({ name: c.name, subsysNqn: nqn, transport: 'tcp', traddr: c.traddr, trsvcid: c.trsvcid, state: 'live', sysfs: `/sys/class/nvme/${c.name}` })),
      );
      expect(cli.map((c) => c.state)).toEqual(['live', 'live']);
      // One per portal of the volume.
      expect(s.nvmeControllers.map((c) => `${c.traddr}:${c.trsvcid}`).sort()).toEqual([portalOf(v.n!, 0), portalOf(v.n!, 1)]);
      // sysfs' address also carries src_addr, which must not leak into trsvcid.
      for (const c of s.nvmeControllers) expect(r.text[`${c.sysfs}/address`]!.startsWith(`traddr=${c.traddr},trsvcid=${c.trsvcid},src_addr=`)).toBe(true);
    });

    it("reads the namespace head with the target's uuid, nguid and nsid, and its two path devices", () => {
      expect(s.nvmeNamespaces).toHaveLength(1);
      const ns = s.nvmeNamespaces[0]!;
      const head = blockOf(d.dn);
      expect(head).toMatch(/^nvme\d+n\d+$/);
      const paths = d.dn!.devices!.filter((x) => x !== head).sort();
      expect(paths).toHaveLength(2);
      for (const p of paths) expect(p).toMatch(/^nvme\d+c\d+n\d+$/);
      expect(ns).toMatchObject({
        name: head,
        nsid: v.n!.nvme!.nsid,
        uuid: v.n!.nvme!.uuid,
        nguid: v.n!.nvme!.nguid,
        wwid: `uuid.${v.n!.nvme!.uuid}`,
        subsysNqn: v.n!.nvme!.nqn,
        paths,
        holders: [],
        sysfs: `/sys/block/${head}`,
      });
      expect(ns.nsid).toBe(1);
      // One path device per controller: nvme<subsystem>c<controller>n<namespace>.
      expect(paths.map((p) => `nvme${/c(\d+)n/.exec(p)![1]}`)).toEqual(s.nvmeControllers.map((c) => c.name).sort());
      // sysfs shows the NGUID dashed; the snapshot keeps 32 hex digits like the target's answer.
      expect(v.n!.nvme!.nguid).toMatch(/^[0-9a-f]{32}$/);
      expect(r.text[`${ns.sysfs}/nguid`]).toBe(dashedNguid(v.n!.nvme!.nguid));
      expect(d.dn).toMatchObject({ multipath: true, identity: v.n!.nvme!.uuid });
      expect(d.dn!.devices).toContain(head);
    });

    it('reads the local scsi_debug disk as a SCSI device under no session', () => {
      const local = s.scsiDevices.find((x) => x.hctl === d.disk!.hctl)!;
      expect(local).toMatchObject({ host: d.disk!.host, lun: 0, vendor: 'Linux', model: 'scsi_debug', state: 'running', wwid: d.disk!.wwid, block: blockOf(d.disk!.device), session: null });
      expect(s.blockDevices.find((b) => b.name === local.block)?.sizeBytes).toBe(d.disk!.sizeBytes);
    });

    it("reads each SCSI device's attributes in its own directory, and vendor and model from its INQUIRY data", () => {
      const binary = r.binary!;
      for (const dev of s.scsiDevices) {
        // The directory the disk's /sys/class/block link leads to, less its block/<disk> tail.
        const link = r.link[`/sys/class/block/${dev.block}`]!;
        expect(link).toMatch(new RegExp(`/${dev.hctl}/block/${dev.block}$`));
        const dir = `/sys/${link.replace(/^(\.\.\/)+/, '')}`.replace(/\/block\/[^/]+$/, '');
        expect(recordedAttribute(r.text, dev.hctl, 'wwid')).toBe(`${dir}/wwid`);
        expect(recordedAttribute(r.text, dev.hctl, 'state')).toBe(`${dir}/state`);
        expect(recordedAttribute(binary, dev.hctl, 'inquiry')).toBe(`${dir}/inquiry`);
        expect(r.text[`${dir}/state`]).toBe(dev.state);
        // Standard INQUIRY data: peripheral type 0 (a disk), T10 vendor in bytes 8-15, product in 16-31.
        const inquiry = Buffer.from(binary[`${dir}/inquiry`]!, 'base64');
        expect(inquiry.length).toBeGreaterThanOrEqual(36);
        expect(inquiry[0]! & 0x1f).toBe(0);
        expect(inquiry.subarray(8, 16).toString('latin1')).toBe(dev.vendor!.padEnd(8));
        expect(inquiry.subarray(16, 32).toString('latin1')).toBe(dev.model!.padEnd(16));
      }
    });

    it('keeps dangling out of a snapshot whose links all resolve', () => {
      expect(s.links.filter((l) => l.dangling)).toEqual([]);
    });
  });

  describe('the leftovers snapshot', () => {
    const s = LEFTOVERS.snapshot;

    it('reads the hand-made by-path link to a device that does not exist as dangling, with no target', () => {
      expect(LEFTOVERS.recording.link['/dev/disk/by-path/ip-10.10.1.10:3260-iscsi-iqn.2026-11.io.brick-lab:fixture.gone-lun-4']).toBe('../../sdz');
      expect(LEFTOVERS.recording.list['/sys/class/block']).not.toContain('sdz');
      expect(s.links.filter((l) => l.dangling)).toEqual([{ dir: 'by-path', name: 'ip-10.10.1.10:3260-iscsi-iqn.2026-11.io.brick-lab:fixture.gone-lun-4', target: null, dangling: true }]);
    });

    it('keeps the NVMe controllers after the namespace went away on the target', () => {
      expect(s.nvmeNamespaces).toEqual([]);
      expect(s.nvmeControllers.map((c) => [c.name, c.state])).toEqual(ATTACHED.snapshot.nvmeControllers.map((c) => [c.name, 'live']));
      expect(s.nvmeControllers).toHaveLength(2);
      expect(s.blockDevices.some((b) => b.name.startsWith('nvme'))).toBe(false);
    });
  });

  describe('scsiWwid and normaliseNguid on the real reads', () => {
    it('writes sysfs SCSI designators the way scsi_id does', () => {
      // The real reads: an LIO LUN (fa's) and scsi_debug's locally assigned NAA.
      const r = ATTACHED.recording;
      const d = ATTACHED.devices!;
      const lio = r.text[recordedAttribute(r.text, ATTACHED.snapshot.scsiDevices.find((x) => x.block === blockOf(d.da))!.hctl, 'wwid')]!;
      const local = r.text[recordedAttribute(r.text, d.disk!.hctl!, 'wwid')]!;
      expect(lio).toMatch(/^naa\.6001405[0-9a-f]{25}$/);
      expect(local).toMatch(/^naa\.3333333[0-9a-f]{9}$/);
      expect(scsiWwid(lio)).toBe(ATTACHED.volumes.a.iscsi!.wwid);
      expect(scsiWwid(local)).toBe(d.disk!.wwid);
    });

    it('turns a dashed NGUID into 32 lowercase hex digits', () => {
      // The real read: the namespace's nguid attribute, dashed, gives the target's answer.
      const ns = ATTACHED.snapshot.nvmeNamespaces[0]!;
      expect(normaliseNguid(ATTACHED.recording.text[`${ns.sysfs}/nguid`]!)).toBe(ATTACHED.volumes.n.nvme!.nguid);
    });
  });

  describe('block device numbers and sizes from /proc/partitions', () => {
    /** The recorded text of a path, or a test failure when it was never recorded. */
    const recorded = (path: string): string | null => {
      if (!(path in ATTACHED.recording.text)) throw new Error(`not recorded: ${path}`);
      return ATTACHED.recording.text[path]!;
    };

    it("takes each listed disk's and partition's dev_t from /proc/partitions and reads sysfs only for the rest", () => {
      const r = structuredClone(ATTACHED.recording);
      const listed = partitionTable(replayHostFs(r));
      // Every disk /proc/partitions lists: no read of its sysfs `dev` (a read the recording does
      // not hold fails the replay).
      for (const name of listed.keys()) delete r.text[`/sys/block/${name}/dev`];
      // sda gets two partitions: sda1 listed, sda2 empty (as /proc/partitions leaves those out).
      const sdaLink = r.link['/sys/class/block/sda']!;
      r.list['/sys/class/block'] = [...r.list['/sys/class/block']!, 'sda1', 'sda2'].sort();
      r.link['/sys/class/block/sda1'] = `${sdaLink}/sda1`;
      r.link['/sys/class/block/sda2'] = `${sdaLink}/sda2`;
      r.text['/proc/partitions'] = r.text['/proc/partitions']!.replace(/^(\s*8\s+0\s+\d+ sda\n)/m, '$1   8        1       4096 sda1\n');
      r.text['/sys/class/block/sda2/dev'] = '8:2';
      const snap = takeSnapshotSync(replayHostFs(r));
      const byName = new Map(snap.blockDevices.map((b) => [b.name, b]));
      expect(byName.get('sda')!.partitions).toEqual([
        { name: 'sda1', devt: '8:1', holders: [] },
        { name: 'sda2', devt: '8:2', holders: [] },
      ]);
      // The same numbers and sizes the guest's snapshot had, disk by disk. 6.1's agent read them
      // from each disk's sysfs `dev`; 6.12's (a later one) from /proc/partitions, reading sysfs
      // only for the disks not listed there (the hidden NVMe path devices).
      const proc = ATTACHED.recording.text['/proc/partitions']!;
      for (const b of ATTACHED.snapshot.blockDevices) {
        expect(byName.get(b.name)).toMatchObject({ devt: b.devt, sizeBytes: b.sizeBytes });
        const line = new RegExp(`^\\s*(\\d+)\\s+(\\d+)\\s+(\\d+) ${b.name}$`, 'm').exec(proc);
        if (line) expect([b.devt, b.sizeBytes]).toEqual([`${line[1]}:${line[2]}`, Number(line[3]) * 1024]);
        if (kernel === '6.1.0-56' || !line) expect(b.devt).toBe(recorded(`/sys/block/${b.name}/dev`));
        else expect(`/sys/block/${b.name}/dev` in ATTACHED.recording.text).toBe(false);
      }
    });

    it('reads the hidden NVMe path devices, which /proc/partitions leaves out, from sysfs: no number, a size', () => {
      const paths = ATTACHED.snapshot.nvmeNamespaces[0]!.paths;
      expect(paths).toHaveLength(2);
      const listed = partitionTable(replayHostFs(ATTACHED.recording));
      for (const p of paths) {
        expect(listed.has(p)).toBe(false);
        expect(recorded(`/sys/block/${p}/dev`)).toBeNull();
        expect(replaySnapshot(ATTACHED).blockDevices.find((b) => b.name === p)).toMatchObject({ devt: null, sizeBytes: Number(recorded(`/sys/block/${p}/size`)) * 512 });
      }
    });

    it('reads no number or size in a paths snapshot', () => {
      const snap = takeSnapshotSync(replayHostFs(ATTACHED.recording), { scope: 'paths' });
      expect(snap.blockDevices.map((b) => b.name)).toEqual(['dm-0']);
      expect(snap.blockDevices[0]).toMatchObject({ devt: null, sizeBytes: null, partitions: [] });
    });

  });

  describe('a snapshot without the SCSI devices\' descriptions, filled in for the devices named', () => {
    const fx = loadInventoryFixture('inventory-attached.json', kernel);
    const full = replaySnapshot(fx);
    /**
     * The recording read each device's attributes in its own directory under /sys/devices;
     * fillScsiDetails reads them through /sys/class/scsi_device/H:C:T:L/device, the same directory
     * by the class link: answered here from the recording by that link.
     */
    const viaClass = (): HostFs => {
      const fs = replayHostFs(fx.recording);
      const real = (p: string): string => {
        const m = /^\/sys\/class\/scsi_device\/([\d:]+)\/device\/(.*)$/.exec(p);
        if (!m) return p;
        const block = full.scsiDevices.find((d) => d.hctl === m[1])!.block!;
        const link = fx.recording.link[`/sys/class/block/${block}`]!;
        return `/sys/${link.slice(link.indexOf('devices/'), link.lastIndexOf('/block/'))}/${m[2]}`;
      };
      return { ...fs, readText: (p) => fs.readText(real(p)), readBinary: (p) => fs.readBinary(real(p)) };
    };

    it('leaves vendor, model and state out, and everything else as a full snapshot has it', () => {
      const lean = takeSnapshotSync(replayHostFs(fx.recording), { details: false });
      expect(lean.scsiDevices.every((d) => d.vendor === null && d.model === null && d.state === null)).toBe(true);
      const strip = (s: HostSnapshot) => ({ ...s, takenAt: '', blockDevices: s.blockDevices.map((b) => ({ ...b, dm: b.dm ? { ...b.dm, table: null } : null })), scsiDevices: s.scsiDevices.map((d) => ({ ...d, vendor: null, model: null, state: null })) });
      expect(strip(lean)).toEqual(strip(full));
    });

    it('reads them for the devices named, the same as a full snapshot read them, and only for those', () => {
      const lean = takeSnapshotSync(replayHostFs(fx.recording), { details: false });
      const [one, other] = lean.scsiDevices.filter((d) => d.block);
      fillScsiDetails(viaClass(), lean.scsiDevices, [one!.hctl]);
      const want = full.scsiDevices.find((d) => d.hctl === one!.hctl)!;
      expect(lean.scsiDevices.find((d) => d.hctl === one!.hctl)).toEqual(want);
      expect(want.state).toBe('running');
      expect(want.vendor).toMatch(/\S/);
      expect(lean.scsiDevices.find((d) => d.hctl === other!.hctl)!.state).toBeNull();
    });
  });

  describe('disks placed once while their diskseq holds', () => {
    // The tree is the attached capture (taken before snapshots read diskseq); the diskseq values
    // are the test's, as the kernel gives them: one per disk made, never handed out twice.
    const fx = loadInventoryFixture('inventory-attached.json', kernel);
    const disks = fx.recording.list['/sys/block']!;
    const scsi = disks.filter((d) => d.startsWith('sd'));
    const overlay = (): HostFs & { seq: Map<string, string>; links: Map<string, string>; linkReads: string[] } => {
      const base = replayHostFs(fx.recording);
      const seq = new Map(disks.map((d, i) => [d, String(i + 1)]));
      const links = new Map<string, string>();
      const linkReads: string[] = [];
      return {
        ...base,
        seq,
        links,
        linkReads,
        readText: (p) => {
          const m = /^\/sys\/block\/([^/]+)\/diskseq$/.exec(p);
          return m ? seq.get(m[1]!) ?? null : base.readText(p);
        },
        link: (p) => {
          if (p.startsWith('/sys/class/block/')) linkReads.push(p.slice('/sys/class/block/'.length));
          return links.get(p) ?? base.link(p);
        },
      };
    };
    const places = (s: HostSnapshot): Record<string, string | null> => Object.fromEntries(s.scsiDevices.map((d) => [d.hctl, d.block]));

    it('reads each link once, then none while every diskseq reads as before, with the same snapshot', () => {
      const fs = overlay();
      const first = takeSnapshotSync(fs);
      expect(withoutTime(first)).toEqual(withoutTime(takeSnapshotSync(replayHostFs(fx.recording))));
      expect(fs.linkReads.filter((n) => disks.includes(n)).sort()).toEqual([...disks].sort());
      fs.linkReads.length = 0;
      const again = takeSnapshotSync(fs);
      expect(fs.linkReads.filter((n) => disks.includes(n))).toEqual([]);
      expect(withoutTime(again)).toEqual(withoutTime(first));
    });

    it('places a disk made anew under an old name (a new diskseq) where the kernel now has it', () => {
      const fs = overlay();
      const before = places(takeSnapshotSync(fs));
      // Two LUNs removed and scanned again in the other order: each name now sits at the other's
      // H:C:T:L, and both disks have new numbers.
      const [a, b] = scsi as [string, string];
      const la = fx.recording.link[`/sys/class/block/${a}`]!;
      const lb = fx.recording.link[`/sys/class/block/${b}`]!;
      fs.links.set(`/sys/class/block/${a}`, lb.replace(new RegExp(`/${b}$`), `/${a}`));
      fs.links.set(`/sys/class/block/${b}`, la.replace(new RegExp(`/${a}$`), `/${b}`));
      fs.seq.set(a, '100');
      fs.seq.set(b, '101');
      fs.linkReads.length = 0;
      const after = takeSnapshotSync(fs);
      expect(fs.linkReads.filter((n) => disks.includes(n)).sort()).toEqual([a, b].sort());
      const ha = Object.keys(before).find((h) => before[h] === a)!;
      const hb = Object.keys(before).find((h) => before[h] === b)!;
      expect(places(after)).toEqual({ ...before, [ha]: b, [hb]: a });
      // Each device's WWID is still its own: read in its own directory, not the disk's old one.
      const wwids = (s: HostSnapshot) => Object.fromEntries(s.scsiDevices.map((d) => [d.hctl, d.wwid]));
      expect(wwids(after)).toEqual(wwids(replaySnapshot(fx)));
    });

    /** Each disk's link reads over two snapshots of one recording. */
    const linkReadsOfTwo = (recording: HostFsRecording): number => {
      const fs = replayHostFs(recording);
      let reads = 0;
      const counting: HostFs = { ...fs, link: (p) => (p.startsWith('/sys/class/block/') && disks.includes(p.slice(17)) && reads++, fs.link(p)) };
      takeSnapshotSync(counting);
      takeSnapshotSync(counting);
      return reads;
    };
    const isDiskseq = (p: string): boolean => /^\/sys\/block\/[^/]+\/diskseq$/.test(p);

    it('reads every link each time where the kernel has no diskseq (before 5.15, or such a recording)', () => {
      // 6.12's recording holds the diskseq reads: left out of a copy, as such a kernel answers.
      const text = Object.fromEntries(Object.entries(fx.recording.text).filter(([p]) => !isDiskseq(p)));
      expect(linkReadsOfTwo({ ...fx.recording, text })).toBe(2 * disks.length);
    });

    it('reads each link once with the diskseq values the guest read, where its recording holds them', () => {
      // 6.1's captures were taken by an agent that did not read diskseq yet (the kernel has it
      // since 5.15): every link is read each time. 6.12's agent read every disk's.
      const recorded = disks.filter((d) => `/sys/block/${d}/diskseq` in fx.recording.text);
      expect(recorded).toEqual(kernel === '6.1.0-56' ? [] : disks);
      expect(linkReadsOfTwo(fx.recording)).toBe(kernel === '6.1.0-56' ? 2 * disks.length : disks.length);
    });
  });
});

// The designators themselves, the same on every kernel (the real reads are checked per capture above).
describe('scsiWwid and normaliseNguid', () => {
  it('writes sysfs SCSI designators the way scsi_id does', () => {
    expect(scsiWwid('naa.6001405abc')).toBe('36001405abc');
    expect(scsiWwid('naa.6001405ABC')).toBe('36001405abc');
    expect(scsiWwid('eui.0123ABCD')).toBe('20123abcd');
    expect(scsiWwid('t10.LIO-ORG  FILEIO')).toBe('1LIO-ORG_FILEIO');
    expect(scsiWwid(null)).toBeNull();
    expect(scsiWwid('')).toBeNull();
  });

  it('turns a dashed NGUID into 32 lowercase hex digits and refuses anything else', () => {
    expect(normaliseNguid('9D996E72-B896-413E-A157-43162A07DE87')).toBe('9d996e72b896413ea15743162a07de87');
    expect(normaliseNguid('9d996e72b896413ea15743162a07de87')).toBe('9d996e72b896413ea15743162a07de87');
    expect(normaliseNguid('9d996e72-b896')).toBeNull();
    expect(normaliseNguid(null)).toBeNull();
  });
});

describe('/proc/partitions', () => {
  it('parses /proc/partitions line by line: four fields, three of them numbers', () => {
    const text = [
      'major minor  #blocks  name',
      '',
      ' 254        0     550460 vda',
      '   8       16       8192 sdb',
      '   8       17       4096 sdb1',
      ' 104        0   71652960 cciss/c0d0',
      '\t259\t2\t8192\tnvme1n1',
      '   8       32       8192 sdc extra',
      '   x       48       8192 sdd',
      '',
    ].join('\n');
    const fs = replayHostFs({ text: { '/proc/partitions': text }, list: {}, link: {}, exists: {} });
    expect([...partitionTable(fs)]).toEqual([
      ['vda', { devt: '254:0', sizeBytes: 550460 * 1024 }],
      ['sdb', { devt: '8:16', sizeBytes: 8192 * 1024 }],
      ['sdb1', { devt: '8:17', sizeBytes: 4096 * 1024 }],
      // sysfs names it with "!" for the slash.
      ['cciss!c0d0', { devt: '104:0', sizeBytes: 71652960 * 1024 }],
      ['nvme1n1', { devt: '259:2', sizeBytes: 8192 * 1024 }],
    ]);
    expect(partitionTable(replayHostFs({ text: { '/proc/partitions': null }, list: {}, link: {}, exists: {} })).size).toBe(0);
  });
});
