import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHostAgent, type RunningHostAgent } from '../../src/agent/host-agent.js';
import { checkExitCode, gateCheck, resolveHost, volumeOf, type GateCheck } from '../../src/client/gate.js';
import { pathsView } from '../../src/inventory/paths-view.js';
import { exec } from '../../src/system/exec.js';

/*
 * The client verbs against a real agent: `brick-lab agent`'s code started in-process on this
 * host, which has no iSCSI session, NVMe controller or multipath map (the CI machine's kernel),
 * so every volume is absent here and every answer about it says so. The CLI runs as a process,
 * from dist/ (built before the tests, as scripts/bootstrap does).
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const cli = (args: string[]) => exec([process.execPath, join(ROOT, 'bin', 'brick-lab.js'), ...args], { timeoutMs: 60_000, reject: false });

let dir: string;
let running: RunningHostAgent;
let tokenFile: string;
let volumeFile: string;
const ISCSI = { driver_volume_type: 'iscsi', data: { target_portal: '10.10.1.10:3260', target_iqn: 'iqn.2026-12.io.brick-lab:client.none', target_lun: 2 } };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'brick-client-'));
  tokenFile = join(dir, 'token');
  running = await startHostAgent({ testHost: true, markerFile: join(dir, 'none'), listen: '127.0.0.1:0', tokenFile, allowAttach: false });
  volumeFile = join(dir, 'volume.json');
  writeFileSync(volumeFile, JSON.stringify(ISCSI));
});
afterAll(async () => {
  await running.close();
  pathsView().stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the gate check (src/client/gate.ts)', () => {
  it('fails a host the volume must be attached on but is not, passes one it must be gone from, and asks every host', async () => {
    const host = await resolveHost(running.url, { labName: 'unused', tokenFile });
    const c = await gateCheck(volumeOf(ISCSI), [host], [host]);
    expect(c.hosts.map((h) => [h.expect, h.verdict, h.detail])).toEqual([
      ['attached', 'fails', 'not attached: no path or device'],
      ['gone', 'holds', 'gone: no path, no device, no orphan'],
    ]);
    expect([c.ok, checkExitCode(c)]).toEqual([false, 1]);
  });

  it('counts a host it cannot ask as an error, never a pass (exit 3 when nothing failed)', async () => {
    const host = await resolveHost(running.url, { labName: 'unused', tokenFile });
    const closed = await resolveHost('http://127.0.0.1:9', { labName: 'unused', tokenFile });
    const c = await gateCheck(volumeOf(ISCSI), [], [host, closed]);
    expect(c.hosts.map((h) => [h.verdict, h.code ?? null])).toEqual([['holds', null], ['error', 'AGENT_UNREACHABLE']]);
    expect([c.ok, checkExitCode(c)]).toEqual([false, 3]);
    const wrongToken = join(dir, 'wrong-token');
    writeFileSync(wrongToken, 'x'.repeat(40));
    const refused = await gateCheck(volumeOf(ISCSI), [], [await resolveHost(running.url, { labName: 'unused', tokenFile: wrongToken })]);
    expect(refused.hosts[0]).toMatchObject({ verdict: 'error', code: 'UNAUTHORIZED' });
  });

  it('exits 1 over 3 when one host fails and another cannot be asked', () => {
    const c: GateCheck = { ok: false, protocol: 'iscsi', hosts: [{ host: 'a', expect: 'gone', verdict: 'error', detail: '', paths: [], devices: [], orphans: [] }, { host: 'b', expect: 'gone', verdict: 'fails', detail: '', paths: [], devices: [], orphans: [] }] };
    expect(checkExitCode(c)).toBe(1);
    expect(checkExitCode({ ...c, ok: true, hosts: [] })).toBe(0);
  });

  it('refuses a malformed volume or host before asking anything, naming what is wrong', async () => {
    expect(() => volumeOf({ data: {} })).toThrow(/no driver_volume_type and no --protocol/);
    expect(() => volumeOf({ driver_volume_type: 'rbd', data: {} })).toThrow(/driver_volume_type "rbd": not a protocol brick-lab knows/);
    // Cinder's name for FC is read as brick-lab's fc, and its properties are checked by the FC codec.
    expect(() => volumeOf({ driver_volume_type: 'fibre_channel', data: {} })).toThrow(/^target_wwn: missing/);
    expect(volumeOf({ driver_volume_type: 'FIBRE_CHANNEL', data: { target_wwn: ['20005254004c0001'], target_lun: 1 } }).protocol).toBe('fc');
    expect(() => volumeOf({ ...ISCSI, data: { ...ISCSI.data, target_iqn: 'iqn.bad' } })).toThrow(/target_iqn/);
    await expect(resolveHost('http://127.0.0.1:8470/v1', { labName: 'x', tokenFile })).rejects.toThrow(/a scheme, a host and a port, nothing after it/);
    await expect(resolveHost('http://127.0.0.1:8470', { labName: 'x' })).rejects.toThrow(/needs --token-file/);
    await expect(resolveHost('compute-1;id', { labName: 'x' })).rejects.toThrow(/neither a node name nor an http\(s\) URL/);
    await expect(resolveHost(running.url, { labName: 'x', tokenFile: join(dir, 'missing') })).rejects.toThrow(/--token-file .*missing: cannot be read/);
  });
});

describe('brick-lab paths, volumes, inventory, orphans, check (the CLI)', () => {
  const at = (): string[] => ['--url', running.url, '--token-file', tokenFile];

  it('paths and volumes answer nothing for a volume this host never had; inventory is empty and well formed', async () => {
    const paths = await cli(['paths', ...at(), '--properties', volumeFile, '--json']);
    expect([paths.exitCode, JSON.parse(paths.stdout)]).toEqual([0, { paths: [], devices: [] }]);
    const volumes = await cli(['volumes', ...at(), '--protocol', 'nvmeof']);
    expect([volumes.exitCode, volumes.stdout.trim()]).toEqual([0, `no volume of nvmeof on ${running.url}`]);
    const inv = await cli(['inventory', ...at(), '--json']);
    const snap = JSON.parse(inv.stdout) as Record<string, unknown>;
    expect(inv.exitCode).toBe(0);
    expect([snap.scope, snap.iscsiSessions, snap.nvmeControllers, snap.multipathMaps]).toEqual(['full', [], [], []]);
    const text = await cli(['inventory', ...at()]);
    expect(text.stdout).toContain('iscsi sessions (0): -');
  });

  it('orphans says clean (exit 0); check prints a verdict per host and exits 1 when one fails, 0 when all hold', async () => {
    const orphans = await cli(['orphans', ...at(), '--properties', volumeFile]);
    expect([orphans.exitCode, orphans.stdout.trim()]).toEqual([0, `${running.url}: clean, nothing of the volume is left`]);
    const failing = await cli(['check', '--properties', volumeFile, '--attached-on', running.url, '--gone-from', running.url, '--token-file', tokenFile]);
    expect(failing.exitCode).toBe(1);
    expect(failing.stdout).toMatch(/attached\s+fails\s+not attached: no path or device/);
    expect(failing.stdout).toContain('check FAILED: 1 of 2 hosts does not hold');
    const holding = await cli(['check', '--properties', volumeFile, '--gone-from', running.url, '--token-file', tokenFile, '--json']);
    expect(holding.exitCode).toBe(0);
    expect(JSON.parse(holding.stdout)).toMatchObject({ ok: true, protocol: 'iscsi', hosts: [{ host: running.url, expect: 'gone', verdict: 'holds' }] });
    const unknown = await cli(['check', '--properties', volumeFile, '--gone-from', 'http://127.0.0.1:9', '--token-file', tokenFile]);
    expect(unknown.exitCode).toBe(3);
    expect(unknown.stdout).toContain('1 of 1 host could not be asked');
  });

  it('refuses bad command lines with exit 2 and a message that names what is wrong', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['paths', '--properties', volumeFile], /paths asks one agent: give --node NODE/],
      [['paths', '--node', 'compute-1', ...at(), '--properties', volumeFile], /not both/],
      [['paths', ...at()], /paths needs --properties FILE/],
      [['check', '--properties', volumeFile], /check needs at least one --attached-on HOST or --gone-from HOST/],
      [['check', '--properties', join(dir, 'nope.json'), '--gone-from', running.url, '--token-file', tokenFile], /--properties .*nope\.json: cannot be read/],
      [['volumes', ...at(), '--protocol', 'rbd'], /--protocol "rbd": one of iscsi, nvmeof, fc, local/],
      [['inventory', ...at(), '--properties', volumeFile], /inventory does not take --properties/],
      [['paths', '--url', running.url, '--properties', volumeFile], /needs --token-file/],
    ];
    for (const [args, why] of cases) {
      const r = await cli(args);
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(why);
    }
  });
});
