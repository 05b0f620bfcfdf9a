import { describe, expect, it } from 'vitest';
import { IscsiConnector } from '../../src/connectors/iscsi.js';
import { LocalConnector } from '../../src/connectors/local.js';
import { NvmeConnector } from '../../src/connectors/nvme.js';
import { normalise } from '../../src/osbrick/index.js';
import type { IscsiProperties, NvmeProperties } from '../../src/volume/properties.js';
import { replayHostFs } from '../../src/system/hostfs-record.js';
import { byPathName } from '../../src/volume/bypath.js';
import { blockOf, FIXTURE_KERNELS, loadInventoryFixture, portalOf, type FixtureVolume, type InventoryFixture } from './inventory-fixtures.js';

/**
 * The connectors' read side (getVolumePaths, getAllAvailableVolumes) on the reads the real guest
 * answered (test/fixtures/README.md, "Inventory fixtures"), replayed through replayHostFs, on
 * each captured kernel.
 */
const iscsi = (fx: InventoryFixture): IscsiConnector => new IscsiConnector(replayHostFs(fx.recording));
const nvme = (fx: InventoryFixture): NvmeConnector => new NvmeConnector(replayHostFs(fx.recording));
const iscsiProps = (v: FixtureVolume): IscsiProperties => normalise('iscsi', v.connectionInfo) as IscsiProperties;
const nvmeProps = (v: FixtureVolume): NvmeProperties => normalise('nvmeof', v.connectionInfo) as NvmeProperties;
/** /dev/disk/by-path/NAME of a volume at its i-th portal. */
const byPath = (v: FixtureVolume, i: number): string => `/dev/disk/by-path/${byPathName({ portal: portalOf(v, i), iqn: v.iscsi!.iqn, lun: v.iscsi!.lun })}`;

describe.each(FIXTURE_KERNELS)('captured on guest kernel %s', (kernel) => {
  const ATTACHED = loadInventoryFixture('inventory-attached.json', kernel);
  const LEFTOVERS = loadInventoryFixture('inventory-leftovers.json', kernel);
  const D = ATTACHED.devices!;

  describe('IscsiConnector.getVolumePaths on the attached capture', () => {
    it('finds fa and fb, the two LUNs of the shared session, each with its one by-path link', async () => {
      const c = iscsi(ATTACHED);
      expect(await c.getVolumePaths(iscsiProps(ATTACHED.volumes.a))).toEqual({ paths: [byPath(ATTACHED.volumes.a, 0)], devices: [blockOf(D.da)] });
      expect(await c.getVolumePaths(iscsiProps(ATTACHED.volumes.b))).toEqual({ paths: [byPath(ATTACHED.volumes.b, 0)], devices: [blockOf(D.db)] });
    });

    it('finds fbig at LUN 300 under the by-path name with the 64-bit LUN', async () => {
      const r = await iscsi(ATTACHED).getVolumePaths(iscsiProps(ATTACHED.volumes.big));
      expect(r.paths).toEqual([byPath(ATTACHED.volumes.big, 0)]);
      expect(r.paths[0]).toMatch(/-lun-0x012c000000000000$/);
      expect(r.devices).toEqual([blockOf(D.dbig)]);
    });

    it('finds fm on both portals, with the dm-multipath map over its two path devices', async () => {
      const r = await iscsi(ATTACHED).getVolumePaths(iscsiProps(ATTACHED.volumes.m));
      expect(r.paths).toEqual([byPath(ATTACHED.volumes.m, 0), byPath(ATTACHED.volumes.m, 1)].sort());
      expect(r.devices).toEqual([blockOf(D.dm), ...D.dm.devices!].sort());
    });

    it('answers from a snapshot that is passed in, as the batch route does', async () => {
      const r = await iscsi(ATTACHED).getVolumePaths(iscsiProps(ATTACHED.volumes.a), { ...ATTACHED.snapshot, scope: 'paths' });
      expect(r.devices).toEqual([blockOf(D.da)]);
    });
  });

  describe('IscsiConnector on the leftovers capture', () => {
    it('finds nothing of fa (its device was deleted) nor of fb (disconnected), and fm and fbig as before', async () => {
      const c = iscsi(LEFTOVERS);
      expect(await c.getVolumePaths(iscsiProps(LEFTOVERS.volumes.a))).toEqual({ paths: [], devices: [] });
      expect(await c.getVolumePaths(iscsiProps(LEFTOVERS.volumes.b))).toEqual({ paths: [], devices: [] });
      expect((await c.getVolumePaths(iscsiProps(LEFTOVERS.volumes.m))).devices).toEqual([blockOf(D.dm), ...D.dm.devices!].sort());
      expect((await c.getVolumePaths(iscsiProps(LEFTOVERS.volumes.big))).devices).toEqual([blockOf(D.dbig)]);
    });

    it('does not take the dangling by-path link of a gone LUN for a volume', async () => {
      const all = await iscsi(LEFTOVERS).getAllAvailableVolumes();
      expect(all.flatMap((v) => v.paths).some((p) => p.includes('fixture.gone'))).toBe(false);
    });
  });

  describe('IscsiConnector.getAllAvailableVolumes', () => {
    it('lists every iSCSI LUN of the attached capture once, by WWID, with its devices and links', async () => {
      const all = await iscsi(ATTACHED).getAllAvailableVolumes();
      const byWwid = new Map(all.map((v) => [v.identity.wwid, v]));
      expect([...byWwid.keys()].sort()).toEqual([D.da.identity, D.db.identity, D.dm.identity, D.dbig.identity].sort());
      expect(byWwid.get(D.da.identity)).toMatchObject({ devices: [blockOf(D.da)], paths: [byPath(ATTACHED.volumes.a, 0)], identity: { target: ATTACHED.volumes.a.iscsi!.iqn, lun: 0 } });
      const m = byWwid.get(D.dm.identity)!;
      expect([...m.devices].sort()).toEqual([...D.dm.devices!].sort());
      expect([...m.identity.portals!].sort()).toEqual([portalOf(ATTACHED.volumes.m, 0), portalOf(ATTACHED.volumes.m, 1)].sort());
      // The scsi_debug disk hangs under no session: not an iSCSI volume.
      expect(all.some((v) => v.devices.includes(blockOf(D.disk.device)))).toBe(false);
    });

    it('keeps to one target when properties are given', async () => {
      const all = await iscsi(ATTACHED).getAllAvailableVolumes(iscsiProps(ATTACHED.volumes.big));
      expect(all.map((v) => v.identity.wwid)).toEqual([D.dbig.identity]);
    });

    it('no longer lists fa and fb in the leftovers capture', async () => {
      const wwids = (await iscsi(LEFTOVERS).getAllAvailableVolumes()).map((v) => v.identity.wwid);
      expect(wwids.sort()).toEqual([D.dm.identity, D.dbig.identity].sort());
    });
  });

  describe('NvmeConnector on the captures', () => {
    const N = ATTACHED.volumes.n;

    it('lists fn with its head and both path devices, on both portals', async () => {
      const all = await nvme(ATTACHED).getAllAvailableVolumes();
      expect(all).toHaveLength(1);
      expect(all[0]).toMatchObject({ paths: [D.dn.path], identity: { uuid: N.nvme!.uuid, nguid: N.nvme!.nguid, nsid: N.nvme!.nsid, target: N.nvme!.nqn } });
      expect([...all[0]!.devices].sort()).toEqual([...D.dn.devices!].sort());
      expect([...all[0]!.identity.portals!].sort()).toEqual([`${N.portals[0]!.address}:${N.portals[0]!.port}`, `${N.portals[1]!.address}:${N.portals[1]!.port}`].sort());
      expect(await nvme(ATTACHED).getAllAvailableVolumes(nvmeProps(N))).toHaveLength(1);
    });

    it('lists nothing once the namespace was removed on the target (leftovers), though its controllers remain', async () => {
      expect(LEFTOVERS.snapshot.nvmeControllers.filter((c) => c.subsysNqn === N.nvme!.nqn)).not.toHaveLength(0);
      expect(await nvme(LEFTOVERS).getAllAvailableVolumes()).toEqual([]);
    });

    // getVolumePaths checks that /dev/<head> exists: a read the snapshot does not make, so the
    // captures hold no answer for it. The replay says so, naming the head of fn.
    it('getVolumePaths asks for /dev of fn\'s head, which the capture did not record', async () => {
      await expect(nvme(ATTACHED).getVolumePaths(nvmeProps(N))).rejects.toThrow(`fixture has no exists of ${D.dn.path}`);
      // No namespace left in the leftovers: nothing to look for under /dev, so nothing is missed.
      expect(await nvme(LEFTOVERS).getVolumePaths(nvmeProps(N))).toEqual({ paths: [], devices: [] });
    });
  });

  describe('LocalConnector on the captures', () => {
    it('lists the scsi_debug disk (no session) and no iSCSI LUN', async () => {
      const all = await new LocalConnector(replayHostFs(ATTACHED.recording)).getAllAvailableVolumes();
      expect(all).toEqual([{ protocol: 'local', identity: { wwid: D.disk.wwid }, paths: [D.disk.device], devices: [blockOf(D.disk.device)] }]);
      expect((await new LocalConnector(replayHostFs(LEFTOVERS.recording)).getAllAvailableVolumes()).map((v) => v.identity.wwid)).toEqual([D.disk.wwid]);
    });

    // getVolumePaths is an exists() of device_path, which the snapshot never asks.
    it('getVolumePaths asks for the device path, which the capture did not record', async () => {
      const c = new LocalConnector(replayHostFs(ATTACHED.recording));
      await expect(c.getVolumePaths(c.normalise({ device_path: D.disk.device }))).rejects.toThrow(`fixture has no exists of ${D.disk.device}`);
    });
  });
});
