import { isIPv6 } from 'node:net';
import { nguidHex, uuidDashed } from '../volume/ids.js';
import { checkHostName, checkIqn, checkLun, checkNqn, checkPort, CONTROL, describe, formatPortal, parsePortal, refuse } from '../volume/fields.js';
import type { ChapCredentials, ConnectionProperties, IscsiProperties, IscsiTargetPath, LocalProperties, NvmeProperties } from '../volume/properties.js';
import type { Protocol } from '../volume/protocol.js';

export type { ChapCredentials, ConnectionProperties, IscsiProperties, IscsiTargetPath, LocalProperties, NvmeProperties } from '../volume/properties.js';

/**
 * Connection properties as os-brick reads them (Cinder's connection_info['data']), checked and
 * turned into one shape per protocol. Pure: nothing here touches the host.
 *
 * Every refusal is a 400 BrickError whose message starts with the key it is about, named as it
 * appears in the payload's data (`target_iqns[1]`, `portals[0][2]`).
 */

type Payload = Record<string, unknown>;

function isPayload(v: unknown): v is Payload {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function asPayload(v: unknown, field: string, what: string): Payload {
  if (!isPayload(v)) refuse(field, `must be an object holding ${what} (got ${describe(v)})`);
  return v;
}

/** Own keys only (no `constructor` from the prototype); null counts as absent, as in os-brick's `.get()`. */
function get(d: Payload, key: string): unknown {
  return Object.hasOwn(d, key) ? d[key] : undefined;
}

function given(d: Payload, key: string): boolean {
  const v = get(d, key);
  return v !== undefined && v !== null;
}

function need(d: Payload, key: string, what: string): unknown {
  if (!given(d, key)) refuse(key, `missing: ${what}`);
  return d[key];
}


// ---------------------------------------------------------------------------------------------
// iSCSI

export function normaliseIscsi(data: unknown): IscsiProperties {
  const d = asPayload(data, 'data', 'iSCSI connection properties (target_portal, target_iqn, target_lun, ...)');
  return {
    protocol: 'iscsi',
    volumeId: optionalVolumeId(d),
    paths: iscsiPaths(d),
    auth: chap(d, 'auth_'),
    discoveryAuth: chap(d, 'discovery_auth_'),
    deviceWwid: optionalWwid(d),
  };
}

/**
 * os-brick's rule: the plural keys win when both target_portals and target_iqns are there, with
 * target_luns or else target_lun for every portal; otherwise the singular keys.
 */
function iscsiPaths(d: Payload): IscsiTargetPath[] {
  const triples: Array<[string, string, number]> = [];
  if (given(d, 'target_portals') && given(d, 'target_iqns')) {
    const portals = nonEmptyList(d, 'target_portals');
    const iqns = nonEmptyList(d, 'target_iqns');
    sameLength('target_iqns', iqns, 'target_portals', portals);
    let luns: number[];
    const rawLuns = get(d, 'target_luns');
    // os-brick: `target_luns or [target_lun] * n`, so an empty list falls back too.
    if (Array.isArray(rawLuns) && rawLuns.length > 0) {
      sameLength('target_luns', rawLuns, 'target_portals', portals);
      luns = rawLuns.map((l, i) => checkLun(l, `target_luns[${i}]`));
    } else if (rawLuns !== undefined && rawLuns !== null && !Array.isArray(rawLuns)) {
      refuse('target_luns', `must be a list of LUNs, one per portal (got ${describe(rawLuns)})`, 'BAD_LUN');
    } else if (given(d, 'target_lun')) {
      const lun = checkLun(d.target_lun, 'target_lun');
      luns = portals.map(() => lun);
    } else {
      refuse('target_luns', 'missing: with target_portals and target_iqns give target_luns (one per portal) or target_lun (used for every portal)');
    }
    portals.forEach((p, i) => {
      triples.push([formatPortal(parsePortal(p, `target_portals[${i}]`)), checkIqn(iqns[i], `target_iqns[${i}]`), luns[i]!]);
    });
  } else {
    const alone = given(d, 'target_portals') ? ' (target_portals is only used together with target_iqns)' : given(d, 'target_iqns') ? ' (target_iqns is only used together with target_portals)' : '';
    const portal = parsePortal(need(d, 'target_portal', `the target's portal "host:port"${alone}`), 'target_portal');
    const iqn = checkIqn(need(d, 'target_iqn', `the target's IQN${alone}`), 'target_iqn');
    // os-brick would take LUN 0 here; a missing LUN is refused instead, as LIO answers for an
    // unmapped LUN 0 and a guessed 0 would find a device that is not the volume.
    const lun = checkLun(need(d, 'target_lun', 'the LUN number of the volume'), 'target_lun');
    triples.push([formatPortal(portal), iqn, lun]);
  }

  const seen = new Set<string>();
  const paths: IscsiTargetPath[] = [];
  for (const [portal, iqn, lun] of triples) {
    const key = `${portal} ${iqn} ${lun}`;
    if (seen.has(key)) continue;
    seen.add(key);
    paths.push({ portal, iqn, lun });
  }
  return paths;
}

function nonEmptyList(d: Payload, key: string): unknown[] {
  const v = get(d, key);
  if (!Array.isArray(v) || v.length === 0) refuse(key, `must be a non-empty list (got ${describe(v)}${Array.isArray(v) ? ', empty' : ''})`);
  return v;
}

function sameLength(key: string, list: unknown[], otherKey: string, other: unknown[]): void {
  if (list.length !== other.length) {
    refuse(key, `has ${list.length} entries but ${otherKey} has ${other.length}: the lists pair up entry by entry and must be the same length`);
  }
}

function chap(d: Payload, prefix: 'auth_' | 'discovery_auth_'): ChapCredentials | null {
  const methodKey = `${prefix}method`;
  const method = get(d, methodKey);
  // As os-brick: no (or an empty) method means no CHAP, whatever the username and password say.
  if (method === undefined || method === null || method === '') return null;
  if (method !== 'CHAP') refuse(methodKey, `must be "CHAP" or absent (got ${describe(method)})`);
  return { method: 'CHAP', username: credential(d, `${prefix}username`), password: credential(d, `${prefix}password`) };
}

/** The value is never echoed: it may be a password. */
function credential(d: Payload, key: string): string {
  const v = need(d, key, `${key.replace(/(username|password)$/, 'method')} is "CHAP", so ${key} must be given`);
  if (typeof v !== 'string' || v === '') refuse(key, `must be a non-empty string (got ${typeof v === 'string' ? 'an empty string' : typeof v})`);
  // iscsiadm stores node records as "key = value" lines: a newline would write other keys.
  if (CONTROL.test(v)) refuse(key, 'must not contain control characters such as newlines');
  return v;
}

function optionalVolumeId(d: Payload): string | null {
  if (!given(d, 'volume_id')) return null;
  const v = d.volume_id;
  if (typeof v !== 'string' || v === '' || v.length > 255 || CONTROL.test(v)) {
    refuse('volume_id', `must be a non-empty string of at most 255 printable characters (got ${describe(v)})`);
  }
  return v;
}

function optionalWwid(d: Payload): string | null {
  if (!given(d, 'device_wwid')) return null;
  const v = d.device_wwid;
  if (typeof v !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9.:_-]{0,255}$/.test(v)) {
    refuse('device_wwid', `must be a SCSI WWID such as "36001405..." or "naa.6001405..." (got ${describe(v)})`);
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// NVMe-oF

export function normaliseNvme(data: unknown): NvmeProperties {
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
// Local

export function normaliseLocal(data: unknown): LocalProperties {
  const d = asPayload(data, 'data', 'local connection properties (device_path)');
  const p = need(d, 'device_path', 'the absolute path of the block device, under /dev');
  if (typeof p !== 'string' || p === '') refuse('device_path', `must be an absolute path under /dev (got ${describe(p)})`);
  if (!p.startsWith('/')) refuse('device_path', `${JSON.stringify(p)} is relative: give an absolute path under /dev`);
  if (CONTROL.test(p)) refuse('device_path', `${JSON.stringify(p)} contains control characters`);
  const segments = p.split('/').slice(1);
  if (segments.includes('..')) refuse('device_path', `${JSON.stringify(p)} contains a '..' segment: give the path itself, under /dev`);
  if (segments[0] !== 'dev' || segments.length < 2) refuse('device_path', `${JSON.stringify(p)} is not under /dev`);
  if (segments.some((s) => s === '' || s === '.')) refuse('device_path', `${JSON.stringify(p)} is not a plain path: no empty or '.' segments, no trailing '/'`);
  return { protocol: 'local', devicePath: p };
}

// ---------------------------------------------------------------------------------------------
// Either shape

const NORMALISERS = {
  iscsi: normaliseIscsi,
  nvmeof: normaliseNvme,
  local: normaliseLocal,
} as const satisfies Record<string, (data: unknown) => ConnectionProperties>;

/** Accepts either connection_info {driver_volume_type, data} or bare data plus a protocol name. */
export function normalise(protocol: Protocol, payload: unknown): ConnectionProperties {
  if (typeof protocol !== 'string' || !Object.hasOwn(NORMALISERS, protocol)) {
    refuse('protocol', `must be one of ${Object.keys(NORMALISERS).join(', ')} (got ${describe(protocol)})`);
  }
  const p = asPayload(payload, 'connection_info', 'connection_info {driver_volume_type, data} or its data');
  let data: unknown = p;
  if (Object.hasOwn(p, 'driver_volume_type')) {
    const type = p.driver_volume_type;
    // os-brick's connector factory upper-cases the name, so "iSCSI" and "NVMEOF" count.
    if (typeof type !== 'string' || type.toLowerCase() !== protocol) {
      refuse('driver_volume_type', `is ${describe(type)}, but these properties were sent to the ${protocol} connector`, 'WRONG_VOLUME_TYPE');
    }
    if (!given(p, 'data')) refuse('data', 'missing: connection_info carries the properties in data');
    data = p.data;
  } else if (Object.hasOwn(p, 'data')) {
    refuse('driver_volume_type', 'missing: send connection_info as {driver_volume_type, data}, or send the data alone');
  }
  return NORMALISERS[protocol](data);
}
