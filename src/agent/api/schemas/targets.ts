/** The target role's routes: volumes over iSCSI (LIO) and NVMe/TCP (nvmet), and the fault knobs. */
import type { ErrorCode } from '../../../system/errors.js';
import { ANA_STATES, TARGET_PROTOCOLS } from '../../../volume/protocol.js';
import { anything, GUARDED, HOST_FAILURES, nameParam, replies, strings, type JsonSchema, type RouteSchema } from './common.js';

const names = { type: 'array', items: { type: 'string' }, maxItems: 64 } as const;
/** A data network's name: an interface name in the node. */
const NETWORK_NAME = { type: 'string', pattern: '^[a-z0-9-]{1,15}$', description: "a data network of the node (its interface's name)" } as const;
const ON_HOST: ErrorCode[] = [...GUARDED, ...HOST_FAILURES, 'LIO_INTERNAL', 'NVMET_MISSING', 'FCOE_MISSING'];
const UNKNOWN: ErrorCode[] = ['BAD_REQUEST', 'VOLUME_UNKNOWN'];
const CREATE_ERRORS: ErrorCode[] = [
  'BAD_REQUEST', 'BAD_IQN', 'BAD_NQN', 'BAD_WWPN', 'VOLUME_EXISTS', 'NSID_IN_USE', 'LUN_IN_USE', 'UNKNOWN_TARGET', 'NO_BACKING_FILE', 'LIO_REFUSED', 'LIMIT_REACHED',
  'LOOP_CTL_GET_FREE', 'LOOP_SET_FD', 'LOOP_CLR_FD',
];

/** A volume request body: what both protocols share, plus the protocol's own fields. */
function volumeBody(own: Record<string, unknown>): JsonSchema {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['name', 'sizeMiB'],
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 100 },
      sizeMiB: { type: 'number' },
      networks: { type: 'array', items: { type: 'string' }, maxItems: 16, description: 'the data networks to export on (default: all)' },
      ...own,
    },
  };
}

/** Cinder's connection_info, as the target made it (osbrick/encode.ts). */
const connectionInfo: JsonSchema = {
  type: 'object',
  required: ['driver_volume_type', 'data'],
  properties: {
    driver_volume_type: { type: 'string', enum: ['iscsi', 'nvmeof', 'fibre_channel'] },
    data: { type: 'object', additionalProperties: true, description: "os-brick's connection properties of the protocol" },
  },
  additionalProperties: true,
};

/** A volume as the target keeps it (targets/volumes.ts TargetVolume). */
export const targetVolume: JsonSchema = {
  type: 'object',
  required: ['name', 'protocol', 'id', 'sizeMiB', 'backing', 'portals', 'connectionInfo', 'createdAt'],
  properties: {
    name: { type: 'string' },
    protocol: { type: 'string', enum: [...TARGET_PROTOCOLS] },
    id: { type: 'string' },
    sizeMiB: { type: 'number' },
    backing: { type: 'object', required: ['kind'], properties: { kind: { type: 'string' }, file: { type: 'string' }, device: { type: 'string' } }, additionalProperties: true },
    portals: {
      type: 'array',
      items: { type: 'object', required: ['network', 'address', 'port'], properties: { network: { type: 'string' }, address: { type: 'string' }, port: { type: 'integer' } } },
    },
    // One sub-object per protocol, as TargetVolume has them: alike in shape, each with its own fields.
    iscsi: {
      type: 'object',
      properties: {
        iqn: { type: 'string' }, lun: { type: 'integer' }, unitSerial: { type: 'string' }, wwid: { type: 'string' },
        initiators: strings, demoMode: { type: 'boolean' }, chap: { type: 'boolean' },
      },
      additionalProperties: true,
    },
    nvme: {
      type: 'object',
      properties: {
        nqn: { type: 'string' }, nsid: { type: 'integer' }, uuid: { type: 'string' }, nguid: { type: 'string' },
        hosts: strings, allowAnyHost: { type: 'boolean' }, anaGroup: { type: 'integer' },
      },
      additionalProperties: true,
    },
    fc: {
      type: 'object',
      properties: { wwpns: strings, lun: { type: 'integer' }, unitSerial: { type: 'string' }, wwid: { type: 'string' }, initiators: strings },
      additionalProperties: true,
    },
    connectionInfo,
    createdAt: { type: 'string' },
  },
  additionalProperties: true,
};

const signatureReply: JsonSchema = {
  type: 'object',
  required: ['volume', 'signature'],
  properties: {
    volume: { type: 'string' },
    signature: { type: ['object', 'null'], properties: { volume: { type: 'string' }, id: { type: 'string' } }, description: 'what the first block says, or null' },
  },
};

const nvmetSubsystem: JsonSchema = {
  type: 'object',
  properties: {
    nqn: { type: 'string' },
    allowAnyHost: { type: 'boolean' },
    hosts: strings,
    namespaces: {
      type: 'array',
      items: {
        type: 'object',
        properties: { nsid: { type: 'integer' }, devicePath: { type: 'string' }, uuid: { type: 'string' }, nguid: { type: 'string' }, enabled: { type: 'boolean' }, anaGroup: { type: 'integer' } },
        additionalProperties: true,
      },
    },
  },
  additionalProperties: true,
};

const nvmetPort: JsonSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    trtype: { type: 'string' },
    traddr: { type: 'string' },
    trsvcid: { type: 'string' },
    subsystems: strings,
    anaGroups: { type: 'array', items: { type: 'object', properties: { group: { type: 'integer' }, state: { type: 'string' } }, additionalProperties: true } },
  },
  additionalProperties: true,
};

export const targetSchemas = {
  createFcVolume: {
    body: volumeBody({
      backstore: { type: 'string', description: 'fileio (default), block or ramdisk' },
      lun: { type: 'number', description: 'the LUN id on every FC port of the target (0-255; default: the lowest free)' },
      initiators: { ...names, description: 'the host ports (WWPNs, 16 hex digits) the LUN is mapped to (default: none until POST /v1/targets/volumes/{name}/map)' },
      unitSerial: { type: 'string' },
    }),
    response: replies({ 201: targetVolume }, [...ON_HOST, ...CREATE_ERRORS]),
  },
  createIscsiVolume: {
    body: volumeBody({
      backstore: { type: 'string', description: 'fileio (default), block or ramdisk' },
      iqn: { type: 'string' },
      lun: { type: 'number' },
      initiators: names,
      demoMode: { type: 'boolean' },
      chap: { type: 'object', additionalProperties: false, required: ['username', 'password'], properties: { username: { type: 'string' }, password: { type: 'string' } } },
      unitSerial: { type: 'string' },
    }),
    response: replies({ 201: targetVolume }, [...ON_HOST, ...CREATE_ERRORS]),
  },
  createNvmeVolume: {
    body: volumeBody({
      nqn: { type: 'string' },
      nsid: { type: 'number' },
      hosts: names,
      allowAnyHost: { type: 'boolean' },
      uuid: { type: 'string' },
      nguid: { type: 'string' },
      anaGroup: { type: 'number' },
    }),
    response: replies({ 201: targetVolume }, [...ON_HOST, ...CREATE_ERRORS]),
  },
  listVolumes: {
    response: replies({ 200: { type: 'object', required: ['volumes'], properties: { volumes: { type: 'array', items: targetVolume } } } }, GUARDED),
  },
  getVolume: { params: nameParam, response: replies({ 200: targetVolume }, [...GUARDED, ...UNKNOWN]) },
  deleteVolume: {
    params: nameParam,
    response: replies({ 200: { type: 'object', required: ['deleted'], properties: { deleted: { type: 'string' } } } }, [...ON_HOST, ...UNKNOWN, 'LIO_REFUSED', 'LOOP_CLR_FD']),
  },
  unmap: {
    params: nameParam,
    body: { type: 'object', additionalProperties: false, properties: { initiator: { type: 'string', description: "the initiator: iSCSI its IQN, FC a host port's WWPN (default: every ACL)" } } },
    response: replies({ 200: { type: 'object', required: ['volume', 'removed'], properties: { volume: { type: 'string' }, removed: { type: 'integer' } } } }, [...ON_HOST, ...UNKNOWN, 'BAD_IQN', 'BAD_WWPN', 'LIO_REFUSED']),
  },
  map: {
    params: nameParam,
    body: { type: 'object', additionalProperties: false, required: ['initiators'], properties: { initiators: { ...names, description: "FC: host ports (WWPNs) to map the volume's LUN to, as Cinder's initialize_connection does" } } },
    response: replies({ 200: { type: 'object', required: ['volume', 'mapped'], properties: { volume: { type: 'string' }, mapped: { type: 'integer' } } } }, [...ON_HOST, ...UNKNOWN, 'BAD_WWPN', 'LIO_REFUSED']),
  },
  getSignature: { params: nameParam, response: replies({ 200: signatureReply }, [...ON_HOST, ...UNKNOWN]) },
  putSignature: {
    params: nameParam,
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['volume', 'id'],
      properties: { volume: { type: 'string', pattern: '^[a-z0-9-]+$', maxLength: 128 }, id: { type: 'string', pattern: '^[0-9a-f-]+$', maxLength: 64 } },
    },
    response: replies({ 200: signatureReply }, [...ON_HOST, ...UNKNOWN]),
  },
  setNetwork: {
    params: { type: 'object', required: ['network'], properties: { network: NETWORK_NAME } },
    body: { type: 'object', additionalProperties: false, required: ['up'], properties: { up: { type: 'boolean' } } },
    response: replies({ 200: { type: 'object', required: ['network', 'up'], properties: { network: { type: 'string' }, up: { type: 'boolean' } } } }, [...ON_HOST, 'BAD_REQUEST']),
  },
  setAna: {
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['network', 'group', 'state'],
      properties: { network: NETWORK_NAME, group: { type: 'integer', minimum: 1, maximum: 128 }, state: { type: 'string', enum: [...ANA_STATES] } },
    },
    response: replies({
      200: { type: 'object', required: ['network', 'group', 'state'], properties: { network: { type: 'string' }, group: { type: 'number' }, state: { type: 'string', enum: [...ANA_STATES] } } },
    }, [...ON_HOST, 'BAD_REQUEST']),
  },
  restart: {
    response: replies({ 200: { type: 'object', required: ['lioErrors', 'nvmetSubsystems'], properties: { lioErrors: { type: 'array', items: anything }, nvmetSubsystems: { type: 'integer' } } } }, [...ON_HOST, 'LIO_REFUSED']),
  },
  leftovers: {
    response: replies({
      200: {
        type: 'object',
        required: ['lio', 'nvmet', 'loopDevices', 'files'],
        properties: {
          lio: { type: 'object', description: "LIO's inventory from rtslib: targets, backstores and more", additionalProperties: true },
          nvmet: { type: 'object', properties: { subsystems: { type: 'array', items: nvmetSubsystem }, ports: { type: 'array', items: nvmetPort }, hosts: strings }, additionalProperties: true },
          loopDevices: strings,
          files: strings,
        },
      },
    }, ON_HOST),
  },
  cleanup: { response: replies({ 200: { type: 'object', required: ['removed'], properties: { removed: strings } } }, [...ON_HOST, 'LIO_REFUSED', 'LOOP_CLR_FD']) },
} satisfies Record<string, RouteSchema>;

export const LOCAL_DISK_ERRORS: ErrorCode[] = [...GUARDED, ...HOST_FAILURES, 'SCSI_DEBUG_MISSING', 'SCSI_DEBUG_FAILED', 'LIMIT_REACHED'];
