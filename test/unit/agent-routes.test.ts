import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgent } from '../../src/agent/server.js';
import { unitAgentOptions } from './unit-agents.js';

const TOKEN = 'cm91dGUtdGVzdHMtbGFiLXRva2VuLWZvci11bml0LXRlc3Rz';
const AUTH = { authorization: `Bearer ${TOKEN}` };

/** Routes that must answer 401 without the lab token, by prefix. */
const GUARDED_PREFIXES = ['/v1/connectors', '/v1/inventory', '/v1/targets', '/v1/local-disks'];
/** Values for path parameters, so every route is reached as a real URL would reach it. */
const PARAM_VALUES: Record<string, string> = { protocol: 'iscsi', name: 'vol-1', network: 'path-a', host: '0' };

interface OpenApiOperation {
  parameters?: Array<{ name: string; in: string; required: boolean; schema: unknown }>;
  requestBody?: { required: boolean; content: { 'application/json': { schema: { required?: string[]; properties?: Record<string, unknown> } } } };
  responses: Record<string, unknown>;
  security?: Array<Record<string, unknown>>;
}

interface OpenApiDoc {
  openapi: string;
  info: { title: string; version: string };
  components: { securitySchemes: Record<string, unknown> };
  paths: Record<string, Record<string, OpenApiOperation>>;
}

type Method = 'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH';

async function openApi(app: FastifyInstance): Promise<OpenApiDoc> {
  const r = await app.inject({ method: 'GET', url: '/openapi.json' });
  expect(r.statusCode).toBe(200);
  return r.json() as OpenApiDoc;
}

/** Every operation the document lists, with its path parameters filled in. */
function operations(doc: OpenApiDoc): Array<{ method: Method; path: string; url: string }> {
  const out: Array<{ method: Method; path: string; url: string }> = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const method of Object.keys(ops)) {
      const url = path.replace(/\{([A-Za-z_]+)\}/g, (_m, p: string) => {
        const v = PARAM_VALUES[p];
        if (v === undefined) throw new Error(`no test value for path parameter {${p}} of ${path}: add one to PARAM_VALUES`);
        return v;
      });
      out.push({ method: method.toUpperCase() as Method, path, url });
    }
  }
  return out;
}

function guarded(doc: OpenApiDoc): Array<{ method: Method; path: string; url: string }> {
  return operations(doc).filter((o) => GUARDED_PREFIXES.some((p) => o.path === p || o.path.startsWith(`${p}/`)));
}

describe('agent routes', () => {
  let compute: FastifyInstance;
  let target: FastifyInstance;

  beforeAll(async () => {
    const opts = unitAgentOptions(TOKEN);
    compute = await buildAgent(opts.compute);
    target = await buildAgent(opts.target);
    await Promise.all([compute.ready(), target.ready()]);
  });

  afterAll(async () => {
    await compute?.close();
    await target?.close();
  });

  const post = (app: FastifyInstance, url: string, payload: unknown) =>
    app.inject({ method: 'POST', url, headers: AUTH, payload: payload as Record<string, unknown> });

  describe('GET /openapi.json', () => {
    it('is an OpenAPI 3.0.3 document served without a token', async () => {
      for (const app of [compute, target]) {
        const doc = await openApi(app);
        expect(doc.openapi).toBe('3.0.3');
        expect(doc.info.title).toBe('brick-lab node agent');
        expect(doc.components.securitySchemes.labToken).toEqual({ type: 'http', scheme: 'bearer' });
        expect(doc.paths['/openapi.json']).toBeUndefined();
      }
    });

    it('lists the compute routes, with path parameters written as {param}', async () => {
      const doc = await openApi(compute);
      for (const p of ['/v1/health', '/v1/exec', '/v1/connectors', '/v1/connectors/{protocol}/connect', '/v1/connectors/{protocol}/volume-paths', '/v1/inventory', '/v1/inventory/orphans', '/v1/local-disks/{host}']) {
        expect(doc.paths, p).toHaveProperty([p]);
      }
      expect(Object.keys(doc.paths).filter((p) => p.includes(':'))).toEqual([]);
      const connect = doc.paths['/v1/connectors/{protocol}/connect']!.post!;
      expect(connect.parameters).toContainEqual({ name: 'protocol', in: 'path', required: true, schema: { type: 'string', enum: ['iscsi', 'nvmeof', 'fc', 'local'] } });
      const body = connect.requestBody!.content['application/json'].schema;
      expect(body.required).toContain('properties');
      expect(body.properties).toHaveProperty('properties');
      expect(doc.paths['/v1/exec']!.post!.requestBody).toBeDefined();
      expect(doc.paths['/v1/health']!.get!.parameters).toContainEqual(expect.objectContaining({ name: 'waitReadyMs', in: 'query' }));
    });

    it('lists the target routes, with path parameters written as {param}', async () => {
      const doc = await openApi(target);
      for (const p of ['/v1/health', '/v1/exec', '/v1/targets/iscsi/volumes', '/v1/targets/nvmet/volumes', '/v1/targets/volumes/{name}', '/v1/targets/networks/{network}', '/v1/targets/nvmet/ana']) {
        expect(doc.paths, p).toHaveProperty([p]);
      }
      expect(Object.keys(doc.paths).filter((p) => p.includes(':'))).toEqual([]);
      const byName = doc.paths['/v1/targets/volumes/{name}']!;
      expect(Object.keys(byName).sort()).toEqual(['delete', 'get']);
      expect(byName.get!.parameters).toContainEqual({ name: 'name', in: 'path', required: true, schema: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,39}$' } });
      // Role-specific routes stay on their role.
      expect(doc.paths['/v1/connectors']).toBeUndefined();
    });

    it('marks every operation but health as needing the lab token', async () => {
      for (const app of [compute, target]) {
        const doc = await openApi(app);
        for (const [path, ops] of Object.entries(doc.paths)) {
          for (const [method, op] of Object.entries(ops)) {
            if (path === '/v1/health') expect(op.security, `${method} ${path}`).toBeUndefined();
            else expect(op.security, `${method} ${path}`).toEqual([{ labToken: [] }]);
          }
        }
      }
    });
  });

  describe('the lab token', () => {
    it('covers every connector, inventory, local-disk and target route', async () => {
      const c = guarded(await openApi(compute));
      const t = guarded(await openApi(target));
      // The iteration below must actually reach every family of routes.
      for (const prefix of ['/v1/connectors', '/v1/inventory', '/v1/local-disks']) expect(c.some((o) => o.path.startsWith(prefix)), prefix).toBe(true);
      expect(t.some((o) => o.path.startsWith('/v1/targets'))).toBe(true);

      for (const [app, ops] of [[compute, c], [target, t]] as const) {
        for (const { method, url, path } of ops) {
          for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: `Bearer ${TOKEN}x` }, { authorization: `Basic ${TOKEN}` }]) {
            const r = await app.inject({ method, url, headers, ...(method === 'GET' || method === 'DELETE' ? {} : { payload: {} }) });
            expect(r.statusCode, `${method} ${path} ${JSON.stringify(headers)}`).toBe(401);
            expect(r.json().code, `${method} ${path}`).toBe('UNAUTHORIZED');
          }
        }
      }
    });

    it('is not needed for health and the OpenAPI document only', async () => {
      for (const app of [compute, target]) {
        const open = operations(await openApi(app)).filter((o) => o.path === '/v1/health');
        expect(open).toEqual([{ method: 'GET', path: '/v1/health', url: '/v1/health' }]);
        const r = await app.inject({ method: 'GET', url: '/v1/health' });
        expect(r.statusCode).toBe(200);
      }
    });
  });

  describe('connector routes', () => {
    it('GET /v1/connectors lists the four connectors with their search paths', async () => {
      const r = await compute.inject({ method: 'GET', url: '/v1/connectors', headers: AUTH });
      expect(r.statusCode).toBe(200);
      expect(r.json()).toEqual({
        connectors: [
          { protocol: 'iscsi', searchPath: '/dev/disk/by-path' },
          { protocol: 'nvmeof', searchPath: '/dev' },
          { protocol: 'fc', searchPath: '/dev/disk/by-path' },
          { protocol: 'local', searchPath: null },
        ],
      });
    });

    it('GET /v1/connectors/{protocol}/search-path answers per protocol', async () => {
      const r = await compute.inject({ method: 'GET', url: '/v1/connectors/iscsi/search-path', headers: AUTH });
      expect(r.statusCode).toBe(200);
      expect(r.json()).toEqual({ searchPath: '/dev/disk/by-path' });
    });

    it('refuses a protocol outside the enum', async () => {
      const r = await post(compute, '/v1/connectors/bogus/volume-paths', { device_path: '/dev/sda' });
      expect(r.statusCode).toBe(400);
      expect(r.json().code).toBe('BAD_REQUEST');
      expect(r.json().message).toContain('protocol');
    });

    it('refuses connect without properties, or with fields it does not know', async () => {
      for (const payload of [{}, { multipath: true }, { properties: {}, shell: true }]) {
        const r = await post(compute, '/v1/connectors/iscsi/connect', payload);
        expect(r.statusCode, JSON.stringify(payload)).toBe(400);
        expect(r.json().code).toBe('BAD_REQUEST');
      }
    });

    it('refuses an IQN rtslib would refuse before touching the host', async () => {
      const r = await post(compute, '/v1/connectors/iscsi/connect', {
        properties: { target_portal: '10.0.0.1:3260', target_iqn: 'iqn.2026-11.lab:x', target_lun: 0 },
      });
      expect(r.statusCode).toBe(400);
      const body = r.json();
      expect(body.code).toBe('BAD_IQN');
      expect(body.message.startsWith('target_iqn:')).toBe(true);
      expect(body.hint).toBeTruthy();
    });

    it('refuses a local device path with a ".." segment, naming device_path', async () => {
      const r = await post(compute, '/v1/connectors/local/volume-paths', { device_path: '../x' });
      expect(r.statusCode).toBe(400);
      expect(r.json().code).toBe('BAD_REQUEST');
      expect(r.json().message).toMatch(/^device_path:/);
    });

    it('refuses a wrapped payload whose driver_volume_type is for another connector', async () => {
      const r = await post(compute, '/v1/connectors/nvmeof/available-volumes', {
        driver_volume_type: 'iscsi',
        data: { target_portal: '10.0.0.1:3260', target_iqn: 'iqn.2026-11.io.lab:x', target_lun: 0 },
      });
      expect(r.statusCode).toBe(400);
      expect(r.json().code).toBe('WRONG_VOLUME_TYPE');
      expect(r.json().message).toMatch(/^driver_volume_type:/);
    });
  });

  describe('inventory routes', () => {
    it('GET /v1/inventory answers with a snapshot of this host', async () => {
      const r = await compute.inject({ method: 'GET', url: '/v1/inventory', headers: AUTH });
      expect(r.statusCode).toBe(200);
      const snap = r.json();
      expect(typeof snap.takenAt).toBe('string');
      expect(Number.isNaN(Date.parse(snap.takenAt))).toBe(false);
      for (const key of ['scsiDevices', 'iscsiSessions', 'iscsiNodes', 'nvmeControllers', 'nvmeNamespaces', 'blockDevices', 'links', 'multipathMaps']) {
        expect(Array.isArray(snap[key]), key).toBe(true);
      }
    });

    it('refuses an orphan check with a malformed portal, naming the key', async () => {
      const r = await post(compute, '/v1/inventory/orphans', {
        protocol: 'iscsi',
        properties: { target_portal: '10.0.0.1:99999', target_iqn: 'iqn.2026-11.io.lab:x', target_lun: 0 },
      });
      expect(r.statusCode).toBe(400);
      expect(r.json().code).toBe('BAD_PORTAL');
      expect(r.json().message).toMatch(/^target_portal:/);
    });

    it('refuses an orphan check for an unknown protocol or with unknown fields', async () => {
      for (const payload of [{ protocol: 'rbd', properties: {} }, { protocol: 'local', properties: { device_path: '/dev/sda' }, extra: 1 }, { protocol: 'local' }]) {
        const r = await post(compute, '/v1/inventory/orphans', payload);
        expect(r.statusCode, JSON.stringify(payload)).toBe(400);
        expect(r.json().code).toBe('BAD_REQUEST');
      }
    });

    it('refuses a diff without a before snapshot', async () => {
      const r = await post(compute, '/v1/inventory/diff', {});
      expect(r.statusCode).toBe(400);
      expect(r.json().code).toBe('BAD_REQUEST');
    });
  });

  describe('local disk routes', () => {
    it('refuses a host that is not a whole number', async () => {
      const r = await compute.inject({ method: 'DELETE', url: '/v1/local-disks/abc', headers: AUTH });
      expect(r.statusCode).toBe(400);
      expect(r.json().code).toBe('BAD_REQUEST');
    });
  });

  describe('target routes', () => {
    const iscsi = (payload: Record<string, unknown>) => post(target, '/v1/targets/iscsi/volumes', payload);

    it('refuses a volume name with a path in it, naming name', async () => {
      const r = await iscsi({ name: '../x', sizeMiB: 8 });
      expect(r.statusCode).toBe(400);
      expect(r.json().code).toBe('BAD_REQUEST');
      expect(r.json().message).toMatch(/^name:/);
    });

    it('refuses a size of 0 MiB, naming sizeMiB', async () => {
      const r = await iscsi({ name: 'vol-1', sizeMiB: 0 });
      expect(r.statusCode).toBe(400);
      expect(r.json().code).toBe('BAD_REQUEST');
      expect(r.json().message).toMatch(/^sizeMiB:/);
    });

    it('refuses a field it does not know instead of ignoring it', async () => {
      const r = await iscsi({ name: 'vol-1', sizeMiB: 8, thin: true });
      expect(r.statusCode).toBe(400);
      expect(r.json().code).toBe('BAD_REQUEST');
    });

    it('refuses an NVMe volume on a network the target does not have', async () => {
      const r = await post(target, '/v1/targets/nvmet/volumes', { name: 'vol-1', sizeMiB: 8, networks: ['path-z'] });
      expect(r.statusCode).toBe(400);
      expect(r.json().message).toMatch(/^networks\[0\]:/);
    });

    it('lists no volumes and answers 404 VOLUME_UNKNOWN for one it does not have', async () => {
      const list = await target.inject({ method: 'GET', url: '/v1/targets/volumes', headers: AUTH });
      expect(list.statusCode).toBe(200);
      expect(list.json()).toEqual({ volumes: [] });
      for (const [method, url] of [['DELETE', '/v1/targets/volumes/nope'], ['GET', '/v1/targets/volumes/nope'], ['GET', '/v1/targets/volumes/nope/signature']] as const) {
        const r = await target.inject({ method, url, headers: AUTH });
        expect(r.statusCode, `${method} ${url}`).toBe(404);
        expect(r.json().code).toBe('VOLUME_UNKNOWN');
        expect(r.json().message).toMatch(/^name:/);
      }
    });

    it('refuses an ANA state outside the enum', async () => {
      const r = await post(target, '/v1/targets/nvmet/ana', { network: 'path-a', group: 1, state: 'broken' });
      expect(r.statusCode).toBe(400);
      expect(r.json().code).toBe('BAD_REQUEST');
    });

    it('refuses an ANA change on a network the target does not have', async () => {
      const r = await post(target, '/v1/targets/nvmet/ana', { network: 'path-z', group: 1, state: 'optimized' });
      expect(r.statusCode).toBe(400);
      expect(r.json().message).toMatch(/^network:/);
    });

    it('refuses a network it does not have before running ip, naming network', async () => {
      const r = await post(target, '/v1/targets/networks/path-z', { up: true });
      expect(r.statusCode).toBe(400);
      expect(r.json().code).toBe('BAD_REQUEST');
      expect(r.json().message).toMatch(/^network:/);
    });

    it('refuses a network change without up', async () => {
      const r = await post(target, '/v1/targets/networks/path-a', {});
      expect(r.statusCode).toBe(400);
      expect(r.json().code).toBe('BAD_REQUEST');
    });
  });
});
