import { OPERATIONS, PROTOCOL_VERSION, type Operation } from './protocol.js';
import { PROTOCOLS } from '../../volume/protocol.js';

// ---------------------------------------------------------------------------------------------
// JSON Schemas (draft 2020-12)

/** A string of at least one character and no control characters (a newline, a NUL). */
export const PRINTABLE = '^[^\\u0000-\\u001f\\u007f]+$';
export const ABSOLUTE_PATH = '^/[^\\u0000-\\u001f\\u007f]*$';
export const DEV_PATH = '^/dev/[^\\u0000-\\u001f\\u007f]+$';

const DRAFT = 'https://json-schema.org/draft/2020-12/schema';

const DEVICE_INFO_SCHEMA = {
  description: "os-brick's device_info. Keys other than these are allowed and sent back unchanged with disconnect_volume.",
  type: 'object',
  required: ['type', 'path'],
  properties: {
    type: { const: 'block' },
    path: { type: 'string', pattern: DEV_PATH, description: 'the device to open: /dev/sdX, /dev/dm-N, /dev/disk/by-path/...' },
    scsi_wwn: { type: ['string', 'null'], description: 'the WWID in scsi_id form, e.g. "36001405..."' },
    multipath_id: { type: ['string', 'null'] },
  },
  additionalProperties: true,
};

const CONNECTION_PROPERTIES_SCHEMA = {
  description: "os-brick's connection_properties (Cinder's connection_info.data), as the volume driver sent them",
  type: 'object',
};

const envelope = (operation: Operation, extra: Record<string, unknown>, required: string[]): Record<string, unknown> => ({
  type: 'object',
  required: ['version', 'operation', 'protocol', 'connection_properties', ...required],
  additionalProperties: false,
  properties: {
    version: { const: PROTOCOL_VERSION },
    operation: { const: operation },
    protocol: { $ref: '#/$defs/protocol' },
    ...extra,
  },
});

const PROPS = { connection_properties: { $ref: '#/$defs/connection_properties' } };
const PROPS_OR_NULL = { connection_properties: { oneOf: [{ type: 'null' }, { $ref: '#/$defs/connection_properties' }] } };

export const REQUEST_SCHEMA = {
  $schema: DRAFT,
  $id: 'urn:brick-lab:connector-protocol:v1:request',
  title: 'brick-lab external connector protocol, version 1: the request on stdin',
  oneOf: OPERATIONS.map((op) => ({ $ref: `#/$defs/${op}` })),
  $defs: {
    protocol: { enum: [...PROTOCOLS] },
    connection_properties: CONNECTION_PROPERTIES_SCHEMA,
    device_info: DEVICE_INFO_SCHEMA,
    connect_volume: envelope('connect_volume', { ...PROPS, multipath: { type: 'boolean' } }, ['multipath']),
    disconnect_volume: envelope(
      'disconnect_volume',
      { ...PROPS, device_info: { oneOf: [{ type: 'null' }, { $ref: '#/$defs/device_info' }] }, force: { type: 'boolean' }, ignore_errors: { type: 'boolean' } },
      ['device_info', 'force', 'ignore_errors'],
    ),
    get_volume_paths: envelope('get_volume_paths', PROPS, []),
    get_all_available_volumes: envelope('get_all_available_volumes', PROPS_OR_NULL, []),
    get_search_path: envelope('get_search_path', PROPS_OR_NULL, []),
  },
};

const okReply = (operation: Operation): Record<string, unknown> => ({
  type: 'object',
  required: ['version', 'ok', 'result'],
  additionalProperties: false,
  properties: {
    version: { const: PROTOCOL_VERSION },
    ok: { const: true },
    result: { $ref: `#/$defs/${operation}_result` },
  },
});

/**
 * Any reply of protocol version 1. The reply does not name its operation: the reply to operation
 * X must match `$defs/X_reply` or `$defs/error_reply` (replySchemaFor(X) is that schema).
 */
export const REPLY_SCHEMA = {
  $schema: DRAFT,
  $id: 'urn:brick-lab:connector-protocol:v1:reply',
  title: 'brick-lab external connector protocol, version 1: the reply on stdout',
  anyOf: [...OPERATIONS.map((op) => ({ $ref: `#/$defs/${op}_reply` })), { $ref: '#/$defs/error_reply' }],
  $defs: {
    connect_volume_reply: okReply('connect_volume'),
    disconnect_volume_reply: okReply('disconnect_volume'),
    get_volume_paths_reply: okReply('get_volume_paths'),
    get_all_available_volumes_reply: okReply('get_all_available_volumes'),
    get_search_path_reply: okReply('get_search_path'),
    // The error reply is the ok reply's envelope with `error` for `result`: two shapes the
    // protocol document names separately, so each is written out.
    error_reply: {
      type: 'object',
      required: ['version', 'ok', 'error'],
      additionalProperties: false,
      properties: {
        version: { const: PROTOCOL_VERSION },
        ok: { const: false },
        error: {
          type: 'object',
          required: ['type', 'message'],
          properties: {
            type: { type: 'string', minLength: 1, description: 'a short name for the kind of failure, e.g. "VolumeDeviceNotFound"' },
            message: { type: 'string', description: 'what went wrong, for a person' },
          },
          additionalProperties: true,
        },
      },
    },
    connect_volume_result: DEVICE_INFO_SCHEMA,
    disconnect_volume_result: { description: 'null or an empty object', type: ['null', 'object'], maxProperties: 0 },
    get_volume_paths_result: { type: 'array', items: { type: 'string', pattern: ABSOLUTE_PATH } },
    get_all_available_volumes_result: { type: 'array', items: { type: 'string', pattern: PRINTABLE } },
    get_search_path_result: { type: ['string', 'null'], pattern: PRINTABLE },
  },
};

/** The schema a reply to this operation must match: its own success shape, or an error reply. */
export function replySchemaFor(operation: Operation): Record<string, unknown> {
  return {
    ...REPLY_SCHEMA,
    $id: `urn:brick-lab:connector-protocol:v1:reply:${operation}`,
    title: `brick-lab external connector protocol, version 1: the reply to ${operation}`,
    anyOf: [{ $ref: `#/$defs/${operation}_reply` }, { $ref: '#/$defs/error_reply' }],
  };
}
