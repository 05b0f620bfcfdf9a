import { nguidHex } from './ids.js';
import type { ConnectionProperties, FcProperties, FcTargetPath, IscsiProperties, IscsiTargetPath, NvmeProperties } from './properties.js';
import type { Protocol } from './protocol.js';

/** What identifies a volume on a host: how the connectors find it and the oracle judges what is left. */
export interface IscsiIdentity {
  iqn: string;
  portals: string[];
  lun: number;
  wwid?: string | null;
}

export interface NvmeIdentity {
  nqn: string;
  portals?: string[];
  nsid?: number | null;
  uuid?: string | null;
  /** 32 lowercase hex digits (nguidHex), whatever form the properties gave. */
  nguid?: string | null;
}

export interface FcIdentity {
  /** The (target WWPN, LUN) pairs the volume is reached at. */
  targets: FcTargetPath[];
  wwid?: string | null;
}

export interface LocalIdentity {
  device?: string | null;
  wwid?: string | null;
}

export interface VolumeIdentity {
  protocol: Protocol;
  iscsi?: IscsiIdentity;
  nvme?: NvmeIdentity;
  fc?: FcIdentity;
  local?: LocalIdentity;
}

/** The SCSI WWID a volume is known by, when it has one (iSCSI, FC, a local disk). */
export function volumeWwid(v: VolumeIdentity): string | null {
  return v.iscsi?.wwid ?? v.fc?.wwid ?? v.local?.wwid ?? null;
}

/** One iSCSI path's identity: its target and LUN, over every portal the properties give that target. */
export function iscsiIdentity(p: IscsiProperties, path: IscsiTargetPath = p.paths[0]!, wwid?: string | null): IscsiIdentity {
  return { iqn: path.iqn, portals: p.paths.filter((x) => x.iqn === path.iqn).map((x) => x.portal), lun: path.lun, wwid: wwid ?? p.deviceWwid };
}

export function nvmeIdentity(p: NvmeProperties): NvmeIdentity {
  return { nqn: p.nqn, portals: p.portals.map((x) => `${x.address}:${x.port}`), nsid: p.nsid, uuid: p.uuid, nguid: nguidHex(p.nguid) };
}

export function fcIdentity(p: FcProperties, wwid?: string | null): FcIdentity {
  return { targets: p.targets.map((t) => ({ wwpn: t.wwpn, lun: t.lun })), wwid: wwid ?? p.deviceWwid };
}

/** What identifies the volume of these properties on a host; wwid, when known, is the SCSI WWID read at attach. */
export function identityFromProperties(p: ConnectionProperties, wwid?: string | null): VolumeIdentity {
  if (p.protocol === 'iscsi') return { protocol: 'iscsi', iscsi: iscsiIdentity(p, p.paths[0], wwid) };
  if (p.protocol === 'nvmeof') return { protocol: 'nvmeof', nvme: nvmeIdentity(p) };
  if (p.protocol === 'fc') return { protocol: 'fc', fc: fcIdentity(p, wwid) };
  return { protocol: 'local', local: { device: p.devicePath, wwid: wwid ?? null } };
}
