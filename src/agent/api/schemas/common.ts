/**
 * Schema pieces every area shares: the error answer, with the catalogued codes a route may give,
 * and the parameter schemas used by more than one route.
 *
 * A reply schema is also how fastify serialises the reply (fast-json-stringify): a property it
 * does not list is dropped, so every reply schema lists every field its handler returns, and
 * open-ended data says `additionalProperties: true`.
 */
import { ERROR_CATALOGUE, type ErrorCode } from '../../../system/errors.js';
import { PROTOCOLS } from '../../../volume/protocol.js';
import { CONNECTOR_NAME, VOLUME_NAME } from '../../../volume/fields.js';

export type JsonSchema = Record<string, unknown>;

/** The schema of a fastify route: what it takes and what it answers. */
export interface RouteSchema {
  params?: JsonSchema;
  querystring?: JsonSchema;
  body?: JsonSchema;
  response: Record<string, JsonSchema>;
  description?: string;
}

export const CONNECTOR_NAME_PATTERN = CONNECTOR_NAME.source;

export const protocolParam = {
  type: 'object',
  required: ['protocol'],
  properties: { protocol: { type: 'string', enum: [...PROTOCOLS] } },
} as const;

/** A target volume's name in a path (the names volumes are made with). */
export const nameParam = { type: 'object', required: ['name'], properties: { name: { type: 'string', pattern: VOLUME_NAME.source } } } as const;

export const strings = { type: 'array', items: { type: 'string' } } as const;
export const nullableString = { type: ['string', 'null'] } as const;
export const nullableNumber = { type: ['number', 'null'] } as const;
export const nullableInteger = { type: ['integer', 'null'] } as const;
/** Any JSON value, passed through as it is. */
export const anything = {} as const;

/** Failures inside the node any route that touches the host can answer with. */
export const HOST_FAILURES: ErrorCode[] = ['INTERNAL', 'EXEC_EMPTY', 'EXEC_FAILED', 'EXEC_NOT_FOUND', 'EXEC_TIMEOUT', 'WORKER_DIED', 'WORKER_TIMEOUT', 'WORKER_ERROR', 'LOCK_TIMEOUT'];

/** Every route behind the lab token. */
export const GUARDED: ErrorCode[] = ['UNAUTHORIZED', 'INTERNAL'];

/**
 * The error answers of a route, one per HTTP status, each listing the codes (from the catalogue)
 * it may carry. Every error answer has the same shape: {code, message, hint?}.
 */
export function errorReplies(codes: readonly ErrorCode[]): Record<string, JsonSchema> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set(codes)) {
    const status = ERROR_CATALOGUE[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const out: Record<string, JsonSchema> = {};
  for (const [status, list] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    out[String(status)] = {
      description: list.map((c) => `${c}: ${ERROR_CATALOGUE[c].meaning}`).join('; '),
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', enum: list },
        message: { type: 'string' },
        hint: { type: 'string' },
      },
    };
  }
  return out;
}

/**
 * What any route may answer before its handler runs: a field, a query parameter or a body it does
 * not take (400), a body too large (413) or not JSON (415).
 */
export const REQUEST_REFUSALS: ErrorCode[] = ['BAD_REQUEST', 'BODY_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'];

/** A route's answers: its success replies, then its errors (the request refusals among them). */
export function replies(ok: Record<string, JsonSchema>, errors: readonly ErrorCode[]): Record<string, JsonSchema> {
  return { ...ok, ...errorReplies([...REQUEST_REFUSALS, ...errors]) };
}
