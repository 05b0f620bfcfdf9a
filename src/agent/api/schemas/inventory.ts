/**
 * The inventory's replies: a host snapshot (inventory/snapshot.ts), a diff of two, and the orphan
 * oracle's answer. Snapshot items list their fields and allow more: a snapshot is a record of the
 * host, and a field added to it must reach the client, not be dropped by the serialiser. One
 * schema per model type (inventory/model.ts), field for field: alike in shape, not in content.
 */
import { ORPHAN_KINDS } from '../../../volume/orphan-kinds.js';
import { PROTOCOLS } from '../../../volume/protocol.js';
import { anything, nullableInteger, nullableNumber, nullableString, strings, type JsonSchema } from './common.js';

const item = (required: string[], properties: Record<string, unknown>): JsonSchema => ({ type: 'object', required, properties, additionalProperties: true });
const list = (items: JsonSchema): JsonSchema => ({ type: 'array', items });

export const scsiDevice = item(['hctl', 'host', 'lun', 'sysfs'], {
  hctl: { type: 'string' },
  host: { type: 'integer' },
  lun: { type: 'integer' },
  vendor: nullableString,
  model: nullableString,
  state: nullableString,
  wwid: nullableString,
  block: nullableString,
  holders: strings,
  session: nullableInteger,
  rport: nullableString,
  sysfs: { type: 'string' },
});

export const fcHost = item(['host', 'sysfs'], {
  host: { type: 'integer' },
  portName: nullableString,
  nodeName: nullableString,
  portState: nullableString,
  sysfs: { type: 'string' },
});

export const fcRemotePort = item(['name', 'host', 'sysfs'], {
  name: { type: 'string' },
  host: { type: 'integer' },
  portName: nullableString,
  nodeName: nullableString,
  roles: nullableString,
  portState: nullableString,
  scsiTargetId: nullableInteger,
  sysfs: { type: 'string' },
});

export const iscsiSession = item(['sid', 'sysfs'], {
  sid: { type: 'integer' },
  targetIqn: nullableString,
  portal: nullableString,
  state: nullableString,
  host: nullableInteger,
  sysfs: { type: 'string' },
});

export const iscsiNodeRecord = item(['iqn', 'portal', 'tpgt', 'path'], {
  iqn: { type: 'string' },
  portal: { type: 'string' },
  tpgt: { type: 'string' },
  path: { type: 'string' },
  startup: nullableString,
  iface: nullableString,
});

export const iscsiDiscoveryRecord = item(['type', 'portal', 'targets', 'path'], {
  type: { type: 'string', enum: ['sendtargets', 'isns'] },
  portal: { type: 'string' },
  targets: strings,
  path: { type: 'string' },
});

export const iscsiIface = item(['name', 'path'], {
  name: { type: 'string' },
  path: { type: 'string' },
});

export const nvmeController = item(['name', 'sysfs'], {
  name: { type: 'string' },
  subsysNqn: nullableString,
  transport: nullableString,
  traddr: nullableString,
  trsvcid: nullableString,
  state: nullableString,
  sysfs: { type: 'string' },
});

export const nvmeNamespace = item(['name', 'sysfs'], {
  name: { type: 'string' },
  nsid: nullableInteger,
  uuid: nullableString,
  nguid: nullableString,
  wwid: nullableString,
  subsysNqn: nullableString,
  paths: strings,
  holders: strings,
  sysfs: { type: 'string' },
});

const partition = item(['name'], { name: { type: 'string' }, devt: nullableString, holders: strings });

export const blockDevice = item(['name'], {
  name: { type: 'string' },
  devt: nullableString,
  sizeBytes: nullableNumber,
  holders: strings,
  slaves: strings,
  staleSlaves: strings,
  partitions: list(partition),
  dm: {
    type: ['object', 'null'],
    properties: { name: nullableString, uuid: nullableString, suspended: { type: ['boolean', 'null'] }, table: { type: ['array', 'null'], items: { type: 'string' } } },
    additionalProperties: true,
  },
  md: { type: ['object', 'null'], properties: { level: nullableString, state: nullableString }, additionalProperties: true },
});

export const devLink = item(['dir', 'name'], {
  dir: { type: 'string', enum: ['by-path', 'by-id'] },
  name: { type: 'string' },
  target: nullableString,
  dangling: { type: 'boolean' },
});

export const multipathMap = item(['dm'], {
  dm: { type: 'string' },
  name: nullableString,
  wwid: nullableString,
  slaves: strings,
});

const snapshotProperties = {
  takenAt: { type: 'string', description: 'ISO 8601' },
  scope: { type: 'string', enum: ['full', 'paths'] },
  scsiDevices: list(scsiDevice),
  iscsiSessions: list(iscsiSession),
  iscsiNodes: list(iscsiNodeRecord),
  iscsiDiscovery: list(iscsiDiscoveryRecord),
  iscsiIfaces: list(iscsiIface),
  nvmeControllers: list(nvmeController),
  nvmeNamespaces: list(nvmeNamespace),
  fcHosts: list(fcHost),
  fcRemotePorts: list(fcRemotePort),
  blockDevices: list(blockDevice),
  links: list(devLink),
  multipathMaps: list(multipathMap),
};

/** A host snapshot, as GET /v1/inventory answers it. */
export const hostSnapshot: JsonSchema = {
  title: 'host snapshot',
  type: 'object',
  // The FC lists are newer than the rest: a baseline kept from before them is still a snapshot.
  required: Object.keys(snapshotProperties).filter((k) => !k.startsWith('fc')),
  properties: snapshotProperties,
  additionalProperties: true,
};

/** The reads behind a snapshot (system/hostfs-record HostFsRecording): a unit-test fixture. */
export const hostFsRecording: JsonSchema = {
  type: 'object',
  properties: {
    text: { type: 'object', additionalProperties: nullableString },
    binary: { type: 'object', additionalProperties: nullableString },
    list: { type: 'object', additionalProperties: strings },
    link: { type: 'object', additionalProperties: nullableString },
    exists: { type: 'object', additionalProperties: { type: 'boolean' } },
  },
  additionalProperties: true,
};

/**
 * GET /v1/inventory: a snapshot, or with ?record=1 `{snapshot, recording}`. One object schema
 * covers both (no field is required), so the serialiser needs no branch to pick.
 */
export const baselineReply: JsonSchema = {
  description: 'a full snapshot the agent keeps as a baseline, and the id to name it by (host-check, orphans)',
  type: 'object',
  required: ['id', 'snapshot'],
  properties: { id: { type: 'string' }, snapshot: hostSnapshot },
};

export const inventoryReply: JsonSchema = {
  description: 'a host snapshot; with ?record=1, {snapshot, recording} instead',
  type: 'object',
  properties: { ...snapshotProperties, snapshot: hostSnapshot, recording: hostFsRecording },
  additionalProperties: true,
};

/** A snapshot sent back for a diff: the route checks its scope; its items are taken as they are. */
export const snapshotBody: JsonSchema = { title: 'host snapshot (as GET /v1/inventory answered it)', type: 'object', additionalProperties: true };

const diffEntry = item(['kind', 'key', 'item'], { kind: { type: 'string' }, key: { type: 'string' }, item: anything });

export const snapshotDiff: JsonSchema = {
  type: 'object',
  required: ['added', 'removed'],
  properties: { added: list(diffEntry), removed: list(diffEntry) },
};

export const orphan = item(['kind', 'id', 'evidence'], {
  kind: { type: 'string', enum: [...ORPHAN_KINDS] },
  id: { type: 'string' },
  evidence: { type: 'string' },
});

/** What identifies a volume on a host (volume/identity.ts). */
export const volumeIdentity: JsonSchema = {
  type: 'object',
  required: ['protocol'],
  additionalProperties: true,
  properties: {
    protocol: { type: 'string', enum: [...PROTOCOLS] },
    iscsi: item(['iqn', 'portals', 'lun'], { iqn: { type: 'string' }, portals: strings, lun: { type: 'integer' }, wwid: nullableString }),
    nvme: item(['nqn'], { nqn: { type: 'string' }, portals: strings, nsid: nullableInteger, uuid: nullableString, nguid: nullableString }),
    local: item([], { device: nullableString, wwid: nullableString }),
  },
};

/** The host-wide view (inventory/hostwide.ts): what appeared unaccounted for, and what others lost. */
export const hostWideView: JsonSchema = {
  type: 'object',
  required: ['baselineTakenAt', 'orphans', 'collateral'],
  properties: { baselineTakenAt: { type: 'string' }, orphans: list(orphan), collateral: list(orphan) },
};

export const orphansReply: JsonSchema = {
  type: 'object',
  required: ['clean', 'orphans', 'kept', 'volume'],
  properties: {
    clean: { type: 'boolean', description: 'no orphan, and (with a baseline) nothing host-wide either' },
    orphans: list(orphan),
    kept: { ...list(orphan), description: 'sessions, records and controllers rightly kept: they carry another LUN or namespace (the evidence says which)' },
    volume: volumeIdentity,
    hostWide: hostWideView,
  },
};

export const hostCheckReply: JsonSchema = {
  type: 'object',
  required: ['clean', 'baselineTakenAt', 'orphans', 'collateral'],
  properties: { clean: { type: 'boolean' }, ...hostWideView.properties as Record<string, unknown> },
};
