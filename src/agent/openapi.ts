/** The agent's OpenAPI document, made from the routes' own JSON schemas (one source of truth). */
export interface RouteInfo {
  method: string;
  url: string;
  schema?: { body?: unknown; params?: { properties?: Record<string, unknown>; required?: string[] }; querystring?: { properties?: Record<string, unknown> }; response?: Record<string, unknown> } | undefined;
}

export function openApiDocument(routes: RouteInfo[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    if (r.url === '/openapi.json') continue;
    const path = r.url.replace(/:([A-Za-z_]+)/g, '{$1}');
    const parameters = [
      ...Object.entries(r.schema?.params?.properties ?? {}).map(([name, schema]) => ({ name, in: 'path', required: true, schema })),
      ...Object.entries(r.schema?.querystring?.properties ?? {}).map(([name, schema]) => ({ name, in: 'query', required: false, schema })),
    ];
    for (const m of r.url.matchAll(/:([A-Za-z_]+)/g)) {
      if (!parameters.some((p) => p.name === m[1])) parameters.push({ name: m[1]!, in: 'path', required: true, schema: { type: 'string' } });
    }
    const responses: Record<string, unknown> = {};
    for (const [code, schema] of Object.entries(r.schema?.response ?? {})) responses[code] = { description: code, content: { 'application/json': { schema } } };
    if (Object.keys(responses).length === 0) responses['200'] = { description: 'OK' };
    (paths[path] ??= {})[r.method.toLowerCase()] = {
      ...(parameters.length ? { parameters } : {}),
      ...(r.schema?.body ? { requestBody: { required: true, content: { 'application/json': { schema: r.schema.body } } } } : {}),
      responses,
      ...(path === '/v1/health' ? {} : { security: [{ labToken: [] }] }),
    };
  }
  return {
    openapi: '3.0.3',
    info: { title: 'brick-lab node agent', version },
    components: { securitySchemes: { labToken: { type: 'http', scheme: 'bearer' } } },
    paths,
  };
}
