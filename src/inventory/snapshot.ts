import { realHostFs, type HostFs } from '../system/hostfs.js';
import { blockDevices, blockIndex, links, stacking } from './read-block.js';
import { nvme } from './read-nvme.js';
import { iscsiNodes, iscsiSessions, scsiDevices } from './read-scsi.js';

/**
 * A snapshot of everything storage-related a host holds, read from the kernel's own files: SCSI
 * devices, block devices and holders, /dev/disk links, iSCSI sessions and node records, NVMe
 * controllers and namespaces, dm-multipath maps. It reads sysfs, not udev's links alone: a device
 * udev made no link for is still found (and a link with no device is found as dangling).
 */
export interface ScsiDevice {
  hctl: string;
  host: number;
  lun: number;
  vendor: string | null;
  model: string | null;
  state: string | null;
  /** As udev's scsi_id prints it ("3" + NAA hex for naa. designators). */
  wwid: string | null;
  block: string | null;
  holders: string[];
  /** iSCSI session number when the device hangs under one. */
  session: number | null;
  sysfs: string;
}

export interface IscsiSession {
  sid: number;
  targetIqn: string | null;
  portal: string | null;
  state: string | null;
  host: number | null;
  sysfs: string;
}

export interface IscsiNodeRecord {
  iqn: string;
  portal: string;
  tpgt: string;
  path: string;
}

export interface NvmeController {
  name: string;
  subsysNqn: string | null;
  transport: string | null;
  traddr: string | null;
  trsvcid: string | null;
  state: string | null;
  sysfs: string;
}

export interface NvmeNamespace {
  /** The head device (nvme0n1) users open. */
  name: string;
  nsid: number | null;
  uuid: string | null;
  /** 32 lowercase hex digits. */
  nguid: string | null;
  wwid: string | null;
  subsysNqn: string | null;
  /** Per-controller path devices (nvme0c1n1) under native multipath. */
  paths: string[];
  holders: string[];
  sysfs: string;
}

export interface BlockDevice {
  name: string;
  /** To the KiB (from /proc/partitions) for disks listed there, exact from sysfs for the rest. */
  sizeBytes: number | null;
  holders: string[];
  slaves: string[];
  dm: { name: string | null; uuid: string | null } | null;
}

export interface DevLink {
  dir: 'by-path' | 'by-id';
  name: string;
  /** Kernel name the link resolves to (sda, nvme0n1, dm-0), or null when it points nowhere. */
  target: string | null;
  dangling: boolean;
}

export interface MultipathMap {
  dm: string;
  name: string | null;
  wwid: string | null;
  slaves: string[];
}

export interface HostSnapshot {
  takenAt: string;
  /** What was read: see SnapshotOptions. Only a 'full' snapshot can show what is left over. */
  scope: 'full' | 'paths';
  scsiDevices: ScsiDevice[];
  iscsiSessions: IscsiSession[];
  iscsiNodes: IscsiNodeRecord[];
  nvmeControllers: NvmeController[];
  nvmeNamespaces: NvmeNamespace[];
  blockDevices: BlockDevice[];
  links: DevLink[];
  multipathMaps: MultipathMap[];
}

export interface SnapshotOptions {
  /**
   * 'full' (the default) reads everything. 'paths' reads what locating volumes needs (sessions,
   * devices with their WWIDs, by-path links, maps, NVMe namespaces) and leaves out vendor, model,
   * device state, sizes, by-id links and node records: never give it to the orphan check.
   */
  scope?: 'full' | 'paths';
}

export async function takeSnapshot(fs: HostFs = realHostFs, opts: SnapshotOptions = {}): Promise<HostSnapshot> {
  return takeSnapshotSync(fs, opts);
}

/** The same, for callers that want no await per snapshot. */
export function takeSnapshotSync(fs: HostFs = realHostFs, opts: SnapshotOptions = {}): HostSnapshot {
  const full = (opts.scope ?? 'full') === 'full';
  const blocks = blockIndex(fs);
  const stack = stacking(fs, blocks);
  const scsi = scsiDevices(fs, blocks, stack.holders, full);
  const sessions = iscsiSessions(fs);
  const nodes = full ? iscsiNodes(fs) : [];
  const nv = nvme(fs, blocks, stack.holders);
  const blockList = blockDevices(fs, blocks, stack, full);
  const devLinks = links(fs, blocks, full ? ['by-path', 'by-id'] : ['by-path']);
  const multipathMaps = blockList
    .filter((b) => b.dm?.uuid?.startsWith('mpath-'))
    .map((b) => ({ dm: b.name, name: b.dm!.name, wwid: b.dm!.uuid!.slice('mpath-'.length), slaves: b.slaves }));
  return {
    takenAt: new Date().toISOString(),
    scope: full ? 'full' : 'paths',
    scsiDevices: scsi,
    iscsiSessions: sessions,
    iscsiNodes: nodes,
    nvmeControllers: nv.controllers,
    nvmeNamespaces: nv.namespaces,
    blockDevices: blockList,
    links: devLinks,
    multipathMaps,
  };
}
