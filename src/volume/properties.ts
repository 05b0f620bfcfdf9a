/**
 * A volume's connection properties in one typed shape per protocol: what a connector needs to
 * find and attach it. osbrick/ turns os-brick's connection_info into these and back.
 */

export interface IscsiTargetPath {
  /** "ip:port" or "hostname:port"; IPv6 as "[addr]:port". The port is always written out. */
  portal: string;
  iqn: string;
  lun: number;
}

export interface ChapCredentials {
  method: 'CHAP';
  username: string;
  password: string;
}

export interface IscsiProperties {
  protocol: 'iscsi';
  volumeId: string | null;
  /** One per distinct (portal, iqn, lun), in the payload's order. */
  paths: IscsiTargetPath[];
  auth: ChapCredentials | null;
  discoveryAuth: ChapCredentials | null;
  /** From `device_wwid`, a key of ours: os-brick's shape has no WWID. */
  deviceWwid: string | null;
}

export interface NvmePortal {
  address: string;
  port: number;
  transport: 'tcp';
}

export interface NvmeProperties {
  protocol: 'nvmeof';
  nqn: string;
  portals: NvmePortal[];
  /** vol_uuid, lowercase with dashes (the form /sys/block/nvmeXnY/uuid shows). */
  uuid: string | null;
  /** volume_nguid as 32 lowercase hex digits (sysfs `nguid` shows it dashed like a UUID). */
  nguid: string | null;
  nsid: number | null;
  hostNqn: string | null;
}

/** One (target port, LUN) pair of a Fibre Channel volume: a path through each fabric that reaches that port. */
export interface FcTargetPath {
  /** The target port's WWPN: 16 lowercase hex digits. */
  wwpn: string;
  lun: number;
}

export interface FcProperties {
  protocol: 'fc';
  volumeId: string | null;
  /** One per distinct (WWPN, LUN), in the payload's order. */
  targets: FcTargetPath[];
  /** initiator_target_map: which target ports each of the host's ports is zoned to (lowercase WWPNs). */
  initiatorTargetMap: Record<string, string[]> | null;
  /** From `device_wwid`, a key of ours, as for iSCSI. */
  deviceWwid: string | null;
}

export interface LocalProperties {
  protocol: 'local';
  devicePath: string;
}

export type ConnectionProperties = IscsiProperties | NvmeProperties | FcProperties | LocalProperties;
