import type { FastifyInstance } from 'fastify';
import { builtinConnectors } from '../connectors/builtin.js';
import { ConnectorRegistry, type InstallRequest } from '../connectors/registry.js';
import type { Connector, DeviceInfo } from '../connectors/types.js';
import { diffSnapshots } from '../inventory/diff.js';
import { orphansWithTools } from '../inventory/oracle.js';
import { identityFromProperties } from '../volume/identity.js';
import { takeSnapshot } from '../inventory/snapshot.js';
import type { HostSnapshot } from '../inventory/model.js';
import { readToolViews } from '../inventory/tools.js';
import { BrickError } from '../system/errors.js';
import { realHostFs, recordingHostFs } from '../system/hostfs.js';

type Protocol = 'iscsi' | 'nvmeof' | 'local';

const protocolParam = { type: 'object', required: ['protocol'], properties: { protocol: { type: 'string', enum: ['iscsi', 'nvmeof', 'local'] } } } as const;

const connectorQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { connector: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' } },
} as const;

/** The compute role's routes: the fetch-paths API over every connector, and the inventory. */
export async function computeRoutes(app: FastifyInstance, opts: { connectorsDir?: string } = {}): Promise<void> {
  const all = builtinConnectors();
  const pick = (p: string): Connector => all[p as Protocol];
  const registry = new ConnectorRegistry(opts.connectorsDir);
  /** brick-lab's own connector, or with ?connector=NAME an installed one (brick-lab validate). */
  const choose = (p: string, name: string | undefined): Promise<Connector> | Connector => (name && name !== 'builtin' ? registry.get(name, p as Protocol) : pick(p));

  app.put<{ Params: { name: string }; Body: InstallRequest }>('/v1/connectors/programs/:name', {
    schema: {
      params: { type: 'object', required: ['name'], properties: { name: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' } } },
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['content', 'kind'],
        properties: {
          content: { type: 'string', maxLength: 64 * 1024 * 1024, pattern: '^[A-Za-z0-9+/]*={0,2}$' },
          kind: { type: 'string', enum: ['program', 'module'] },
          executable: { type: 'boolean' },
          timeoutMs: { type: 'integer', minimum: 1000, maximum: 3_600_000 },
        },
      },
    },
  }, async (req, reply) => reply.code(201).send(await registry.install(req.params.name, req.body)));

  app.get('/v1/connectors/programs', async () => ({ connectors: registry.list() }));

  app.delete<{ Params: { name: string } }>('/v1/connectors/programs/:name', async (req, reply) => {
    if (!(await registry.uninstall(req.params.name))) {
      throw new BrickError('CONNECTOR_NOT_INSTALLED', `no connector ${JSON.stringify(req.params.name)} is installed on this node`);
    }
    return reply.code(204).send();
  });

  app.get('/v1/connectors', async () => ({
    connectors: Object.values(all).map((c) => ({ protocol: c.protocol, searchPath: c.getSearchPath() })),
  }));

  app.get<{ Params: { protocol: string }; Querystring: { connector?: string } }>('/v1/connectors/:protocol/search-path', { schema: { params: protocolParam, querystring: connectorQuery } }, async (req) => ({
    searchPath: (await choose(req.params.protocol, req.query.connector)).getSearchPath(),
  }));

  app.post<{ Params: { protocol: string }; Querystring: { connector?: string }; Body: unknown }>('/v1/connectors/:protocol/volume-paths', {
    schema: { params: protocolParam, querystring: connectorQuery, body: { type: 'object' } },
  }, async (req) => {
    const c = await choose(req.params.protocol, req.query.connector);
    return c.getVolumePaths(c.normalise(req.body));
  });

  // Many volumes from one read of sysfs: what a gate job checking every attachment of a host needs.
  app.post<{ Params: { protocol: string }; Body: { volumes: unknown[] } }>('/v1/connectors/:protocol/volume-paths-batch', {
    schema: {
      params: protocolParam,
      body: { type: 'object', additionalProperties: false, required: ['volumes'], properties: { volumes: { type: 'array', maxItems: 4096, items: { type: 'object' } } } },
    },
  }, async (req) => {
    const c = pick(req.params.protocol);
    const props = req.body.volumes.map((v, i) => {
      try {
        return c.normalise(v);
      } catch (e) {
        if (e instanceof Error) e.message = `volumes[${i}].${e.message}`;
        throw e;
      }
    });
    const snapshot = await takeSnapshot(undefined, { scope: 'paths' });
    return { results: await Promise.all(props.map((p) => c.getVolumePaths(p, snapshot))) };
  });

  app.post<{ Params: { protocol: string }; Querystring: { connector?: string }; Body: unknown }>('/v1/connectors/:protocol/available-volumes', {
    schema: { params: protocolParam, querystring: connectorQuery },
  }, async (req) => {
    const c = await choose(req.params.protocol, req.query.connector);
    const body = req.body as Record<string, unknown> | undefined;
    const props = body && Object.keys(body).length > 0 ? c.normalise(body) : undefined;
    return { volumes: await c.getAllAvailableVolumes(props) };
  });

  app.post<{ Params: { protocol: string }; Querystring: { connector?: string }; Body: { properties: unknown; multipath?: boolean } }>('/v1/connectors/:protocol/connect', {
    schema: {
      params: protocolParam,
      querystring: connectorQuery,
      body: { type: 'object', additionalProperties: false, required: ['properties'], properties: { properties: { type: 'object' }, multipath: { type: 'boolean' } } },
    },
  }, async (req) => {
    const c = await choose(req.params.protocol, req.query.connector);
    return c.connectVolume(c.normalise(req.body.properties), { multipath: req.body.multipath ?? false });
  });

  app.post<{ Params: { protocol: string }; Querystring: { connector?: string }; Body: { properties: unknown; deviceInfo?: DeviceInfo; force?: boolean; ignoreErrors?: boolean } }>('/v1/connectors/:protocol/disconnect', {
    schema: {
      params: protocolParam,
      querystring: connectorQuery,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['properties'],
        properties: { properties: { type: 'object' }, deviceInfo: { type: ['object', 'null'] }, force: { type: 'boolean' }, ignoreErrors: { type: 'boolean' } },
      },
    },
  }, async (req) => {
    const c = await choose(req.params.protocol, req.query.connector);
    return c.disconnectVolume(c.normalise(req.body.properties), req.body.deviceInfo ?? null, { force: req.body.force ?? false, ignoreErrors: req.body.ignoreErrors ?? false });
  });

  app.get<{ Querystring: { record?: string } }>('/v1/inventory', async (req) => {
    if (req.query.record === '1') {
      // The snapshot and every read behind it: a unit-test fixture captured from this node.
      const { fs, recording } = recordingHostFs(realHostFs);
      return { snapshot: await takeSnapshot(fs), recording };
    }
    return takeSnapshot();
  });

  app.post<{ Body: { before: HostSnapshot } }>('/v1/inventory/diff', {
    schema: { body: { type: 'object', required: ['before'], properties: { before: { type: 'object' } } } },
  }, async (req) => diffSnapshots(req.body.before, await takeSnapshot()));

  app.post<{ Body: { protocol: Protocol; properties: unknown; wwid?: string; stillAttached?: Array<{ protocol: Protocol; properties: unknown }> } }>('/v1/inventory/orphans', {
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['protocol', 'properties'],
        properties: {
          protocol: { type: 'string', enum: ['iscsi', 'nvmeof', 'local'] },
          properties: { type: 'object' },
          wwid: { type: 'string' },
          stillAttached: { type: 'array', items: { type: 'object', required: ['protocol', 'properties'], properties: { protocol: { type: 'string', enum: ['iscsi', 'nvmeof', 'local'] }, properties: { type: 'object' } } } },
        },
      },
    },
  }, async (req) => {
    const v = identityFromProperties(pick(req.body.protocol).normalise(req.body.properties), req.body.wwid ?? null);
    const others = (req.body.stillAttached ?? []).map((o) => identityFromProperties(pick(o.protocol).normalise(o.properties)));
    const snapshot = await takeSnapshot();
    const orphans = orphansWithTools(snapshot, v, others, await readToolViews());
    return { clean: orphans.length === 0, orphans, volume: v };
  });

}
