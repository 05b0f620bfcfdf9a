import { describe, expect, it } from 'vitest';
import type { TargetVolume } from '../../src/agent/api/types.js';
import { sections, subsystemControllers, volumeInTools } from '../../src/scenarios/inspect.js';
import { blockOf, FIXTURE_KERNELS, hctlOf, loadInventoryFixture, nvmeCliControllers, type InventoryFixture } from './inventory-fixtures.js';

/**
 * The verdicts' second opinion (scenarios/inspect.ts) on what a real guest showed: the attached
 * capture of each kernel (test/fixtures/guest-6.1.0-56: Debian bookworm, open-iscsi 2.1.8, nvme-cli
 * 2.3; guest-6.12.117: trixie, open-iscsi 2.1.11, nvme-cli 2.13), with
 * the inspection script's sections filled from it. Captured as printed: `iscsiadm -m session`,
 * `nvme list-subsys -o json`, the /dev/disk/by-path listing, each SCSI device's sysfs wwid, the
 * namespaces' sysfs uuid and the maps' dm uuid. The `iscsiadm -m node` lines are written from the
 * captured node records in iscsiadm's "portal,tpgt iqn" form.
 */
function scriptOutput(fx: InventoryFixture): string {
  const rec = fx.recording;
  const attr = (dir: string, name: string): string => {
    const key = Object.keys(rec.text).find((k) => k.endsWith(`/${dir}/${name}`));
    return key ? (rec.text[key] ?? '') : '';
  };
  const maps = fx.snapshot.multipathMaps.map((m) => `${m.name}:${rec.text[`/sys/block/${m.dm}/dm/uuid`]}`);
  return [
    '## iscsiadm -m session',
    fx.tools.iscsiadmSession,
    '## iscsiadm -m node',
    ...fx.snapshot.iscsiNodes.map((n) => `${n.portal},${n.tpgt} ${n.iqn}`),
    '## nvme list-subsys -o json',
    fx.tools.nvmeListSubsys,
    '## dmsetup info',
    ...maps,
    '## ls /dev/disk/by-path',
    ...rec.list['/dev/disk/by-path']!,
    '## scsi_device wwid',
    ...rec.list['/sys/class/scsi_device']!.map((h) => `${h} ${attr(h, 'wwid')}`),
    '## nvme namespace uuid',
    ...fx.snapshot.nvmeNamespaces.map((n) => `${n.name} ${rec.text[`/sys/block/${n.name}/uuid`]}`),
  ].join('\n');
}

describe.each(FIXTURE_KERNELS)('captured on guest kernel %s', (kernel) => {
  const FX = loadInventoryFixture('inventory-attached.json', kernel);
  const OUT = scriptOutput(FX);
  const vol = (k: keyof InventoryFixture['volumes']): TargetVolume => FX.volumes[k] as unknown as TargetVolume;

  describe('volumeInTools on a real guest with volumes attached', () => {
    it('splits the script output into its sections', () => {
      expect([...sections(OUT).keys()]).toEqual(['iscsiadm -m session', 'iscsiadm -m node', 'nvme list-subsys -o json', 'dmsetup info', 'ls /dev/disk/by-path', 'scsi_device wwid', 'nvme namespace uuid']);
    });

    it('shows a single-path LUN: its session, record, by-path link and SCSI device', () => {
      const seen = volumeInTools(OUT, vol('big'), []);
      expect(seen.map((l) => l.split(':')[0])).toEqual(['iscsiadm -m session', 'iscsiadm -m node', 'ls /dev/disk/by-path', 'scsi_device wwid']);
      // LUN 300: udev names it in the 0x form.
      expect(seen[2]).toMatch(/-lun-0x012c000000000000$/);
      // On the SCSI host of fbig's session (9 in 6.1's capture, 3 in 6.12's).
      expect(seen[3]).toBe(`scsi_device wwid: ${hctlOf(FX.snapshot, blockOf(FX.devices!.dbig))} naa.${vol('big').iscsi!.wwid.slice(1)}`);
      expect(hctlOf(FX.snapshot, blockOf(FX.devices!.dbig))).toMatch(/^\d+:0:0:300$/);
    });

    it('shows a two-path LUN on both sessions and records, both devices and its map', () => {
      const seen = volumeInTools(OUT, vol('m'), []);
      const count = (tool: string): number => seen.filter((l) => l.startsWith(`${tool}: `)).length;
      expect([count('iscsiadm -m session'), count('iscsiadm -m node'), count('ls /dev/disk/by-path'), count('scsi_device wwid'), count('dmsetup info')]).toEqual([2, 2, 2, 2, 1]);
    });

    it('leaves out the session and record a still-attached LUN of the same target shares, never its own devices', () => {
      expect(vol('a').iscsi!.iqn).toBe(vol('b').iscsi!.iqn);
      const seen = volumeInTools(OUT, vol('a'), [vol('b')]);
      expect(seen.map((l) => l.split(':')[0])).toEqual(['ls /dev/disk/by-path', 'scsi_device wwid']);
    });

    it('shows an NVMe volume by its subsystem controllers and namespace uuid, and not once another volume shares the subsystem', () => {
      const [c1, c2] = nvmeCliControllers(FX, vol('n').nvme!.nqn);
      const head = blockOf(FX.devices!.dn);
      expect([c1!.traddr, c2!.traddr]).toEqual(['10.10.1.10', '10.10.2.10']);
      expect(volumeInTools(OUT, vol('n'), [])).toEqual([
        expect.stringMatching(new RegExp(`^nvme list-subsys: ${c1!.name} tcp traddr=10\\.10\\.1\\.10,trsvcid=4420,src_addr=\\S+ live$`)),
        expect.stringMatching(new RegExp(`^nvme list-subsys: ${c2!.name} tcp traddr=10\\.10\\.2\\.10,`)),
        `nvme namespace uuid: ${head} ${vol('n').nvme!.uuid}`,
      ]);
      expect(volumeInTools(OUT, vol('n'), [vol('n')])).toEqual([`nvme namespace uuid: ${head} ${vol('n').nvme!.uuid}`]);
    });

    it('shows nothing of a volume the host never had, and nothing on a host with nothing', () => {
      const stranger = { ...vol('big'), iscsi: { ...vol('big').iscsi!, iqn: 'iqn.2026-11.io.brick-lab:dev.other', lun: 3, wwid: '36001405000000000000000000000000' } } as TargetVolume;
      expect(volumeInTools(OUT, stranger, [])).toEqual([]);
      const empty = ['## iscsiadm -m session', '## iscsiadm -m node', '## nvme list-subsys -o json', '## dmsetup info', '## ls /dev/disk/by-path', '## scsi_device wwid', '## nvme namespace uuid'].join('\n');
      for (const k of ['a', 'm', 'big', 'n'] as const) expect(volumeInTools(empty, vol(k), [])).toEqual([]);
    });
  });
});

describe('subsystemControllers', () => {
  it('says so when nvme-cli printed something that is not JSON, rather than nothing', () => {
    expect(subsystemControllers('Failed to scan topology', 'nqn.x')).toEqual(['nvme list-subsys -o json: unreadable output: Failed to scan topology']);
  });
});
