import { beforeAll, describe, expect, it } from 'vitest';
import type { DeviceInfo, VolumePaths } from '../../src/connectors/types.js';
import type { Orphan } from '../../src/inventory/orphans.js';
import type { HostSnapshot } from '../../src/inventory/model.js';
import type { ComputeClient } from '../../src/agent/api/compute-client.js';
import type { TargetClient } from '../../src/agent/api/target-client.js';
import { parseSignature, readSignatureArgv, signatureText, writeSignatureArgv } from '../../src/volume/signature.js';
import type { IscsiVolumeRequest, NvmeVolumeRequest, TargetVolume } from '../../src/targets/model.js';
import type { RemoteError } from '../../src/system/errors.js';
import { cli } from './helpers.js';
import { STORAGE_LAB, storageLab } from './storage-lab.js';

/**
 * The connectors and the orphan oracle on a real compute node: attach, paths equal to what the
 * kernel holds, identity from the target, a signature written and read back, detach, nothing
 * left. Then leftovers made on purpose, each named by the oracle with its evidence.
 */
describe('connectors and the orphan oracle', () => {
  let target: TargetClient;
  let compute: ComputeClient;
  let computeIqn = '';

  const sh = async (script: string): Promise<string> => (await compute.run(['bash', '-c', script], { timeoutMs: 120_000 })).stdout;
  const volume = (kind: 'iscsi' | 'nvmet', body: IscsiVolumeRequest | NvmeVolumeRequest): Promise<TargetVolume> =>
    kind === 'iscsi' ? target.createIscsiVolume(body as IscsiVolumeRequest) : target.createNvmeVolume(body as NvmeVolumeRequest);
  const proto = (v: TargetVolume): 'iscsi' | 'nvmeof' => (v.protocol === 'iscsi' ? 'iscsi' : 'nvmeof');
  /** Connect, then let udev finish: the links are udev's and come after connect returns. */
  const connect = async (v: TargetVolume, multipath = false): Promise<DeviceInfo> => {
    const d = await compute.connect(proto(v), v.connectionInfo, { multipath });
    await compute.run(['udevadm', 'settle']);
    return d;
  };
  const disconnect = (v: TargetVolume, d: DeviceInfo | null): Promise<unknown> => compute.disconnect(proto(v), v.connectionInfo, d);
  const paths = (v: TargetVolume): Promise<VolumePaths> => compute.volumePaths(proto(v), v.connectionInfo);
  const orphans = async (v: TargetVolume, stillAttached: TargetVolume[] = []): Promise<Orphan[]> =>
    (
      await compute.orphans({
        protocol: proto(v),
        properties: v.connectionInfo,
        ...(v.iscsi ? { wwid: v.iscsi.wwid } : {}),
        stillAttached: stillAttached.map((o) => ({ protocol: proto(o), properties: o.connectionInfo })),
      })
    ).orphans;
  const kinds = (os: Orphan[]): string[] => [...new Set(os.map((o) => o.kind))].sort();
  const snapshot = (): Promise<HostSnapshot> => compute.inventory();

  /** The kernel's own answer: which block devices /sys says belong to this iSCSI LUN or NVMe namespace. */
  async function kernelDevices(v: TargetVolume): Promise<string[]> {
    if (v.nvme) {
      // Namespace heads only (nvme0n1); the per-controller path devices (nvme0c1n1) carry the UUID too.
      return (await sh(`for f in /sys/block/nvme*/uuid; do d=\${f%/uuid}; d=\${d##*/}; [[ $d =~ ^nvme[0-9]+n[0-9]+$ ]] && [ "$(cat $f)" = "${v.nvme.uuid}" ] && echo $d; done; true`)).split('\n').filter(Boolean).sort();
    }
    return (await sh(`for d in /sys/block/sd*; do [ -e $d/device/wwid ] && [ "$(cat $d/device/wwid)" = "naa.${v.iscsi!.wwid.slice(1)}" ] && echo \${d##*/}; done; true`)).split('\n').filter(Boolean).sort();
  }

  async function roundTrip(v: TargetVolume, multipath: boolean): Promise<void> {
    const d = await connect(v, multipath);
    const kernel = await kernelDevices(v);
    expect(kernel.length, 'devices in sysfs').toBe(v.nvme ? 1 : multipath ? 2 : 1);
    const p = await paths(v);
    for (const k of kernel) expect(p.devices).toContain(k);
    if (v.iscsi) {
      expect(d.identity).toBe(v.iscsi.wwid);
      expect(p.paths.length).toBe(multipath ? 2 : 1);
      for (const link of p.paths) expect((await sh(`readlink -f ${link}`)).trim()).toMatch(/^\/dev\/sd[a-z]+$/);
      if (multipath) expect(d.path).toMatch(/^\/dev\/dm-\d+$/);
    } else {
      expect(d.identity).toBe(v.nvme!.uuid);
      expect(p.paths).toEqual([d.path]);
      expect(d.devices.length).toBe(multipath ? 3 : 2); // the head and one path device per controller
    }
    // The node records, as iscsiadm itself reads them: os-brick's settings are in each (a single
    // path attaches through the first portal only).
    const records = (v.iscsi ? (multipath ? v.portals : v.portals.slice(0, 1)) : []).map((p) => ['-m', 'node', '-T', v.iscsi!.iqn, '-p', `${p.address}:${p.port}`]);
    for (const r of records) {
      const rec = (await compute.run(['iscsiadm', ...r])).stdout;
      expect(rec).toMatch(/^node\.session\.scan = manual$/m);
      expect(rec).toMatch(/^node\.startup = automatic$/m);
    }
    const avail = (await compute.availableVolumes(proto(v))).volumes;
    const mine = avail.filter((a) => (v.iscsi ? a.identity.wwid === v.iscsi.wwid : a.identity.uuid === v.nvme!.uuid));
    expect(mine.length).toBe(1);
    expect(mine[0]!.identity.target).toBe(v.iscsi?.iqn ?? v.nvme!.nqn);
    expect(mine[0]!.identity.portals!.length).toBe(multipath ? 2 : 1);
    await compute.run(writeSignatureArgv(d.path), { input: signatureText({ volume: v.name, id: v.id }) });
    expect(parseSignature((await compute.run(readSignatureArgv(d.path))).stdout)).toEqual({ volume: v.name, id: v.id });
    expect((await target.signature(v.name)).signature).toEqual({ volume: v.name, id: v.id });
    await disconnect(v, d);
    // Right as the detach returns, with no settle in between: udev took the links away (none
    // dangles), iscsiadm knows no record and open-iscsi's database lock is free.
    expect((await sh('find /dev/disk -xtype l')).trim()).toBe('');
    for (const r of records) expect((await compute.exec(['iscsiadm', ...r])).exitCode, `iscsiadm ${r.join(' ')}`).toBe(21);
    expect((await compute.exec(['test', '-e', '/run/lock/iscsi/lock.write'])).exitCode).toBe(1);
    expect(await orphans(v)).toEqual([]);
    expect(await kernelDevices(v)).toEqual([]);
    const s = await snapshot();
    expect(s.iscsiSessions).toEqual([]);
    expect(s.iscsiNodes).toEqual([]);
    expect(s.nvmeControllers).toEqual([]);
    expect(s.multipathMaps).toEqual([]);
  }

  beforeAll(() => {
    ({ target, compute, computeIqn } = storageLab());
  });

  it('says which connectors it has and where each looks', async () => {
    const r = await compute.connectors();
    expect(r.connectors).toEqual([
      { protocol: 'iscsi', searchPath: '/dev/disk/by-path' },
      { protocol: 'nvmeof', searchPath: '/dev' },
      { protocol: 'fc', searchPath: '/dev/disk/by-path' },
      { protocol: 'local', searchPath: null },
    ]);
  });

  it('attaches and detaches iSCSI over one path, leaving nothing', async () => {
    await roundTrip(await volume('iscsi', { name: 'i1', sizeMiB: 16, initiators: [computeIqn] }), false);
  });

  it('attaches and detaches iSCSI over both paths with dm-multipath, leaving nothing', async () => {
    await roundTrip(await volume('iscsi', { name: 'i2', sizeMiB: 16, initiators: [computeIqn] }), true);
  });

  it('attaches and detaches NVMe/TCP over one path and over both, leaving nothing', async () => {
    await roundTrip(await volume('nvmet', { name: 'n1', sizeMiB: 16 }), false);
    await roundTrip(await volume('nvmet', { name: 'n2', sizeMiB: 16 }), true);
  });

  it('attaches and detaches a local scsi_debug disk', async () => {
    const disk = await compute.addLocalDisk();
    const props = { device_path: disk.device };
    const d = await compute.connect('local', props);
    expect(d.identity).toBe(disk.wwid);
    expect(await compute.volumePaths('local', props)).toEqual({ paths: [disk.device], devices: [disk.device!.slice(5)] });
    const avail = (await compute.availableVolumes('local')).volumes;
    expect(avail.map((a) => a.identity.wwid)).toContain(disk.wwid);
    await compute.disconnect('local', props, d);
    expect((await compute.orphans({ protocol: 'local', properties: props })).orphans).toEqual([]);
    await compute.removeLocalDisk(disk.host);
  });

  it('keeps a session another attached volume uses, and does not call it an orphan', async () => {
    const a = await volume('iscsi', { name: 's1', sizeMiB: 8, iqn: 'iqn.2026-11.io.brick-lab:e2e.conn-shared', initiators: [computeIqn] });
    const b = await volume('iscsi', { name: 's2', sizeMiB: 8, iqn: 'iqn.2026-11.io.brick-lab:e2e.conn-shared', initiators: [computeIqn] });
    const da = await connect(a);
    const db = await connect(b);
    await disconnect(a, da);
    expect(await orphans(a, [b])).toEqual([]);
    expect((await snapshot()).iscsiSessions.length).toBe(1);
    // Without saying b is attached, the session and its record are still kept: the kernel shows
    // b's LUN under the session, and the oracle names it with its WWID.
    const unnamed = await compute.orphans({ protocol: 'iscsi', properties: a.connectionInfo, wwid: a.iscsi!.wwid });
    expect(unnamed.orphans).toEqual([]);
    expect(unnamed.kept.map((k) => k.kind)).toEqual(['iscsi-session', 'iscsi-node-record']);
    for (const k of unnamed.kept) expect(k.evidence).toContain(`LUN ${b.iscsi!.lun} (WWID ${b.iscsi!.wwid}, ${db.path.slice(5)}), which no volume named as attached`);
    await disconnect(b, db);
    expect(await orphans(b)).toEqual([]);
    expect((await snapshot()).iscsiSessions).toEqual([]);
  });

  it('reports as collateral a detach that logs out a session another volume still uses', async () => {
    const a = await volume('iscsi', { name: 'c1', sizeMiB: 8, iqn: 'iqn.2026-11.io.brick-lab:e2e.conn-collateral', initiators: [computeIqn] });
    const b = await volume('iscsi', { name: 'c2', sizeMiB: 8, iqn: 'iqn.2026-11.io.brick-lab:e2e.conn-collateral', initiators: [computeIqn] });
    const da = await connect(a);
    const db = await connect(b);
    const baseline = await snapshot();
    // A faulty detach of a: its disk deleted, then the whole session logged out, b's LUN with it.
    await sh(`echo 1 > /sys/block/${da.path.slice(5)}/device/delete; iscsiadm -m node -T ${a.iscsi!.iqn} --logout >/dev/null; udevadm settle`);
    const r = await compute.orphans({ protocol: 'iscsi', properties: a.connectionInfo, wwid: a.iscsi!.wwid, stillAttached: [{ protocol: 'iscsi', properties: b.connectionInfo }], baseline });
    expect(r.clean).toBe(false);
    const lost = r.hostWide!.collateral.map((o) => `${o.kind} ${o.id}`);
    expect(lost).toEqual(expect.arrayContaining([`block-device ${db.path.slice(5)}`, 'iscsi-session session' + baseline.iscsiSessions[0]!.sid]));
    expect(lost.some((x) => x.includes(da.path.slice(5)))).toBe(false); // a's own things may go
    expect(r.hostWide!.collateral[0]!.evidence).toMatch(/^existed at the baseline of .*, was no detached volume's, and is gone: /);
    await sh(`iscsiadm -m node -T ${a.iscsi!.iqn} -o delete`);
    expect(await orphans(a)).toEqual([]);
  });

  it('refuses to detach a volume whose disk carries a holder it did not make, names the map it left with force, and the oracle sees it', async () => {
    const v = await volume('iscsi', { name: 'h1', sizeMiB: 8, initiators: [computeIqn] });
    /** A linear map made by hand over the whole disk, as a user stacks one; its kernel name (dm-N). */
    const hold = async (dev: string): Promise<string> => {
      await sh(`dmsetup create brick-held --table "0 $(blockdev --getsz /dev/${dev}) linear /dev/${dev} 0" && udevadm settle`);
      return (await sh('basename "$(readlink -f /dev/mapper/brick-held)"')).trim();
    };
    const table = async (): Promise<string> => (await sh('dmsetup table brick-held')).trim();
    const majMin = async (dev: string): Promise<string> => (await sh(`cat /sys/block/${dev}/dev`)).trim();
    try {
      // force=false: refused with DEVICE_HELD (409) naming the map, and nothing is touched.
      let d = await connect(v);
      let dev = d.path.slice(5);
      let dm = await hold(dev);
      const e = await compute.disconnect('iscsi', v.connectionInfo, d, { force: false }).then(() => null, (x: RemoteError) => x);
      expect(e?.code).toBe('DEVICE_HELD');
      expect(e?.statusCode).toBe(409);
      expect(e?.message).toContain(`${dev} <- ${dm} (name brick-held)`);
      expect(e?.hint).toContain('dmsetup remove brick-held');
      expect(await kernelDevices(v)).toEqual([dev]);
      expect(await table()).toContain(await majMin(dev));
      // The oracle, asked now, names the map on the volume's disk as a holder, with its chain.
      const held = (await orphans(v)).filter((o) => o.kind === 'holder');
      expect(held.map((o) => o.id)).toEqual(['brick-held']);
      expect(held[0]!.evidence).toContain(`chain ${dev} <- ${dm}`);

      // With the map taken down, a plain detach is clean.
      await sh('dmsetup remove brick-held && udevadm settle');
      const clean = await compute.disconnect('iscsi', v.connectionInfo, d);
      expect(clean.removed).toContain(`scsi device ${dev}`);
      expect(clean.left).toBeUndefined();
      expect(await orphans(v)).toEqual([]);

      // force=true: the detach goes on and lists the map it left, whose table still names the gone disk.
      d = await connect(v);
      dev = d.path.slice(5);
      dm = await hold(dev);
      const gone = await majMin(dev);
      const before = await snapshot();
      const forced = await compute.disconnect('iscsi', v.connectionInfo, d, { force: true });
      expect(forced.left).toEqual([`holder ${dm} (name brick-held) on ${dev}`]);
      expect(await kernelDevices(v)).toEqual([]);
      expect(await table()).toContain(gone);
      // The oracle names it: volume-scoped (the attach said the disk was `dev`) and host-wide.
      const r = await compute.orphans({ protocol: 'iscsi', properties: v.connectionInfo, wwid: v.iscsi!.wwid, devices: d.devices, baseline: before });
      expect(r.clean).toBe(false);
      // The map, and udev's link to it.
      expect(r.orphans.map((o) => [o.kind, o.id])).toEqual([['holder', 'brick-held'], ['by-id-link', 'dm-name-brick-held']]);
      expect(r.orphans[0]!.evidence).toContain(`slaves/${dev} points at a removed device; its table names ${gone}`);
      expect(r.orphans[1]!.evidence).toBe(`/dev/disk/by-id/dm-name-brick-held -> ${dm}`);
      expect(r.hostWide!.orphans.map((o) => [o.kind, o.id])).toEqual([['holder', 'brick-held']]);
      expect(r.hostWide!.collateral).toEqual([]);
    } finally {
      await sh('dmsetup remove --force brick-held 2>/dev/null; udevadm settle; true');
    }
    expect(await orphans(v)).toEqual([]);
  });

  it('names each leftover made on purpose, with evidence', async () => {
    const a = await volume('iscsi', { name: 'l1', sizeMiB: 8, iqn: 'iqn.2026-11.io.brick-lab:e2e.left', initiators: [computeIqn] });
    const b = await volume('iscsi', { name: 'l2', sizeMiB: 8, iqn: 'iqn.2026-11.io.brick-lab:e2e.left', initiators: [computeIqn] });
    const da = await connect(a);
    const db = await connect(b);
    const devA = da.path.slice(5);

    // A device not deleted (the session stays for b): device, block device and its links.
    let o = await orphans(a, [b]);
    expect(kinds(o)).toEqual(expect.arrayContaining(['block-device', 'by-id-link', 'by-path-link', 'scsi-device']));
    expect(o.find((x) => x.kind === 'scsi-device')!.evidence).toContain('/sys/class/scsi_device/');
    expect(o.find((x) => x.kind === 'block-device')!.id).toBe(devA);
    expect(o.some((x) => x.kind === 'iscsi-session')).toBe(false);

    // A by-path link with no device behind it: delete the device, leave the link udev would remove.
    const link = (await paths(a)).paths[0]!;
    await compute.run(['sh', '-c', `echo 1 > /sys/block/${devA}/device/delete`]);
    await compute.run(['udevadm', 'settle']);
    await compute.run(['ln', '-sf', `../../${devA}`, link]);
    o = await orphans(a, [b]);
    expect(o.map((x) => [x.kind, x.id])).toEqual([['by-path-link', link.split('/').pop()]]);
    expect(o[0]!.evidence).toContain('(nothing)');
    await compute.run(['rm', '-f', link]);
    expect(await orphans(a, [b])).toEqual([]);

    // A session not logged out: b's device deleted by hand, no logout.
    // udev removes b's links on the remove event; settle so that only the session is left.
    await compute.run(['sh', '-c', `echo 1 > /sys/block/${db.path.slice(5)}/device/delete`]);
    await compute.run(['udevadm', 'settle']);
    o = await orphans(b);
    expect(kinds(o)).toEqual(['iscsi-node-record', 'iscsi-session']);
    expect(o.find((x) => x.kind === 'iscsi-session')!.evidence).toMatch(/\/sys\/class\/iscsi_session\/session\d+ \(iqn\.2026-11\.io\.brick-lab:e2e\.left/);
    await disconnect(b, null);
    expect(await orphans(b)).toEqual([]);

    // A controller not disconnected: the NVMe namespace detached on the target first.
    const n = await volume('nvmet', { name: 'l3', sizeMiB: 8 });
    const dn = await connect(n, true);
    o = await orphans(n);
    expect(kinds(o)).toEqual(expect.arrayContaining(['nvme-controller', 'nvme-namespace']));
    expect(o.filter((x) => x.kind === 'nvme-controller').length).toBe(2);
    await target.unmap('l3');
    await sh(`for i in $(seq 100); do [ -e ${dn.path} ] || exit 0; sleep 0.2; done; exit 1`);
    o = await orphans(n);
    expect(kinds(o)).toEqual(['nvme-controller']);
    expect(o[0]!.evidence).toContain(n.nvme!.nqn);
    await disconnect(n, dn);
    expect(await orphans(n)).toEqual([]);

    // A multipath map not flushed: a process still holds the map open (a guest's disk, say) when
    // both sessions are logged out, so the map outlives its paths.
    const m = await volume('iscsi', { name: 'l4', sizeMiB: 8, initiators: [computeIqn] });
    const dm = await connect(m, true);
    expect(dm.multipath).toBe(true);
    const holder = (await sh(`sleep 300 <${dm.path} >/dev/null 2>&1 & echo $!`)).trim();
    await sh(`iscsiadm -m node -T ${m.iscsi!.iqn} --logout >/dev/null; iscsiadm -m node -T ${m.iscsi!.iqn} -o delete`);
    o = await orphans(m);
    expect(kinds(o)).toContain('multipath-map');
    expect(o.find((x) => x.kind === 'multipath-map')!.evidence).toContain(`mpath-${m.iscsi!.wwid}`);
    expect(o.find((x) => x.kind === 'multipath-map')!.evidence).toContain('no paths');
    await compute.run(['kill', holder]);
    await sh(`for i in $(seq 50); do dmsetup info ${m.iscsi!.wwid} >/dev/null 2>&1 || exit 0; multipath -f ${m.iscsi!.wwid} >/dev/null 2>&1 && exit 0; sleep 0.2; done; exit 1`);
    expect(await orphans(m)).toEqual([]);
  });

  it('names what is stacked on a multipath volume and what iscsiadm made for it, each with evidence, then nothing once taken away', async () => {
    const m = await volume('iscsi', { name: 'k1', sizeMiB: 8, initiators: [computeIqn] });
    const d = await connect(m, true);
    const wwid = m.iscsi!.wwid;
    const portal = `${m.portals[0]!.address}:${m.portals[0]!.port}`;
    const part = `${wwid}-part1`;
    const judge = async (): Promise<Orphan[]> => (await compute.orphans({ protocol: 'iscsi', properties: m.connectionInfo, wwid })).orphans;
    // A DOS partition table on the map (one partition from sector 2048), and kpartx's map of it.
    await sh(`python3 -c 'import struct,sys; b=bytearray(512); b[446:462]=struct.pack("<B3sB3sII",0,bytes(3),0x83,bytes(3),2048,8192); b[510:512]=bytes([0x55,0xaa]); f=open(sys.argv[1],"r+b"); f.write(b); f.close()' ${d.path} && kpartx -a ${d.path} && udevadm settle`);
    let o = await judge();
    const held = o.filter((x) => x.kind === 'holder');
    expect(held.map((x) => x.id)).toEqual([part]);
    expect(held[0]!.evidence).toMatch(new RegExp(`uuid part1-mpath-${wwid}\\); table "0 8192 linear \\d+:\\d+ 2048"; chain sd[a-z]+ <- ${d.path.slice(5)} <- dm-\\d+$`));
    // A bare partition map would go with the map (multipath -f takes it). Held open, the map cannot
    // go: the connector refuses, and the partition map and the map are still there.
    const holder = (await sh(`sleep 300 </dev/mapper/${part} >/dev/null 2>&1 & echo $!`)).trim();
    const refused = await compute.disconnect('iscsi', m.connectionInfo, d).then(() => null, (x: RemoteError) => x);
    await compute.run(['kill', holder]);
    expect(refused?.code).toBe('MULTIPATH_FLUSH_FAILED');
    expect((await judge()).filter((x) => x.kind === 'holder').map((x) => x.id)).toEqual([part]);
    expect((await paths(m)).devices).toEqual(expect.arrayContaining([d.path.slice(5), ...d.devices]));
    // The partition map suspended: said on the holder.
    await sh(`dmsetup suspend ${part}`);
    expect((await judge()).find((x) => x.kind === 'holder')!.evidence).toContain('SUSPENDED');
    await sh(`dmsetup resume ${part}`);
    // Every path failed (I/O erroring rather than queueing meanwhile): said on the map, from dmsetup status.
    await sh(`dmsetup message ${wwid} 0 fail_if_no_path; for p in ${d.devices.join(' ')}; do multipathd fail path $p; done; sleep 1`);
    expect((await judge()).find((x) => x.kind === 'multipath-map')!.evidence).toMatch(/all paths failed \(dmsetup status: \d+:\d+ F, \d+:\d+ F\)/);
    await sh(`for p in ${d.devices.join(' ')}; do multipathd reinstate path $p; done; dmsetup message ${wwid} 0 queue_if_no_path`);
    // A discovery record of the volume's portal and an iface, made with iscsiadm after a baseline.
    const baseline = await snapshot();
    await sh(`iscsiadm -m discovery -t sendtargets -p ${portal} >/dev/null && iscsiadm -m iface -I brick-k1 -o new >/dev/null`);
    o = await judge();
    expect(o.find((x) => x.kind === 'iscsi-discovery-record')?.evidence).toMatch(new RegExp(`^/etc/iscsi/send_targets/${portal.replace(':', ',')} \\(sendtargets discovery of ${portal}; node records for .*${m.iscsi!.iqn}`));
    const wide = await compute.hostCheck({ baseline, stillAttached: [{ protocol: 'iscsi', properties: m.connectionInfo }] });
    expect(wide.orphans.map((x) => `${x.kind} ${x.id}`)).toEqual(expect.arrayContaining(['iscsi-iface brick-k1']));
    expect(wide.collateral).toEqual([]);
    // Taken away: the partition map, then the volume, then the discovery record and the iface.
    await sh(`kpartx -d ${d.path} && udevadm settle`);
    await disconnect(m, d);
    await sh(`iscsiadm -m discoverydb -t sendtargets -p ${portal} -o delete; iscsiadm -m iface -I brick-k1 -o delete; true`);
    expect(await orphans(m)).toEqual([]);
    expect((await compute.hostCheck({ baseline })).orphans.filter((x) => x.kind.startsWith('iscsi-'))).toEqual([]);
  });

  it('reports a volume\'s device from sysfs when udev made no link for it', async () => {
    const v = await volume('iscsi', { name: 'u1', sizeMiB: 8, initiators: [computeIqn] });
    const d = await connect(v);
    const before = await paths(v);
    for (const l of before.paths) await compute.run(['rm', '-f', l]);
    const after = await paths(v);
    expect(after.paths).toEqual([]);
    expect(after.devices).toEqual([d.path.slice(5)]);
    expect(kinds(await orphans(v))).toEqual(expect.arrayContaining(['block-device', 'scsi-device']));
    await disconnect(v, d);
    expect(await orphans(v)).toEqual([]);
  });

  it('writes the node record iscsiadm writes (with os-brick\'s settings), byte for byte', async () => {
    // Attaches before this one had iscsiadm make a record, which the connector learned; this
    // attach writes its record from it, and iscsiadm then makes the same record for comparison.
    const v = await volume('iscsi', { name: 'rec1', sizeMiB: 8, initiators: [computeIqn], networks: ['path-a'] });
    const portal = `${v.portals[0]!.address}:${v.portals[0]!.port}`;
    const file = `/etc/iscsi/nodes/${v.iscsi!.iqn}/${v.portals[0]!.address},${v.portals[0]!.port}`;
    const d = await connect(v);
    const ours = await sh(`cat ${file}; stat -c %a ${file} $(dirname ${file})`);
    await disconnect(v, d);
    expect(await sh(`ls ${file} 2>&1; true`)).toMatch(/No such file/);
    const node = `-m node -T ${v.iscsi!.iqn} -p ${portal}`;
    const theirs = await sh(`iscsiadm ${node} --op new >/dev/null && iscsiadm ${node} --op update -n node.session.scan -v manual -n node.startup -v automatic && cat ${file}; stat -c %a ${file} $(dirname ${file}); iscsiadm ${node} --op delete`);
    expect(ours).toMatch(/^# BEGIN RECORD/);
    expect(ours).toBe(theirs);
    await target.deleteVolume(v.name);
  });

  it('answers paths from a view kept while the kernel is quiet, and sees at once an attach, a LUN the target reused rescanned in place (a new WWID and no uevent), and a detach', async () => {
    const first = await volume('iscsi', { name: 'view-1', sizeMiB: 8, lun: 0, initiators: [computeIqn], networks: ['path-a'] });
    // A second LUN keeps the session when LUN 0 goes, as on a shared array.
    await volume('iscsi', { name: 'view-anchor', sizeMiB: 8, iqn: first.iscsi!.iqn, lun: 1, initiators: [computeIqn], networks: ['path-a'] });
    const withWwid = (v: TargetVolume, wwid: string): Record<string, unknown> => ({ ...v.connectionInfo, data: { ...(v.connectionInfo.data as object), device_wwid: wwid } });
    /** One volume's paths through the batch route, and whether they came from a kept view (its Server-Timing says 'kept'). */
    const ask = async (props: Record<string, unknown>): Promise<{ p: VolumePaths; kept: boolean }> => {
      const r = await compute.volumePathsBatch('iscsi', [props]);
      return { p: r.results[0]!, kept: 'kept' in compute.lastServerTimings };
    };
    /** Ask until the answer comes from a kept view (the kernel quiet for a second before it was read). */
    const askQuiet = async (props: Record<string, unknown>): Promise<VolumePaths> => {
      for (let i = 0; i < 60; i++) {
        const r = await ask(props);
        if (r.kept) return r.p;
        await new Promise((res) => setTimeout(res, 250));
      }
      throw new Error('no answer came from a kept view in 15 s: the uevent counter kept moving');
    };
    expect(await askQuiet(first.connectionInfo)).toEqual({ paths: [], devices: [] });
    // An attach moves the counter: the very next answer is read afresh and has the device (its link may come later: udev's).
    const d = await compute.connect('iscsi', first.connectionInfo);
    expect((await ask(first.connectionInfo)).p.devices).toEqual(d.devices);
    await compute.run(['udevadm', 'settle']);
    expect((await askQuiet(withWwid(first, first.iscsi!.wwid))).devices).toEqual(d.devices);
    // The target gives LUN 0 to another volume while the host keeps the device (a detach that
    // skipped the delete). A rescan of the device reads the LUN's new identity in place: the
    // kernel sends no uevent for it, so the kept view stands, and its WWIDs are read again.
    await target.deleteVolume(first.name);
    const next = await volume('iscsi', { name: 'view-2', sizeMiB: 8, iqn: first.iscsi!.iqn, lun: 0, initiators: [computeIqn], networks: ['path-a'] });
    expect((await askQuiet(withWwid(first, first.iscsi!.wwid))).devices).toEqual(d.devices);
    const counter = await sh('cat /sys/kernel/uevent_seqnum');
    await sh(`echo 1 > /sys/block/${d.devices[0]}/device/rescan`);
    // first's WWID is on no device now, and the LUN's link leads to next's.
    expect(await ask(withWwid(first, first.iscsi!.wwid))).toEqual({ p: { paths: [], devices: [] }, kept: true });
    const nextPaths = (await ask(withWwid(next, next.iscsi!.wwid))).p;
    expect(nextPaths.devices).toEqual(d.devices);
    expect(nextPaths.paths).toHaveLength(1);
    const avail = (await compute.availableVolumes('iscsi')).volumes.find((a) => a.devices.includes(d.devices[0]!));
    expect(avail?.identity.wwid).toBe(next.iscsi!.wwid);
    // The premise: the rescan sent no uevent (else the view was simply read again).
    expect(await sh('cat /sys/kernel/uevent_seqnum')).toBe(counter);
    // A detach moves the counter again: nothing of the device in the next answer.
    await compute.disconnect('iscsi', next.connectionInfo, { ...d, identity: next.iscsi!.wwid });
    expect((await ask(next.connectionInfo)).p).toEqual({ paths: [], devices: [] });
    expect(await orphans(next)).toEqual([]);
    await target.deleteVolume('view-2');
    await target.deleteVolume('view-anchor');
  });

  it('undoes an attach that ends after its caller gave up waiting, so that nothing is left that nobody will detach', async () => {
    const v = await volume('iscsi', { name: 'late1', sizeMiB: 8, initiators: [computeIqn], networks: ['path-a'] });
    // The target's path-a down for 4 s: the compute's login waits on TCP's retries of its SYN (at
    // 1 and 3 s, lost; at 7 s, answered), well after the caller's 3 s, and goes through.
    await target.startOutage(4, ['path-a']);
    const gaveUp = await compute.connect('iscsi', v.connectionInfo, { timeoutMs: 3000 }).catch((e: Error) => e);
    expect(String(gaveUp)).toMatch(/did not answer POST \/v1\/connectors\/iscsi\/connect/);
    let log = '';
    for (let i = 0; i < 90 && !/its caller gone/.test(log); i++) {
      await new Promise((r) => setTimeout(r, 1000));
      log = (await cli(['logs', '--name', STORAGE_LAB, 'compute-1'])).stdout;
    }
    const line = log.split('\n').find((l) => l.includes('its caller gone')) ?? '';
    expect(line).toMatch(/^brick-lab agent: iscsi connect of \/dev\/sd[a-z]+ ended [\d.]+ s after it began, its caller gone since [\d.]+ s: undone \(removed .*session/);
    expect(await orphans(v)).toEqual([]);
    expect(await kernelDevices(v)).toEqual([]);
    expect((await snapshot()).iscsiSessions).toEqual([]);
    await target.deleteVolume(v.name);
  });

  it('refuses malformed connection properties with the field named', async () => {
    const bad = await compute.volumePaths('iscsi', { target_portal: '10.10.1.10:3260', target_iqn: 'iqn.2026-11.lab:x', target_lun: 0 }).catch((e: Error) => e);
    expect(String(bad)).toMatch(/target_iqn:/);
    const badLun = await compute.connect('iscsi', { target_portal: '10.10.1.10:3260', target_iqn: 'iqn.2026-11.io.brick-lab:x.y', target_lun: -1 }).catch((e: Error) => e);
    expect(String(badLun)).toMatch(/target_lun:/);
    const badPortal = await compute.volumePaths('nvmeof', { target_nqn: 'nqn.2026-11.io.brick-lab:x', portals: [['10.10.1.10', 99999, 'tcp']] }).catch((e: Error) => e);
    expect(String(badPortal)).toMatch(/portals\[0\]/);
    const badPath = await compute.volumePaths('local', { device_path: '../etc/passwd' }).catch((e: Error) => e);
    expect(String(badPath)).toMatch(/device_path:/);
  });
});
