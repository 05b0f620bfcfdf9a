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
  /** The Fibre Channel remote port ("rport-2:0-1") when the device hangs under one (fc_remote_ports). */
  rport?: string | null;
  sysfs: string;
}

/** A Fibre Channel HBA port of this host (/sys/class/fc_host/hostN): an FCoE port in the lab. */
export interface FcHost {
  host: number;
  /** 16 lowercase hex digits, without 0x (as os-brick and Cinder write WWPNs). */
  portName: string | null;
  nodeName: string | null;
  /** "Online", "Linkdown", ... */
  portState: string | null;
  sysfs: string;
}

/** A port the host's FC port has logged in to (/sys/class/fc_remote_ports/rport-H:B-R). */
export interface FcRemotePort {
  name: string;
  host: number;
  portName: string | null;
  nodeName: string | null;
  /** "FCP Target", "FCP Initiator", "unknown"... as sysfs lists them. */
  roles: string | null;
  /** "Online", "Blocked", "Not Present"... */
  portState: string | null;
  /** The SCSI target id the transport gave it (-1: none, so no scan reaches it). */
  scsiTargetId: number | null;
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
  /** The record: a file, or a directory of one record file per iface (made by discovery). */
  path: string;
  /** node.startup: 'automatic' (and 'onboot') log in again when iscsid starts, at the next boot. */
  startup: string | null;
  /** iface.iscsi_ifacename of the record ('default' unless an iface was made for it). */
  iface: string | null;
}

/** A discovery record (sendtargets or iSNS) under /etc/iscsi/send_targets or /etc/iscsi/isns. */
export interface IscsiDiscoveryRecord {
  type: 'sendtargets' | 'isns';
  portal: string;
  /** The targets whose node records it made, as its links name them. */
  targets: string[];
  path: string;
}

/** An iface made with `iscsiadm -m iface -o new` (/etc/iscsi/ifaces/NAME). */
export interface IscsiIface {
  name: string;
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
  /** major:minor (/sys/block/X/dev): what a dm table or an md superblock names it by. */
  devt: string | null;
  /** To the KiB (from /proc/partitions) for disks listed there, exact from sysfs for the rest. */
  sizeBytes: number | null;
  /** What is stacked on the disk itself (dm, md); holders of its partitions are on the partitions. */
  holders: string[];
  slaves: string[];
  /**
   * Slaves whose link points at a device the kernel removed: the map or array still names it
   * (its table keeps the major:minor), so a reload would open whatever has that number then.
   */
  staleSlaves: string[];
  /** Partitions the kernel made on the disk (partx, or the partition table read at scan). */
  partitions: Partition[];
  dm: DmInfo | null;
  /** md arrays: their level and array_state. */
  md: { level: string | null; state: string | null } | null;
}

export interface Partition {
  name: string;
  devt: string | null;
  holders: string[];
}

export interface DmInfo {
  name: string | null;
  uuid: string | null;
  /** /sys/block/dm-N/dm/suspended: a suspended map queues every I/O sent to it. */
  suspended: boolean | null;
  /** Its table as `dmsetup table` prints it (one line per segment, without the name), when read. */
  table: string[] | null;
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

/** One line of `dmsetup table` or `dmsetup status`: "NAME: START LENGTH TARGET ARGS...". */
export interface DmLine {
  name: string;
  target: string;
  args: string;
  line: string;
}

export interface HostSnapshot {
  takenAt: string;
  /** What was read: see SnapshotOptions. Only a 'full' snapshot can show what is left over. */
  scope: 'full' | 'paths';
  scsiDevices: ScsiDevice[];
  iscsiSessions: IscsiSession[];
  iscsiNodes: IscsiNodeRecord[];
  iscsiDiscovery: IscsiDiscoveryRecord[];
  iscsiIfaces: IscsiIface[];
  nvmeControllers: NvmeController[];
  nvmeNamespaces: NvmeNamespace[];
  /** Fibre Channel HBA ports and the remote ports they see (absent in snapshots made before FC). */
  fcHosts?: FcHost[];
  fcRemotePorts?: FcRemotePort[];
  blockDevices: BlockDevice[];
  links: DevLink[];
  multipathMaps: MultipathMap[];
}
