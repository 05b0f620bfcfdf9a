import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTES } from '../../src/agent/api/paths.js';
import type { JsonSchema, RouteSchema } from '../../src/agent/api/schemas/common.js';
import { computeSchemas } from '../../src/agent/api/schemas/compute.js';
import { systemSchemas } from '../../src/agent/api/schemas/system.js';
import { targetSchemas } from '../../src/agent/api/schemas/targets.js';
import type * as Wire from '../../src/agent/api/types.js';
import { buildAgent } from '../../src/agent/server.js';
import { builtinConnectors } from '../../src/connectors/builtin.js';
import { diffSnapshots } from '../../src/inventory/diff.js';
import { hostWideView } from '../../src/inventory/hostwide.js';
import { judgeVolume } from '../../src/inventory/orphans.js';
import { iscsiConnectionInfo, nvmeofConnectionInfo } from '../../src/osbrick/index.js';
import { ERROR_CATALOGUE } from '../../src/system/errors.js';
import { loadInventoryFixture } from './inventory-fixtures.js';
import { unitAgentOptions } from './unit-agents.js';

/**
 * The agent's contract: every route declares its body and its replies, and a reply schema (which
 * is also how fastify serialises the reply) drops nothing the handler answered.
 */
const TOKEN = 'Y29udHJhY3QtdGVzdHMtbGFiLXRva2VuLWZvci11bml0LXRlc3Rz';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const ISCSI = { target_portal: '10.10.1.10:3260', target_iqn: 'iqn.2026-11.io.brick-lab:unit.vol', target_lun: 1 };
/** POST routes that take no body. */
const BODILESS = new Set(['POST /v1/agent/restart', 'POST /v1/targets/restart', 'POST /v1/targets/cleanup', 'POST /v1/local-disks', 'POST /v1/inventory/baselines']);

interface Operation {
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<string, { description: string; content?: Record<string, { schema: { properties?: { code?: { enum?: string[] } } } }> }>;
}

let compute: FastifyInstance;
let target: FastifyInstance;
let dir: string;
/** What each handler answered, before serialisation, by "METHOD url". */
const answered = new Map<string, unknown>();

async function agent(opts: Parameters<typeof buildAgent>[0]): Promise<FastifyInstance> {
  const app = await buildAgent(opts);
  app.addHook('preSerialization', async (req, _reply, payload) => {
    answered.set(`${req.method} ${req.url}`, JSON.parse(JSON.stringify(payload)));
    return payload;
  });
  await app.ready();
  return app;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'brick-contract-'));
  const opts = unitAgentOptions(TOKEN, { connectorsDir: join(dir, 'connectors') });
  compute = await agent(opts.compute);
  target = await agent(opts.target);
});

afterAll(async () => {
  await compute?.close();
  await target?.close();
  await rm(dir, { recursive: true, force: true });
});

async function operations(app: FastifyInstance): Promise<Array<[string, Operation]>> {
  const doc = (await app.inject({ method: 'GET', url: ROUTES.openapi })).json() as { paths: Record<string, Record<string, Operation>> };
  return Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([m, op]) => [`${m.toUpperCase()} ${path}`, op] as [string, Operation]));
}

describe('the OpenAPI document', () => {
  it('lists every route once: 42 across the two roles, with /openapi.json itself 43', async () => {
    const all = new Set([...(await operations(compute)), ...(await operations(target))].map(([k]) => k));
    expect(all.size).toBe(42);
  });

  it('gives every POST and PUT with a body its body schema, and every route a success reply schema', async () => {
    for (const app of [compute, target]) {
      for (const [route, op] of await operations(app)) {
        const method = route.split(' ')[0]!;
        if ((method === 'POST' || method === 'PUT') && !BODILESS.has(route)) expect(op.requestBody, `${route} body`).toBeDefined();
        const ok = Object.entries(op.responses).filter(([code]) => code.startsWith('2'));
        expect(ok, `${route} success replies`).toHaveLength(1);
        const [code, reply] = ok[0]!;
        if (code === '204') expect(reply.content, route).toBeUndefined();
        else expect(reply.content?.['application/json']?.schema, `${route} reply schema`).toBeDefined();
      }
    }
  });

  it('lists the error codes each route may answer, from the catalogue, under their status', async () => {
    for (const app of [compute, target]) {
      for (const [route, op] of await operations(app)) {
        const errors = Object.entries(op.responses).filter(([code]) => !code.startsWith('2'));
        expect(errors.length, `${route} errors`).toBeGreaterThan(0);
        for (const [status, reply] of errors) {
          const codes = reply.content!['application/json']!.schema.properties!.code!.enum!;
          expect(codes.length).toBeGreaterThan(0);
          for (const c of codes) expect(ERROR_CATALOGUE[c as keyof typeof ERROR_CATALOGUE]?.status, `${route} ${c}`).toBe(Number(status));
        }
      }
    }
    const connect = (await operations(compute)).find(([r]) => r === 'POST /v1/connectors/{protocol}/connect')![1];
    expect(connect.responses['400']!.content!['application/json']!.schema.properties!.code!.enum).toEqual(expect.arrayContaining(['BAD_IQN', 'BAD_PORTAL', 'WRONG_VOLUME_TYPE']));
    expect(connect.responses['401']).toBeDefined();
  });
});

describe('replies of real handlers, serialised through their schemas', () => {
  /** The reply as sent equals what the handler answered: the schema dropped and coerced nothing. */
  async function same(app: FastifyInstance, method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown, status = 200): Promise<unknown> {
    const r = await app.inject({ method, url, headers: AUTH, ...(payload !== undefined ? { payload: payload as Record<string, unknown> } : {}) });
    expect(r.statusCode, `${method} ${url}: ${r.body}`).toBe(status);
    const sent: unknown = r.body ? r.json() : undefined;
    if (status !== 204) expect(answered.has(`${method} ${url}`), `${method} ${url} was answered`).toBe(true);
    expect(sent, `${method} ${url}`).toEqual(answered.get(`${method} ${url}`));
    return sent;
  }

  /** A reply the handler wrote as JSON itself: sent as JSON, fitting the route's reply schema. */
  async function writtenReply(app: FastifyInstance, url: string, payload: Record<string, unknown>, schema: RouteSchema): Promise<unknown> {
    const r = await app.inject({ method: 'POST', url, headers: AUTH, payload });
    expect(r.statusCode, `${url}: ${r.body}`).toBe(200);
    expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(answered.has(`POST ${url}`), `${url} went through the serializer`).toBe(false);
    const sent: unknown = r.json();
    const fits = new Ajv({ strict: false }).compile(schema.response['200'] as object);
    expect(fits(sent), `${url}: ${JSON.stringify(fits.errors)}`).toBe(true);
    return sent;
  }

  it('health, exec (a result and a missing program), openapi', async () => {
    const h = (await same(compute, 'GET', ROUTES.health)) as Wire.HealthReport;
    expect(Object.keys(h.tools).length).toBeGreaterThan(0);
    const x = (await same(compute, 'POST', ROUTES.exec, { argv: ['sh', '-c', 'echo out; echo err >&2; exit 3'] })) as Wire.ExecReply;
    expect(x).toMatchObject({ exitCode: 3, stdout: 'out\n', stderr: 'err\n', failed: true });
    expect(typeof x.command).toBe('string');
    await same(compute, 'POST', ROUTES.exec, { argv: ['/nonexistent/brick-lab-no-such-program'] });
    await same(target, 'GET', ROUTES.health);
    // An in-process agent has no agent loop to start it again: it refuses, as catalogued.
    const refused = (await same(compute, 'POST', ROUTES.restartAgent, {}, 409)) as Wire.ErrorReply;
    expect(refused.code).toBe('AGENT_NOT_RESTARTABLE');
    // Nor has it a reboot script: it refuses to reboot, as catalogued.
    const noReboot = (await same(compute, 'POST', ROUTES.reboot, { hard: true }, 409)) as Wire.ErrorReply;
    expect(noReboot.code).toBe('NODE_NOT_REBOOTABLE');
  });

  it('the connectors: list, search paths, volume paths, a batch, available volumes', async () => {
    await same(compute, 'GET', ROUTES.connectors);
    for (const p of ['iscsi', 'nvmeof', 'local']) await same(compute, 'GET', `/v1/connectors/${p}/search-path`);
    await same(compute, 'POST', '/v1/connectors/iscsi/volume-paths', ISCSI);
    await same(compute, 'POST', '/v1/connectors/local/volume-paths', { device_path: '/dev/null' });
    // The fetch-paths reads write their own JSON (JSON.stringify, each answer once): the reply is
    // JSON, fits the route's reply schema, and is what the connector answers when asked directly.
    const iscsi = builtinConnectors().iscsi;
    const batch = await writtenReply(compute, '/v1/connectors/iscsi/volume-paths-batch', { volumes: [ISCSI, { driver_volume_type: 'iscsi', data: ISCSI }] }, computeSchemas.volumePathsBatch);
    const direct = await iscsi.getVolumePaths(iscsi.normalise(ISCSI));
    expect(batch).toEqual({ results: [direct, direct] });
    const available = await writtenReply(compute, '/v1/connectors/iscsi/available-volumes', {}, computeSchemas.availableVolumes);
    expect(available).toEqual({ volumes: JSON.parse(JSON.stringify(await iscsi.getAllAvailableVolumes())) });
  });

  it('installed connectors: install, list, remove', async () => {
    await same(compute, 'PUT', '/v1/connectors/programs/contract', { content: Buffer.from('#!/bin/sh\nexit 1\n').toString('base64'), kind: 'program', timeoutMs: 5000 }, 201);
    const list = (await same(compute, 'GET', ROUTES.connectorPrograms)) as Wire.InstalledConnectorsReply;
    expect(list.connectors.map((c) => c.name)).toEqual(['contract']);
    await same(compute, 'DELETE', '/v1/connectors/programs/contract', undefined, 204);
  });

  it('the inventory: a snapshot, a recorded one, a diff', async () => {
    const snap = (await same(compute, 'GET', ROUTES.inventory)) as Wire.HostSnapshot;
    const recorded = (await same(compute, 'GET', `${ROUTES.inventory}?record=1`)) as Wire.RecordedInventoryReply;
    expect(Object.keys(recorded.recording.exists).length + Object.keys(recorded.recording.list).length).toBeGreaterThan(0);
    await same(compute, 'POST', ROUTES.inventoryDiff, { before: loadInventoryFixture('inventory-attached.json').snapshot });
    await same(compute, 'POST', ROUTES.inventoryDiff, { before: snap });
  });

  it('error answers, through the routes\' error schemas', async () => {
    const e = (await same(compute, 'POST', '/v1/connectors/iscsi/connect', { properties: { ...ISCSI, target_iqn: 'iqn.2026-11.lab:x' } }, 400)) as Wire.ErrorReply;
    expect(e.code).toBe('BAD_IQN');
    expect(e.hint).toBeTruthy();
    await same(target, 'GET', '/v1/targets/volumes/nope', undefined, 404);
    await same(target, 'POST', '/v1/targets/networks/path-z', { up: true }, 400);
    await same(compute, 'DELETE', '/v1/connectors/programs/nope', undefined, 404);
  });

  it('the target: no volumes yet', async () => {
    expect(await same(target, 'GET', ROUTES.volumes)).toEqual({ volumes: [] });
  });
});

/**
 * The routes that need a lab (attach, LIO, nvmet, scsi_debug): their reply schemas serialise
 * the real shapes those handlers answer, built here as the domain code builds them.
 */
describe('reply schemas of routes that need a lab keep every field', () => {
  const serialised = async (schema: RouteSchema, status: number, body: unknown): Promise<unknown> => {
    const app = Fastify();
    app.get('/', { schema: { response: schema.response } }, async (_req, reply) => reply.code(status).send(body));
    const r = await app.inject({ method: 'GET', url: '/' });
    await app.close();
    expect(r.statusCode, r.body).toBe(status);
    return r.json();
  };
  const keeps = async (schema: RouteSchema, body: unknown, status = 200): Promise<void> => {
    expect(await serialised(schema, status, body)).toEqual(JSON.parse(JSON.stringify(body)));
  };

  const portals = [{ network: 'path-a', address: '10.10.1.10', port: 3260 }, { network: 'path-b', address: '10.10.2.10', port: 3260 }];
  const iscsiVolume: Wire.TargetVolume = {
    name: 'v1', protocol: 'iscsi', id: '0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9', sizeMiB: 8,
    backing: { kind: 'fileio', file: '/var/lib/brick-lab/volumes/v1.img' }, portals,
    iscsi: { iqn: 'iqn.2026-11.io.brick-lab:lab.v1', lun: 0, unitSerial: '0f1e2d3c4b5a4978', wwid: '36001405', initiators: ['iqn.2026-11.io.brick-lab:c1'], demoMode: false, chap: true },
    connectionInfo: iscsiConnectionInfo({ id: 'v1', iqn: 'iqn.2026-11.io.brick-lab:lab.v1', lun: 0, portals: ['10.10.1.10:3260', '10.10.2.10:3260'], chap: { username: 'u', password: 'p' } }),
    createdAt: '2026-11-24T22:49:18.374Z',
  };
  const nvmeVolume: Wire.TargetVolume = {
    name: 'n1', protocol: 'nvmeof', id: 'a4b3c2d1-e0f9-4978-8695-0f1e2d3c4b5a', sizeMiB: 16,
    backing: { kind: 'block', file: '/var/lib/brick-lab/volumes/n1.img', device: '/dev/loop0' }, portals: portals.map((p) => ({ ...p, port: 4420 })),
    nvme: { nqn: 'nqn.2026-11.io.brick-lab:lab.n1', nsid: 1, uuid: 'a4b3c2d1-e0f9-4978-8695-0f1e2d3c4b5a', nguid: 'a4b3c2d1e0f949788695', hosts: [], allowAnyHost: true, anaGroup: 1 },
    connectionInfo: nvmeofConnectionInfo({ nqn: 'nqn.2026-11.io.brick-lab:lab.n1', nsid: 1, uuid: 'a4b3c2d1-e0f9-4978-8695-0f1e2d3c4b5a', nguid: 'a4b3c2d1e0f949788695', portals: [{ address: '10.10.1.10', port: 4420 }], hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:1' }),
    createdAt: '2026-11-24T22:49:18.374Z',
  };

  it('connect, disconnect, available volumes, orphans', async () => {
    const device: Wire.DeviceInfo = { type: 'block', path: '/dev/dm-0', devices: ['sda', 'sdb'], multipath: true, identity: '36001405aa' };
    await keeps(computeSchemas.connect, device);
    await keeps(computeSchemas.connect, { ...device, multipath: false, identity: null });
    // An installed module's reply (vendor code) passes as it is, a field short or one more.
    await keeps(computeSchemas.connect, { type: 'block', path: '/dev/sdb', devices: ['sdb'], multipath: false, vendor: { lun: 1 } });
    await keeps(computeSchemas.volumePaths, { paths: ['/dev/sdb'] });
    await keeps(computeSchemas.disconnect, { removed: ['sda', 'session1'], errors: ['flush failed'] } satisfies Wire.DisconnectReply);
    await keeps(computeSchemas.disconnect, { removed: ['scsi device sda'], errors: [], left: ['holder dm-1 (name brick-held) on sda'] } satisfies Wire.DisconnectReply);
    const available: Wire.AvailableVolumesReply = {
      volumes: [
        { protocol: 'iscsi', identity: { wwid: '36001405aa', target: 'iqn.2026-11.io.brick-lab:lab.v1', lun: 0, portals: ['10.10.1.10:3260'] }, paths: ['/dev/disk/by-path/x'], devices: ['sda'] },
        { protocol: 'nvmeof', identity: { uuid: 'a4b3c2d1-e0f9-4978-8695-0f1e2d3c4b5a', nguid: null, nsid: 1, target: 'nqn.2026-11.io.brick-lab:lab.n1' }, paths: ['/dev/nvme0n1'], devices: ['nvme0n1'] },
      ],
    };
    await keeps(computeSchemas.availableVolumes, available);
    // Volume a of a host where it is still attached: everything of it is reported.
    const fx = loadInventoryFixture('inventory-attached.json');
    const a = fx.volumes.a;
    const volume = { protocol: 'iscsi' as const, iscsi: { iqn: a.iscsi!.iqn, portals: a.portals.map((p) => `${p.address}:${p.port}`), lun: a.iscsi!.lun, wwid: a.iscsi!.wwid } };
    const { orphans, kept } = judgeVolume(fx.snapshot, volume, []);
    expect(orphans.length).toBeGreaterThan(0);
    expect(kept.length).toBeGreaterThan(0);
    await keeps(computeSchemas.orphans, { clean: false, orphans, kept, volume } satisfies Wire.OrphansReply);
    // With a baseline: the host-wide view, here the leftovers capture against the attached one.
    const left = loadInventoryFixture('inventory-leftovers.json');
    const hostWide = hostWideView({ baseline: fx.snapshot, now: left.snapshot, detached: [{ volume }] });
    expect(hostWide.collateral.length).toBeGreaterThan(0);
    await keeps(computeSchemas.orphans, { clean: false, orphans, kept, volume, hostWide } satisfies Wire.OrphansReply);
    await keeps(computeSchemas.hostCheck, { clean: false, ...hostWide } satisfies Wire.HostCheckReply);
    const nvme = { protocol: 'nvmeof' as const, nvme: { nqn: 'nqn.x', portals: ['10.10.1.10:4420'], nsid: null, uuid: null, nguid: null } };
    await keeps(computeSchemas.orphans, { clean: true, orphans: [], kept: [], volume: nvme } satisfies Wire.OrphansReply);
    await keeps(computeSchemas.orphans, { clean: true, orphans: [], kept: [], volume: { protocol: 'local', local: { device: '/dev/sdc', wwid: null } } } satisfies Wire.OrphansReply);
  });

  it('inventory snapshots with every collection, and their diff', async () => {
    const attached = loadInventoryFixture('inventory-attached.json');
    const left = loadInventoryFixture('inventory-leftovers.json');
    await keeps(computeSchemas.inventory, attached.snapshot);
    await keeps(computeSchemas.inventory, loadInventoryFixture('inventory-stacked.json').snapshot);
    await keeps(computeSchemas.inventory, { snapshot: left.snapshot, recording: left.recording } satisfies Wire.RecordedInventoryReply);
    const diff = diffSnapshots(left.snapshot, attached.snapshot);
    expect(diff.added.length + diff.removed.length).toBeGreaterThan(0);
    await keeps(computeSchemas.inventoryDiff, diff);
    await keeps(computeSchemas.volumePathsBatch, { results: [{ paths: ['/dev/disk/by-path/x'], devices: ['sda'] }, { paths: [], devices: [] }] } satisfies Wire.VolumePathsBatchReply);
  });

  it('target volumes and the fault knobs', async () => {
    await keeps(targetSchemas.createIscsiVolume, iscsiVolume, 201);
    await keeps(targetSchemas.createNvmeVolume, nvmeVolume, 201);
    await keeps(targetSchemas.listVolumes, { volumes: [iscsiVolume, nvmeVolume] } satisfies Wire.VolumesReply);
    await keeps(targetSchemas.getVolume, nvmeVolume);
    await keeps(targetSchemas.deleteVolume, { deleted: 'v1' } satisfies Wire.DeleteVolumeReply);
    await keeps(targetSchemas.unmap, { volume: 'v1', removed: 2 } satisfies Wire.UnmapReply);
    await keeps(targetSchemas.getSignature, { volume: 'v1', signature: { volume: 'v1', id: '0f1e2d3c' } } satisfies Wire.SignatureReply);
    await keeps(targetSchemas.putSignature, { volume: 'v1', signature: null } satisfies Wire.SignatureReply);
    await keeps(targetSchemas.setNetwork, { network: 'path-b', up: false } satisfies Wire.NetworkReply);
    await keeps(targetSchemas.setAna, { network: 'path-b', group: 1, state: 'inaccessible' } satisfies Wire.AnaReply);
    await keeps(targetSchemas.restart, { lioErrors: [{ object: 'lun', error: 'busy' }, 'text'], nvmetSubsystems: 2 } satisfies Wire.RestartReply);
    await keeps(targetSchemas.cleanup, { removed: ['subsystem nqn.x', 'file v1.img'] } satisfies Wire.CleanupReply);
    const leftovers: Wire.LeftoversReply = {
      lio: { targets: [{ iqn: 'iqn.2026-11.io.brick-lab:lab.v1', luns: [{ lun: 0, backstore: 'v1' }], portals: ['10.10.1.10:3260'], acls: [] }], backstores: [{ name: 'v1', plugin: 'fileio' }], storageObjects: 1 },
      nvmet: {
        subsystems: [{ nqn: 'nqn.x', allowAnyHost: false, hosts: ['nqn.h'], namespaces: [{ nsid: 1, devicePath: '/dev/loop0', uuid: 'u', nguid: 'g', enabled: true, anaGroup: 1 }] }],
        ports: [{ id: 1, trtype: 'tcp', traddr: '10.10.1.10', trsvcid: '4420', subsystems: ['nqn.x'], anaGroups: [{ group: 1, state: 'optimized' }] }],
        hosts: ['nqn.h'],
      },
      loopDevices: ['/dev/loop0 /var/lib/brick-lab/volumes/n1.img'],
      files: ['n1.img'],
    };
    await keeps(targetSchemas.leftovers, leftovers);
  });

  it('an agent restart', async () => {
    await keeps(systemSchemas.restartAgent, { pid: 4242, restarting: true } satisfies Wire.RestartAgentReply, 202);
  });

  it("the agent's memory", async () => {
    await keeps(systemSchemas.agentMemory, {
      collected: true,
      memory: { rss: 71_000_000, heapTotal: 24_000_000, heapUsed: 14_000_000, external: 2_000_000, arrayBuffers: 100_000 },
      heapSpaces: [{ name: 'new_space', sizeBytes: 1_048_576, usedBytes: 4096 }],
    } satisfies Wire.AgentMemoryReply);
  });

  it('a reboot', async () => {
    await keeps(systemSchemas.reboot, { bootId: '6c1f0a4e-8d6b-4f7e-9a51-2b3c4d5e6f70', hard: true } satisfies Wire.RebootReply, 202);
  });

  it('an outage', async () => {
    const r: Wire.OutageReply = { down: [{ network: 'path-a', until: '2026-12-02T17:00:00.000Z' }] };
    await keeps(systemSchemas.startOutage, r);
    await keeps(systemSchemas.endOutage, { down: [] } satisfies Wire.OutageReply);
  });

  it('local disks', async () => {
    const disk: Wire.LocalDisk = { host: 3, hctl: '3:0:0:0', device: '/dev/sdc', wwid: '35333333000001f40', sizeBytes: 8388608 };
    await keeps(systemSchemas.addLocalDisk, disk, 201);
    await keeps(systemSchemas.localDisks, { disks: [disk, { ...disk, host: 4, device: null, wwid: null, sizeBytes: null }] } satisfies Wire.LocalDisksReply);
    await keeps(systemSchemas.removeLocalDisk, { removed: ['sdc'] } satisfies Wire.RemoveLocalDiskReply);
  });

  it('every route schema is valid JSON Schema (the agent compiles them without checking: validateSchema false)', () => {
    const meta = new Ajv({ strict: false });
    const all: Array<[string, RouteSchema]> = [...Object.entries(computeSchemas), ...Object.entries(targetSchemas), ...Object.entries(systemSchemas)];
    let checked = 0;
    for (const [name, schema] of all) {
      const parts: Array<[string, unknown]> = [
        ...(['body', 'querystring', 'params'] as const).flatMap((k) => ((schema as unknown as Record<string, unknown>)[k] ? [[k, (schema as unknown as Record<string, unknown>)[k]] as [string, unknown]] : [])),
        ...Object.entries(schema.response).map(([status, s]) => [`response ${status}`, s] as [string, unknown]),
      ];
      for (const [part, s] of parts) {
        expect(meta.validateSchema(s as object), `${name} ${part}: ${meta.errorsText(meta.errors)}`).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(100);
    // And the check itself can fail: a schema with a wrong type name is refused.
    expect(meta.validateSchema({ type: 'object', properties: { a: { type: 'intger' } } })).toBe(false);
  });

  it('every route schema answers errors as {code, message, hint}', async () => {
    const all: Array<[string, RouteSchema]> = [...Object.entries(computeSchemas), ...Object.entries(targetSchemas), ...Object.entries(systemSchemas)];
    expect(all).toHaveLength(42);
    for (const [name, schema] of all) {
      const statuses = Object.keys(schema.response).filter((s) => !s.startsWith('2'));
      expect(statuses.length, name).toBeGreaterThan(0);
      for (const s of statuses) {
        const body = { code: ((schema.response[s] as JsonSchema & { properties: { code: { enum: string[] } } }).properties.code.enum)[0], message: 'm', hint: 'h' };
        expect(await serialised(schema, Number(s), body), `${name} ${s}`).toEqual(body);
      }
    }
  });
});
