import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ComputeClient } from '../../src/agent/api/compute-client.js';
import { labClient } from '../../src/lab/lab.js';
import { Qmp } from '../../src/lab/providers/qemu/template.js';
import type { LabRecord } from '../../src/lab/state.js';
import { exec, type ExecResult } from '../../src/system/exec.js';
import { poll } from '../../src/system/wait.js';
import { ROOT, cli } from './helpers.js';

/*
 * `brick-lab agent` on "a host the user already has": two compute guests of a running lab play a
 * live migration's source and destination. The agent goes in as the README tells a user (the one
 * file from `npm pack`'s tarball, run by the host's Node.js), not as the lab's stage 2 starts its
 * own; it refuses an unmarked host, then serves a marked one on the management address, which the
 * test reaches through a port QEMU forwards from the host's loopback (added over QMP for the test,
 * removed after). The gate check runs through `brick-lab check` and through the Python client,
 * passing after the migration and failing, naming what is left, while the source keeps a device.
 */

// The guest's Node.js: the lab's own runtime share, there in a booted node and in one restored from a template alike.
const GUEST_NODE = '/opt/brick-lab/node/node';
const AGENT_DIR = '/usr/local/lib/brick-lab-agent';
const AGENT = `${AGENT_DIR}/brick-lab-agent.cjs`;
const PIDFILE = '/run/brick-lab-host-agent.pid';
const GUEST_PORT = 8470;

/** A port free on the host's loopback now. */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** QEMU's monitor of a lab node (its QMP socket), one human-monitor command; its text answer. */
async function monitor(rec: LabRecord, node: string, line: string): Promise<string> {
  const q = await Qmp.open(join(rec.dir, 'run', `${node}.qmp`), 10_000);
  try {
    const r = await q.command('human-monitor-command', { 'command-line': line });
    return String(r.return ?? '');
  } finally {
    q.close();
  }
}

export function describeHostAgent(lab: () => LabRecord): void {
  it('brick-lab agent from the npm tarball on two guests: refuses an unmarked host, then the gate check of a live migration holds, and fails naming the device the source keeps (CLI and Python client)', async () => {
    const rec = lab();
    const dir = await mkdtemp(join(tmpdir(), 'brick-e2e-host-agent-'));
    const packed = await exec(['npm', 'pack', '--silent', '--pack-destination', dir], { cwd: ROOT, timeoutMs: 120_000 });
    const tarball = join(dir, packed.stdout.trim().split('\n').pop()!);
    await exec(['tar', '-xzf', tarball, '-C', dir, 'package/dist/brick-lab-agent.cjs'], { timeoutMs: 60_000 });
    const bundle = await readFile(join(dir, 'package', 'dist', 'brick-lab-agent.cjs'), 'utf8');
    const token = randomBytes(24).toString('hex');
    const tokenFile = join(dir, 'gate-token');
    await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });

    const target = (await labClient(rec, 'target-1')).target;
    const hosts = ['compute-1', 'compute-2'] as const;
    const node = Object.fromEntries(await Promise.all(hosts.map(async (h) => [h, (await labClient(rec, h)).compute] as const)));
    const forwarded: Array<[string, number]> = [];
    const urls: Record<string, string> = {};
    const volumeName = 'host-agent-vol';
    try {
      // Both hosts at once (each guest has its own vCPU): the same steps a user takes on each.
      await Promise.all(hosts.map(async (h) => {
        const c = node[h]!;
        await c.run(['mkdir', '-p', AGENT_DIR]);
        await c.run(['dd', `of=${AGENT}`, 'status=none'], { input: bundle, timeoutMs: 120_000 });
        // Not a test host yet: refused, saying how to mark it, and nothing made.
        const refused = await c.exec([GUEST_NODE, AGENT, '--listen', `0.0.0.0:${GUEST_PORT}`], { timeoutMs: 60_000 });
        expect(refused.exitCode, h).toBe(1);
        expect(refused.stderr, h).toContain('NOT_A_TEST_HOST: this host is not marked as a test host');
        expect(refused.stderr, h).toContain('pass --test-host or create /etc/brick-lab/test-host');
        expect((await c.run(['ls', '-A', '/etc'])).stdout.split('\n'), h).not.toContain('brick-lab');
        // Marked, with the gate's token, and started as a service would be.
        await c.run(['mkdir', '-p', '-m', '0700', '/etc/brick-lab']);
        await c.run(['touch', '/etc/brick-lab/test-host']);
        await c.run(['dd', 'of=/etc/brick-lab/agent-token', 'status=none'], { input: `${token}\n` });
        await c.run(['chmod', '600', '/etc/brick-lab/agent-token']);
        await c.run(['start-stop-daemon', '--start', '--background', '--make-pidfile', '--pidfile', PIDFILE, '--output', '/var/log/brick-lab-agent.log', '--exec', GUEST_NODE, '--', AGENT, '--listen', `0.0.0.0:${GUEST_PORT}`, '--allow-attach']);
        const port = await freePort();
        expect(await monitor(rec, h, `hostfwd_add mgmt tcp:127.0.0.1:${port}-10.0.2.15:${GUEST_PORT}`), h).toBe('');
        forwarded.push([h, port]);
        urls[h] = `http://127.0.0.1:${port}`;
        const client = new ComputeClient(h, urls[h]!, token);
        await poll(async () => (await client.health().catch(() => null))?.state === 'ready', { timeoutMs: 60_000, intervalMs: 250 });
        expect((await client.health()).lab).toBe('host');
      }));
      const agent = (h: (typeof hosts)[number]): ComputeClient => new ComputeClient(h, urls[h]!, token);

      // The volume, as Cinder would hand it to either host; attached on the source, then the
      // destination, then detached from the source: a live migration, through the host agents.
      const v = await target.createIscsiVolume({ name: volumeName, sizeMiB: 8, initiators: rec.nodes.filter((n) => n.role === 'compute').map((n) => n.initiatorIqn), networks: ['path-a'] });
      const props = join(dir, 'volume.json');
      await writeFile(props, JSON.stringify(v.connectionInfo));
      const onSource = await agent('compute-1').connect('iscsi', v.connectionInfo);
      const onDestination = await agent('compute-2').connect('iscsi', v.connectionInfo);
      await agent('compute-1').disconnect('iscsi', v.connectionInfo, onSource);

      const gate = (): Promise<ExecResult> =>
        cli(['check', '--properties', props, '--attached-on', urls['compute-2']!, '--gone-from', urls['compute-1']!, '--token-file', tokenFile]);
      const python = (): Promise<ExecResult> =>
        exec(['python3', join(ROOT, 'clients', 'python', 'brick_lab_client.py'), 'check', '--properties', props, '--attached-on', urls['compute-2']!, '--gone-from', urls['compute-1']!, '--token-file', tokenFile, '--json'], { reject: false, timeoutMs: 120_000, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } });
      const held = await gate();
      expect(held.exitCode, `${held.stdout}${held.stderr}`).toBe(0);
      expect(held.stdout).toMatch(new RegExp(`${urls['compute-2']}\\s+attached\\s+holds\\s+attached: .*${onDestination.path.replace('/dev/', '')}`));
      expect(held.stdout).toContain('check holds on all 2 hosts');
      const heldPy = await python();
      expect(heldPy.exitCode, `${heldPy.stdout}${heldPy.stderr}`).toBe(0);
      expect(JSON.parse(heldPy.stdout)).toMatchObject({ ok: true });
      // The same hosts as the lab's own nodes (their lab agents, the lab's token): the verbs by --node and --name.
      const byNode = await cli(['check', '--name', rec.name, '--properties', props, '--attached-on', 'compute-2', '--gone-from', 'compute-1', '--json']);
      expect(byNode.exitCode, byNode.stderr).toBe(0);
      expect(JSON.parse(byNode.stdout)).toMatchObject({ ok: true, hosts: [{ host: 'compute-2', verdict: 'holds' }, { host: 'compute-1', verdict: 'holds' }] });
      const listed = await cli(['volumes', '--name', rec.name, '--node', 'compute-2', '--protocol', 'iscsi', '--json']);
      expect(listed.exitCode, listed.stderr).toBe(0);
      expect((JSON.parse(listed.stdout) as { iscsi: Array<{ devices: string[] }> }).iscsi.map((x) => x.devices)).toEqual([onDestination.devices]);

      // The source attached again and kept: the check fails and names what the source still has.
      const kept = await agent('compute-1').connect('iscsi', v.connectionInfo);
      const failed = await gate();
      expect(failed.exitCode).toBe(1);
      const sourceLine = failed.stdout.split('\n').find((l) => l.startsWith(urls['compute-1']!))!;
      expect(sourceLine).toMatch(/gone\s+fails\s+still has /);
      expect(sourceLine).toContain(kept.path.replace('/dev/', ''));
      expect(failed.stdout).toContain('check FAILED: 1 of 2 hosts does not hold');
      const failedPy = await python();
      expect(failedPy.exitCode).toBe(1);
      const py = JSON.parse(failedPy.stdout) as { ok: boolean; hosts: Array<{ url: string; verdict: string; detail: string }> };
      expect(py.ok).toBe(false);
      const source = py.hosts.find((x) => x.url === urls['compute-1'])!;
      expect(source.verdict).toBe('fails');
      expect(source.detail).toContain(kept.path.replace('/dev/', ''));

      for (const h of hosts) await agent(h).disconnect('iscsi', v.connectionInfo, null);
      // Both hosts clean again, by the same check.
      const after = await cli(['check', '--properties', props, '--gone-from', urls['compute-1']!, '--gone-from', urls['compute-2']!, '--token-file', tokenFile]);
      expect(after.exitCode, after.stdout).toBe(0);
    } finally {
      for (const [h, port] of forwarded) await monitor(rec, h, `hostfwd_remove mgmt tcp:127.0.0.1:${port}`).catch(() => undefined);
      await Promise.all(hosts.map(async (h) => {
        const c = node[h]!;
        await c.exec(['start-stop-daemon', '--stop', '--oknodo', '--retry', '5', '--remove-pidfile', '--pidfile', PIDFILE]).catch(() => undefined);
        await c.exec(['rm', '-rf', '/etc/brick-lab', AGENT_DIR, '/var/log/brick-lab-agent.log']).catch(() => undefined);
      }));
      await target.deleteVolume(volumeName).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
    // Nothing of it left on the hosts' kernels.
    for (const h of hosts) {
      const snap = await node[h]!.inventory();
      expect([h, snap.iscsiSessions, snap.scsiDevices.filter((d) => d.session !== null)]).toEqual([h, [], []]);
    }
  }, 600_000);
}
