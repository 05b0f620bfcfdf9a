import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ComputeClient } from '../../src/agent/api/compute-client.js';
import { buildAgent } from '../../src/agent/server.js';
import { Detach } from '../../src/connectors/base.js';
import type { DeviceInfo } from '../../src/connectors/types.js';
import { heldBy, leftText, partitionsOf, stackText, takeDownCommands, type HeldStack } from '../../src/connectors/block.js';
import { IscsiConnector } from '../../src/connectors/iscsi.js';
import { LocalConnector } from '../../src/connectors/local.js';
import { NvmeConnector } from '../../src/connectors/nvme.js';
import { takeSnapshotSync } from '../../src/inventory/snapshot.js';
import type { HostSnapshot } from '../../src/inventory/model.js';
import { normalise } from '../../src/osbrick/index.js';
import { BrickError, RemoteError } from '../../src/system/errors.js';
import { replayHostFs, type HostFsRecording } from '../../src/system/hostfs-record.js';
import type { IscsiProperties, NvmeProperties } from '../../src/volume/properties.js';
import { blockOf, FIXTURE_KERNELS, loadInventoryFixture, type FixtureDevice } from './inventory-fixtures.js';
import { unitAgentOptions } from './unit-agents.js';

/**
 * The detach's rule about holders (issue 14, item 7): a device of the volume that carries a
 * holder the connector did not make stops a detach without force, and is left and listed with it.
 *
 * The hosts are the attached capture of each kernel (test/fixtures/README.md, "Inventory
 * fixtures") with block devices added to its recording the way the kernel shows them
 * (/sys/block/NAME, its slaves, a dm device's dm/name and dm/uuid), and the snapshots are what the
 * inventory's own reader makes of them: the holders are derived from the slaves as on a real
 * guest, not written by hand.
 */
describe.each(FIXTURE_KERNELS)('captured on guest kernel %s', (kernel) => {
  const ATTACHED = loadInventoryFixture('inventory-attached.json', kernel);
  const D = ATTACHED.devices!;
  const SDA = blockOf(D.da);
  const [SDC, SDD] = D.dm.devices!;
  const MPATH = blockOf(D.dm);
  const WWID = D.dm.identity!;
  const NVME = blockOf(D.dn);

  /** A block device as sysfs shows it; `dm` for a device-mapper device (a map made by hand has an empty uuid). */
  interface Added {
    dev: string;
    slaves: string[];
    dm?: { name: string; uuid: string };
  }

  /** The attached capture's recording with `added` block devices, and `partitions` in /sys/class/block. */
  function host(added: Added[], partitions: string[] = []): HostFsRecording {
    const r = structuredClone(ATTACHED.recording);
    const add = (dir: string, name: string): void => {
      r.list[dir] = [...r.list[dir]!, name].sort();
    };
    for (const x of added) {
      add('/sys/block', x.dev);
      add('/sys/class/block', x.dev);
      r.link[`/sys/class/block/${x.dev}`] = `../../devices/virtual/block/${x.dev}`;
      r.list[`/sys/block/${x.dev}/slaves`] = x.slaves;
      for (const s of x.slaves) r.exists[`/sys/block/${x.dev}/slaves/${s}`] = true; // each slave link resolves
      if (x.dm) {
        r.text[`/sys/block/${x.dev}/dm/name`] = x.dm.name;
        r.text[`/sys/block/${x.dev}/dm/uuid`] = x.dm.uuid;
      }
    }
    for (const p of partitions) add('/sys/class/block', p);
    return r;
  }

  /** The 'paths' snapshot a connector takes at the start of a detach. */
  const snapshotOf = (r: HostFsRecording): HostSnapshot => takeSnapshotSync(replayHostFs(r), { scope: 'paths' });

  /** `dmsetup create brick-held --table "0 16384 linear /dev/sda 0"`: no uuid. */
  const LINEAR: Added = { dev: 'dm-1', slaves: [SDA], dm: { name: 'brick-held', uuid: '' } };
  /** LVM's uuid: "LVM-" + the VG's and the LV's uuids without dashes. */
  const lvm = (dev: string, name: string, slave: string): Added => ({
    dev,
    slaves: [slave],
    dm: { name, uuid: 'LVM-Jq0TnQb8vRk3yT1cW5eZs2dG7hL4mP9xA6uF0oC3iN8rB1wE5kY2tV7jH4gD9sQz' },
  });
  /** kpartx over the multipath map, as multipath-tools' udev rule runs it (`-p -part`). */
  const PART1: Added = { dev: 'dm-1', slaves: [MPATH], dm: { name: `${WWID}-part1`, uuid: `part1-mpath-${WWID}` } };
  const LUKS: Added = { dev: 'dm-1', slaves: [NVME], dm: { name: 'luks-held', uuid: 'CRYPT-LUKS2-5d2c0e7a9b3f4c1e8a6d2f0b7c9e4a13-luks-held' } };

  /** A connect result of the capture, as disconnect takes it back. */
  const info = (f: FixtureDevice): DeviceInfo => f as DeviceInfo;
  const iscsiProps = (v: (typeof ATTACHED.volumes)['a']): IscsiProperties => normalise('iscsi', v.connectionInfo) as IscsiProperties;
  const nvmeProps = (v: (typeof ATTACHED.volumes)['n']): NvmeProperties => normalise('nvmeof', v.connectionInfo) as NvmeProperties;

  describe('heldBy', () => {
    it('finds nothing on the attached capture: the only holder there is the multipath map fm was attached with', () => {
      const snap = snapshotOf(ATTACHED.recording);
      expect(heldBy(snap, [SDA])).toEqual([]);
      expect(heldBy(snap, D.dn.devices!)).toEqual([]);
      expect(heldBy(snap, [SDC!, SDD!], [MPATH])).toEqual([]);
    });

    it('counts a multipath map only when it is not the connector\'s own', () => {
      const held = heldBy(snapshotOf(ATTACHED.recording), [SDC!, SDD!]);
      expect(held.map(stackText)).toEqual([`${SDC} <- ${MPATH} (name ${WWID})`, `${SDD} <- ${MPATH} (name ${WWID})`]);
      expect(takeDownCommands(held)).toEqual([`multipath -f ${WWID}`]);
    });

    it('names a linear map made by hand on sda', () => {
      const held = heldBy(snapshotOf(host([LINEAR])), [SDA]);
      expect(held).toEqual([{ on: [SDA], via: null, holders: [{ dev: 'dm-1', dm: { name: 'brick-held', uuid: '' } }] }] satisfies HeldStack[]);
      expect(held.map(stackText)).toEqual([`${SDA} <- dm-1 (name brick-held)`]);
      expect(held.map(leftText)).toEqual([`holder dm-1 (name brick-held) on ${SDA}`]);
      expect(takeDownCommands(held)).toEqual(['dmsetup remove brick-held']);
      // Another volume's device is not held by it.
      expect(heldBy(snapshotOf(host([LINEAR])), [blockOf(D.db)])).toEqual([]);
    });

    it('counts a bare partition map on the connector\'s own multipath map as the map\'s, and names what stands on one, through the map', () => {
      // kpartx's udev rules make the partition map with the map, and multipath -f removes it with the map.
      expect(heldBy(snapshotOf(host([PART1])), [SDC!, SDD!], [MPATH])).toEqual([]);
      const held = heldBy(snapshotOf(host([PART1, lvm('dm-2', 'vg0-lv0', 'dm-1')])), [SDC!, SDD!], [MPATH]);
      expect(held.map(stackText)).toEqual([`${SDC},${SDD} <- ${MPATH} (mpath ${WWID}) <- dm-1 (name ${WWID}-part1) <- dm-2 (name vg0-lv0)`]);
      expect(held.map(leftText)).toEqual([`holder dm-1 (name ${WWID}-part1) <- dm-2 (name vg0-lv0) on ${MPATH} (mpath ${WWID})`]);
      expect(takeDownCommands(held)).toEqual(['vgchange -an vg0', `kpartx -d /dev/mapper/${WWID}`]);
    });

    it('follows a stack to its top: LVM on a map made by hand', () => {
      const held = heldBy(snapshotOf(host([LINEAR, lvm('dm-2', 'vg0-lv0', 'dm-1')])), [SDA]);
      expect(held.map(stackText)).toEqual([`${SDA} <- dm-1 (name brick-held) <- dm-2 (name vg0-lv0)`]);
      expect(held.map(leftText)).toEqual([`holder dm-1 (name brick-held) <- dm-2 (name vg0-lv0) on ${SDA}`]);
      expect(takeDownCommands(held)).toEqual(['vgchange -an vg0', 'dmsetup remove brick-held']);
    });

    it('gives one stack per top, and takes a shared layer down after every top on it', () => {
      const snap = snapshotOf(host([LINEAR, lvm('dm-2', 'vg0-lv0', 'dm-1'), { dev: 'dm-3', slaves: ['dm-1'], dm: { name: 'brick-top', uuid: '' } }]));
      const held = heldBy(snap, [SDA]);
      expect(held.map(stackText)).toEqual([`${SDA} <- dm-1 (name brick-held) <- dm-2 (name vg0-lv0)`, `${SDA} <- dm-1 (name brick-held) <- dm-3 (name brick-top)`]);
      expect(takeDownCommands(held)).toEqual(['vgchange -an vg0', 'dmsetup remove brick-top', 'dmsetup remove brick-held']);
    });

    it('counts a holder of a partition of a device, an LVM whose VG has a dash in its name', () => {
      const held = heldBy(snapshotOf(host([lvm('dm-1', 'vg--data-lv0', `${SDA}1`)], [`${SDA}1`])), [SDA]);
      expect(held.map(stackText)).toEqual([`${SDA}1 <- dm-1 (name vg--data-lv0)`]);
      expect(takeDownCommands(held)).toEqual(['vgchange -an vg-data']);
    });

    it('names an md array by its kernel name (a \'paths\' snapshot lists dm devices only)', () => {
      const held = heldBy(snapshotOf(host([{ dev: 'md0', slaves: [SDA] }])), [SDA]);
      expect(held.map(stackText)).toEqual([`${SDA} <- md0`]);
      expect(takeDownCommands(held)).toEqual(['mdadm --stop /dev/md0']);
    });

    it('names a LUKS mapping on an NVMe namespace head', () => {
      const held = heldBy(snapshotOf(host([LUKS])), D.dn.devices!);
      expect(held.map(stackText)).toEqual([`${NVME} <- dm-1 (name luks-held)`]);
      expect(takeDownCommands(held)).toEqual(['cryptsetup close luks-held']);
    });
  });

  describe('Detach.refuseHeld', () => {
    const held = (): HeldStack[] => heldBy(snapshotOf(host([LINEAR])), [SDA]);
    const detach = (opts: { force?: boolean; ignoreErrors?: boolean }): Detach => new Detach(replayHostFs(ATTACHED.recording), opts);

    it('without force refuses with DEVICE_HELD (409), naming the stack and how to take it down', () => {
      let err: unknown;
      try {
        detach({}).refuseHeld(held());
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(BrickError);
      expect(err).toMatchObject({
        code: 'DEVICE_HELD',
        statusCode: 409,
        message: expect.stringContaining(`${SDA} <- dm-1 (name brick-held)`),
        hint: expect.stringMatching(/`dmsetup remove brick-held`.*force=true/),
        details: { held: [`${SDA} <- dm-1 (name brick-held)`] },
      });
    });

    it('with force or ignoreErrors goes on, and the result lists what it left', () => {
      for (const opts of [{ force: true }, { ignoreErrors: true }]) {
        const d = detach(opts);
        d.refuseHeld(held());
        expect(d.result()).toEqual({ removed: [], errors: [], left: [`holder dm-1 (name brick-held) on ${SDA}`] });
      }
    });

    it('with nothing held leaves `left` out of the result', () => {
      const d = detach({});
      d.refuseHeld([]);
      expect(d.result()).toEqual({ removed: [], errors: [] });
    });
  });

  /**
   * The connectors take the snapshot, then refuse before their first flush, write or command: a
   * replayed host answers nothing else, so a refusal that came later would fail on a read the
   * capture does not hold (or, for a flush, on the unit host's own /dev).
   */
  describe('the connectors refuse before they touch anything, where they would remove a held device', () => {
    it('iSCSI: a linear map made by hand on fa\'s sda', async () => {
      const fs = replayHostFs(host([LINEAR]));
      const r = new IscsiConnector(fs).disconnectVolume(iscsiProps(ATTACHED.volumes.a), info(D.da));
      await expect(r).rejects.toMatchObject({ code: 'DEVICE_HELD', message: expect.stringContaining(`${SDA} <- dm-1 (name brick-held)`) });
      expect(fs.written).toEqual([]);
    });

    it('iSCSI: LVM on a partition map of fm\'s own multipath map', async () => {
      const fs = replayHostFs(host([PART1, lvm('dm-2', 'vg0-lv0', 'dm-1')]));
      const r = new IscsiConnector(fs).disconnectVolume(iscsiProps(ATTACHED.volumes.m), info(D.dm));
      await expect(r).rejects.toMatchObject({ code: 'DEVICE_HELD', message: expect.stringContaining(`${MPATH} (mpath ${WWID}) <- dm-1 (name ${WWID}-part1) <- dm-2 (name vg0-lv0)`) });
      expect(fs.written).toEqual([]);
    });

    it('NVMe: a LUKS mapping on fn\'s namespace head, whose controllers would go', async () => {
      const r = new NvmeConnector(replayHostFs(host([LUKS]))).disconnectVolume(nvmeProps(ATTACHED.volumes.n), info(D.dn));
      await expect(r).rejects.toMatchObject({ code: 'DEVICE_HELD', message: expect.stringContaining(`${NVME} <- dm-1 (name luks-held)`) });
    });

    it('local: removes nothing, so a holder of the disk is listed, not refused', async () => {
      const disk = blockOf(D.disk.device);
      const r = host([{ ...LINEAR, slaves: [disk] }]);
      // The device node is answered as absent, so that the detach's one act, a flush of the disk
      // (an open of the unit host's own /dev), is skipped.
      r.exists[D.disk.device!] = false;
      const c = new LocalConnector(replayHostFs(r));
      expect(await c.disconnectVolume(c.normalise({ device_path: D.disk.device }), null)).toEqual({ removed: [], errors: [], left: [`holder dm-1 (name brick-held) on ${disk}`] });
    });
  });

  describe('DEVICE_HELD over HTTP', () => {
    it('reaches a client as a RemoteError with the code, status 409 and the hint', async () => {
      const token = 'aG9sZGVycy10ZXN0cy1sYWItdG9rZW4tZm9yLXVuaXQtdGVzdHM';
      const app = await buildAgent(unitAgentOptions(token, { connectorFs: replayHostFs(host([LINEAR])) }).compute);
      try {
        await app.listen({ host: '127.0.0.1', port: 0 });
        const client = new ComputeClient('compute-1', `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, token);
        const e = await client.disconnect('iscsi', ATTACHED.volumes.a.connectionInfo as Record<string, unknown>, info(D.da)).then(() => null, (x: unknown) => x);
        expect(e).toBeInstanceOf(RemoteError);
        expect(e).toMatchObject({ code: 'DEVICE_HELD', statusCode: 409, message: expect.stringContaining('dm-1 (name brick-held)'), hint: expect.stringContaining('dmsetup remove brick-held') });
      } finally {
        await app.close();
      }
    });
  });
});

describe('partitionsOf', () => {
  it('takes sda1 for sda and nvme0n1p1 for nvme0n1, not sdaa nor nvme0n10', () => {
    expect(partitionsOf('sda', ['sda', 'sda1', 'sda12', 'sdaa', 'sdaa1'])).toEqual(['sda1', 'sda12']);
    expect(partitionsOf('nvme0n1', ['nvme0n1', 'nvme0n1p1', 'nvme0n10', 'nvme0n10p1'])).toEqual(['nvme0n1p1']);
  });
});
