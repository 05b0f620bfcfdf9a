import { BrickError } from '../system/errors.js';

/**
 * The external connector protocol, version 1: how brick-lab talks to a vendor's connector
 * program. One process per call; the request is one JSON document on the program's stdin, the
 * reply one JSON document on its stdout (docs/connector-protocol.md is the vendor's side of it).
 *
 * The shapes are os-brick's: the request carries os-brick's connection_properties dict (Cinder's
 * connection_info["data"]) untouched, and the results are what os-brick's connector methods return.
 *
 * REQUEST_SCHEMA and REPLY_SCHEMA state the same rules as validateRequest and validateReply; the
 * validators are written by hand so that a refusal names the field and says what was expected.
 */

export const PROTOCOL_VERSION = 1 as const;

export const OPERATIONS = ['connect_volume', 'disconnect_volume', 'get_volume_paths', 'get_all_available_volumes', 'get_search_path'] as const;
export type Operation = (typeof OPERATIONS)[number];

export const PROTOCOLS = ['iscsi', 'nvmeof', 'local'] as const;
export type ProtocolName = (typeof PROTOCOLS)[number];

/** os-brick's connection_properties: Cinder's connection_info["data"], passed through as sent. */
export type OsBrickProperties = Record<string, unknown>;

/** os-brick's device_info, as connect_volume returns it; keys beyond these are kept and sent back. */
export interface OsBrickDeviceInfo {
  type: 'block';
  path: string;
  scsi_wwn?: string | null;
  multipath_id?: string | null;
  [key: string]: unknown;
}

interface RequestBase {
  version: typeof PROTOCOL_VERSION;
  protocol: ProtocolName;
}

export interface ConnectVolumeRequest extends RequestBase {
  operation: 'connect_volume';
  connection_properties: OsBrickProperties;
  multipath: boolean;
}

export interface DisconnectVolumeRequest extends RequestBase {
  operation: 'disconnect_volume';
  connection_properties: OsBrickProperties;
  /** What connect_volume returned for this volume, or null when it is not known. */
  device_info: OsBrickDeviceInfo | null;
  force: boolean;
  ignore_errors: boolean;
}

export interface GetVolumePathsRequest extends RequestBase {
  operation: 'get_volume_paths';
  connection_properties: OsBrickProperties;
}

export interface GetAllAvailableVolumesRequest extends RequestBase {
  operation: 'get_all_available_volumes';
  connection_properties: OsBrickProperties | null;
}

export interface GetSearchPathRequest extends RequestBase {
  operation: 'get_search_path';
  connection_properties: OsBrickProperties | null;
}

export interface RequestByOperation {
  connect_volume: ConnectVolumeRequest;
  disconnect_volume: DisconnectVolumeRequest;
  get_volume_paths: GetVolumePathsRequest;
  get_all_available_volumes: GetAllAvailableVolumesRequest;
  get_search_path: GetSearchPathRequest;
}
export type ConnectorRequest = RequestByOperation[Operation];

export interface ResultByOperation {
  connect_volume: OsBrickDeviceInfo;
  disconnect_volume: null | Record<string, never>;
  get_volume_paths: string[];
  get_all_available_volumes: string[];
  get_search_path: string | null;
}

export interface ConnectorErrorBody {
  type: string;
  message: string;
  [key: string]: unknown;
}

export type ConnectorReply<R = unknown> =
  | { version: typeof PROTOCOL_VERSION; ok: true; result: R }
  | { version: typeof PROTOCOL_VERSION; ok: false; error: ConnectorErrorBody };

/** What buildRequest takes per operation; the flags default to false, the dicts to null. */
export interface RequestArgs {
  connect_volume: { connection_properties: OsBrickProperties; multipath?: boolean };
  disconnect_volume: { connection_properties: OsBrickProperties; device_info?: OsBrickDeviceInfo | null; force?: boolean; ignore_errors?: boolean };
  get_volume_paths: { connection_properties: OsBrickProperties };
  get_all_available_volumes: { connection_properties?: OsBrickProperties | null };
  get_search_path: { connection_properties?: OsBrickProperties | null };
}

export const DOCS = 'docs/connector-protocol.md';

// ---------------------------------------------------------------------------------------------
// JSON Schemas (draft 2020-12)

/** A string of at least one character and no control characters (a newline, a NUL). */
const PRINTABLE = '^[^\\u0000-\\u001f\\u007f]+$';
const ABSOLUTE_PATH = '^/[^\\u0000-\\u001f\\u007f]*$';
const DEV_PATH = '^/dev/[^\\u0000-\\u001f\\u007f]+$';

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

// ---------------------------------------------------------------------------------------------
// The validators

/** One field that does not fit: where, what was expected, what was there. */
class Mismatch extends Error {
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${field}: ${problem}`);
  }
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return v.length > 60 ? `${JSON.stringify(v.slice(0, 60))}...` : JSON.stringify(v);
  return String(v);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const has = (o: Record<string, unknown>, k: string): boolean => Object.hasOwn(o, k);
const RE_PRINTABLE = new RegExp(PRINTABLE);
const RE_ABSOLUTE = new RegExp(ABSOLUTE_PATH);
const RE_DEV = new RegExp(DEV_PATH);

function check(ok: boolean, field: string, expected: string, got: unknown): void {
  if (!ok) throw new Mismatch(field, `expected ${expected}, got ${show(got)}`);
}

function required(o: Record<string, unknown>, prefix: string, keys: readonly string[], what: Record<string, string>): void {
  for (const k of keys) if (!has(o, k)) throw new Mismatch(`${prefix}${k}`, `missing; expected ${what[k] ?? 'a value'}`);
}

function onlyKeys(o: Record<string, unknown>, prefix: string, keys: readonly string[], context: string): void {
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) throw new Mismatch(`${prefix}${k}`, `unexpected key: ${context} holds only ${keys.join(', ')}`);
  }
}

function checkVersion(o: Record<string, unknown>): void {
  if (!has(o, 'version')) throw new Mismatch('version', `missing; expected ${PROTOCOL_VERSION}, the protocol version`);
  if (o.version !== PROTOCOL_VERSION) {
    throw new Mismatch('version', `expected ${PROTOCOL_VERSION}, got ${show(o.version)}: this brick-lab speaks connector protocol version ${PROTOCOL_VERSION} only`);
  }
}

function checkDeviceInfo(v: unknown, at: string): void {
  check(isObject(v), at, 'a device_info object {"type": "block", "path": "/dev/..."}', v);
  const o = v as Record<string, unknown>;
  required(o, `${at}.`, ['type', 'path'], { type: '"block"', path: 'the device path, "/dev/..."' });
  check(o.type === 'block', `${at}.type`, '"block"', o.type);
  check(typeof o.path === 'string' && RE_DEV.test(o.path), `${at}.path`, 'a path under /dev, e.g. "/dev/sdb" (no control characters)', o.path);
  for (const k of ['scsi_wwn', 'multipath_id']) {
    if (has(o, k)) check(o[k] === null || typeof o[k] === 'string', `${at}.${k}`, 'a string or null', o[k]);
  }
}

const RESULT_CHECKS: { [O in Operation]: (v: unknown) => void } = {
  connect_volume: (v) => checkDeviceInfo(v, 'result'),
  disconnect_volume: (v) => check(v === null || (isObject(v) && Object.keys(v).length === 0), 'result', 'null or {}', v),
  get_volume_paths: (v) => {
    check(Array.isArray(v), 'result', 'a list of absolute paths', v);
    (v as unknown[]).forEach((p, i) => check(typeof p === 'string' && RE_ABSOLUTE.test(p), `result[${i}]`, 'an absolute path, a string starting with "/" (no control characters)', p));
  },
  get_all_available_volumes: (v) => {
    check(Array.isArray(v), 'result', 'a list of strings', v);
    (v as unknown[]).forEach((p, i) => check(typeof p === 'string' && RE_PRINTABLE.test(p), `result[${i}]`, 'a non-empty string without control characters', p));
  },
  get_search_path: (v) => check(v === null || (typeof v === 'string' && RE_PRINTABLE.test(v)), 'result', 'a path (a non-empty string without control characters) or null', v),
};

function checkReply(operation: Operation, v: unknown): ConnectorReply {
  check(isObject(v), 'reply', 'a JSON object {"version": 1, "ok": ..., ...}', v);
  const o = v as Record<string, unknown>;
  checkVersion(o);
  required(o, '', ['ok'], { ok: 'true or false' });
  check(typeof o.ok === 'boolean', 'ok', 'true or false', o.ok);
  if (o.ok) {
    onlyKeys(o, '', ['version', 'ok', 'result'], 'a reply with "ok": true');
    required(o, '', ['result'], { result: `the result of ${operation}` });
    RESULT_CHECKS[operation](o.result);
  } else {
    onlyKeys(o, '', ['version', 'ok', 'error'], 'a reply with "ok": false');
    required(o, '', ['error'], { error: 'an object {"type": ..., "message": ...}' });
    check(isObject(o.error), 'error', 'an object {"type": ..., "message": ...}', o.error);
    const e = o.error as Record<string, unknown>;
    required(e, 'error.', ['type', 'message'], { type: 'a non-empty string naming the kind of failure', message: 'a string' });
    check(typeof e.type === 'string' && e.type !== '', 'error.type', 'a non-empty string', e.type);
    check(typeof e.message === 'string', 'error.message', 'a string', e.message);
  }
  return o as ConnectorReply;
}

const REQUEST_KEYS: { [O in Operation]: readonly string[] } = {
  connect_volume: ['multipath'],
  disconnect_volume: ['device_info', 'force', 'ignore_errors'],
  get_volume_paths: [],
  get_all_available_volumes: [],
  get_search_path: [],
};

function checkRequest(v: unknown): ConnectorRequest {
  check(isObject(v), 'request', 'a JSON object', v);
  const o = v as Record<string, unknown>;
  checkVersion(o);
  required(o, '', ['operation', 'protocol', 'connection_properties'], {
    operation: OPERATIONS.join(', '),
    protocol: PROTOCOLS.join(', '),
    connection_properties: "os-brick's connection_properties object",
  });
  check(typeof o.operation === 'string' && (OPERATIONS as readonly string[]).includes(o.operation), 'operation', `one of ${OPERATIONS.join(', ')}`, o.operation);
  const op = o.operation as Operation;
  check(typeof o.protocol === 'string' && (PROTOCOLS as readonly string[]).includes(o.protocol), 'protocol', `one of ${PROTOCOLS.join(', ')}`, o.protocol);
  const extra = REQUEST_KEYS[op];
  onlyKeys(o, '', ['version', 'operation', 'protocol', 'connection_properties', ...extra], `a ${op} request`);
  required(o, '', extra, { multipath: 'true or false', device_info: 'a device_info object or null', force: 'true or false', ignore_errors: 'true or false' });
  const nullable = op === 'get_all_available_volumes' || op === 'get_search_path';
  check(isObject(o.connection_properties) || (nullable && o.connection_properties === null), 'connection_properties', nullable ? 'an object or null' : 'an object', o.connection_properties);
  for (const k of ['multipath', 'force', 'ignore_errors']) if (extra.includes(k)) check(typeof o[k] === 'boolean', k, 'true or false', o[k]);
  if (op === 'disconnect_volume' && o.device_info !== null) checkDeviceInfo(o.device_info, 'device_info');
  return o as unknown as ConnectorRequest;
}

// ---------------------------------------------------------------------------------------------
// What callers use

/** Throws CONNECTOR_BAD_REQUEST naming the field when the value is not a version 1 request. */
export function validateRequest(value: unknown): ConnectorRequest {
  try {
    return checkRequest(value);
  } catch (e) {
    if (!(e instanceof Mismatch)) throw e;
    throw new BrickError('CONNECTOR_BAD_REQUEST', `not a connector protocol version ${PROTOCOL_VERSION} request: ${e.message}`, {
      details: { field: e.field },
      hint: `see ${DOCS} for the request of each operation`,
    });
  }
}

/** A copy that is plain JSON: what the program will read. */
function jsonCopy<T>(v: T, field: string): T {
  let text: string | undefined;
  try {
    text = JSON.stringify(v);
  } catch (e) {
    throw new BrickError('CONNECTOR_BAD_REQUEST', `${field}: cannot be written as JSON (${(e as Error).message})`, { details: { field } });
  }
  return (text === undefined ? null : JSON.parse(text)) as T;
}

/** A checked request of protocol version 1 for one operation, holding copies of the dicts given. */
export function buildRequest<O extends Operation>(operation: O, protocol: ProtocolName, args: RequestArgs[O]): RequestByOperation[O] {
  const a = args as Partial<RequestArgs['disconnect_volume'] & RequestArgs['connect_volume']>;
  const request: Record<string, unknown> = {
    version: PROTOCOL_VERSION,
    operation,
    protocol,
    connection_properties: jsonCopy(a.connection_properties ?? null, 'connection_properties'),
  };
  if (operation === 'connect_volume') request.multipath = a.multipath ?? false;
  if (operation === 'disconnect_volume') {
    request.device_info = jsonCopy(a.device_info ?? null, 'device_info');
    request.force = a.force ?? false;
    request.ignore_errors = a.ignore_errors ?? false;
  }
  return validateRequest(request) as RequestByOperation[O];
}

/** Checks a parsed reply against the schema of its operation; throws CONNECTOR_BAD_REPLY. */
export function validateReply<O extends Operation>(operation: O, value: unknown, program?: string): ConnectorReply<ResultByOperation[O]> {
  try {
    return checkReply(operation, value) as ConnectorReply<ResultByOperation[O]>;
  } catch (e) {
    if (!(e instanceof Mismatch)) throw e;
    throw new BrickError(
      'CONNECTOR_BAD_REPLY',
      `${who(program)} replied to ${operation} with JSON that does not fit connector protocol version ${PROTOCOL_VERSION}: ${e.message}. ` +
        `Make the program print the ${operation} reply of the protocol (${DOCS}).`,
      { details: { operation, field: e.field, ...(program ? { program } : {}) }, hint: `the reply to ${operation} must match replySchemaFor("${operation}"), printed in ${DOCS}` },
    );
  }
}

function who(program?: string): string {
  return program ? `connector program ${program}` : 'the connector program';
}

const QUOTE_CHARS = 200;
const MAX_ERROR_TEXT = 2000;

function cut(text: string, n: number): string {
  return text.length > n ? `${text.slice(0, n)}... (${text.length - n} more characters)` : text;
}

/**
 * The result of one call from the program's stdout. Throws CONNECTOR_BAD_JSON when stdout is not
 * one JSON document, CONNECTOR_BAD_REPLY when the document does not fit the operation's reply,
 * and CONNECTOR_FAILED (carrying the program's error type and message) for an ok:false reply.
 */
export function parseReply<O extends Operation>(operation: O, stdoutText: string, program?: string): ResultByOperation[O] {
  let parsed: unknown;
  const text = stdoutText.trim();
  if (text === '') {
    throw new BrickError(
      'CONNECTOR_BAD_JSON',
      `${who(program)} printed nothing on stdout for ${operation}: it must print one JSON reply there (and its logs on stderr).`,
      { details: { operation, stdout: '' }, hint: `see ${DOCS}` },
    );
  }
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    const quoted = JSON.stringify(stdoutText.slice(0, QUOTE_CHARS)) + (stdoutText.length > QUOTE_CHARS ? ` (first ${QUOTE_CHARS} of ${stdoutText.length} characters)` : '');
    throw new BrickError(
      'CONNECTOR_BAD_JSON',
      `${who(program)} did not print one JSON document on stdout for ${operation} (${(e as Error).message}); stdout began ${quoted}. ` +
        'Print exactly one JSON reply on stdout and write every log line to stderr.',
      { details: { operation, stdout: stdoutText.slice(0, QUOTE_CHARS) }, hint: `see ${DOCS}` },
    );
  }
  const reply = validateReply(operation, parsed, program);
  if (!reply.ok) {
    const { type, message } = reply.error;
    throw new BrickError('CONNECTOR_FAILED', `${who(program)} failed ${operation}: ${type}: ${cut(message, MAX_ERROR_TEXT)}`, {
      details: { operation, type, message: cut(message, MAX_ERROR_TEXT), ...(program ? { program } : {}) },
      hint: "the program reported this failure itself: its message and its stderr say why",
    });
  }
  return reply.result;
}
