import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { HostSnapshot } from '../../src/inventory/model.js';
import { takeSnapshotSync } from '../../src/inventory/snapshot.js';
import { parseDmsetup, parseMultipathdMaps, parseMultipathdPaths, type ToolViews } from '../../src/inventory/tools.js';
import { parseIscsiadmSessions, parseNvmeListSubsys } from './tool-output.js';
import { replayHostFs, type HostFsRecording } from '../../src/system/hostfs-record.js';
import { normalise } from '../../src/osbrick/index.js';
import { identityFromProperties, type VolumeIdentity } from '../../src/volume/identity.js';

/**
 * The inventory fixtures captured from a real guest by scripts/capture-inventory-fixtures.mjs
 * (see test/fixtures/README.md, "Inventory fixtures"), and what the tests take from them.
 *
 * A re-capture gives every volume new random identities (WWIDs, unit serials, UUIDs, NGUIDs,
 * volume ids) and may number sessions, hosts and controllers differently: the tests take those
 * from the fixture's own `volumes` (the target's answers), `devices` (the connect results) and
 * `tools` (what iscsiadm and nvme-cli printed), never from literals.
 */
export interface FixtureVolume {
  name: string;
  protocol: 'iscsi' | 'nvmeof';
  id: string;
  portals: Array<{ network: string; address: string; port: number }>;
  connectionInfo: unknown;
  iscsi?: { iqn: string; lun: number; unitSerial: string; wwid: string };
  nvme?: { nqn: string; nsid: number; uuid: string; nguid: string };
}

/** A connect result (`path`, `devices`, ...), or for `disk` the local-disks route's answer. */
export interface FixtureDevice {
  type?: string;
  path?: string;
  devices?: string[];
  multipath?: boolean;
  identity?: string;
  host?: number;
  hctl?: string;
  device?: string;
  wwid?: string;
  sizeBytes?: number;
}

export interface InventoryFixture {
  volumes: Record<'a' | 'b' | 'm' | 'big' | 'n', FixtureVolume>;
  /** inventory-attached.json only. */
  devices?: Record<'da' | 'db' | 'dm' | 'dbig' | 'dn' | 'disk', FixtureDevice>;
  snapshot: HostSnapshot;
  recording: HostFsRecording;
  /** What the tools printed at the same moment (the command lines are in the capture script). */
  tools: { iscsiadmSession: string; nvmeListSubsys: string; dmsetupTable: string; dmsetupStatus: string; multipathdPaths: string; multipathdMaps: string };
}

export type InventoryFixtureName = 'inventory-attached.json' | 'inventory-leftovers.json' | 'inventory-stacked.json';

/**
 * The kernels the guest fixtures were captured on, each in test/fixtures/guest-KERNEL/ (see
 * test/fixtures/README.md): Debian bookworm's 6.1.0-56 (open-iscsi 2.1.8, nvme-cli 2.3,
 * multipath-tools 0.9.4, udev 252) and trixie's 6.12.117 (open-iscsi 2.1.11 with its database
 * under /var/lib/iscsi, nvme-cli 2.13, multipath-tools 0.11.1, udev 257). The first is the default.
 */
export const FIXTURE_KERNELS = ['6.1.0-56', '6.12.117'] as const;
export type FixtureKernel = (typeof FIXTURE_KERNELS)[number];
export const DEFAULT_FIXTURE_KERNEL: FixtureKernel = FIXTURE_KERNELS[0];

/**
 * Where each captured guest's open-iscsi keeps its database (nodes/, send_targets/, ifaces/):
 * bookworm's 2.1.8 is built with /etc/iscsi, trixie's 2.1.11 with /var/lib/iscsi (iscsid.conf and
 * initiatorname.iscsi stay in /etc/iscsi on both).
 */
export const FIXTURE_ISCSI_DB: Record<FixtureKernel, string> = { '6.1.0-56': '/etc/iscsi', '6.12.117': '/var/lib/iscsi' };
/** The lab each inventory capture was taken in: the target names a volume's own target LAB.NAME. */
export const FIXTURE_LAB: Record<FixtureKernel, string> = { '6.1.0-56': 'dev', '6.12.117': 'fx' };

/** A file of the fixtures captured on `kernel`, as a file: URL. */
export function guestFixtureUrl(file: string, kernel: FixtureKernel = DEFAULT_FIXTURE_KERNEL): URL {
  return new URL(`../fixtures/guest-${kernel}/${file}`, import.meta.url);
}

/** A file of the fixtures captured on `kernel`, as a path. */
export function guestFixturePath(file: string, kernel: FixtureKernel = DEFAULT_FIXTURE_KERNEL): string {
  return fileURLToPath(guestFixtureUrl(file, kernel));
}

export function loadInventoryFixture(name: InventoryFixtureName, kernel: FixtureKernel = DEFAULT_FIXTURE_KERNEL): InventoryFixture {
  return JSON.parse(readFileSync(guestFixtureUrl(name, kernel), 'utf8')) as InventoryFixture;
}

/** A fixture volume's identity as the agent's /v1/inventory/orphans builds it: normalised connection_info plus the target's WWID. */
export function fixtureIdentity(fx: InventoryFixture, key: keyof InventoryFixture['volumes']): VolumeIdentity {
  const v = fx.volumes[key];
  return identityFromProperties(normalise(v.protocol, v.connectionInfo), v.iscsi?.wwid ?? null);
}

/** The snapshot rebuilt from the fixture's reads, with the dm tables `dmsetup table` printed. */
export function replaySnapshot(fx: InventoryFixture): HostSnapshot {
  return takeSnapshotSync(replayHostFs(fx.recording), { dmTables: parseDmsetup(fx.tools.dmsetupTable) });
}

/** The tools' view of the fixture, parsed as the agent parses it (readToolViews). */
export function fixtureTools(fx: InventoryFixture): ToolViews {
  return {
    multipathPaths: parseMultipathdPaths(fx.tools.multipathdPaths),
    multipathMaps: parseMultipathdMaps(fx.tools.multipathdMaps),
    dmStatus: parseDmsetup(fx.tools.dmsetupStatus),
  };
}

/** "address:port" of a volume's i-th portal, as iSCSI and the snapshot write it. */
export function portalOf(v: FixtureVolume, i: number): string {
  const p = v.portals[i];
  if (!p) throw new Error(`volume ${v.name} has no portal ${i}`);
  return `${p.address}:${p.port}`;
}

/** The block device a connect result names: "/dev/sda" -> "sda". */
export function blockOf(pathOrDevice: FixtureDevice | string | undefined): string {
  const path = typeof pathOrDevice === 'string' ? pathOrDevice : pathOrDevice?.path;
  if (!path?.startsWith('/dev/')) throw new Error(`not a /dev path: ${String(path)}`);
  return path.slice('/dev/'.length);
}

/** The H:C:T:L of the SCSI device whose disk is `block`, in a snapshot. */
export function hctlOf(s: HostSnapshot, block: string): string {
  const d = s.scsiDevices.find((x) => x.block === block);
  if (!d) throw new Error(`no SCSI device with block device ${block}`);
  return d.hctl;
}

/** The session number iscsiadm printed for a target at a portal when the fixture was captured. */
export function iscsiadmSid(fx: InventoryFixture, iqn: string, portal: string): number {
  const s = parseIscsiadmSessions(fx.tools.iscsiadmSession).filter((x) => x.iqn === iqn && x.portal === portal);
  if (s.length !== 1) throw new Error(`iscsiadm printed ${s.length} sessions for ${iqn} at ${portal}`);
  return s[0]!.sid;
}

/** The controllers nvme-cli printed for a subsystem, by name, with the address split up. */
export function nvmeCliControllers(fx: InventoryFixture, nqn: string): Array<{ name: string; traddr: string; trsvcid: string; state: string }> {
  return parseNvmeListSubsys(fx.tools.nvmeListSubsys)
    .filter((c) => c.nqn === nqn)
    .map((c) => {
      const m = /^traddr=([^,]+),trsvcid=([^,]+)/.exec(c.address);
      if (!m) throw new Error(`nvme-cli address without traddr and trsvcid: ${c.address}`);
      return { name: c.name, traddr: m[1]!, trsvcid: m[2]!, state: c.state };
    })
    .sort((x, y) => x.name.localeCompare(y.name));
}

/**
 * The /dev/disk/by-id names udev gives an LIO LUN on each captured guest. Bookworm's (udev 252,
 * sg3-utils 1.46): the T10 vendor id and the unit serial ("1" and "S" forms) besides the NAA WWID
 * ("3" and wwn- forms). Trixie's (udev 257, sg3-utils 1.48) makes the NAA ones only: the captures
 * show no scsi-1... or scsi-S... link for any LIO LUN.
 */
export function lioByIdLinks(v: FixtureVolume, kernel: FixtureKernel = DEFAULT_FIXTURE_KERNEL): string[] {
  const { unitSerial, wwid } = v.iscsi!;
  const naa = [`scsi-${wwid}`, `wwn-0x${wwid.slice(1)}`];
  if (kernel === '6.12.117') return naa.sort();
  return [...naa, `scsi-1LIO-ORG_FILEIO:${unitSerial}`, `scsi-SLIO-ORG_FILEIO_${unitSerial}`].sort();
}

/** A 32-hex-digit NGUID in the dashed 8-4-4-4-12 form sysfs shows it in. */
export function dashedNguid(hex: string): string {
  const m = /^([0-9a-f]{8})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{12})$/.exec(hex);
  if (!m) throw new Error(`not a 32-digit NGUID: ${hex}`);
  return m.slice(1).join('-');
}

/**
 * The one recorded path that reads attribute `attr` of the SCSI device `hctl` (in the device's
 * own directory under /sys/devices, wherever that is).
 */
export function recordedAttribute(reads: Record<string, unknown>, hctl: string, attr: string): string {
  const keys = Object.keys(reads).filter((k) => k.endsWith(`/${hctl}/${attr}`));
  if (keys.length !== 1) throw new Error(`${keys.length} recorded reads of ${attr} of ${hctl}: ${keys.join(', ')}`);
  return keys[0]!;
}
