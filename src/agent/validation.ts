/**
 * How the agent checks what a request carries against its route's schema, and how it says what
 * was wrong.
 *
 * Two Ajv instances: the body's schemas take JSON as it is (a string where a number belongs is
 * refused, not converted), while the query string and the path parameters, which are text by
 * nature, are converted to the types their schemas name. Fastify's own default converts the body
 * too, so `{"hard": "false"}` would have rebooted a node hard.
 *
 * Every refusal names the field (dotted, with [i] for list items, as the connectors' own checks
 * do), what the schema wanted, and what came (shortened, never a whole object).
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { FastifySchemaCompiler } from 'fastify';
import { BrickError } from '../system/errors.js';
import { describe, SCHEMA_HINT } from '../volume/fields.js';

type HttpPart = 'body' | 'querystring' | 'params' | 'headers';

// validateSchema false: the route schemas are the agent's own, checked against the JSON Schema
// meta-schema by the unit tests (agent-contract.test.ts); checking them again at every start made
// each Ajv compile the meta-schema first, 1.5 of the 3.3 s of vCPU an agent's start took under TCG.
const common = { allErrors: false, verbose: true, strict: false, removeAdditional: false, useDefaults: true, validateSchema: false } as const;
const forBody = new Ajv({ ...common, coerceTypes: false });
const forText = new Ajv({ ...common, coerceTypes: 'array' });

/** Decimal digits only: Ajv's conversion would take "0x1", "1e3" and " 1" for numbers. */
const DECIMAL: Record<string, RegExp> = { integer: /^-?[0-9]+$/, number: /^-?[0-9]+(\.[0-9]+)?$/ };

/**
 * Fastify's validator compiler: the body's schemas without type conversion, the rest with, after
 * a check that what becomes a number was written as a plain decimal one.
 */
export const validatorCompiler: FastifySchemaCompiler<Record<string, unknown>> = ({ schema, httpPart }) => {
  if (httpPart === 'body') return forBody.compile(schema) as ValidateFunction;
  const validate = forText.compile(schema);
  const props = ((schema as { properties?: Record<string, { type?: unknown }> }).properties ?? {});
  const numeric = Object.entries(props).flatMap(([k, s]) => (typeof s.type === 'string' && DECIMAL[s.type] ? [[k, s.type, DECIMAL[s.type]!] as const] : []));
  if (numeric.length === 0) return validate as ValidateFunction;
  const checked = ((data: Record<string, unknown> | undefined) => {
    for (const [k, type, re] of numeric) {
      const raw = data?.[k];
      if (typeof raw === 'string' && !re.test(raw)) {
        checked.errors = [{ keyword: 'type', instancePath: `/${k}`, schemaPath: `#/properties/${k}/type`, params: { type }, message: `must be ${type}`, data: raw }];
        return false;
      }
    }
    const ok = validate(data);
    checked.errors = validate.errors ?? null;
    return ok;
  }) as ((data: Record<string, unknown> | undefined) => boolean) & { errors: ErrorObject[] | null };
  checked.errors = null;
  return checked as unknown as ValidateFunction;
};

/** Where a part of the request is, as a message says it. */
const WHERE: Record<HttpPart, string> = { body: '', querystring: ' (query string)', params: ' (in the path)', headers: ' (header)' };

/** "/volumes/3/target_iqn" as "volumes[3].target_iqn". */
export function fieldOf(instancePath: string, child?: string): string {
  const parts = instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (child !== undefined) parts.push(child);
  let out = '';
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out === '' ? p : `.${p}`;
  return out;
}

const ARTICLE: Record<string, string> = {
  object: 'a JSON object',
  array: 'a list',
  string: 'a string',
  integer: 'a whole number',
  number: 'a number',
  boolean: 'true or false',
  null: 'null',
};

function wanted(type: unknown): string {
  const types = [type].flat().map((t) => ARTICLE[String(t)] ?? String(t));
  return types.length > 1 ? `${types.slice(0, -1).join(', ')} or ${types.at(-1)}` : types[0] ?? 'something else';
}

/** What one Ajv error says, as "field: what is wrong (got ...)". */
export function explain(e: ErrorObject, part: HttpPart): string {
  const where = WHERE[part];
  const got = `(got ${describe(e.data)})`;
  const p = e.params as Record<string, unknown>;
  const parent = (e.parentSchema ?? {}) as { properties?: Record<string, unknown>; description?: string };
  switch (e.keyword) {
    case 'required':
      return `${fieldOf(e.instancePath, String(p.missingProperty))}${where}: missing; it is required`;
    case 'additionalProperties': {
      const known = Object.keys(parent.properties ?? {});
      const field = fieldOf(e.instancePath, String(p.additionalProperty));
      return `${JSON.stringify(field)}${where}: unknown field; ${known.length ? `the known ones are ${known.join(', ')}` : 'none is taken here'}`;
    }
    case 'type': {
      const field = fieldOf(e.instancePath) || (part === 'body' ? 'body' : part);
      return `${field}${where}: must be ${wanted(p.type)} ${got}`;
    }
    case 'pattern':
      return `${fieldOf(e.instancePath)}${where}: ${describe(e.data)} does not match ${String(p.pattern)}${parent.description ? ` (${parent.description})` : ''}`;
    case 'enum':
      return `${fieldOf(e.instancePath)}${where}: must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')} ${got}`;
    case 'const':
      return `${fieldOf(e.instancePath)}${where}: must be ${JSON.stringify(p.allowedValue)} ${got}`;
    case 'minItems':
    case 'maxItems':
      return `${fieldOf(e.instancePath)}${where}: ${e.message ?? 'wrong number of items'} (got ${Array.isArray(e.data) ? e.data.length : '?'})`;
    case 'minLength':
    case 'maxLength':
      return `${fieldOf(e.instancePath)}${where}: ${e.message ?? 'wrong length'} (got ${typeof e.data === 'string' ? e.data.length : '?'} characters)`;
    case 'maxProperties':
    case 'minProperties':
      return `${fieldOf(e.instancePath) || 'body'}${where}: ${e.message ?? 'wrong number of fields'}`;
    default:
      return `${fieldOf(e.instancePath) || part}${where}: ${e.message ?? 'is not valid'} ${got}`;
  }
}

/** Fastify's schemaErrorFormatter: the first error, explained (one fix at a time, like a compiler). */
export function schemaErrorFormatter(errors: ErrorObject[], dataVar: string): Error {
  const part = (['body', 'querystring', 'params', 'headers'].includes(dataVar) ? dataVar : 'body') as HttpPart;
  // anyOf reports each branch's error, then its own "must match a schema in anyOf": the branch
  // errors say more.
  const first = errors.find((e) => e.keyword !== 'anyOf' && e.keyword !== 'oneOf') ?? errors[0];
  return new BrickError('BAD_REQUEST', first ? explain(first, part) : `${part}: is not valid`, { hint: SCHEMA_HINT });
}

/** A route that takes no body: refuse one, rather than ignore what a client thought it asked for. */
export function refuseBody(body: unknown, route: string): void {
  if (body === undefined) return;
  if (typeof body === 'object' && body !== null && !Array.isArray(body) && Object.keys(body).length === 0) return;
  throw new BrickError('BAD_REQUEST', `body: ${route} takes no body (got ${describe(body)}); send none, or {}`, { hint: SCHEMA_HINT });
}
