import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgent } from '../../src/agent/server.js';

/**
 * The compute agent's installed connectors (what `brick-lab validate` puts on a node), through
 * its HTTP routes: installing, choosing one with ?connector=, and the errors for what cannot be
 * used. The programs are the protocol's test programs (test/fixtures/connectors), run for real.
 */
const TOKEN = 'dGVzdC10b2tlbi1mb3ItdGhlLWNvbm5lY3Rvci1yZWdpc3RyeQ';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'connectors');
const ISCSI = { target_portal: '10.10.1.5:3260', target_iqn: 'iqn.2010-10.org.example:vol1', target_lun: 1 };

let app: FastifyInstance;
let dir: string;

const b64 = async (file: string): Promise<string> => (await readFile(file)).toString('base64');
const put = async (name: string, body: Record<string, unknown>) => app.inject({ method: 'PUT', url: `/v1/connectors/programs/${name}`, headers: AUTH, payload: body });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'brick-registry-'));
  app = await buildAgent({ lab: 't', node: 'compute-t', role: 'compute', token: TOKEN, compute: true, connectorsDir: join(dir, 'connectors') });
  await app.ready();
});

afterAll(async () => {
  await app.close();
  await rm(dir, { recursive: true, force: true });
});

describe('installed connectors on the compute agent', () => {
  it('installs a program, lists it and runs it for ?connector=NAME', async () => {
    const r = await put('echo', { content: await b64(join(FIXTURES, 'echo.sh')), kind: 'program' });
    expect(r.statusCode, r.body).toBe(201);
    expect(r.json()).toMatchObject({ name: 'echo', kind: 'program', executable: true, file: join(dir, 'connectors', 'echo') });
    expect((await stat(join(dir, 'connectors', 'echo'))).mode & 0o777).toBe(0o755);
    expect((await app.inject({ method: 'GET', url: '/v1/connectors/programs', headers: AUTH })).json().connectors.map((c: { name: string }) => c.name)).toEqual(['echo']);
    const sp = await app.inject({ method: 'GET', url: '/v1/connectors/iscsi/search-path?connector=echo', headers: AUTH });
    expect(sp.json()).toEqual({ searchPath: '/dev/disk/by-path' });
    // The program's paths, resolved on this host (they do not exist here: no devices).
    const vp = await app.inject({ method: 'POST', url: '/v1/connectors/iscsi/volume-paths?connector=echo', headers: AUTH, payload: ISCSI });
    expect(vp.json()).toEqual({ paths: ['/dev/disk/by-path/ip-10.10.1.5:3260-iscsi-iqn.2010-10.org.example:vol1-lun-1'], devices: [] });
    // Without ?connector= (or with "builtin") brick-lab's own connector answers.
    expect((await app.inject({ method: 'GET', url: '/v1/connectors/iscsi/search-path?connector=builtin', headers: AUTH })).json()).toEqual({ searchPath: '/dev/disk/by-path' });
  });

  it('refuses malformed properties before the program runs, with the built-in refusal', async () => {
    const r = await app.inject({ method: 'POST', url: '/v1/connectors/iscsi/volume-paths?connector=echo', headers: AUTH, payload: { ...ISCSI, target_iqn: 'not an iqn' } });
    expect(r.statusCode).toBe(400);
    expect(r.json().code).toBe('BAD_IQN');
  });

  it('says which connector is not installed, and refuses bad names and content', async () => {
    const r = await app.inject({ method: 'GET', url: '/v1/connectors/iscsi/search-path?connector=nope', headers: AUTH });
    expect(r.statusCode).toBe(404);
    expect(r.json()).toMatchObject({ code: 'CONNECTOR_NOT_INSTALLED', message: expect.stringContaining('"nope"') });
    expect((await put('Bad!', { content: 'AA==', kind: 'program' })).statusCode).toBe(400);
    expect((await put('empty', { content: '', kind: 'program' })).json().code).toBe('BAD_CONNECTOR');
    expect((await put('x', { content: 'not base64 !', kind: 'program' })).statusCode).toBe(400);
    expect((await put('x', { content: 'AA==', kind: 'shell' })).statusCode).toBe(400);
  });

  it('reports a program installed without the executable bit, or one that prints no JSON, as the connector fault', async () => {
    await put('plain', { content: await b64(join(FIXTURES, 'echo.sh')), kind: 'program', executable: false });
    const a = await app.inject({ method: 'GET', url: '/v1/connectors/iscsi/search-path?connector=plain', headers: AUTH });
    expect(a.statusCode).toBe(502);
    expect(a.json()).toMatchObject({ code: 'CONNECTOR_NOT_EXECUTABLE', message: expect.stringContaining('chmod +x') });
    await put('notjson', { content: await b64(join(FIXTURES, 'not-json.sh')), kind: 'program' });
    const b = await app.inject({ method: 'GET', url: '/v1/connectors/iscsi/search-path?connector=notjson', headers: AUTH });
    expect(b.statusCode).toBe(502);
    expect(b.json().code).toBe('CONNECTOR_BAD_JSON');
  });

  it('loads a CommonJS module through createConnector(protocol), and says what a module lacks', async () => {
    const good = `exports.createConnector = (protocol) => ({
      protocol, normalise: (p) => ({ protocol, raw: p }), getSearchPath: () => '/srv/' + protocol,
      connectVolume: async () => ({ type: 'block', path: '/dev/null', devices: [], multipath: false, identity: null }),
      disconnectVolume: async () => ({ removed: [], errors: [] }),
      getVolumePaths: async (p) => ({ paths: [JSON.stringify(p.raw)], devices: [] }),
      getAllAvailableVolumes: async () => [],
    });`;
    expect((await put('mod', { content: Buffer.from(good).toString('base64'), kind: 'module' })).statusCode).toBe(201);
    expect((await app.inject({ method: 'GET', url: '/v1/connectors/nvmeof/search-path?connector=mod', headers: AUTH })).json()).toEqual({ searchPath: '/srv/nvmeof' });
    const vp = await app.inject({ method: 'POST', url: '/v1/connectors/local/volume-paths?connector=mod', headers: AUTH, payload: { device_path: '/dev/sdq' } });
    expect(vp.json()).toEqual({ paths: [JSON.stringify({ device_path: '/dev/sdq' })], devices: [] });

    await put('half', { content: Buffer.from('exports.createConnector = () => ({ protocol: "iscsi", normalise: (p) => p });').toString('base64'), kind: 'module' });
    const h = await app.inject({ method: 'GET', url: '/v1/connectors/iscsi/search-path?connector=half', headers: AUTH });
    expect(h.statusCode).toBe(502);
    expect(h.json()).toMatchObject({ code: 'CONNECTOR_MODULE_FAILED', message: expect.stringContaining('connectVolume, disconnectVolume, getVolumePaths, getAllAvailableVolumes, getSearchPath') });
    await put('none', { content: Buffer.from('module.exports = {};').toString('base64'), kind: 'module' });
    expect((await app.inject({ method: 'GET', url: '/v1/connectors/iscsi/search-path?connector=none', headers: AUTH })).json().message).toMatch(/exports no createConnector/);
  });

  it('still has its installed connectors after a restart (an agent made anew on the same directory), and not a removed one', async () => {
    await put('kept', { content: await b64(join(FIXTURES, 'echo.sh')), kind: 'program', timeoutMs: 5000 });
    await put('gone', { content: await b64(join(FIXTURES, 'echo.sh')), kind: 'program' });
    expect((await app.inject({ method: 'DELETE', url: '/v1/connectors/programs/gone', headers: AUTH })).statusCode).toBe(204);
    const again = await buildAgent({ lab: 't', node: 'compute-t', role: 'compute', token: TOKEN, compute: true, connectorsDir: join(dir, 'connectors') });
    try {
      const listed = (await again.inject({ method: 'GET', url: '/v1/connectors/programs', headers: AUTH })).json().connectors as Array<{ name: string; timeoutMs: number | null }>;
      expect(listed.map((c) => c.name)).toContain('kept');
      expect(listed.map((c) => c.name)).not.toContain('gone');
      expect(listed.find((c) => c.name === 'kept')!.timeoutMs).toBe(5000);
      const sp = await again.inject({ method: 'GET', url: '/v1/connectors/iscsi/search-path?connector=kept', headers: AUTH });
      expect(sp.statusCode, sp.body).toBe(200);
    } finally {
      await again.close();
    }
  });

  it('removes an installed connector (its file too); a second removal is a 404', async () => {
    expect((await app.inject({ method: 'DELETE', url: '/v1/connectors/programs/echo', headers: AUTH })).statusCode).toBe(204);
    await expect(stat(join(dir, 'connectors', 'echo'))).rejects.toThrow();
    expect((await app.inject({ method: 'DELETE', url: '/v1/connectors/programs/echo', headers: AUTH })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: '/v1/connectors/iscsi/search-path?connector=echo', headers: AUTH })).statusCode).toBe(404);
  });
});
