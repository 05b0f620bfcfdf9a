import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentClient } from '../../src/agent/api/client.js';
import type { LabStatus } from '../../src/lab/lab.js';
import { labContainers } from '../../src/lab/providers/docker/container.js';
import { dockerClient } from '../../src/lab/providers/docker/engine.js';
import { nodeImageSpec } from '../../src/lab/providers/docker/image.js';
import { probeHostStorage } from '../../src/lab/providers/docker/provider.js';
import { findQemuProcesses } from '../../src/lab/providers/qemu/processes.js';
import { exec } from '../../src/system/exec.js';
import { renderTopology } from '../../src/lab/topology.js';
import { ensureDockerEngine } from './docker-engine.js';
import { CLI, cli, hostTraces, labClients, NOTHING, recipeKernel, unreachablePairs, waitFor } from './helpers.js';

const LAB = 'e2e-docker';

// The host-kernel target path needs LIO and nvmet in this host's kernel; probed before the tests
// are collected so that the skip says why.
const hostStorage = await probeHostStorage();

describe('the docker provider: a target and a compute as containers beside a QEMU compute', () => {
  let engine: Awaited<ReturnType<typeof ensureDockerEngine>>;
  let dir: string;
  let topoFile: string;
  let upStderr = '';
  let status: LabStatus;
  let clients = new Map<string, AgentClient>();
  const node = (name: string): AgentClient => clients.get(name)!;

  beforeAll(async () => {
    engine = await ensureDockerEngine();
    dir = await mkdtemp(join(tmpdir(), 'brick-e2e-docker-'));
    topoFile = join(dir, `${LAB}.yaml`);
    await writeFile(
      topoFile,
      renderTopology({
        name: LAB,
        nodes: [
          { name: 'target-1', role: 'target', provider: 'docker' },
          { name: 'compute-1', role: 'compute', provider: 'docker' },
          { name: 'compute-2', role: 'compute', provider: 'qemu' },
        ],
      }),
    );
    // Targets boot the guest kernel here even on a host whose kernel has LIO and nvmet: the
    // host-kernel path has its own test below.
    const r = await cli(['up', '--topology', topoFile, '--json'], { env: { ...process.env, BRICK_LAB_DOCKER_TARGETS: 'guest' } });
    upStderr = r.stderr;
    expect(r.exitCode, r.stderr).toBe(0);
    status = JSON.parse(r.stdout) as LabStatus;
    clients = await labClients(LAB);
  });

  afterAll(async () => {
    await cli(['down', '--name', LAB]);
    await engine?.stop();
  });

  it('runs docker nodes as containers of the locally built node image, each booting its own kernel, and says what it chose', async () => {
    expect(status.nodes.map((n) => [n.name, n.provider, n.container?.mode ?? null, n.state])).toEqual([
      ['target-1', 'docker', 'guest', 'ready'],
      ['compute-1', 'docker', 'guest', 'ready'],
      ['compute-2', 'qemu', null, 'ready'],
    ]);
    // Docker's own view: two running containers of this lab, from the image tagged by the recipe hash.
    const containers = await labContainers(LAB);
    expect(containers.map((c) => [c.node, c.running]).sort()).toEqual([['compute-1', true], ['target-1', true]]);
    for (const c of containers) {
      const info = await dockerClient().getContainer(c.id).inspect();
      expect(info.Config.Image).toBe(nodeImageSpec().tag);
    }
    // Three guests: two QEMU processes inside containers, one on the host, all found by name.
    expect((await findQemuProcesses(LAB)).map((p) => p.node).sort()).toEqual(['compute-1', 'compute-2', 'target-1']);
    // The privileges: probed, and printed with the reason.
    expect(status.docker!.privileges.summary).toMatch(/^(--privileged|--cap-add ALL.*--security-opt seccomp=unconfined)/);
    expect(upStderr).toContain(`privileges: ${status.docker!.privileges.summary}`);
    expect(upStderr).toMatch(/targets (boot the guest kernel|use the host kernel)/);
    // doctor says the same set, from the same probe.
    const doctor = await cli(['doctor', '--json']);
    const checks = (JSON.parse(doctor.stdout) as { checks: Array<{ name: string; detail: string }> }).checks;
    expect(checks.find((c) => c.name === 'docker privileges')?.detail).toBe(`${status.docker!.privileges.summary} (${status.docker!.privileges.reason})`);
    // Docker nodes are reached at their address on the lab's management network.
    for (const n of status.nodes.filter((x) => x.provider === 'docker')) expect(n.url).toMatch(/^http:\/\/\d+\.\d+\.\d+\.\d+:8080$/);
  });

  it('applies the chosen privileges to the containers, and no more', async () => {
    for (const c of await labContainers(LAB)) {
      const hc = (await dockerClient().getContainer(c.id).inspect()).HostConfig;
      if (status.docker!.privileges.mode === 'privileged') {
        expect(hc.Privileged).toBe(true);
      } else {
        expect(hc.Privileged).toBe(false);
        expect(hc.CapAdd).toEqual(['ALL']);
        expect(hc.SecurityOpt).toContain('seccomp=unconfined');
        expect((hc.Devices ?? []).map((d: { PathOnHost: string }) => d.PathOnHost)).toContain('/dev/net/tun');
      }
    }
  });

  it('runs the guest kernel with udev in every node, containers included', async () => {
    const kernel = await recipeKernel();
    for (const n of status.nodes) {
      expect((await node(n.name).run(['uname', '-r'])).stdout.trim(), n.name).toBe(kernel);
      await node(n.name).run(['pgrep', '-x', 'systemd-udevd']);
    }
  });

  it('loads LIO and nvmet on the container target, which answers targetcli ls', async () => {
    const t = node('target-1');
    for (const m of ['target_core_mod', 'iscsi_target_mod', 'nvmet', 'nvmet_tcp']) await t.run(['test', '-d', `/sys/module/${m}`]);
    const ls = await t.run(['targetcli', 'ls'], { timeoutMs: 120_000 });
    expect(ls.stdout).toMatch(/o- iscsi/);
  });

  it('loads the initiator modules with iscsid on both computes, with their own initiator names', async () => {
    for (const name of ['compute-1', 'compute-2']) {
      const c = node(name);
      for (const m of ['scsi_debug', 'iscsi_tcp', 'nvme_tcp', 'dm_multipath']) await c.run(['test', '-d', `/sys/module/${m}`]);
      await c.run(['pgrep', '-x', 'iscsid']);
      expect((await c.run(['cat', '/etc/iscsi/initiatorname.iscsi'])).stdout).toContain(`:${LAB}:${name}`);
    }
  });

  it('joins containers and the QEMU node on the same two data networks, kept apart', async () => {
    expect(await unreachablePairs(status.nodes, clients)).toEqual([]);
    const apart = await node('compute-1').exec(['ping', '-c', '1', '-W', '2', '-I', 'path-b', status.nodes[0]!.addresses['path-a']!]);
    expect(apart.exitCode).not.toBe(0);
  });

  it('protects a container node\'s agent with the lab token', async () => {
    const t = status.nodes.find((n) => n.name === 'target-1')!;
    const res = await fetch(`${t.url}/v1/exec`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ argv: ['true'] }) });
    expect(res.status).toBe(401);
  });

  it('passes the round-trip scenarios on the container compute, and live migration to the QEMU compute', async () => {
    const results = join(dir, 'results');
    const r = await cli([
      'run', '--name', LAB, '--topology', topoFile, '--keep', '--results', results,
      '--scenario', 'round-trip-iscsi-1path,round-trip-iscsi-2path,round-trip-nvme-1path,round-trip-nvme-2path,round-trip-local,live-migration-iscsi',
    ]);
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    const report = JSON.parse(await readFile(join(results, 'report.json'), 'utf8')) as { scenarios: Array<{ name: string; status: string }> };
    expect(report.scenarios.map((s) => [s.name, s.status])).toEqual([
      ['round-trip-iscsi-1path', 'passed'],
      ['round-trip-iscsi-2path', 'passed'],
      ['round-trip-nvme-1path', 'passed'],
      ['round-trip-nvme-2path', 'passed'],
      ['round-trip-local', 'passed'],
      ['live-migration-iscsi', 'passed'],
    ]);
  });

  it('reboots the container compute\'s guest inside its container, which keeps running, with its identity and its disk kept', async () => {
    const sh = async (script: string): Promise<string> => (await cli(['exec', '--name', LAB, 'compute-1', '--', 'sh', '-c', script])).stdout;
    const identity = 'cat /etc/iscsi/initiatorname.iscsi /etc/nvme/hostnqn; ip -o -4 addr show | awk \'{print $2, $4}\'';
    const before = await sh(identity);
    await sh('touch /etc/iscsi/e2e-kept /tmp/e2e-gone');
    const containerBefore = (await labContainers(LAB)).find((c) => c.node === 'compute-1');
    const r = await cli(['reboot', '--name', LAB, 'compute-1', '--hard']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^compute-1: hard reset, ready again in /);
    expect(await sh(identity)).toBe(before);
    expect(await sh('test -e /etc/iscsi/e2e-kept && echo kept; test -e /tmp/e2e-gone || echo gone; rm -f /etc/iscsi/e2e-kept')).toBe('kept\ngone\n');
    const containerAfter = (await labContainers(LAB)).find((c) => c.node === 'compute-1');
    expect(containerBefore).toBeDefined();
    expect(containerAfter).toMatchObject({ id: containerBefore!.id, running: true });
    expect(await node('compute-1').health()).toMatchObject({ state: 'ready' });
  });

  it('keeps the lab subnets off the host: Docker networks use subnets of their own', async () => {
    const host = await exec(['ip', '-o', '-4', 'addr', 'show'], { timeoutMs: 10_000 });
    for (const [key, net] of Object.entries(status.docker!.networks)) expect(net.subnet, key).not.toMatch(/^10\.10\.[12]\./);
    expect(host.stdout).not.toMatch(/inet 10\.10\.[12]\./);
  });

  it('runs a second docker lab with the same subnets beside it, neither touching the other', async () => {
    const solo = join(dir, 'solo.yaml');
    await writeFile(
      solo,
      renderTopology({ name: 'e2e-docker-two', networks: [{ name: 'path-a', subnet: '10.10.1.0/24' }], nodes: [{ name: 'solo', role: 'compute', provider: 'docker', addresses: { 'path-a': '10.10.1.20' } }] }),
    );
    const up = await cli(['up', '--topology', solo, '--json']);
    try {
      expect(up.exitCode, up.stderr).toBe(0);
      expect((JSON.parse(up.stdout) as LabStatus).nodes.map((n) => n.state)).toEqual(['ready']);
      // The first lab's target has 10.10.1.10 on its own, separate path-a: not reachable from here.
      const cross = await cli(['exec', '--name', 'e2e-docker-two', 'solo', '--', 'ping', '-c', '1', '-W', '2', '10.10.1.10']);
      expect(cross.exitCode).not.toBe(0);
    } finally {
      const d = await cli(['down', '--name', 'e2e-docker-two']);
      expect(d.exitCode, d.stderr).toBe(0);
    }
    expect(await hostTraces('e2e-docker-two')).toEqual(NOTHING);
    expect((await labContainers(LAB)).filter((c) => c.running)).toHaveLength(2);
    const still = await node('compute-1').exec(['ping', '-c', '1', '-W', '5', '-I', 'path-a', status.nodes[0]!.addresses['path-a']!]);
    expect(still.exitCode).toBe(0);
  });

  it('goes down from another process leaving no container, Docker network, QEMU, tap or namespace', async () => {
    const before = await hostTraces(LAB);
    expect(before.containers.sort()).toEqual([`brick-lab.${LAB}.compute-1`, `brick-lab.${LAB}.target-1`]);
    expect(before.networks.sort()).toEqual([`brick-lab.${LAB}.mgmt`, `brick-lab.${LAB}.path-a`, `brick-lab.${LAB}.path-b`]);
    // Frames that stay on one data bridge pass Docker's filter (two rules); nothing else was opened.
    expect(before.rules).toHaveLength(2);
    const r = await cli(['down', '--name', LAB]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await hostTraces(LAB)).toEqual(NOTHING);
  });

  it('removes what an interrupted up made (Ctrl-C while containers boot), and a crashed one on down', async () => {
    const file = join(dir, 'int.yaml');
    await writeFile(file, renderTopology({ name: 'e2e-docker-int', nodes: [{ name: 'target-1', role: 'target', provider: 'docker' }, { name: 'compute-1', role: 'compute', provider: 'docker' }] }));
    for (const sig of ['SIGINT', 'SIGKILL'] as const) {
      const child = spawn(process.execPath, [CLI, 'up', '--topology', file], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, BRICK_LAB_DOCKER_TARGETS: 'guest' } });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      await waitFor('two running containers', async () => (await labContainers('e2e-docker-int')).filter((c) => c.running).length === 2, 5 * 60_000);
      child.kill(sig);
      const code = await exit;
      if (sig === 'SIGINT') {
        expect(code, stderr).toBe(130);
        expect(stderr).toContain('LAB_INTERRUPTED');
      } else {
        // Killed outright, up removed nothing: down finds the containers and networks by label.
        const left = await hostTraces('e2e-docker-int');
        expect(left.containers.length).toBe(2);
        expect(left.networks.length).toBe(3);
        expect(left.rules.length).toBe(2);
        const d = await cli(['down', '--name', 'e2e-docker-int']);
        expect(d.exitCode, d.stderr).toBe(0);
      }
      expect(await hostTraces('e2e-docker-int')).toEqual(NOTHING);
    }
  });

  it('refuses docker nodes when no Docker Engine answers, saying how to get one, and makes nothing', async () => {
    const r = await cli(['up', '--topology', topoFile, '--name', 'e2e-docker-none'], { env: { ...process.env, DOCKER_HOST: 'unix:///run/brick-lab/no-such-docker.sock' } });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('DOCKER_UNAVAILABLE');
    expect(r.stderr).toContain('unix:///run/brick-lab/no-such-docker.sock');
    expect(r.stderr).toContain('apt-get install -y docker.io');
    expect(await hostTraces('e2e-docker-none')).toEqual(NOTHING);
  });

  it.skipIf(hostStorage.ok)('refuses host-kernel targets on a host kernel without LIO and nvmet, saying what is missing, and leaves nothing', async () => {
    const r = await cli(['up', '--topology', topoFile, '--name', 'e2e-docker-hk'], { env: { ...process.env, BRICK_LAB_DOCKER_TARGETS: 'host-kernel' } });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain('DOCKER_HOST_KERNEL_UNAVAILABLE');
    expect(r.stderr).toContain(hostStorage.detail);
    expect(await hostTraces('e2e-docker-hk')).toEqual(NOTHING);
  });

  it.skipIf(!hostStorage.ok)(`runs a target on the host kernel's LIO and nvmet${hostStorage.ok ? '' : ` (skipped: ${hostStorage.detail})`}`, async () => {
    const hk = join(dir, 'hk.yaml');
    await writeFile(hk, renderTopology({ name: 'e2e-docker-hk', nodes: [{ name: 'target-1', role: 'target', provider: 'docker' }, { name: 'compute-1', role: 'compute' }] }));
    const up = await cli(['up', '--topology', hk, '--json'], { env: { ...process.env, BRICK_LAB_DOCKER_TARGETS: 'host-kernel' } });
    try {
      expect(up.exitCode, up.stderr).toBe(0);
      const s = JSON.parse(up.stdout) as LabStatus;
      expect(s.nodes[0]!.container!.mode).toBe('host-kernel');
      // Its kernel is this host's: it does not reboot.
      const reboot = await cli(['reboot', '--name', 'e2e-docker-hk', 'target-1']);
      expect(reboot.exitCode).toBe(1);
      expect(reboot.stderr).toContain('NODE_NOT_REBOOTABLE: node target-1 is a target on the host\'s own kernel');
      const run = await cli(['run', '--name', 'e2e-docker-hk', '--topology', hk, '--keep', '--results', join(dir, 'hk-results'), '--scenario', 'round-trip-iscsi-1path,round-trip-nvme-1path']);
      expect(run.exitCode, `${run.stdout}\n${run.stderr}`).toBe(0);
    } finally {
      await cli(['down', '--name', 'e2e-docker-hk']);
    }
    // The host kernel keeps no LIO or nvmet object of the lab.
    const iqns = await readdir('/sys/kernel/config/target/iscsi').catch(() => [] as string[]);
    expect(iqns.filter((n) => n.includes('e2e-docker-hk'))).toEqual([]);
    const subsystems = await readdir('/sys/kernel/config/nvmet/subsystems').catch(() => [] as string[]);
    expect(subsystems.filter((n) => n.includes('e2e-docker-hk'))).toEqual([]);
    expect(await hostTraces('e2e-docker-hk')).toEqual(NOTHING);
  });

  it('leaves nothing of its own in the engine but the node image of this recipe (the cache)', async () => {
    const docker = dockerClient();
    const ours = (labels: Record<string, string> | null | undefined): boolean => Object.keys(labels ?? {}).some((k) => k.startsWith('io.brick-lab.'));
    const containers = await docker.listContainers({ all: true });
    // No lab container and no privilege probe container, running or stopped.
    expect(containers.filter((c) => ours(c.Labels)).map((c) => c.Names[0])).toEqual([]);
    expect((await docker.listNetworks()).filter((n) => ours(n.Labels)).map((n) => n.Name)).toEqual([]);
    const images = await docker.listImages({ all: true });
    const mine = images.filter((i) => ours(i.Labels) || (i.RepoTags ?? []).some((t) => t.startsWith('brick-lab/')));
    expect(mine.map((i) => i.RepoTags ?? [])).toEqual([[nodeImageSpec().tag]]);
  });
});
