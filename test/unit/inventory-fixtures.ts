import { readFileSync } from 'node:fs';
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

export function loadInventoryFixture(name: InventoryFixtureName): InventoryFixture {
  return JSON.parse(readFileSync(new URL(`../fixtures/guest-6.1.0-56/${name}`, import.meta.url), 'utf8')) as InventoryFixture;
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
 * The /dev/disk/by-id names udev (60-persistent-storage.rules, scsi_id) gives an LIO LUN: the
 * T10 vendor id and the unit serial ("1" and "S" forms), and the NAA WWID ("3" and wwn- forms).
 */
export function lioByIdLinks(v: FixtureVolume): string[] {
  const { unitSerial, wwid } = v.iscsi!;
  return [`scsi-1LIO-ORG_FILEIO:${unitSerial}`, `scsi-${wwid}`, `scsi-SLIO-ORG_FILEIO_${unitSerial}`, `wwn-0x${wwid.slice(1)}`].sort();
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
