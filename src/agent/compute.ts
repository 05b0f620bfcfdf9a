import { ensureFcoePorts } from '../system/fcoe.js';
import { availableParallelism } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { builtinConnectors } from '../connectors/builtin.js';
import { hostConnectorProperties } from '../connectors/host-properties.js';
import { ConnectorRegistry, type InstallRequest } from '../connectors/registry.js';
import type { Connector } from '../connectors/types.js';
import { appeared, diffSnapshots } from '../inventory/diff.js';
import { hostWideView } from '../inventory/hostwide.js';
import type { DmLine, HostSnapshot } from '../inventory/model.js';
import { oracleAnswer } from '../inventory/oracle.js';
import { fillScsiDetails } from '../inventory/read-scsi.js';
import { takeSnapshot } from '../inventory/snapshot.js';
import { pathsView } from '../inventory/paths-view.js';
import { readDmTables, readToolViews } from '../inventory/tools.js';
import { BrickError } from '../system/errors.js';
import { realHostFs, type HostFs } from '../system/hostfs.js';
import { recordingHostFs } from '../system/hostfs-record.js';
import { identityFromProperties, type VolumeIdentity } from '../volume/identity.js';
import { KeptBaselines } from './baselines.js';
import { phase, recordPhase } from './timing.js';
import type { Protocol } from '../volume/protocol.js';
import { ROUTES } from './api/paths.js';
import { computeSchemas } from './api/schemas/compute.js';
import type { ConnectRequest, DiffRequest, DisconnectRequest, HostCheckRequest, OrphansRequest, VolumePathsBatchRequest } from './api/types.js';


const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * The answers of the fetch-paths reads as JSON, written by JSON.stringify (native code) rather
 * than the route's compiled serializer, which under TCG runs as bytecode until V8 has optimised it
 * (30 ms of a first call with 81 volumes); each answer object is written once (an answer kept with
 * its view, see ConnectorBase.fromView, is the same object call after call). The routes' response
 * schemas still document the shape (/openapi.json), and the contract tests check it.
 */
const written = new WeakMap<object, string>();

function listReply(key: string, items: readonly object[]): string {
  let out = `{${JSON.stringify(key)}:[`;
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    let text = written.get(item);
    if (text === undefined) written.set(item, (text = JSON.stringify(item)));
    out += i === 0 ? text : `,${text}`;
  }
  return `${out}]}`;
}

/** The compute role's routes: the fetch-paths API over every connector, and the inventory. */
/**
 * `fcoeNetworks`: a lab compute's data networks, on which it brings up its FCoE ports (one
 * fabric each) before its first FC attach, whichever connector makes it: the lab's stand-in for
 * a host's FC HBAs. A host agent has its own HBAs, and none is made.
 */
export async function computeRoutes(app: FastifyInstance, opts: { connectorsDir?: string; fs?: HostFs; host?: { allowAttach: boolean }; fcoeNetworks?: string[]; ip?: string | null } = {}): Promise<void> {
  const hostFs = opts.fs ?? realHostFs;
  const all = builtinConnectors(hostFs);
  const pick = (p: string): Connector => all[p as Protocol];
  const registry = new ConnectorRegistry(opts.connectorsDir);
  /** brick-lab's own connector, or with ?connector=NAME an installed one (brick-lab validate). */
  const choose = (p: string, name: string | undefined): Promise<Connector> | Connector => {
    if (!name || name === 'builtin') return pick(p);
    if (opts.host) throw new BrickError('CONNECTOR_NOT_INSTALLED', `connector ${name}: a host agent runs brick-lab's own connectors only`, { hint: 'leave ?connector out (or say builtin); installed connectors are for lab nodes (brick-lab validate)' });
    return registry.get(name, p as Protocol);
  };
  // A host agent started without --allow-attach changes nothing on its host.
  const mayAttach = (what: string): void => {
    if (opts.host && !opts.host.allowAttach) throw new BrickError('AGENT_READ_ONLY', `${what}: this agent is read-only`, { hint: 'start brick-lab agent with --allow-attach to let it attach and detach volumes on this host' });
  };

  if (!opts.host) programRoutes(app, registry);

  app.get(ROUTES.connectors, { schema: computeSchemas.connectors }, async () => ({
    connectors: Object.values(all).map((c) => ({ protocol: c.protocol, searchPath: c.getSearchPath() })),
  }));

  // What a volume service needs to export a volume to this host (os-brick's connector properties).
  app.get<{ Querystring: { multipath?: boolean; enforce_multipath?: boolean } }>(ROUTES.connectorProperties, { schema: computeSchemas.connectorProperties }, async (req) =>
    hostConnectorProperties(hostFs, { ip: opts.ip ?? null, multipath: req.query.multipath === true, enforceMultipath: req.query.enforce_multipath === true }),
  );

  app.get<{ Params: { protocol: string }; Querystring: { connector?: string } }>(ROUTES.searchPath, { schema: computeSchemas.searchPath }, async (req) => ({
    searchPath: (await choose(req.params.protocol, req.query.connector)).getSearchPath(),
  }));

  app.post<{ Params: { protocol: string }; Querystring: { connector?: string }; Body: unknown }>(ROUTES.volumePaths, { schema: computeSchemas.volumePaths }, async (req) => {
    const c = await choose(req.params.protocol, req.query.connector);
    return c.getVolumePaths(c.normalise(req.body));
  });

  // Many volumes from one read of sysfs: what a gate job checking every attachment of a host needs.
  app.post<{ Params: { protocol: string }; Body: VolumePathsBatchRequest }>(ROUTES.volumePathsBatch, { schema: computeSchemas.volumePathsBatch }, async (req, reply) => {
    const c = pick(req.params.protocol);
    const props = await phase(req, 'normalise', () => req.body.volumes.map((v, i) => {
      try {
        return c.normalise(v);
      } catch (e) {
        if (e instanceof Error) e.message = `volumes[${i}].${e.message}`;
        throw e;
      }
    }));
    // One view of the host for every volume: kept from an earlier call while the kernel shows no
    // change ('kept'), else read now ('snapshot').
    const t0 = performance.now();
    const view = pathsView(hostFs).take({ wwids: props.some((p) => (p.protocol === 'iscsi' || p.protocol === 'fc') && Boolean(p.deviceWwid)) });
    recordPhase(req, view.kept ? 'kept' : 'snapshot', performance.now() - t0);
    const results = await phase(req, 'answer', () => Promise.all(props.map((p) => c.getVolumePaths(p, view.snapshot))));
    return reply.type(JSON_TYPE).send(await phase(req, 'serialize', () => listReply('results', results)));
  });

  app.post<{ Params: { protocol: string }; Querystring: { connector?: string }; Body: unknown }>(ROUTES.availableVolumes, { schema: computeSchemas.availableVolumes }, async (req, reply) => {
    const c = await choose(req.params.protocol, req.query.connector);
    const body = req.body as Record<string, unknown> | undefined;
    const props = body && Object.keys(body).length > 0 ? c.normalise(body) : undefined;
    const volumes = await phase(req, 'answer', () => c.getAllAvailableVolumes(props));
    return reply.type(JSON_TYPE).send(await phase(req, 'serialize', () => listReply('volumes', volumes)));
  });

  app.post<{ Params: { protocol: string }; Querystring: { connector?: string }; Body: ConnectRequest }>(ROUTES.connect, { schema: computeSchemas.connect }, async (req, reply) => {
    mayAttach('connect');
    const c = await choose(req.params.protocol, req.query.connector);
    const props = c.normalise(req.body.properties);
    // A caller that stops waiting (its timeout, a CSI call's deadline) never learns of the device
    // an attach that ends later makes, and so never detaches it: the connection closing before
    // the answer is sent is that caller leaving.
    let leftAt: number | null = null;
    const started = performance.now();
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) leftAt ??= performance.now() - started;
    });
    if (props.protocol === 'fc' && opts.fcoeNetworks && opts.fcoeNetworks.length > 0) await phase(req, 'fabric', () => ensureFcoePorts(opts.fcoeNetworks!));
    // Read by brick-lab's own connector (the kernel's view, for any connector's volume).
    const own = pick(req.params.protocol);
    const before = (await own.getVolumePaths(own === c ? props : own.normalise(req.body.properties))).devices.length > 0;
    const d = await c.connectVolume(props, { multipath: req.body.multipath ?? false });
    if (leftAt === null && req.raw.socket?.destroyed === true) leftAt = performance.now() - started;
    if (leftAt !== null && !before) {
      // Undone as a forced detach would: nobody holds what it made. A volume that was attached
      // before this connect is someone else's, and stays.
      const undo = await c.disconnectVolume(props, d, { force: true, ignoreErrors: true }).catch((e: Error) => ({ removed: [], errors: [e.message] }));
      process.stderr.write(
        `brick-lab agent: ${props.protocol} connect of ${d.path} ended ${((performance.now() - started) / 1000).toFixed(1)} s after it began, its caller gone since ${(leftAt / 1000).toFixed(1)} s: undone (removed ${undo.removed.join(', ') || 'nothing'}${undo.errors.length > 0 ? `; errors: ${undo.errors.join('; ')}` : ''})\n`,
      );
    }
    return d;
  });

  app.post<{ Params: { protocol: string }; Querystring: { connector?: string }; Body: DisconnectRequest }>(ROUTES.disconnect, { schema: computeSchemas.disconnect }, async (req) => {
    mayAttach('disconnect');
    const c = await choose(req.params.protocol, req.query.connector);
    return c.disconnectVolume(c.normalise(req.body.properties), req.body.deviceInfo ?? null, { force: req.body.force ?? false, ignoreErrors: req.body.ignoreErrors ?? false });
  });

  app.get<{ Querystring: { record?: string } }>(ROUTES.inventory, { schema: computeSchemas.inventory }, async (req) => {
    const dmTables = await dmTablesIfAny();
    if (req.query.record === '1') {
      // The snapshot and every read behind it: a unit-test fixture captured from this node.
      const { fs, recording } = recordingHostFs(realHostFs);
      return { snapshot: await takeSnapshot(fs, { dmTables }), recording };
    }
    return takeSnapshot(undefined, { dmTables });
  });

  app.post<{ Body: DiffRequest }>(ROUTES.inventoryDiff, { schema: computeSchemas.inventoryDiff }, async (req) => diffSnapshots(req.body.before, await takeSnapshot()));

  // A baseline kept here is named by its id: a host with hundreds of volumes has a snapshot of
  // hundreds of kilobytes, which a check would otherwise send back and the agent parse again.
  const baselines = new KeptBaselines();
  app.post(ROUTES.baselines, { schema: computeSchemas.takeBaseline }, async (_req, reply) => {
    const snapshot = await fullSnapshot();
    return reply.code(201).send({ id: baselines.keep(snapshot), snapshot });
  });
  /** The baseline a request names: the snapshot it sends, or one kept here by id. */
  const baselineOf = (body: { baseline?: HostSnapshot; baselineId?: string }): HostSnapshot | null => {
    if (body.baseline && body.baselineId) throw new BrickError('BAD_REQUEST', 'give the baseline or its id (baselineId), not both');
    if (body.baselineId) return baselines.get(body.baselineId);
    return body.baseline ? checkedBaseline(body.baseline) : null;
  };

  app.post<{ Body: OrphansRequest }>(ROUTES.orphans, { schema: computeSchemas.orphans }, async (req) => {
    // A baseline it cannot have is refused before anything is read.
    const baseline = baselineOf(req.body);
    const { v, others, known, alsoDetached } = await phase(req, 'volumes', () => ({
      v: identityFromProperties(pick(req.body.protocol).normalise(req.body.properties), req.body.wwid ?? null),
      others: identities(req.body.stillAttached),
      known: { devices: req.body.devices ?? [] },
      alsoDetached: (req.body.detachedSince ?? []).map((o) => ({ volume: identityFromProperties(pick(o.protocol).normalise(o.properties), o.wwid ?? null), known: { devices: o.devices ?? [] } })),
    }));
    // multipathd's paths over its socket beside the snapshot where there is a CPU for it
    // (alongside). Its maps and dmsetup status only once the snapshot shows a multipath map: a
    // map multipathd lists is a dm device, which sysfs shows (one it has not yet dropped after a
    // removal is gone from the kernel, and nothing is left of it on the host).
    const [snapshot, mp] = await alongside(
      () => phase(req, 'snapshot', oracleSnapshot),
      () => phase(req, 'tools', () => readToolViews({ multipathd: true })),
    );
    const tools = snapshot.multipathMaps.length > 0 ? { ...mp, ...(await phase(req, 'maps', () => readToolViews({ multipathdMaps: true, dmStatus: true }))), multipathPaths: mp.multipathPaths } : mp;
    return oracleAnswer({ now: snapshot, tools, volume: v, known, stillAttached: others, baseline, alsoDetached, fs: realHostFs }, (name, fn) => phase(req, name, fn));
  });

  app.post<{ Body: HostCheckRequest }>(ROUTES.hostCheck, { schema: computeSchemas.hostCheck }, async (req) => {
    const baseline = baselineOf(req.body);
    if (!baseline) throw new BrickError('BAD_REQUEST', 'the host-wide view needs a baseline: send the snapshot (baseline) or the id of one this agent keeps (baselineId)', { hint: 'take one with POST /v1/inventory/baselines before the detach' });
    const others = await phase(req, 'volumes', () => identities(req.body.stillAttached));
    // The host-wide view needs multipathd's paths only (the rest is sysfs and the dm tables).
    const [snapshot, tools] = await alongside(
      () => phase(req, 'snapshot', oracleSnapshot),
      () => phase(req, 'tools', () => readToolViews({ multipathd: true })),
    );
    const view = await phase(req, 'hostwide', () => {
      const diff = diffSnapshots(baseline, snapshot);
      fillScsiDetails(realHostFs, snapshot.scsiDevices, appeared(diff));
      return hostWideView({ baseline, now: snapshot, diff, tools, stillAttached: others });
    });
    return { clean: view.orphans.length === 0 && view.collateral.length === 0, ...view };
  });

  /**
   * The identities of the volumes a request declares attached. A gate job declares the same
   * hundreds of volumes check after check: each one's identity is kept by its properties as sent
   * (at most 4096, then all are forgotten), so only the volumes not seen before are normalised.
   */
  const seen = new Map<string, VolumeIdentity>();
  // The same list again (a gate job checking after each detach) is one lookup: one JSON.stringify
  // of the whole list costs half of one per volume.
  const lists = new Map<string, VolumeIdentity[]>();
  const identities = (list: Array<{ protocol: string; properties: unknown }> | undefined): VolumeIdentity[] => {
    if (!list || list.length === 0) return [];
    const whole = JSON.stringify(list);
    const hit = lists.get(whole);
    if (hit) return hit;
    const ids = eachIdentity(list);
    if (lists.size >= 8) lists.clear();
    lists.set(whole, ids);
    return ids;
  };
  const eachIdentity = (list: Array<{ protocol: string; properties: unknown }>): VolumeIdentity[] =>
    list.map((o) => {
      const key = `${o.protocol}\n${JSON.stringify(o.properties)}`;
      let id = seen.get(key);
      if (!id) {
        id = identityFromProperties(pick(o.protocol).normalise(o.properties));
        if (seen.size >= 4096) seen.clear();
        seen.set(key, id);
      }
      return id;
    });
}

/**
 * The snapshot and multipathd's answer, side by side on a host with more than one CPU, one after
 * the other on a host with one (a lab guest): there multipathd, formatting hundreds of paths, and
 * its relay only take the CPU from the snapshot's reads, and together they took longer than in
 * turn (with 257 paths under TCG: 127 ms for both against 56 + 17 ms).
 */
async function alongside<A, B>(first: () => Promise<A>, second: () => Promise<B>): Promise<[A, B]> {
  if (availableParallelism() > 1) return Promise.all([first(), second()]);
  const a = await first();
  return [a, await second()];
}

/** `dmsetup table` when the host has a dm device (one process), else nothing to read. */
async function dmTablesIfAny(): Promise<DmLine[]> {
  return realHostFs.list('/sys/block').some((b) => b.startsWith('dm-')) ? readDmTables() : [];
}

/** A full snapshot with the dm tables. */
async function fullSnapshot(): Promise<HostSnapshot> {
  return takeSnapshot(undefined, { dmTables: await dmTablesIfAny() });
}

/** The same without the SCSI devices' descriptions, for the oracle, which reads them only for the devices it names. */
async function oracleSnapshot(): Promise<HostSnapshot> {
  return takeSnapshot(undefined, { dmTables: await dmTablesIfAny(), details: false });
}

/** A baseline sent back by a client: a full snapshot of this shape, or a coded 400. */
function checkedBaseline(b: HostSnapshot): HostSnapshot {
  const lists = ['scsiDevices', 'iscsiSessions', 'iscsiNodes', 'nvmeControllers', 'nvmeNamespaces', 'blockDevices', 'links', 'multipathMaps'] as const;
  if (b.scope !== 'full' || typeof b.takenAt !== 'string' || lists.some((k) => !Array.isArray(b[k]))) {
    throw new BrickError('BAD_REQUEST', 'the baseline must be a full snapshot as GET /v1/inventory answers it', { hint: 'take it with GET /v1/inventory before the detach and send it back unchanged' });
  }
  return b;
}

/** Connector programs installed on a lab node (brick-lab validate): a vendor's code, never on a host agent. */
function programRoutes(app: FastifyInstance, registry: ConnectorRegistry): void {
  app.put<{ Params: { name: string }; Body: InstallRequest }>(ROUTES.connectorProgram, { schema: computeSchemas.installConnector }, async (req, reply) => reply.code(201).send(await registry.install(req.params.name, req.body)));

  app.get(ROUTES.connectorPrograms, { schema: computeSchemas.listConnectorPrograms }, async () => ({ connectors: registry.list() }));

  app.delete<{ Params: { name: string } }>(ROUTES.connectorProgram, { schema: computeSchemas.deleteConnectorProgram }, async (req, reply) => {
    if (!(await registry.uninstall(req.params.name))) {
      throw new BrickError('CONNECTOR_NOT_INSTALLED', `no connector ${JSON.stringify(req.params.name)} is installed on this node`);
    }
    return reply.code(204).send();
  });
}
