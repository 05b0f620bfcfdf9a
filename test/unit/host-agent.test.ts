import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ComputeClient } from '../../src/agent/api/compute-client.js';
import { ROUTES } from '../../src/agent/api/paths.js';
import { checkTestHost, DEFAULT_LISTEN, DEFAULT_TOKEN_FILE, ensureToken, parseHostAgentArgs, parseListen, startHostAgent, type HostAgentOptions, type RunningHostAgent } from '../../src/agent/host-agent.js';
import { pathsView } from '../../src/inventory/paths-view.js';
import { BrickError } from '../../src/system/errors.js';
import { exec } from '../../src/system/exec.js';

const TLS = fileURLToPath(new URL('../fixtures/tls/', import.meta.url));

/** The BrickError a call throws (or a failure when it throws none or another kind). */
function refusal(fn: () => unknown): BrickError {
  try {
    fn();
  } catch (e) {
    if (e instanceof BrickError) return e;
    throw e;
  }
  throw new Error('no refusal');
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'brick-host-agent-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('brick-lab agent: its command line', () => {
  it('defaults to loopback, the default token file, read-only, and a marker it names', () => {
    expect(parseHostAgentArgs([], {})).toEqual({ testHost: false, markerFile: '/etc/brick-lab/test-host', listen: DEFAULT_LISTEN, tokenFile: DEFAULT_TOKEN_FILE, allowAttach: false });
    expect(DEFAULT_LISTEN.startsWith('127.0.0.1:')).toBe(true);
    expect(parseHostAgentArgs(['--test-host', '--allow-attach', '--listen', '[::1]:9000', '--token-file', '/x/t', '--tls-cert', 'c', '--tls-key', 'k'], { BRICK_LAB_TEST_HOST_FILE: '/m' })).toEqual({
      testHost: true, markerFile: '/m', listen: '[::1]:9000', tokenFile: '/x/t', tlsCert: 'c', tlsKey: 'k', allowAttach: true,
    });
    expect(parseHostAgentArgs(['--help'])).toBeNull();
  });

  it('refuses what it does not take, and a certificate without its key, naming them', () => {
    expect(refusal(() => parseHostAgentArgs(['--exec'])).message).toMatch(/--exec/);
    expect(refusal(() => parseHostAgentArgs(['extra'])).code).toBe('USAGE');
    const e = refusal(() => parseHostAgentArgs(['--tls-key', 'k']));
    expect([e.code, e.message]).toEqual(['USAGE', 'brick-lab agent: --tls-cert and --tls-key go together (got only --tls-key)']);
  });

  it('listens on an IP address and a port, and says what is wrong with anything else', () => {
    expect(parseListen('0.0.0.0:8470')).toEqual({ host: '0.0.0.0', port: 8470 });
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
    const cases: Array<[string, RegExp]> = [
      ['localhost:8470', /not ADDR:PORT/],
      ['10.0.0.256:80', /10\.0\.0\.256 is not an IPv4 address/],
      ['[::g]:80', /not ADDR:PORT/],
      ['[1::2::3]:80', /1::2::3 is not an IPv6 address/],
      ['127.0.0.1:65536', /port 65536 is over 65535/],
      ['127.0.0.1', /not ADDR:PORT/],
      ['127.0.0.1:80;touch /tmp/x', /not ADDR:PORT/],
    ];
    for (const [text, why] of cases) {
      const e = refusal(() => parseListen(text));
      expect(e.code, text).toBe('AGENT_LISTEN');
      expect(e.message, text).toMatch(why);
      expect(e.message, text).toContain(JSON.stringify(text));
    }
  });
});

describe('brick-lab agent: a test host only', () => {
  it('refuses a host without the marker, saying why and how to mark it; --test-host or the marker lets it start', () => {
    const marker = join(dir, 'marker');
    const e = refusal(() => checkTestHost({ testHost: false, markerFile: marker }));
    expect(e.code).toBe('NOT_A_TEST_HOST');
    expect(e.message).toMatch(/must never run on a production system/);
    expect(e.hint).toContain(`--test-host or create ${marker}`);
    expect(() => checkTestHost({ testHost: true, markerFile: marker })).not.toThrow();
    writeFileSync(marker, '');
    expect(() => checkTestHost({ testHost: false, markerFile: marker })).not.toThrow();
  });

  it('starts nothing and makes no token file on a host that is not marked', async () => {
    const tokenFile = join(dir, 'unmarked', 'token');
    await expect(startHostAgent({ testHost: false, markerFile: join(dir, 'none'), listen: '127.0.0.1:0', tokenFile, allowAttach: false })).rejects.toMatchObject({ code: 'NOT_A_TEST_HOST' });
    expect(existsSync(join(dir, 'unmarked'))).toBe(false);
  });
});

describe('brick-lab agent: its token file', () => {
  it('makes a missing one with 64 hex digits, mode 0600, its new folder 0700, and reads it back the next time', () => {
    const file = join(dir, 'made', 'token');
    const first = ensureToken(file);
    expect(first.made).toBe(true);
    expect(first.token).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'made')).mode & 0o777).toBe(0o700);
    expect(ensureToken(file)).toEqual({ token: first.token, made: false });
  });

  it('refuses one that group or others can read, an empty one and a short one, saying what to do', () => {
    const open = join(dir, 'open-token');
    writeFileSync(open, 'a'.repeat(32));
    chmodSync(open, 0o644);
    const e = refusal(() => ensureToken(open));
    expect([e.code, e.message, e.hint]).toEqual(['AGENT_TOKEN_FILE', `token file ${open}: mode 0644 lets group or others read it`, `chmod 600 ${open}`]);
    const empty = join(dir, 'empty-token');
    writeFileSync(empty, '\n', { mode: 0o600 });
    expect(refusal(() => ensureToken(empty)).message).toBe(`token file ${empty}: empty`);
    const short = join(dir, 'short-token');
    writeFileSync(short, 'abc\n', { mode: 0o600 });
    expect(refusal(() => ensureToken(short)).message).toBe(`token file ${short}: holds 3 characters, fewer than 16`);
  });

  it('says so when it cannot make one', () => {
    // Its folder would be a file's child.
    const file = join(dir, 'a-file', 'token');
    writeFileSync(join(dir, 'a-file'), '');
    const e = refusal(() => ensureToken(file));
    expect(e.code).toBe('AGENT_TOKEN_FILE');
    expect(e.message).toMatch(new RegExp(`^token file ${file}: cannot be made: E[A-Z]+: `));
  });
});

/**
 * The agent on this host, outside any lab: the CI machine has no iSCSI session, NVMe controller
 * or multipath map, so its inventory is empty and well formed, and a volume it never saw has no paths.
 */
describe('brick-lab agent on this host', () => {
  let running: RunningHostAgent | null = null;
  afterEach(async () => {
    await running?.close();
    running = null;
    pathsView().stop();
  });
  const start = async (extra: Partial<HostAgentOptions> = {}): Promise<{ client: ComputeClient; token: string; url: string }> => {
    const tokenFile = join(dir, `token-${Math.random().toString(16).slice(2)}`);
    running = await startHostAgent({ testHost: true, markerFile: join(dir, 'none'), listen: '127.0.0.1:0', tokenFile, allowAttach: false, ...extra });
    const token = readFileSync(tokenFile, 'utf8').trim();
    return { client: new ComputeClient('host', running.url, token), token, url: running.url };
  };

  it('answers nothing without the token, not even its health or its route list', async () => {
    const { url, client } = await start();
    for (const route of [ROUTES.health, ROUTES.openapi, ROUTES.inventory]) {
      const r = await fetch(`${url}${route}`);
      expect(r.status, route).toBe(401);
      expect(((await r.json()) as { message: string }).message).toBe('missing or wrong agent token');
    }
    expect((await client.health()).state).toBe('ready');
  });

  it('serves the reads: an empty, well-formed inventory, no paths for a volume it never saw, the search paths', async () => {
    const { client } = await start();
    const inv = await client.inventory();
    expect(inv.scope).toBe('full');
    for (const k of ['scsiDevices', 'iscsiSessions', 'nvmeControllers', 'nvmeNamespaces', 'multipathMaps', 'blockDevices', 'links'] as const) expect(Array.isArray(inv[k]), k).toBe(true);
    expect([inv.iscsiSessions, inv.nvmeControllers, inv.multipathMaps]).toEqual([[], [], []]);
    const props = { target_portal: '10.10.1.10:3260', target_iqn: 'iqn.2026-12.io.brick-lab:host.none', target_lun: 3 };
    expect(await client.volumePaths('iscsi', props)).toEqual({ paths: [], devices: [] });
    expect((await client.volumePathsBatch('iscsi', [props, props])).results).toEqual([{ paths: [], devices: [] }, { paths: [], devices: [] }]);
    expect(await client.availableVolumes('nvmeof', {})).toEqual({ volumes: [] });
    expect((await client.searchPath('iscsi')).searchPath).toBe('/dev/disk/by-path');
    expect((await client.orphans({ protocol: 'iscsi', properties: props })).clean).toBe(true);
  });

  it('is read-only unless --allow-attach, has no exec, node control or connector programs, and runs its own connectors only', async () => {
    const { client, url, token } = await start();
    const props = { target_portal: '10.10.1.10:3260', target_iqn: 'iqn.2026-12.io.brick-lab:host.none', target_lun: 0 };
    await expect(client.connect('iscsi', props)).rejects.toMatchObject({ code: 'AGENT_READ_ONLY', statusCode: 403 });
    await expect(client.disconnect('iscsi', props, null)).rejects.toMatchObject({ code: 'AGENT_READ_ONLY' });
    const post = (route: string, body: unknown): Promise<Response> => fetch(`${url}${route}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    for (const [route, body] of [[ROUTES.exec, { argv: ['id'] }], [ROUTES.reboot, {}], [ROUTES.restartAgent, {}], [ROUTES.outage, { seconds: 1 }], [ROUTES.localDisks, { sizeMiB: 8 }], [ROUTES.iscsiVolumes, { name: 'x' }]] as const) {
      const r = await post(route, body);
      expect(r.status, route).toBe(404);
      expect(((await r.json()) as { code: string }).code, route).toBe('ROUTE_UNKNOWN');
    }
    const programs = await fetch(`${url}${ROUTES.connectorPrograms}`, { headers: { authorization: `Bearer ${token}` } });
    expect(programs.status).toBe(404);
    await expect(client.volumePaths('iscsi', props, { connector: 'vendor' })).rejects.toMatchObject({ code: 'CONNECTOR_NOT_INSTALLED', message: expect.stringContaining("connector vendor: a host agent runs brick-lab's own connectors only") });
    const routes = Object.keys(((await (await fetch(`${url}${ROUTES.openapi}`, { headers: { authorization: `Bearer ${token}` } })).json()) as { paths: object }).paths);
    expect(routes).not.toContain(ROUTES.exec);
    expect(routes).toContain('/v1/connectors/{protocol}/volume-paths');
  });

  it('with --allow-attach takes attach and detach requests (a malformed one is refused for what it is)', async () => {
    const { client } = await start({ allowAttach: true });
    await expect(client.connect('iscsi', { target_portal: '10.10.1.10:3260;touch /tmp/x', target_iqn: 'iqn.2026-12.io.brick-lab:host.none', target_lun: 0 })).rejects.toMatchObject({ code: 'BAD_PORTAL' });
  });

  it('serves HTTPS with a certificate and key, and refuses a key that is not one', async () => {
    const { url, token } = await start({ tlsCert: join(TLS, 'cert.pem'), tlsKey: join(TLS, 'key.pem') });
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest(`${url}${ROUTES.health}`, { ca: readFileSync(join(TLS, 'cert.pem')), headers: { authorization: `Bearer ${token}` } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end();
    });
    expect((JSON.parse(body) as { state: string }).state).toBe('ready');
    await running!.close();
    running = null;
    const tokenFile = join(dir, 'tls-bad-token');
    await expect(startHostAgent({ testHost: true, markerFile: join(dir, 'none'), listen: '127.0.0.1:0', tokenFile, tlsCert: join(TLS, 'cert.pem'), tlsKey: join(TLS, 'README.md'), allowAttach: false })).rejects.toMatchObject({ code: 'AGENT_TLS' });
    expect(existsSync(tokenFile)).toBe(false);
    await expect(startHostAgent({ testHost: true, markerFile: join(dir, 'none'), listen: '127.0.0.1:0', tokenFile, tlsCert: join(dir, 'no-cert.pem'), tlsKey: join(TLS, 'key.pem'), allowAttach: false })).rejects.toMatchObject({ code: 'AGENT_TLS', message: expect.stringMatching(/^--tls-cert .*no-cert\.pem: cannot be read/) });
  });

  it('refuses a port that is taken and leaves no token file it made', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as { port: number }).port;
    const tokenFile = join(dir, 'busy-token');
    try {
      await expect(startHostAgent({ testHost: true, markerFile: join(dir, 'none'), listen: `127.0.0.1:${port}`, tokenFile, allowAttach: false })).rejects.toMatchObject({ code: 'AGENT_LISTEN', message: expect.stringContaining('EADDRINUSE') });
      expect(existsSync(tokenFile)).toBe(false);
    } finally {
      busy.close();
    }
  });
});

/** `brick-lab agent` as a user runs it: the CLI verb (from dist/, built before the tests). */
describe('brick-lab agent, the CLI verb', () => {
  const BIN = fileURLToPath(new URL('../../bin/brick-lab.js', import.meta.url));

  it('prints its usage for --help, and refuses an unmarked host and a bad option with exit 1 and 2', async () => {
    const help = await exec([process.execPath, BIN, 'agent', '--help'], { timeoutMs: 60_000, reject: false });
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toContain('usage: brick-lab agent [--test-host] [--listen ADDR:PORT] [--token-file FILE]');
    const env = { ...process.env, BRICK_LAB_TEST_HOST_FILE: join(dir, 'no-marker') };
    const tokenFile = join(dir, 'cli-refused-token');
    const refused = await exec([process.execPath, BIN, 'agent', '--listen', '127.0.0.1:0', '--token-file', tokenFile], { timeoutMs: 60_000, reject: false, env });
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain(`brick-lab: NOT_A_TEST_HOST: this host is not marked as a test host`);
    expect(refused.stderr).toContain(`create ${join(dir, 'no-marker')}`);
    expect(existsSync(tokenFile)).toBe(false);
    const bad = await exec([process.execPath, BIN, 'agent', '--test-host', '--exec'], { timeoutMs: 60_000, reject: false, env });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/USAGE: brick-lab agent: .*--exec/);
  });

  it('serves until SIGTERM, then closes and exits 0', async () => {
    const tokenFile = join(dir, 'cli-token');
    const child = spawn(process.execPath, [BIN, 'agent', '--test-host', '--listen', '127.0.0.1:0', '--token-file', tokenFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no serving line: ${stderr}`)), 30_000);
        child.stderr.on('data', () => {
          const m = /serving (http:\/\/127\.0\.0\.1:\d+) \(read-only\); token in (\S+) \(made now\)/.exec(stderr);
          if (m) {
            clearTimeout(t);
            resolve(m[1]!);
          }
        });
      });
      const client = new ComputeClient('cli', url, readFileSync(tokenFile, 'utf8').trim());
      expect((await client.health()).state).toBe('ready');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(stderr).toContain('brick-lab agent: SIGTERM: closing');
  });
});

