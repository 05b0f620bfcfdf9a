import { isIPv6 } from 'node:net';
import { nguidHex, uuidDashed } from '../volume/ids.js';
import { checkHostName, checkNqn, checkPort, describe, refuse } from '../volume/fields.js';
import type { NvmeProperties } from '../volume/properties.js';
import { asPayload, attachmentKeys, given, need, type AttachmentKeys, type EncodeOptions, type Payload } from './payload.js';

/**
 * The NVMe-oF codec: os-brick's NVMe-oF connection properties (driver_volume_type "nvmeof") to
 * NvmeProperties and back. Pure: nothing here touches the host.
 *
 * ns_id is written as a decimal string. What the real sources do (read at os-brick 46ca08f and
 * Cinder ab09bc3, their master branches):
 *  - os-brick (os_brick/initiator/connectors/nvmeof.py) annotates ns_id as an optional str in its
 *    Target class and, when the payload has neither a UUID nor an NGUID, finds the namespace by
 *    comparing ns_id with == to the text of sysfs's `nsid` attribute (read and stripped, so a
 *    str). A number never equals that text: with only an ns_id, a number finds no device.
 *  - Cinder's generic NVMe-oF target (cinder/volume/targets/nvmeof.py) without shared targets
 *    builds the payload from the volume's provider_location, a space-separated string, so ns_id
 *    arrives as a str; with shared targets (cinder/volume/targets/nvmet.py) it passes the
 *    namespace id nvmet handed back, an int. Both forms are therefore seen in the wild, and
 *    decode() keeps taking both; encode() writes the one os-brick can match on.
 */

/** The NVMe-oF data dict (the current format, with target_nqn and portals). */
export type NvmeofConnectionData = Partial<AttachmentKeys> & {
  target_nqn: string;
  portals: Array<[string, number, 'tcp']>;
  vol_uuid?: string;
  volume_nguid?: string;
  /** A decimal string: see above. */
  ns_id?: string;
  host_nqn?: string;
};

// ---------------------------------------------------------------------------------------------
// Decode

export function decode(data: unknown): NvmeProperties {
  const d = asPayload(data, 'data', 'NVMe-oF connection properties (target_nqn, portals, ...)');
  if (given(d, 'volume_replicas')) {
    refuse('volume_replicas', 'replicated NVMe-oF volumes (an md RAID across several targets) are not supported by this lab: send one target');
  }

  let nqn: string;
  let portals: NvmeProperties['portals'];
  let uuid: string | null;
  // os-brick tells the formats apart by target_nqn.
  if (given(d, 'target_nqn')) {
    nqn = checkNqn(d.target_nqn, 'target_nqn');
    portals = nvmePortals(d);
    uuid = given(d, 'vol_uuid') ? checkUuidAnyForm(d.vol_uuid, 'vol_uuid') : null;
  } else {
    if (!given(d, 'nqn')) refuse('target_nqn', 'missing: name the subsystem in target_nqn (current format) or nqn (older format)');
    nqn = checkNqn(d.nqn, 'nqn');
    const address = checkNvmeAddress(need(d, 'target_portal', "the target's address (older format; the port goes in target_port)"), 'target_portal');
    const port = checkPort(need(d, 'target_port', "the target's port (older format)"), 'target_port', true);
    checkTransport(need(d, 'transport_type', '"tcp" (older format)'), 'transport_type');
    portals = [{ address, port, transport: 'tcp' }];
    // os-brick sets vol_uuid to None when it converts the older format.
    uuid = null;
  }

  return {
    protocol: 'nvmeof',
    nqn,
    portals,
    uuid,
    nguid: given(d, 'volume_nguid') ? checkNguid(d.volume_nguid, 'volume_nguid') : null,
    nsid: given(d, 'ns_id') ? checkNsid(d.ns_id, 'ns_id') : null,
    hostNqn: given(d, 'host_nqn') ? checkNqn(d.host_nqn, 'host_nqn') : null,
  };
}

function nvmePortals(d: Payload): NvmeProperties['portals'] {
  const list = need(d, 'portals', 'a list of [address, port, transport] triples');
  if (!Array.isArray(list) || list.length === 0) refuse('portals', `must be a non-empty list of [address, port, transport] triples (got ${describe(list)}${Array.isArray(list) ? ', empty' : ''})`);
  const out: NvmeProperties['portals'] = [];
  list.forEach((entry, i) => {
    const field = `portals[${i}]`;
    if (!Array.isArray(entry) || entry.length !== 3) refuse(field, `must be [address, port, transport], e.g. ["10.0.1.1", 4420, "tcp"] (got ${describe(entry)}${Array.isArray(entry) ? ` of ${entry.length}` : ''})`);
    const address = checkNvmeAddress(entry[0], `${field}[0]`);
    const port = checkPort(entry[1], `${field}[1]`, true);
    checkTransport(entry[2], `${field}[2]`);
    if (!out.some((p) => p.address === address && p.port === port)) out.push({ address, port, transport: 'tcp' });
  });
  return out;
}

/** nvme-cli takes the address bare (`nvme connect -a fe80::1`): brackets would fail there. */
function checkNvmeAddress(v: unknown, field: string): string {
  if (typeof v !== 'string' || v === '') refuse(field, `must be an address: IPv4, IPv6 or a host name (got ${describe(v)})`, 'BAD_PORTAL');
  if (v.startsWith('[')) refuse(field, `${JSON.stringify(v)}: write IPv6 addresses without brackets here; the port has its own field`, 'BAD_PORTAL');
  if (v.includes(':')) {
    if (!isIPv6(v)) refuse(field, `${JSON.stringify(v)} is neither an IPv6 address nor a host: the port has its own field`, 'BAD_PORTAL');
    return v;
  }
  checkHostName(v, field, v);
  return v;
}

/**
 * os-brick maps "RoCEv2"/"rdma" to RDMA and anything else to TCP; the lab's guests only have
 * NVMe/TCP, so only "tcp" (any case) is taken and the rest is refused rather than guessed.
 */
function checkTransport(v: unknown, field: string): void {
  if (typeof v === 'string' && v.toLowerCase() === 'tcp') return;
  refuse(field, `transport ${describe(v)} is not supported: this lab speaks NVMe/TCP only ("tcp"); RDMA (rdma, RoCEv2) and FC are not available`, 'UNSUPPORTED_TRANSPORT');
}

/** os-brick accepts UUIDs with or without dashes, in any case (Python's uuid.UUID). */
function checkUuidAnyForm(v: unknown, field: string): string {
  return uuidDashed(typeof v === 'string' ? v : null) ?? refuse(field, `must be a UUID, with or without dashes (got ${describe(v)})`);
}

function checkNguid(v: unknown, field: string): string {
  return nguidHex(typeof v === 'string' && !v.includes(':') ? v : null) ?? refuse(field, `must be an NGUID: 32 hex digits, dashes allowed (got ${describe(v)})`);
}

/** NSIDs run from 1 to 0xfffffffe (0 and 0xffffffff are reserved); os-brick sends a string or a number. */
function checkNsid(v: unknown, field: string): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^[0-9]{1,10}$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 0xfffffffe) {
    refuse(field, `must be a namespace id from 1 to 4294967294, as a number or a decimal string (got ${describe(v)})`);
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Encode

/**
 * Always the current format (target_nqn + portals), which os-brick reads since it unified the
 * two; the identifiers are written only when known: vol_uuid lowercase with dashes, volume_nguid
 * as 32 hex digits, ns_id as a decimal string.
 */
export function encode(p: NvmeProperties, opts: EncodeOptions = {}): NvmeofConnectionData {
  const out: NvmeofConnectionData = { target_nqn: p.nqn, portals: p.portals.map((x) => [x.address, x.port, x.transport]) };
  if (p.uuid !== null) out.vol_uuid = p.uuid;
  if (p.nguid !== null) out.volume_nguid = p.nguid;
  if (p.nsid !== null) out.ns_id = String(p.nsid);
  if (p.hostNqn !== null) out.host_nqn = p.hostNqn;
  return { ...out, ...attachmentKeys(opts) };
}
