import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { draftRecord } from '../../src/lab/plan.js';
import { processAlive, stopProcesses } from '../../src/system/process.js';
import { dockerProvider } from '../../src/lab/providers/docker/provider.js';
import { qemuProvider } from '../../src/lab/providers/qemu/provider.js';
import { PROVIDER_ORDER, providerOf, providersOf } from '../../src/lab/providers/registry.js';
import { waitReady } from '../../src/lab/ready.js';
import type { NodeRecord } from '../../src/lab/state.js';
import { parseTopology, renderTopology } from '../../src/lab/topology.js';
import { BrickError } from '../../src/system/errors.js';
import { fakeClock } from '../../src/system/wait.js';
import { TEST_IMAGE } from './lab-fixtures.js';

const IMAGE = TEST_IMAGE;

function mixedLab() {
  const topo = parseTopology(
    renderTopology({
      name: 'mixed',
      nodes: [
        { name: 'target-1', role: 'target', provider: 'docker' },
        { name: 'compute-1', role: 'compute' },
        { name: 'compute-2', role: 'compute', provider: 'docker' },
      ],
    }),
    'mixed.yaml',
  );
  return draftRecord('mixed', 'mixed.yaml', topo, '/state/labs/mixed', 'tcg', 'unit', IMAGE);
}

describe('provider selection', () => {
  it("a node's provider is its record's, qemu for records written before the docker provider", () => {
    const rec = mixedLab();
    expect(rec.nodes.map((n) => providerOf(n).name)).toEqual(['docker', 'qemu', 'docker']);
    const { provider: _gone, ...old } = rec.nodes[1]!;
    expect(providerOf(old as NodeRecord)).toBe(qemuProvider);
  });

  it('groups nodes by provider, docker first (its networks are the data networks QEMU taps join), and leaves out unused providers', () => {
    const rec = mixedLab();
    expect(providersOf(rec.nodes).map((g) => [g.provider.name, g.nodes.map((n) => n.name)])).toEqual([
      ['docker', ['target-1', 'compute-2']],
      ['qemu', ['compute-1']],
    ]);
    expect(providersOf(rec.nodes.filter((n) => n.provider === 'qemu')).map((g) => g.provider)).toEqual([qemuProvider]);
    expect(providersOf([])).toEqual([]);
    expect(PROVIDER_ORDER).toEqual([dockerProvider, qemuProvider]);
  });

  it("each provider prints its own dry run: QEMU on the host, or the container's entry script running QEMU", () => {
    const rec = mixedLab();
    rec.nodes.forEach((n, i) => (n.mgmtPort = 40000 + i));
    const [docker, qemu] = [providerOf(rec.nodes[0]!).dryRun(rec, rec.nodes[0]!, IMAGE), providerOf(rec.nodes[1]!).dryRun(rec, rec.nodes[1]!, IMAGE)];
    expect(docker).toHaveLength(2);
    expect(docker[0]).toBe('# target-1: provider docker, container brick-lab.mixed.target-1; inside it:');
    expect(docker[1]).toMatch(/^node-entry\.sh qemu qemu-system-x86_64 -name brick-lab:mixed:target-1 /);
    expect(docker[1]).toContain('hostfwd=tcp:127.0.0.1:8081-10.0.2.15:8080');
    expect(docker[1]).not.toContain('-daemonize');
    expect(qemu).toHaveLength(1);
    expect(qemu[0]).toMatch(/^qemu-system-x86_64 -name brick-lab:mixed:compute-1 /);
    expect(qemu[0]).toContain('hostfwd=tcp:127.0.0.1:40001-10.0.2.15:8080');
    expect(qemu[0]).toContain("-append 'console=ttyS0 quiet panic=-1 mitigations=off norandmaps net.ifnames=0 brick.node=compute-1'");
  });

  it('a node is alive while its pid is', () => {
    const rec = mixedLab();
    const n = rec.nodes[1]!;
    expect(qemuProvider.alive(n)).toBe(false);
    n.pid = process.pid;
    expect(qemuProvider.alive(n)).toBe(true);
    expect(dockerProvider.alive({ ...n, pid: null })).toBe(false);
  });
});

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

describe('waitReady through system/wait', () => {
  async function node(): Promise<NodeRecord> {
    const n = mixedLab().nodes[1]!;
    return { ...n, url: `http://127.0.0.1:${await closedPort()}`, consoleLog: '/nonexistent/console.log' };
  }

  it('asks every 250 ms while nothing answers, and times out with the last error', async () => {
    const clock = fakeClock();
    const err = await waitReady(await node(), 't', 1000, undefined, () => true, clock).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BrickError);
    expect((err as BrickError).code).toBe('NODE_BOOT_TIMEOUT');
    expect((err as BrickError).message).toMatch(/^node compute-1 was not ready within 1 s \(.+\); last console lines:/);
    expect((err as BrickError).hint).toMatch(/raise bootTimeoutSeconds/);
    expect(clock.slept).toEqual([250, 250, 250, 250]);
  });

  it('after a reboot, takes an answer from the boot the node left for not back yet, and waits for another boot', async () => {
    let asked = 0;
    const srv = createHttpServer((_req, res) => {
      asked++;
      const bootId = asked <= 2 ? 'old-boot' : 'new-boot';
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ lab: 'mixed', node: 'compute-1', role: 'compute', state: 'ready', kernel: '6.1.0-56-amd64', uptimeSeconds: 9, bootId, timeline: [], tools: {}, agent: { version: '0.1.0', node: 'v20', pid: 1 } }));
    });
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    try {
      const n = { ...(await node()), url: `http://127.0.0.1:${(srv.address() as { port: number }).port}` };
      const clock = fakeClock();
      await waitReady(n, 't', 10_000, undefined, () => true, clock, 'old-boot');
      expect(asked).toBe(3);
      expect(clock.slept).toEqual([250, 250]);
      // Without a boot to leave, the first ready answer is enough.
      asked = 0;
      await waitReady(n, 't', 10_000, undefined, () => true, fakeClock());
      expect(asked).toBe(1);
    } finally {
      srv.close();
    }
  });

  it('fails a node whose boot marked a step failed, even though it went on to ready', async () => {
    // As stage 2 left a node whose data NIC was renamed under it: failed:network, then ready.
    const srv = createHttpServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      const timeline = [{ step: 'stage2', uptimeSeconds: 3.1 }, { step: 'failed:network', uptimeSeconds: 19.0 }, { step: 'network', uptimeSeconds: 19.0 }, { step: 'ready', uptimeSeconds: 21.4 }];
      res.end(JSON.stringify({ lab: 'mixed', node: 'compute-1', role: 'compute', state: 'ready', kernel: '6.1.0-56-amd64', uptimeSeconds: 22, bootId: 'b', timeline, tools: {}, agent: { version: '0.1.0', node: 'v20', pid: 1 } }));
    });
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    try {
      const n = { ...(await node()), url: `http://127.0.0.1:${(srv.address() as { port: number }).port}` };
      await expect(waitReady(n, 't', 10_000, undefined, () => true, fakeClock())).rejects.toMatchObject({ code: 'NODE_BOOT_FAILED', message: expect.stringContaining('boot step network failed') });
    } finally {
      srv.close();
    }
  });

  it('reports a node that died at once, and an interrupt as LAB_INTERRUPTED', async () => {
    const clock = fakeClock();
    await expect(waitReady(await node(), 't', 1000, undefined, () => false, clock)).rejects.toMatchObject({ code: 'NODE_DIED', message: expect.stringContaining('QEMU exited') });
    expect(clock.slept).toEqual([]);
    const ac = new AbortController();
    ac.abort();
    await expect(waitReady(await node(), 't', 1000, ac.signal, () => true, clock)).rejects.toMatchObject({ code: 'LAB_INTERRUPTED' });
  });
});

describe('stopProcesses', () => {
  it('stops a process that takes SIGTERM', async () => {
    const child = spawn('sleep', ['60'], { stdio: 'ignore' });
    const pid = child.pid!;
    expect(processAlive(pid)).toBe(true);
    await stopProcesses([pid]);
    expect(processAlive(pid)).toBe(false);
  });

  it('kills one that ignores SIGTERM after the grace period', async () => {
    const child = spawn('sh', ['-c', "trap '' TERM; echo ready; while :; do sleep 0.1; done"], { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise((r) => child.stdout!.once('data', r));
    const pid = child.pid!;
    const t0 = performance.now();
    await stopProcesses([pid], 300);
    expect(processAlive(pid)).toBe(false);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(250);
  });
});
