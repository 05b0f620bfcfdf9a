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
