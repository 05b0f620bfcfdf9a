/** The compute role's routes: the connectors' fetch-paths API, installed connectors, the inventory. */
import type { ErrorCode } from '../../../system/errors.js';
import { PROTOCOLS } from '../../../volume/protocol.js';
import { CONNECTOR_NAME_PATTERN, GUARDED, HOST_FAILURES, nullableString, protocolParam, replies, strings, type JsonSchema, type RouteSchema } from './common.js';
import { connectionProperties } from './connection.js';
import { baselineReply, hostCheckReply, inventoryReply, orphansReply, snapshotBody, snapshotDiff } from './inventory.js';

const connectorQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { connector: { type: 'string', pattern: CONNECTOR_NAME_PATTERN, description: 'an installed connector instead of brick-lab\'s own ("builtin")' } },
} as const;

/** The codes of connection properties the connectors refuse, naming the field. */
const PROPERTY_ERRORS: ErrorCode[] = ['BAD_REQUEST', 'BAD_IQN', 'BAD_NQN', 'BAD_WWPN', 'BAD_PORTAL', 'BAD_LUN', 'UNSUPPORTED_TRANSPORT', 'WRONG_VOLUME_TYPE'];
/** What an installed connector (?connector=NAME) can answer with. */
const EXTERNAL_ERRORS: ErrorCode[] = [
  'BAD_CONNECTOR', 'CONNECTOR_BAD_REQUEST', 'CONNECTOR_NOT_INSTALLED', 'CONNECTOR_FAILED', 'CONNECTOR_BAD_REPLY', 'CONNECTOR_BAD_JSON', 'CONNECTOR_NOT_FOUND',
  'CONNECTOR_NOT_EXECUTABLE', 'CONNECTOR_TIMEOUT', 'CONNECTOR_CRASHED', 'CONNECTOR_MODULE_FAILED', 'CONNECTOR_NOT_INITIALISED',
];
const ISCSI_DB_ERRORS: ErrorCode[] = ['ISCSI_DB_LOCKED', 'ISCSI_NO_NODE', 'ISCSI_DISCOVERY_RECORD', 'BAD_NODE_SETTING', 'ISCSIADM_FAILED'];
const CONNECT_ERRORS: ErrorCode[] = ['AGENT_READ_ONLY', 'FCOE_MISSING', 'CONNECT_FAILED', 'ISCSI_LOGIN_FAILED', 'DEVICE_TIMEOUT', 'DEVICE_MISSING', 'MULTIPATHD_NOT_RUNNING', 'ISCSI_NODE_NOT_MADE', 'ISCSI_NO_HOST', ...ISCSI_DB_ERRORS];
const DISCONNECT_ERRORS: ErrorCode[] = ['AGENT_READ_ONLY', 'DEVICE_HELD', 'FLUSH_FAILED', 'DEVICE_STUCK', 'MULTIPATH_FLUSH_FAILED', 'DEVICE_TIMEOUT', 'DEVICE_MISSING', ...ISCSI_DB_ERRORS];
const ON_HOST: ErrorCode[] = [...GUARDED, ...HOST_FAILURES];

/*
 * What a connector answers: brick-lab's own, or an installed module's (vendor code). These
 * replies list their fields but require none: a module's reply missing one passes as it did
 * before, where a required field would make the serialiser fail the call.
 */
export const volumePaths: JsonSchema = {
  type: 'object',
  properties: { paths: strings, devices: strings },
  additionalProperties: true,
};

export const deviceInfo: JsonSchema = {
  title: "os-brick's device_info",
  type: 'object',
  properties: { type: { type: 'string', enum: ['block'] }, path: { type: 'string' }, devices: strings, multipath: { type: 'boolean' }, identity: nullableString },
  additionalProperties: true,
};

const disconnectReply: JsonSchema = {
  type: 'object',
  properties: {
    removed: strings,
    errors: strings,
    left: { ...strings, description: 'holders the connector did not make that the detach left in place, e.g. "holder dm-1 (name mylinear) on sda"; only when there are any' },
  },
  additionalProperties: true,
};

const availableVolume: JsonSchema = {
  type: 'object',
  properties: {
    protocol: { type: 'string', enum: [...PROTOCOLS] },
    identity: {
      type: 'object',
      properties: {
        wwid: nullableString, uuid: nullableString, nguid: nullableString, nsid: { type: ['integer', 'null'] },
        target: nullableString, lun: { type: ['integer', 'null'] }, portals: strings,
      },
      additionalProperties: true,
    },
    paths: strings,
    devices: strings,
  },
  additionalProperties: true,
};

const installedConnector: JsonSchema = {
  type: 'object',
  required: ['name', 'kind', 'file', 'bytes', 'executable', 'timeoutMs'],
  properties: {
    name: { type: 'string' },
    kind: { type: 'string', enum: ['program', 'module'] },
    file: { type: 'string' },
    bytes: { type: 'integer' },
    executable: { type: 'boolean' },
    timeoutMs: { type: ['integer', 'null'] },
  },
};

const withProtocol = (connector: boolean, s: Omit<RouteSchema, 'params' | 'querystring'>): RouteSchema => ({ params: protocolParam, ...(connector ? { querystring: connectorQuery } : {}), ...s });

const devices = { type: 'array', items: { type: 'string', pattern: '^(/dev/)?[a-z][a-z0-9-]*$' }, description: "the kernel names of the volume's devices at attach (a connect result's devices)" };

const stillAttached = {
  type: 'array',
  description: 'volumes that stay attached: what they share with this one is not an orphan',
  items: { type: 'object', required: ['protocol', 'properties'], properties: { protocol: { type: 'string', enum: [...PROTOCOLS] }, properties: connectionProperties } },
};

/** A baseline the agent keeps (POST /v1/inventory/baselines), by the id it gave. */
const baselineId: JsonSchema = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9-]+$', description: 'the id of a baseline this agent keeps (POST /v1/inventory/baselines), instead of sending the snapshot' };

export const computeSchemas = {
  installConnector: {
    params: { type: 'object', required: ['name'], properties: { name: { type: 'string', pattern: CONNECTOR_NAME_PATTERN } } },
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['content', 'kind'],
      properties: {
        content: { type: 'string', maxLength: 64 * 1024 * 1024, pattern: '^[A-Za-z0-9+/]*={0,2}$', description: 'the file, base64' },
        kind: { type: 'string', enum: ['program', 'module'], description: 'program: the external connector protocol; module: a CommonJS module' },
        executable: { type: 'boolean' },
        timeoutMs: { type: 'integer', minimum: 1000, maximum: 3_600_000 },
      },
    },
    response: replies({ 201: installedConnector }, [...ON_HOST, 'BAD_REQUEST', 'BAD_CONNECTOR', 'BAD_CONNECTOR_NAME', 'CONNECTOR_MODULE_FAILED', 'LIMIT_REACHED']),
  },
  listConnectorPrograms: {
    response: replies({ 200: { type: 'object', required: ['connectors'], properties: { connectors: { type: 'array', items: installedConnector } } } }, ON_HOST),
  },
  deleteConnectorProgram: {
    params: { type: 'object', required: ['name'], properties: { name: { type: 'string', pattern: CONNECTOR_NAME_PATTERN } } },
    response: replies({ 204: { description: 'removed', type: 'null' } }, [...ON_HOST, 'BAD_CONNECTOR_NAME', 'CONNECTOR_NOT_INSTALLED']),
  },
  connectors: {
    response: replies({
      200: {
        type: 'object',
        required: ['connectors'],
        properties: { connectors: { type: 'array', items: { type: 'object', required: ['protocol', 'searchPath'], properties: { protocol: { type: 'string', enum: [...PROTOCOLS] }, searchPath: nullableString } } } },
      },
    }, GUARDED),
  },
  connectorProperties: {
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: { multipath: { type: 'boolean', description: 'echoed as os-brick echoes its caller\'s' }, enforce_multipath: { type: 'boolean' } },
    },
    response: replies({
      200: {
        type: 'object',
        description: "os-brick's get_connector_properties, read from this host (a key the host has nothing for is left out)",
        required: ['platform', 'os_type', 'host', 'ip', 'multipath', 'enforce_multipath', 'do_local_attach'],
        properties: {
          platform: { type: 'string' },
          os_type: { type: 'string' },
          host: { type: 'string' },
          ip: nullableString,
          multipath: { type: 'boolean' },
          enforce_multipath: { type: 'boolean' },
          do_local_attach: { type: 'boolean' },
          initiator: { type: 'string', description: 'the iSCSI initiator name (/etc/iscsi/initiatorname.iscsi)' },
          nqn: { type: 'string', description: 'the NVMe host NQN (/etc/nvme/hostnqn)' },
          nvme_hostid: { type: 'string', description: 'the NVMe host ID (/etc/nvme/hostid)' },
          wwpns: { ...strings, description: 'the WWPNs of the FC ports that are online, 16 hex digits' },
          wwnns: { ...strings, description: 'their WWNNs, in the same order' },
        },
      },
    }, ON_HOST),
  },
  searchPath: withProtocol(true, {
    response: replies({ 200: { type: 'object', properties: { searchPath: nullableString } } }, [...ON_HOST, 'BAD_REQUEST', ...EXTERNAL_ERRORS]),
  }),
  volumePaths: withProtocol(true, {
    body: connectionProperties,
    response: replies({ 200: volumePaths }, [...ON_HOST, ...PROPERTY_ERRORS, ...EXTERNAL_ERRORS]),
  }),
  volumePathsBatch: withProtocol(false, {
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['volumes'],
      properties: { volumes: { type: 'array', maxItems: 4096, items: connectionProperties, description: 'connection properties, each as volume-paths takes them' } },
    },
    response: replies({ 200: { type: 'object', required: ['results'], properties: { results: { type: 'array', items: volumePaths } } } }, [...ON_HOST, ...PROPERTY_ERRORS]),
  }),
  availableVolumes: withProtocol(true, {
    // Optional, as before: no body (or an empty object) asks for every volume the connector sees;
    // whatever else is sent, the connector checks as connection properties.
    body: { type: 'object', description: 'optional: connection properties to narrow the answer to one volume (no body, or {}, asks for every volume the connector sees)', anyOf: [connectionProperties] },
    response: replies({ 200: { type: 'object', properties: { volumes: { type: 'array', items: availableVolume } } } }, [...ON_HOST, ...PROPERTY_ERRORS, ...EXTERNAL_ERRORS]),
  }),
  connect: withProtocol(true, {
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['properties'],
      properties: { properties: connectionProperties, multipath: { type: 'boolean' } },
    },
    response: replies({ 200: deviceInfo }, [...ON_HOST, ...PROPERTY_ERRORS, ...EXTERNAL_ERRORS, ...CONNECT_ERRORS]),
  }),
  disconnect: withProtocol(true, {
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['properties'],
      properties: {
        properties: connectionProperties,
        deviceInfo: { description: 'what connect answered, or null', type: ['object', 'null'] },
        force: { type: 'boolean', description: 'go on when a flush fails (data loss accepted)' },
        ignoreErrors: { type: 'boolean', description: 'report errors instead of stopping' },
      },
    },
    response: replies({ 200: disconnectReply }, [...ON_HOST, ...PROPERTY_ERRORS, ...EXTERNAL_ERRORS, ...DISCONNECT_ERRORS]),
  }),
  inventory: {
    querystring: { type: 'object', additionalProperties: false, properties: { record: { type: 'string', enum: ['0', '1'], description: '"1": answer {snapshot, recording}, the reads behind the snapshot' } } },
    response: replies({ 200: inventoryReply }, ON_HOST),
  },
  inventoryDiff: {
    body: { type: 'object', additionalProperties: false, required: ['before'], properties: { before: snapshotBody } },
    response: replies({ 200: snapshotDiff }, [...ON_HOST, 'BAD_REQUEST']),
  },
  orphans: {
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['protocol', 'properties'],
      properties: {
        protocol: { type: 'string', enum: [...PROTOCOLS] },
        properties: connectionProperties,
        wwid: { type: 'string', description: 'the SCSI WWID read at attach' },
        stillAttached,
        devices,
        baseline: { ...snapshotBody, description: 'a full snapshot taken before the detach: the reply then has the host-wide view too' },
        baselineId,
        detachedSince: {
          type: 'array',
          description: 'other volumes detached since the baseline: what they had may have gone too',
          items: {
            type: 'object',
            required: ['protocol', 'properties'],
            additionalProperties: false,
            properties: { protocol: { type: 'string', enum: [...PROTOCOLS] }, properties: connectionProperties, wwid: { type: 'string' }, devices },
          },
        },
      },
    },
    response: replies({ 200: orphansReply }, [...ON_HOST, ...PROPERTY_ERRORS, 'BAD_REQUEST', 'BASELINE_UNKNOWN', 'MULTIPATHD_SILENT']),
  },
  hostCheck: {
    body: {
      type: 'object',
      additionalProperties: false,
      properties: { baseline: snapshotBody, baselineId, stillAttached },
    },
    response: replies({ 200: hostCheckReply }, [...ON_HOST, ...PROPERTY_ERRORS, 'BAD_REQUEST', 'BASELINE_UNKNOWN', 'MULTIPATHD_SILENT']),
  },
  takeBaseline: {
    response: replies({ 201: baselineReply }, ON_HOST),
  },
} satisfies Record<string, RouteSchema>;
