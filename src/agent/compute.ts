import type { FastifyInstance } from 'fastify';
import { IscsiConnector } from '../connectors/iscsi.js';
import { LocalConnector } from '../connectors/local.js';
import { NvmeConnector } from '../connectors/nvme.js';
import type { Connector } from '../connectors/types.js';
import { diffSnapshots } from '../inventory/diff.js';
import { findOrphans, type Orphan } from '../inventory/orphans.js';
import { identityFromProperties, type VolumeIdentity } from '../volume/identity.js';
import { takeSnapshot, type HostSnapshot } from '../inventory/snapshot.js';
import { toolViews } from '../inventory/tools.js';
import { BrickError } from '../system/errors.js';
import { realHostFs, recordingHostFs } from '../system/hostfs.js';
import { ConnectorRegistry, type InstallRequest } from './connector-registry.js';
import { ROUTES } from './api/paths.js';
import { computeSchemas } from './api/schemas/compute.js';
import type { ConnectRequest, DiffRequest, DisconnectRequest, OrphansRequest, VolumePathsBatchRequest } from './api/types.js';

type Protocol = 'iscsi' | 'nvmeof' | 'local';

export function connectors(): Record<Protocol, Connector> {
  return { iscsi: new IscsiConnector() as Connector, nvmeof: new NvmeConnector() as Connector, local: new LocalConnector() as Connector };
}

/** Orphans from sysfs, plus what the tools still show that sysfs does not account for. */
export async function orphansWithTools(snap: HostSnapshot, v: VolumeIdentity, stillAttached: VolumeIdentity[]): Promise<Orphan[]> {
  const out = findOrphans(snap, v, stillAttached);
  const tools = await toolViews();
  if (v.iscsi) {
    const iv = v.iscsi;
    const shared = (portal: string): boolean => stillAttached.some((o) => o.iscsi?.iqn === iv.iqn && o.iscsi.portals.includes(portal));
    for (const s of tools.iscsiSessions) {
      if (s.iqn !== iv.iqn || !iv.portals.includes(s.portal) || shared(s.portal)) continue;
      if (!out.some((o) => o.kind === 'iscsi-session' && o.id === `session${s.sid}`)) out.push({ kind: 'iscsi-session', id: `session${s.sid}`, evidence: `iscsiadm -m session: ${s.line}` });
    }
  }
  if (v.nvme && !stillAttached.some((o) => o.nvme?.nqn === v.nvme!.nqn)) {
    for (const c of tools.nvmeControllers) {
      if (c.nqn !== v.nvme.nqn || out.some((o) => o.kind === 'nvme-controller' && o.id === c.name)) continue;
      out.push({ kind: 'nvme-controller', id: c.name, evidence: `nvme list-subsys: ${c.name} ${c.address} ${c.state}` });
    }
  }
  // multipathd's own view: a map it still holds, or a path device it still tracks, for this volume.
  const wwid = v.iscsi?.wwid ?? v.local?.wwid ?? null;
  const blocks = new Set(out.filter((o) => o.kind === 'block-device').map((o) => o.id));
  const claimed = new Set(stillAttached.map((o) => o.iscsi?.wwid ?? o.local?.wwid).filter((x): x is string => Boolean(x)));
  for (const m of tools.multipathMaps) {
    if (!wwid || m.wwid !== wwid || claimed.has(m.wwid)) continue;
    if (!out.some((o) => o.kind === 'multipath-map' && (o.id === m.name || o.id === m.dm))) out.push({ kind: 'multipath-map', id: m.name, evidence: `multipathd show maps: ${m.line}` });
  }
  for (const p of tools.multipathPaths) {
    if ((wwid && p.wwid === wwid && !claimed.has(p.wwid)) || blocks.has(p.dev)) out.push({ kind: 'multipathd-path', id: p.dev, evidence: `multipathd show paths: ${p.line}` });
  }
  return out;
}

/** The compute role's routes: the fetch-paths API over every connector, and the inventory. */
export async function computeRoutes(app: FastifyInstance, opts: { connectorsDir?: string } = {}): Promise<void> {
  const all = connectors();
  const pick = (p: string): Connector => all[p as Protocol];
  const registry = new ConnectorRegistry(opts.connectorsDir);
  /** brick-lab's own connector, or with ?connector=NAME an installed one (brick-lab validate). */
  const choose = (p: string, name: string | undefined): Promise<Connector> | Connector => (name && name !== 'builtin' ? registry.get(name, p as Protocol) : pick(p));

  app.put<{ Params: { name: string }; Body: InstallRequest }>(ROUTES.connectorProgram, { schema: computeSchemas.installConnector }, async (req, reply) => reply.code(201).send(await registry.install(req.params.name, req.body)));

  app.get(ROUTES.connectorPrograms, { schema: computeSchemas.listConnectorPrograms }, async () => ({ connectors: registry.list() }));

  app.delete<{ Params: { name: string } }>(ROUTES.connectorProgram, { schema: computeSchemas.deleteConnectorProgram }, async (req, reply) => {
    if (!(await registry.uninstall(req.params.name))) {
      throw new BrickError('CONNECTOR_NOT_INSTALLED', `no connector ${JSON.stringify(req.params.name)} is installed on this node`);
    }
    return reply.code(204).send();
  });

  app.get(ROUTES.connectors, { schema: computeSchemas.connectors }, async () => ({
    connectors: Object.values(all).map((c) => ({ protocol: c.protocol, searchPath: c.getSearchPath() })),
  }));

  app.get<{ Params: { protocol: string }; Querystring: { connector?: string } }>(ROUTES.searchPath, { schema: computeSchemas.searchPath }, async (req) => ({
    searchPath: (await choose(req.params.protocol, req.query.connector)).getSearchPath(),
  }));

  app.post<{ Params: { protocol: string }; Querystring: { connector?: string }; Body: unknown }>(ROUTES.volumePaths, { schema: computeSchemas.volumePaths }, async (req) => {
    const c = await choose(req.params.protocol, req.query.connector);
    return c.getVolumePaths(c.normalise(req.body));
  });

  // Many volumes from one read of sysfs: what a gate job checking every attachment of a host needs.
  app.post<{ Params: { protocol: string }; Body: VolumePathsBatchRequest }>(ROUTES.volumePathsBatch, { schema: computeSchemas.volumePathsBatch }, async (req) => {
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

  app.post<{ Params: { protocol: string }; Querystring: { connector?: string }; Body: unknown }>(ROUTES.availableVolumes, { schema: computeSchemas.availableVolumes }, async (req) => {
    const c = await choose(req.params.protocol, req.query.connector);
    const body = req.body as Record<string, unknown> | undefined;
    const props = body && Object.keys(body).length > 0 ? c.normalise(body) : undefined;
    return { volumes: await c.getAllAvailableVolumes(props) };
  });

  app.post<{ Params: { protocol: string }; Querystring: { connector?: string }; Body: ConnectRequest }>(ROUTES.connect, { schema: computeSchemas.connect }, async (req) => {
    const c = await choose(req.params.protocol, req.query.connector);
    return c.connectVolume(c.normalise(req.body.properties), { multipath: req.body.multipath ?? false });
  });

  app.post<{ Params: { protocol: string }; Querystring: { connector?: string }; Body: DisconnectRequest }>(ROUTES.disconnect, { schema: computeSchemas.disconnect }, async (req) => {
    const c = await choose(req.params.protocol, req.query.connector);
    return c.disconnectVolume(c.normalise(req.body.properties), req.body.deviceInfo ?? null, { force: req.body.force ?? false, ignoreErrors: req.body.ignoreErrors ?? false });
  });

  app.get<{ Querystring: { record?: string } }>(ROUTES.inventory, { schema: computeSchemas.inventory }, async (req) => {
    if (req.query.record === '1') {
      // The snapshot and every read behind it: a unit-test fixture captured from this node.
      const { fs, recording } = recordingHostFs(realHostFs);
      return { snapshot: await takeSnapshot(fs), recording };
    }
    return takeSnapshot();
  });

  app.post<{ Body: DiffRequest }>(ROUTES.inventoryDiff, { schema: computeSchemas.inventoryDiff }, async (req) => diffSnapshots(req.body.before, await takeSnapshot()));

  app.post<{ Body: OrphansRequest }>(ROUTES.orphans, { schema: computeSchemas.orphans }, async (req) => {
    const v = identityFromProperties(pick(req.body.protocol).normalise(req.body.properties), req.body.wwid ?? null);
    const others = (req.body.stillAttached ?? []).map((o) => identityFromProperties(pick(o.protocol).normalise(o.properties)));
    const snapshot = await takeSnapshot();
    const orphans = await orphansWithTools(snapshot, v, others);
    return { clean: orphans.length === 0, orphans, volume: v };
  });

}
