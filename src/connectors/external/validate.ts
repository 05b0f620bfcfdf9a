import { BrickError } from '../../system/errors.js';
import { isObject } from '../../system/text.js';
import { DOCS, OPERATIONS, PROTOCOL_VERSION, type ConnectorReply, type ConnectorRequest, type Operation, type RequestArgs, type RequestByOperation, type ResultByOperation } from './protocol.js';
import { PROTOCOLS, type Protocol } from '../../volume/protocol.js';
import { ABSOLUTE_PATH, DEV_PATH, PRINTABLE } from './schema.js';

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
export function buildRequest<O extends Operation>(operation: O, protocol: Protocol, args: RequestArgs[O]): RequestByOperation[O] {
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
