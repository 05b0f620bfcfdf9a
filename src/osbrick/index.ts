import { describe, refuse } from '../volume/fields.js';
import type { ConnectionProperties, FcProperties, IscsiProperties, NvmeProperties } from '../volume/properties.js';
import type { Protocol } from '../volume/protocol.js';
import * as fc from './fc.js';
import * as iscsi from './iscsi.js';
import * as local from './local.js';
import * as nvmeof from './nvmeof.js';
import { asPayload, given, type EncodeOptions } from './payload.js';

/**
 * os-brick's connection properties (Cinder's connection_info) and brick-lab's typed properties,
 * one codec per protocol, each way. Decoding checks every field and refuses with a message that
 * names the key; encoding writes the dict a real os-brick connector reads, and decoding it gives
 * the same properties back.
 */

export type { IscsiConnectionData } from './iscsi.js';
export type { NvmeofConnectionData } from './nvmeof.js';
export type { LocalConnectionData } from './local.js';
export type { FcConnectionData } from './fc.js';
export type { AttachmentKeys, EncodeOptions } from './payload.js';

/** Type aliases rather than interfaces (here and in the codecs), so that they fit Record<string, unknown>. */
export type ConnectionInfo =
  | { driver_volume_type: 'iscsi'; data: iscsi.IscsiConnectionData }
  | { driver_volume_type: 'nvmeof'; data: nvmeof.NvmeofConnectionData }
  | { driver_volume_type: 'fibre_channel'; data: fc.FcConnectionData }
  | { driver_volume_type: 'local'; data: local.LocalConnectionData };

/**
 * Cinder's driver_volume_type per protocol: the name os-brick's connector factory is asked for
 * (it upper-cases it). Only Fibre Channel's differs from brick-lab's protocol name.
 */
export const DRIVER_VOLUME_TYPE = { iscsi: 'iscsi', nvmeof: 'nvmeof', fc: 'fibre_channel', local: 'local' } as const satisfies Record<Protocol, string>;
export type DriverVolumeType = (typeof DRIVER_VOLUME_TYPE)[Protocol];

/** The protocol of a driver_volume_type (any case, as os-brick's factory takes it), or null. */
export function protocolOfDriverType(type: string): Protocol | null {
  const t = type.toLowerCase();
  for (const [p, d] of Object.entries(DRIVER_VOLUME_TYPE)) if (d === t) return p as Protocol;
  return null;
}

export type ConnectionInfoFor<P extends Protocol> = Extract<ConnectionInfo, { driver_volume_type: (typeof DRIVER_VOLUME_TYPE)[P] }>;
type ProtocolOf<T extends ConnectionProperties> = T['protocol'];

// ---------------------------------------------------------------------------------------------
// Decode

const DECODERS = {
  iscsi: iscsi.decode,
  nvmeof: nvmeof.decode,
  fc: fc.decode,
  local: local.decode,
} as const satisfies Record<Protocol, (data: unknown) => ConnectionProperties>;

/** Accepts either connection_info {driver_volume_type, data} or bare data plus a protocol name. */
export function normalise(protocol: Protocol, payload: unknown): ConnectionProperties {
  if (typeof protocol !== 'string' || !Object.hasOwn(DECODERS, protocol)) {
    refuse('protocol', `must be one of ${Object.keys(DECODERS).join(', ')} (got ${describe(protocol)})`);
  }
  const p = asPayload(payload, 'connection_info', 'connection_info {driver_volume_type, data} or its data');
  let data: unknown = p;
  if (Object.hasOwn(p, 'driver_volume_type')) {
    const type = p.driver_volume_type;
    // os-brick's connector factory upper-cases the name, so "iSCSI" and "NVMEOF" count.
    if (typeof type !== 'string' || type.toLowerCase() !== DRIVER_VOLUME_TYPE[protocol]) {
      refuse('driver_volume_type', `is ${describe(type)}, but these properties were sent to the ${protocol} connector (which takes "${DRIVER_VOLUME_TYPE[protocol]}")`, 'WRONG_VOLUME_TYPE');
    }
    if (!given(p, 'data')) refuse('data', 'missing: connection_info carries the properties in data');
    data = p.data;
  } else if (Object.hasOwn(p, 'data')) {
    refuse('driver_volume_type', 'missing: send connection_info as {driver_volume_type, data}, or send the data alone');
  }
  return DECODERS[protocol](data);
}

// ---------------------------------------------------------------------------------------------
// Encode: the one encoder, for the target API and for external connector programs alike

/** The os-brick data dict for typed properties (what a connector's connect_volume is given). */
export function osBrickData<T extends ConnectionProperties>(p: T, opts: EncodeOptions = {}): ConnectionInfoFor<ProtocolOf<T>>['data'] {
  return toConnectionInfo(p, opts).data as ConnectionInfoFor<ProtocolOf<T>>['data'];
}

/** connection_info {driver_volume_type, data} for typed properties. */
export function toConnectionInfo<T extends ConnectionProperties>(p: T, opts: EncodeOptions = {}): ConnectionInfoFor<ProtocolOf<T>> {
  const info: ConnectionInfo = encodeAny(p, opts);
  return info as ConnectionInfoFor<ProtocolOf<T>>;
}

function encodeAny(p: ConnectionProperties, opts: EncodeOptions): ConnectionInfo {
  switch (p.protocol) {
    case 'iscsi':
      return { driver_volume_type: 'iscsi', data: iscsi.encode(p, opts) };
    case 'nvmeof':
      return { driver_volume_type: 'nvmeof', data: nvmeof.encode(p, opts) };
    case 'fc':
      return { driver_volume_type: 'fibre_channel', data: fc.encode(p, opts) };
    case 'local':
      return { driver_volume_type: 'local', data: local.encode(p, opts) };
  }
}

// ---------------------------------------------------------------------------------------------
// The target API's volumes: typed properties from what the target made, then the one encoder

/**
 * How the target API hands out its volumes, as Cinder's attach does: the iSCSI lists even for
 * one portal (Cinder adds them when the connector wants multipath), no discovery, and the
 * manager's attachment keys (read-write, not encrypted, discard passed down).
 */
export const TARGET_ENCODING: Readonly<EncodeOptions> = Object.freeze({
  multipath: true,
  targetDiscovered: false,
  attachment: Object.freeze({ access_mode: 'rw', encrypted: false, discard: true } as const),
});

export interface IscsiVolumeFacts {
  id: string;
  iqn: string;
  lun: number;
  /** "address:port", in the order the target listens on them. */
  portals: string[];
  chap?: { username: string; password: string } | undefined;
}

export interface NvmeofVolumeFacts {
  nqn: string;
  nsid: number;
  uuid: string;
  nguid: string;
  portals: Array<{ address: string; port: number }>;
  hostNqn?: string | undefined;
}

/** The facts are the target's own (already checked when the volume was made): taken as they are. */
export function iscsiVolumeProperties(v: IscsiVolumeFacts): IscsiProperties {
  return {
    protocol: 'iscsi',
    volumeId: v.id,
    paths: v.portals.map((portal) => ({ portal, iqn: v.iqn, lun: v.lun })),
    auth: v.chap ? { method: 'CHAP', username: v.chap.username, password: v.chap.password } : null,
    discoveryAuth: null,
    deviceWwid: null,
  };
}

export function nvmeofVolumeProperties(v: NvmeofVolumeFacts): NvmeProperties {
  return {
    protocol: 'nvmeof',
    nqn: v.nqn,
    portals: v.portals.map((p) => ({ address: p.address, port: p.port, transport: 'tcp' })),
    uuid: v.uuid,
    nguid: v.nguid,
    nsid: v.nsid,
    hostNqn: v.hostNqn ? v.hostNqn : null,
  };
}

export interface FcVolumeFacts {
  id: string;
  /** The target's port names, one per fabric, in the order of its data networks. */
  wwpns: string[];
  lun: number;
  /** Host port -> the target ports it is zoned to (Cinder's FC zone manager's map), when known. */
  initiatorTargetMap?: Record<string, string[]> | undefined;
}

export function fcVolumeProperties(v: FcVolumeFacts): FcProperties {
  return { protocol: 'fc', volumeId: v.id, targets: v.wwpns.map((wwpn) => ({ wwpn, lun: v.lun })), initiatorTargetMap: v.initiatorTargetMap ?? null, deviceWwid: null };
}

export function fcConnectionInfo(v: FcVolumeFacts, opts: EncodeOptions = TARGET_ENCODING): ConnectionInfoFor<'fc'> {
  return toConnectionInfo(fcVolumeProperties(v), opts);
}

export function iscsiConnectionInfo(v: IscsiVolumeFacts, opts: EncodeOptions = TARGET_ENCODING): ConnectionInfoFor<'iscsi'> {
  return toConnectionInfo(iscsiVolumeProperties(v), opts);
}

export function nvmeofConnectionInfo(v: NvmeofVolumeFacts, opts: EncodeOptions = TARGET_ENCODING): ConnectionInfoFor<'nvmeof'> {
  return toConnectionInfo(nvmeofVolumeProperties(v), opts);
}
