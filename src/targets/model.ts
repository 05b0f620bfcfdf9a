import type { ConnectionInfo } from '../osbrick/index.js';
import type { TargetProtocol } from '../volume/protocol.js';

/** What the target node's volume API takes and answers: requests per protocol, and the volume made. */
export type IscsiBackstore = 'fileio' | 'block' | 'ramdisk';
export type NvmeBacking = 'block';

export interface DataNetwork {
  name: string;
  address: string;
}

export interface IscsiVolumeRequest {
  name: string;
  sizeMiB: number;
  backstore?: IscsiBackstore;
  iqn?: string;
  lun?: number;
  initiators?: string[];
  demoMode?: boolean;
  chap?: { username: string; password: string };
  networks?: string[];
  unitSerial?: string;
}

export interface NvmeVolumeRequest {
  name: string;
  sizeMiB: number;
  nqn?: string;
  nsid?: number;
  hosts?: string[];
  allowAnyHost?: boolean;
  uuid?: string;
  nguid?: string;
  anaGroup?: number;
  networks?: string[];
}

export interface FcVolumeRequest {
  name: string;
  sizeMiB: number;
  backstore?: IscsiBackstore;
  lun?: number;
  /** Host port names (WWPNs) the LUN is mapped to; default: none until a host is given it (map). */
  initiators?: string[];
  networks?: string[];
  unitSerial?: string;
}

/** A host port the target knows of: its WWPN, and the fabric (data network) it is on when known. */
export interface FcInitiator {
  network: string | null;
  wwpn: string;
}

/** The target's FCoE port on one data network (one fabric). */
export interface FcTargetPort {
  network: string;
  wwpn: string;
}

export interface TargetVolume {
  name: string;
  protocol: TargetProtocol;
  id: string;
  sizeMiB: number;
  backing: { kind: IscsiBackstore | NvmeBacking; file?: string; device?: string };
  portals: Array<{ network: string; address: string; port: number }>;
  iscsi?: { iqn: string; lun: number; unitSerial: string; wwid: string; initiators: string[]; demoMode: boolean; chap: boolean };
  nvme?: { nqn: string; nsid: number; uuid: string; nguid: string; hosts: string[]; allowAnyHost: boolean; anaGroup: number };
  fc?: { wwpns: string[]; lun: number; unitSerial: string; wwid: string; initiators: string[] };
  connectionInfo: ConnectionInfo;
  createdAt: string;
}

export const ISCSI_PORT = 3260;
export const NVME_PORT = 4420;
