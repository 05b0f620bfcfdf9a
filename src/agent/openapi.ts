/** The agent's OpenAPI document, made from the routes' own JSON schemas (one source of truth). */
import { isObject } from '../system/text.js';
import { ROUTES } from './api/paths.js';

export interface RouteInfo {
  method: string;
  url: string;
  schema?: { body?: unknown; params?: { properties?: Record<string, unknown>; required?: string[] }; querystring?: { properties?: Record<string, unknown> }; response?: Record<string, unknown> } | undefined;
}

type Schema = Record<string, unknown>;

/**
 * A JSON schema as OpenAPI 3.0 writes it: a type list with null becomes `nullable`, a schema of
 * null is no content. The routes keep plain JSON schema, which their validator and serialiser read.
 */
export function toOpenApiSchema(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(toOpenApiSchema);
  if (!isObject(s)) return s;
  const out: Schema = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === 'type' && Array.isArray(v)) {
      const types = v.filter((t) => t !== 'null');
      if (types.length === 1) out.type = types[0];
      else out.anyOf = types.map((t) => ({ type: t }));
      if (types.length < v.length) out.nullable = true;
    } else if (k === 'properties' && isObject(v)) {
      out.properties = Object.fromEntries(Object.entries(v).map(([name, p]) => [name, toOpenApiSchema(p)]));
    } else {
      out[k] = toOpenApiSchema(v);
    }
  }
  return out;
}

function response(code: string, schema: unknown): Schema {
  const description = isObject(schema) && typeof schema.description === 'string' ? schema.description : code;
  if (isObject(schema) && schema.type === 'null') return { description };
  return { description, content: { 'application/json': { schema: toOpenApiSchema(schema) } } };
}

export function openApiDocument(routes: RouteInfo[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    if (r.url === ROUTES.openapi) continue;
    const path = r.url.replace(/:([A-Za-z_]+)/g, '{$1}');
    const parameters = [
      ...Object.entries(r.schema?.params?.properties ?? {}).map(([name, schema]) => ({ name, in: 'path', required: true, schema })),
      ...Object.entries(r.schema?.querystring?.properties ?? {}).map(([name, schema]) => ({ name, in: 'query', required: false, schema })),
    ];
    for (const m of r.url.matchAll(/:([A-Za-z_]+)/g)) {
      if (!parameters.some((p) => p.name === m[1])) parameters.push({ name: m[1]!, in: 'path', required: true, schema: { type: 'string' } });
    }
    const responses: Record<string, unknown> = {};
    for (const [code, schema] of Object.entries(r.schema?.response ?? {})) responses[code] = response(code, schema);
    if (Object.keys(responses).length === 0) responses['200'] = { description: 'OK' };
    const body = r.schema?.body;
    // A body schema without a type also takes no body at all (the route's body is optional).
    const bodyRequired = isObject(body) && body.type !== undefined;
    (paths[path] ??= {})[r.method.toLowerCase()] = {
      ...(parameters.length ? { parameters } : {}),
      ...(body ? { requestBody: { required: bodyRequired, content: { 'application/json': { schema: toOpenApiSchema(body) } } } } : {}),
      responses,
      ...(path === ROUTES.health ? {} : { security: [{ labToken: [] }] }),
    };
  }
  return {
    openapi: '3.0.3',
    info: { title: 'brick-lab node agent', version },
    components: { securitySchemes: { labToken: { type: 'http', scheme: 'bearer' } } },
    paths,
  };
}
