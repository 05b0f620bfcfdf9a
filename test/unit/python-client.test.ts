import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHostAgent, type RunningHostAgent } from '../../src/agent/host-agent.js';
import { pathsView } from '../../src/inventory/paths-view.js';

/*
 * The Python client (clients/python/brick_lab_client.py) run for real by python3 against a real
 * agent started here, on this host: it has no iSCSI session, NVMe controller or multipath map, so
 * every volume is absent, which is a real answer. What this host cannot show (a volume attached,
 * an orphan) comes from a small stand-in server that answers as an agent would.
 */

const CLIENT_DIR = fileURLToPath(new URL('../../clients/python/', import.meta.url));
const MODULE = join(CLIENT_DIR, 'brick_lab_client.py');
const TLS = fileURLToPath(new URL('../fixtures/tls/', import.meta.url));

const IQN = 'iqn.2026-12.io.brick-lab:python.none';
const DATA = { target_portal: '10.10.1.10:3260', target_iqn: IQN, target_lun: 3 };
const CONNECTION_INFO = { driver_volume_type: 'iscsi', data: DATA };

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let dir: string;
let agent: RunningHostAgent;
let token: string;
let tokenFile: string;
/** A port nothing listens on. */
let closedUrl: string;

/** python3 ARGS (no shell), its bytecode kept out of the work tree; resolves whatever its exit code. */
function python(args: string[], input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'python3',
      args,
      { timeout: 60_000, env: { ...process.env, PYTHONPYCACHEPREFIX: join(dir, 'pycache'), PYTHONDONTWRITEBYTECODE: '1' } },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return reject(err);
        resolve({ code: err ? (err.code as unknown as number) : 0, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

const PRELUDE = `
import json, sys
ctx = json.loads(sys.argv[1])
sys.path.insert(0, ctx["clientDir"])
from brick_lab_client import *

def error_of(fn):
    try:
        fn()
    except BrickLabError as e:
        return {"type": "BrickLabError", "code": e.code, "status": e.status, "message": e.message, "hint": e.hint, "str": str(e)}
    except Exception as e:
        return {"type": type(e).__name__, "message": str(e)}
    return None

def out(value):
    print(json.dumps(value, default=lambda o: o.as_dict()))
`;

/** A driver script run with the client imported; what it prints with out() is parsed. */
async function driver<T>(script: string, ctx: Record<string, unknown> = {}): Promise<T> {
  const r = await python(['-c', `${PRELUDE}\n${script}`, JSON.stringify({ clientDir: CLIENT_DIR, url: agent.url, tokenFile, token, closedUrl, ...ctx })]);
  if (r.code !== 0) throw new Error(`python3 exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** The module's command line. */
const cli = (args: string[], input?: string): Promise<Run> => python([MODULE, ...args], input);

interface PyError {
  type: string;
  code?: string;
  status?: number | null;
  message: string;
  hint?: string | null;
  str?: string;
}

interface HostVerdict {
  url: string;
  expect: 'attached' | 'gone';
  verdict: 'holds' | 'fails' | 'error';
  detail: string;
  paths: string[] | null;
  devices: string[] | null;
  orphans: Array<{ kind: string; id: string; evidence: string }> | null;
  code: string | null;
}

interface CheckJson {
  ok: boolean;
  protocol: string;
  hosts: HostVerdict[];
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'brick-python-client-'));
  tokenFile = join(dir, 'token');
  agent = await startHostAgent({ testHost: true, markerFile: '/nonexistent', listen: '127.0.0.1:0', tokenFile, allowAttach: false });
  token = readFileSync(tokenFile, 'utf8').trim();
  writeFileSync(join(dir, 'connection-info.json'), JSON.stringify(CONNECTION_INFO));
  writeFileSync(join(dir, 'data.json'), JSON.stringify(DATA));
  const closed = createNetServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  closedUrl = `http://127.0.0.1:${(closed.address() as { port: number }).port}`;
  await new Promise<void>((r) => closed.close(() => r()));
});

afterAll(async () => {
  await agent?.close();
  pathsView().stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the Python client module', () => {
  it('compiles (python3 -m py_compile), parses as Python 3.9 and imports nothing outside the standard library', async () => {
    const compiled = await python(['-m', 'py_compile', MODULE]);
    expect(compiled.stderr).toBe('');
    expect(compiled.code).toBe(0);
    const facts = await driver<{ third: string[]; features: string | null }>(`
import ast
src = open(ctx["module"]).read()
features = None
try:
    tree = ast.parse(src, feature_version=(3, 9))
except SyntaxError as e:
    features = str(e)
    tree = ast.parse(src)
names = set()
for node in ast.walk(tree):
    if isinstance(node, ast.Import):
        names.update(a.name.split(".")[0] for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.level == 0:
        names.add(node.module.split(".")[0])
out({"third": sorted(n for n in names if n not in sys.stdlib_module_names and n != "__future__"), "features": features})
`, { module: MODULE });
    expect(facts).toEqual({ third: [], features: null });
  });
});

describe('AgentClient against a real agent on this host', () => {
  it('reads health, connectors, connector properties, search path, inventory, volume paths (one and batch), available volumes and orphans', async () => {
    const r = await driver<Record<string, any>>(`
c = AgentClient(ctx["url"], token_file=ctx["tokenFile"])
by_token = AgentClient(ctx["url"] + "/", token=ctx["token"])
data = ctx["data"]
out({
    "health": c.health(),
    "byToken": by_token.health()["state"],
    "url": by_token.url,
    "connectors": c.connectors(),
    "searchPath": c.search_path("iscsi"),
    "properties": c.connector_properties(multipath=True),
    "inventory": c.inventory(),
    "pathsInfo": c.volume_paths("iscsi", ctx["info"]),
    "pathsData": c.volume_paths("iscsi", data),
    "batch": c.volume_paths_batch("iscsi", [data, ctx["info"]]),
    "available": c.available_volumes("nvmeof"),
    "availableNarrowed": c.available_volumes("iscsi", data),
    "orphans": c.orphans("iscsi", ctx["info"], wwid="36001405000000000000000000000000a"),
})
`, { data: DATA, info: CONNECTION_INFO });
    expect(r.health).toMatchObject({ state: 'ready', role: 'compute', lab: 'host', node: hostname() });
    expect(r.byToken).toBe('ready');
    expect(r.url).toBe(agent.url);
    expect(r.connectors.connectors.map((c: { protocol: string }) => c.protocol).sort()).toEqual(['fc', 'iscsi', 'local', 'nvmeof']);
    expect(r.searchPath).toEqual({ searchPath: '/dev/disk/by-path' });
    // A host agent reads its own host: no data network of a lab, so no address it could name.
    expect(r.properties).toMatchObject({ os_type: 'linux', host: hostname(), ip: null, multipath: true, enforce_multipath: false, do_local_attach: false });
    expect(r.inventory.scope).toBe('full');
    expect([r.inventory.iscsiSessions, r.inventory.nvmeControllers, r.inventory.multipathMaps]).toEqual([[], [], []]);
    expect(r.pathsInfo).toEqual({ paths: [], devices: [] });
    expect(r.pathsData).toEqual({ paths: [], devices: [] });
    expect(r.batch).toEqual({ results: [{ paths: [], devices: [] }, { paths: [], devices: [] }] });
    expect(r.available).toEqual({ volumes: [] });
    expect(r.availableNarrowed).toEqual({ volumes: [] });
    // The oracle read the volume the client sent: its IQN, portal, LUN and WWID.
    expect(r.orphans).toMatchObject({ clean: true, orphans: [], volume: { protocol: 'iscsi', iscsi: { iqn: IQN, portals: ['10.10.1.10:3260'], lun: 3, wwid: '36001405000000000000000000000000a' } } });
  });

  it('raises BrickLabError with the agent\'s code, message and status: a wrong token, a malformed IQN, a read-only agent, an unknown protocol', async () => {
    const badIqn = { ...DATA, target_iqn: 'iqn.not-a-date:x' };
    // The agent's own message, as it answers anyone.
    const direct = await fetch(`${agent.url}/v1/connectors/iscsi/volume-paths`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(badIqn) });
    const agentSays = (await direct.json()) as { code: string; message: string; hint?: string };
    expect(agentSays.code).toBe('BAD_IQN');
    const r = await driver<Record<string, PyError>>(`
c = AgentClient(ctx["url"], token_file=ctx["tokenFile"])
out({
    "token": error_of(lambda: AgentClient(ctx["url"], token="0" * 64).health()),
    "iqn": error_of(lambda: c.volume_paths("iscsi", ctx["badIqn"])),
    "connect": error_of(lambda: c.connect("iscsi", ctx["data"], multipath=True)),
    "disconnect": error_of(lambda: c.disconnect("iscsi", ctx["data"], device_info={"path": "/dev/sdz"}, force=True)),
    "protocol": error_of(lambda: c.search_path("fibre_channel")),
})
`, { badIqn, data: DATA });
    expect(r.token).toMatchObject({ type: 'BrickLabError', code: 'UNAUTHORIZED', status: 401, message: 'missing or wrong agent token' });
    expect(r.token!.hint).toMatch(/Authorization: Bearer/);
    expect(r.iqn).toMatchObject({ type: 'BrickLabError', code: 'BAD_IQN', status: 400, message: agentSays.message, str: `BAD_IQN: ${agentSays.message}` });
    expect(r.iqn!.message).toContain('iqn.not-a-date:x');
    expect(r.connect).toMatchObject({ code: 'AGENT_READ_ONLY', status: 403, message: 'connect: this agent is read-only' });
    expect(r.disconnect).toMatchObject({ code: 'AGENT_READ_ONLY', status: 403, message: 'disconnect: this agent is read-only' });
    expect(r.protocol).toMatchObject({ code: 'BAD_REQUEST', status: 400 });
    expect(r.protocol!.message).toContain('fibre_channel');
  });

  it('raises AGENT_UNREACHABLE naming the URL for a closed port and an unresolvable name; refuses a bad URL or token choice at once', async () => {
    const r = await driver<Record<string, PyError>>(`
out({
    "closed": error_of(lambda: AgentClient(ctx["closedUrl"], token="0" * 64, timeout=5).health()),
    "dns": error_of(lambda: AgentClient("http://brick-lab-agent.invalid:8470", token="0" * 64, timeout=5).inventory()),
    "both": error_of(lambda: AgentClient(ctx["url"], token="0" * 64, token_file=ctx["tokenFile"])),
    "neither": error_of(lambda: AgentClient(ctx["url"])),
    "scheme": error_of(lambda: AgentClient("file:///etc/passwd", token="0" * 64)),
    "tokenFile": error_of(lambda: AgentClient(ctx["url"], token_file=ctx["missing"])),
})
`, { missing: join(dir, 'no-such-token') });
    expect(r.closed).toMatchObject({ type: 'BrickLabError', code: 'AGENT_UNREACHABLE', status: null });
    expect(r.closed!.message).toContain(`agent at ${closedUrl} did not answer GET /v1/health`);
    expect(r.closed!.message).toMatch(/refused/i);
    expect(r.dns).toMatchObject({ code: 'AGENT_UNREACHABLE', status: null });
    expect(r.dns!.message).toContain('http://brick-lab-agent.invalid:8470');
    expect(r.both).toMatchObject({ type: 'ValueError', message: 'give exactly one of token and token_file' });
    expect(r.neither).toMatchObject({ type: 'ValueError' });
    expect(r.scheme).toMatchObject({ type: 'ValueError' });
    expect(r.tokenFile).toMatchObject({ code: 'AGENT_TOKEN_FILE' });
    expect(r.tokenFile!.message).toContain(join(dir, 'no-such-token'));
  });

  it('checks an HTTPS agent\'s certificate against cafile, and refuses it (AGENT_TLS) without', async () => {
    const tlsToken = join(dir, 'tls-token');
    const tls = await startHostAgent({ testHost: true, markerFile: '/nonexistent', listen: '127.0.0.1:0', tokenFile: tlsToken, tlsCert: join(TLS, 'cert.pem'), tlsKey: join(TLS, 'key.pem'), allowAttach: false });
    try {
      expect(tls.url).toMatch(/^https:/);
      const r = await driver<Record<string, unknown>>(`
out({
    "withCa": AgentClient(ctx["tls"], token_file=ctx["tlsToken"], cafile=ctx["ca"]).health()["state"],
    "withoutCa": error_of(lambda: AgentClient(ctx["tls"], token_file=ctx["tlsToken"]).health()),
    "badCa": error_of(lambda: AgentClient(ctx["tls"], token_file=ctx["tlsToken"], cafile=ctx["notPem"])),
})
`, { tls: tls.url, tlsToken, ca: join(TLS, 'cert.pem'), notPem: join(TLS, 'README.md') });
      expect(r.withCa).toBe('ready');
      expect(r.withoutCa).toMatchObject({ type: 'BrickLabError', code: 'AGENT_TLS', status: null });
      expect((r.withoutCa as PyError).message).toContain(tls.url);
      expect(r.badCa).toMatchObject({ type: 'BrickLabError', code: 'AGENT_TLS' });
      const gate = await cli(['check', '--properties', join(dir, 'connection-info.json'), '--gone-from', tls.url, '--token-file', tlsToken, '--cafile', join(TLS, 'cert.pem'), '--json']);
      expect(gate.code).toBe(0);
      expect((JSON.parse(gate.stdout) as CheckJson).hosts[0]).toMatchObject({ url: tls.url, verdict: 'holds' });
    } finally {
      await tls.close();
    }
  });
});

describe('protocol_of', () => {
  it('reads driver_volume_type in any case, and refuses one it has no connector for, or none', async () => {
    const r = await driver<Record<string, unknown>>(`
out({
    "known": [protocol_of({"driver_volume_type": t, "data": {}}) for t in ["ISCSI", "iscsi", "NVMeOF", "FIBRE_CHANNEL", "fibre_channel", "Local"]],
    "fc": error_of(lambda: protocol_of({"driver_volume_type": "fc", "data": {}})),
    "rbd": error_of(lambda: protocol_of({"driver_volume_type": "RBD"})),
    "bare": error_of(lambda: protocol_of(ctx["data"])),
    "check": error_of(lambda: check({"driver_volume_type": "rbd", "data": {}}, gone_from=[AgentClient(ctx["url"], token_file=ctx["tokenFile"])])),
})
`, { data: DATA });
    // Cinder names FC "fibre_channel"; "fc" is brick-lab's protocol name, not a driver_volume_type.
    expect(r.known).toEqual(['iscsi', 'iscsi', 'nvmeof', 'fc', 'fc', 'local']);
    expect(r.fc).toMatchObject({ type: 'BrickLabError', code: 'PROTOCOL_UNKNOWN', status: null });
    expect((r.fc as PyError).message).toContain('"fc"');
    expect((r.rbd as PyError).message).toContain('"RBD"');
    expect(r.bare).toMatchObject({ code: 'PROTOCOL_UNKNOWN' });
    expect((r.bare as PyError).message).toContain('no driver_volume_type');
    expect(r.check).toMatchObject({ code: 'PROTOCOL_UNKNOWN' });
  });
});

describe('check() against the real agent', () => {
  it('fails attached_on (the volume is not attached here), holds gone_from, and gives "error" for a host it cannot ask', async () => {
    const r = await driver<Record<string, CheckJson | PyError>>(`
a = AgentClient(ctx["url"], token_file=ctx["tokenFile"])
down = AgentClient(ctx["closedUrl"], token="0" * 64, timeout=5)
out({
    "attached": check(ctx["info"], attached_on=[a]).as_dict(),
    "gone": check(ctx["info"], gone_from=[a]).as_dict(),
    "bare": check(ctx["data"], gone_from=[a], protocol="iscsi").as_dict(),
    "bareNoProtocol": error_of(lambda: check(ctx["data"], gone_from=[a])),
    "unasked": check(ctx["info"], gone_from=[a, down]).as_dict(),
    "nothing": error_of(lambda: check(ctx["info"])),
})
`, { info: CONNECTION_INFO, data: DATA });
    const attached = r.attached as CheckJson;
    expect(attached.ok).toBe(false);
    expect(attached.protocol).toBe('iscsi');
    expect(attached.hosts).toEqual([{ url: agent.url, expect: 'attached', verdict: 'fails', detail: 'not attached: no path or device', paths: [], devices: [], orphans: null, code: null }]);
    const gone = r.gone as CheckJson;
    expect(gone.ok).toBe(true);
    expect(gone.hosts).toEqual([{ url: agent.url, expect: 'gone', verdict: 'holds', detail: 'gone: no path, device or orphan', paths: [], devices: [], orphans: [], code: null }]);
    expect((r.bare as CheckJson).ok).toBe(true);
    expect(r.bareNoProtocol).toMatchObject({ code: 'PROTOCOL_UNKNOWN' });
    const unasked = r.unasked as CheckJson;
    expect(unasked.ok).toBe(false);
    expect(unasked.hosts.map((h) => h.verdict)).toEqual(['holds', 'error']);
    expect(unasked.hosts[1]).toMatchObject({ url: closedUrl, expect: 'gone', code: 'AGENT_UNREACHABLE', paths: null, orphans: null });
    expect(unasked.hosts[1]!.detail).toMatch(new RegExp(`^AGENT_UNREACHABLE: agent at ${closedUrl} did not answer POST /v1/connectors/iscsi/volume-paths`));
    expect(r.nothing).toMatchObject({ type: 'ValueError' });
  });
});

/**
 * What this host cannot show — a volume attached, one that left a device and an orphan behind,
 * an answer that is not JSON — from a stand-in that answers the agent's routes as an agent does.
 */
describe('check() and the client against a stand-in agent', () => {
  let server: Server;
  let url: string;
  const STANDIN_TOKEN = 'standin-token-0123456789';
  const seen: Array<{ method: string; url: string; auth: string | undefined; type: string | undefined; body: unknown }> = [];
  const BY_PATH = `/dev/disk/by-path/ip-10.10.1.10:3260-iscsi-${IQN}-lun-3`;

  beforeAll(async () => {
    server = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization, type: req.headers['content-type'], body: text ? JSON.parse(text) : undefined });
        const send = (status: number, body: unknown, type = 'application/json'): void => {
          res.writeHead(status, { 'content-type': type });
          res.end(typeof body === 'string' ? body : JSON.stringify(body));
        };
        if (req.headers.authorization !== `Bearer ${STANDIN_TOKEN}`) return send(401, { code: 'UNAUTHORIZED', message: 'missing or wrong agent token' });
        if (req.url === '/v1/connectors/iscsi/volume-paths') return send(200, { paths: [BY_PATH], devices: ['sdb'] });
        if (req.url === '/v1/inventory/orphans') {
          return send(200, { clean: false, orphans: [{ kind: 'scsi-device', id: '2:0:0:3', evidence: '/sys/class/scsi_device/2:0:0:3 (LIO-ORG disk, running)' }, { kind: 'iscsi-session', id: 'session1', evidence: `${IQN} at 10.10.1.10:3260` }], kept: [], volume: {} });
        }
        if (req.url === '/v1/health') return send(200, 'brick-lab agent says hello', 'text/plain');
        if (req.url === '/v1/inventory') return send(502, '<html>bad gateway</html>', 'text/html');
        if (req.url === '/v1/connectors/nvmeof/volume-paths') return send(200, { paths: 'not a list' });
        return send(404, { code: 'ROUTE_UNKNOWN', message: `no route ${req.method} ${req.url} on this agent` });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('holds attached_on where the volume has a device, and fails gone_from naming what is left and every orphan', async () => {
    seen.length = 0;
    const r = await driver<CheckJson>(`
s = AgentClient(ctx["standin"], token=ctx["standinToken"])
out(check(ctx["info"], attached_on=[s], gone_from=[s]).as_dict())
`, { standin: url, standinToken: STANDIN_TOKEN, info: CONNECTION_INFO });
    expect(r.ok).toBe(false);
    expect(r.hosts[0]).toMatchObject({ expect: 'attached', verdict: 'holds', detail: `attached: /dev/sdb, ${BY_PATH}`, devices: ['sdb'], paths: [BY_PATH] });
    expect(r.hosts[1]).toMatchObject({ expect: 'gone', verdict: 'fails' });
    expect(r.hosts[1]!.detail).toBe(`still has /dev/sdb, ${BY_PATH}; orphans: scsi-device 2:0:0:3 (/sys/class/scsi_device/2:0:0:3 (LIO-ORG disk, running)); iscsi-session session1 (${IQN} at 10.10.1.10:3260)`);
    expect(r.hosts[1]!.orphans).toHaveLength(2);
    // What went over the wire: the token, JSON, the properties as given, the orphans request's shape.
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual(['POST /v1/connectors/iscsi/volume-paths', 'POST /v1/connectors/iscsi/volume-paths', 'POST /v1/inventory/orphans']);
    expect(seen.every((s) => s.auth === `Bearer ${STANDIN_TOKEN}` && s.type === 'application/json')).toBe(true);
    expect(seen[0]!.body).toEqual(CONNECTION_INFO);
    expect(seen[2]!.body).toEqual({ protocol: 'iscsi', properties: CONNECTION_INFO });
  });

  it('raises BAD_REPLY for an answer that is not JSON or not the route\'s shape, and HTTP_<status> for an error answer that is not the agent\'s', async () => {
    const r = await driver<Record<string, unknown>>(`
s = AgentClient(ctx["standin"], token=ctx["standinToken"])
out({
    "text": error_of(s.health),
    "html": error_of(s.inventory),
    "shape": check({"driver_volume_type": "nvmeof", "data": {}}, attached_on=[s]).as_dict(),
})
`, { standin: url, standinToken: STANDIN_TOKEN });
    expect(r.text).toMatchObject({ type: 'BrickLabError', code: 'BAD_REPLY', status: 200 });
    expect((r.text as PyError).message).toContain('brick-lab agent says hello');
    expect(r.html).toMatchObject({ type: 'BrickLabError', code: 'HTTP_502', status: 502 });
    expect((r.html as PyError).message).toContain('<html>bad gateway</html>');
    expect((r.shape as CheckJson).hosts[0]).toMatchObject({ verdict: 'error', code: 'BAD_REPLY' });
  });

  it('exits 1 from the command line when a host fails, even when another could not be asked', async () => {
    const r = await cli(['check', '--properties', join(dir, 'connection-info.json'), '--gone-from', url, closedUrl, '--token-file', writeToken(STANDIN_TOKEN)]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^HOST\s+EXPECT\s+VERDICT\s+DETAIL$/m);
    expect(r.stdout).toContain('still has /dev/sdb');
    expect(r.stdout).toMatch(/AGENT_UNREACHABLE/);
    expect(r.stdout).toMatch(/^check: fails on 1 and could not ask 1 of 2 hosts$/m);
  });
});

function writeToken(value: string): string {
  const file = join(dir, `token-${value.length}-${Math.random().toString(16).slice(2)}`);
  writeFileSync(file, `${value}\n`, { mode: 0o600 });
  return file;
}

describe('the command line', () => {
  const infoFile = (): string => join(dir, 'connection-info.json');

  it('exits 0 when every host holds, with --json the whole result', async () => {
    const r = await cli(['check', '--properties', infoFile(), '--gone-from', agent.url, '--token-file', tokenFile, '--json']);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout) as CheckJson;
    expect(result).toEqual({ ok: true, protocol: 'iscsi', hosts: [{ url: agent.url, expect: 'gone', verdict: 'holds', detail: 'gone: no path, device or orphan', paths: [], devices: [], orphans: [], code: null }] });
    // Bare data with --protocol, the properties from stdin, as a table.
    const bare = await cli(['check', '--properties', '-', '--protocol', 'iscsi', '--gone-from', agent.url, '--token-file', tokenFile], JSON.stringify(DATA));
    expect(bare.code).toBe(0);
    expect(bare.stdout).toMatch(new RegExp(`^${agent.url.replace(/\./g, '\\.')}\\s+gone\\s+holds\\s+gone: no path, device or orphan$`, 'm'));
    expect(bare.stdout).toMatch(/^check: holds on the 1 host$/m);
  });

  it('exits 1 when a check fails (the volume is not attached on this host), in the table and in JSON', async () => {
    const table = await cli(['check', '--properties', infoFile(), '--attached-on', agent.url, '--gone-from', agent.url, '--token-file', tokenFile]);
    expect(table.code).toBe(1);
    expect(table.stdout).toMatch(/\sattached\s+fails\s+not attached: no path or device$/m);
    expect(table.stdout).toMatch(/\sgone\s+holds\s/m);
    const json = await cli(['check', '--properties', infoFile(), '--attached-on', agent.url, '--token-file', tokenFile, '--json']);
    expect(json.code).toBe(1);
    expect((JSON.parse(json.stdout) as CheckJson).hosts.map((h) => [h.expect, h.verdict])).toEqual([['attached', 'fails']]);
  });

  it('exits 3 when a host could not be asked and none failed', async () => {
    const r = await cli(['check', '--properties', infoFile(), '--gone-from', agent.url, '--gone-from', closedUrl, '--token-file', tokenFile, '--json']);
    expect(r.code).toBe(3);
    const result = JSON.parse(r.stdout) as CheckJson;
    expect(result.ok).toBe(false);
    expect(result.hosts.map((h) => h.verdict)).toEqual(['holds', 'error']);
    // A wrong token is a host that could not be asked too.
    const wrong = await cli(['check', '--properties', infoFile(), '--gone-from', agent.url, '--token-file', writeToken('f'.repeat(64))]);
    expect(wrong.code).toBe(3);
    expect(wrong.stdout).toMatch(/error\s+UNAUTHORIZED: missing or wrong agent token/);
  });

  it('exits 2 on usage errors: no host, no token file, bare data without --protocol, unreadable properties, an unknown verb', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['check', '--properties', infoFile(), '--token-file', tokenFile], /no host to check/],
      [['check', '--properties', infoFile(), '--gone-from', agent.url], /--token-file/],
      [['check', '--properties', join(dir, 'data.json'), '--gone-from', agent.url, '--token-file', tokenFile], /no driver_volume_type.*give --protocol/],
      [['check', '--properties', join(dir, 'missing.json'), '--gone-from', agent.url, '--token-file', tokenFile], /missing\.json: cannot be read/],
      [['check', '--properties', infoFile(), '--gone-from', agent.url, '--token-file', join(dir, 'no-token')], /AGENT_TOKEN_FILE/],
      [['check', '--properties', infoFile(), '--protocol', 'rbd', '--gone-from', agent.url, '--token-file', tokenFile], /invalid choice: 'rbd'/],
      [['attach'], /invalid choice: 'attach'/],
    ];
    for (const [args, why] of cases) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(why);
      expect(r.stdout, args.join(' ')).toBe('');
    }
  });

  it('paths, volumes, inventory and orphans print the agent\'s JSON; an agent\'s refusal exits 3', async () => {
    const common = ['--url', agent.url, '--token-file', tokenFile];
    const paths = await cli(['paths', ...common, '--properties', infoFile()]);
    expect([paths.code, JSON.parse(paths.stdout)]).toEqual([0, { paths: [], devices: [] }]);
    const volumes = await cli(['volumes', ...common, '--protocol', 'nvmeof']);
    expect([volumes.code, JSON.parse(volumes.stdout)]).toEqual([0, { volumes: [] }]);
    const inventory = await cli(['inventory', ...common]);
    expect(inventory.code).toBe(0);
    expect((JSON.parse(inventory.stdout) as { scope: string; iscsiSessions: unknown[] })).toMatchObject({ scope: 'full', iscsiSessions: [] });
    const orphans = await cli(['orphans', ...common, '--properties', join(dir, 'data.json'), '--protocol', 'iscsi', '--wwid', '36001405000000000000000000000000b']);
    expect(orphans.code).toBe(0);
    expect(JSON.parse(orphans.stdout)).toMatchObject({ clean: true, volume: { iscsi: { iqn: IQN, wwid: '36001405000000000000000000000000b' } } });
    writeFileSync(join(dir, 'bad-iqn.json'), JSON.stringify({ ...DATA, target_iqn: 'not-an-iqn' }));
    const refused = await cli(['paths', ...common, '--protocol', 'iscsi', '--properties', join(dir, 'bad-iqn.json')]);
    expect(refused.code).toBe(3);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/BAD_IQN: target_iqn: "not-an-iqn"/);
  });
});
