import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir } from 'node:fs/promises';
import { release as osRelease } from 'node:os';
import { join } from 'node:path';
import { BrickError } from '../../../system/errors.js';
import { exec, renderCommand, which } from '../../../system/exec.js';
import { progress, warn } from '../../../system/log.js';
import { PROJECT_ROOT } from '../../../system/paths.js';
import { processAlive } from '../../../system/process.js';
import { imageOf, type PreparedNodes, type Provider, type RemoveContext, type UpContext } from '../../provider.js';
import { throwIfAborted } from '../../ready.js';
import { writeRecord, type LabRecord, type NodeRecord } from '../../state.js';
import { AGENT_PORT, qemuArgv, qemuSpec } from '../qemu/argv.js';
import { containerName, labContainers, QEMU_FORWARD_PORT, startDockerNode } from './container.js';
import { dockerClient, engineAddress, enginePing, LAB_LABEL, requireEngine } from './engine.js';
import { ensureNodeImage } from './image.js';
import { allowLabBridges, containerAddress, createDockerNetworks, labNetworks, labRules, removeLabRules } from './networks.js';
import { choosePrivileges, type PrivilegeSet } from './privileges.js';

/**
 * Does the host kernel have LIO and nvmet (loaded, built in, or loadable)? A target container can
 * use them only then; otherwise it boots the guest kernel like a compute node.
 */
export async function probeHostStorage(): Promise<{ ok: boolean; detail: string }> {
  const modules = ['target_core_mod', 'iscsi_target_mod', 'target_core_iblock', 'nvmet', 'nvmet_tcp'];
  const modprobe = await which('modprobe');
  const release = osRelease();
  const missing: string[] = [];
  for (const m of modules) {
    if (existsSync(`/sys/module/${m}`)) continue; // loaded or built in
    if (!modprobe) {
      missing.push(`${m} (not loaded, and no modprobe to load it)`);
      continue;
    }
    const r = await exec([modprobe, '-n', '-q', m], { timeoutMs: 10_000, reject: false });
    if (r.exitCode !== 0) missing.push(m);
  }
  if (missing.length === 0) return { ok: true, detail: `host kernel ${release} has ${modules.join(', ')}` };
  return {
    ok: false,
    detail: `host kernel ${release} lacks ${missing.join(', ')} (modprobe -n finds no module; on Ubuntu they come with linux-modules-extra-${release})`,
  };
}

/** How docker targets run: on the host's kernel when it has LIO and nvmet (auto), or as forced by BRICK_LAB_DOCKER_TARGETS. */
export function dockerTargetMode(setting: string | undefined, hostStorage: { ok: boolean; detail: string }): 'guest' | 'host-kernel' {
  const v = (setting ?? 'auto').trim().toLowerCase() || 'auto';
  if (v === 'guest') return 'guest';
  if (v === 'host-kernel') {
    if (!hostStorage.ok) {
      throw new BrickError('DOCKER_HOST_KERNEL_UNAVAILABLE', `BRICK_LAB_DOCKER_TARGETS=host-kernel, but ${hostStorage.detail}`, {
        hint: 'install the host kernel\'s storage modules, or unset BRICK_LAB_DOCKER_TARGETS so that targets boot the guest kernel in their container',
      });
    }
    return 'host-kernel';
  }
  if (v !== 'auto') {
    throw new BrickError('USAGE', `BRICK_LAB_DOCKER_TARGETS must be auto, guest or host-kernel (got ${JSON.stringify(setting)})`, { hint: 'unset it for auto' });
  }
  return hostStorage.ok ? 'host-kernel' : 'guest';
}

/**
 * Everything docker nodes need before any starts: an engine, the node image, the privileges this
 * host allows, each node's mode, the lab's Docker networks, and the container's entry files in the
 * lab share. Says what it chose.
 */
async function prepareDocker(rec: LabRecord, nodes: NodeRecord[], signal?: AbortSignal): Promise<{ nodeImage: string; privileges: PrivilegeSet }> {
  const docker = dockerClient();
  const engine = await requireEngine(docker);
  progress('docker', `Docker Engine ${engine.version} (API ${engine.apiVersion}, ${engine.storageDriver}, cgroup v${engine.cgroupVersion})`);
  const nodeImage = (await ensureNodeImage(docker, signal ? { signal } : {})).tag;
  throwIfAborted(signal);
  const privileges = await choosePrivileges(docker, nodeImage);
  progress('docker', `privileges: ${privileges.summary} (${privileges.reason})`);
  const dockerTargets = nodes.filter((n) => n.role === 'target');
  const hostStorage = dockerTargets.length ? await probeHostStorage() : { ok: false, detail: 'no target runs in a container' };
  const targetMode = dockerTargets.length ? dockerTargetMode(process.env.BRICK_LAB_DOCKER_TARGETS, hostStorage) : 'guest';
  if (dockerTargets.length) {
    progress('docker', targetMode === 'host-kernel' ? `targets use the host kernel's LIO and nvmet (${hostStorage.detail})` : `targets boot the guest kernel in their container: ${hostStorage.ok ? 'BRICK_LAB_DOCKER_TARGETS=guest' : hostStorage.detail}`);
  }
  rec.docker = {
    engine: engine.version,
    image: nodeImage,
    privileges: { mode: privileges.mode, summary: privileges.summary, reason: privileges.reason },
    hostStorage,
    networks: {},
  };
  await writeRecord(rec); // from here on `down` knows to look for containers and networks
  progress('network', `Docker networks for ${rec.topology.networks.map((n) => n.name).join(', ')} and management`);
  rec.docker.networks = await createDockerNetworks(docker, rec.name, rec.topology);
  await allowLabBridges(rec.name, rec.topology.networks.map((n) => rec.docker!.networks[n.name]!.bridge));
  for (const n of nodes) {
    const mgmtAddress = containerAddress(rec.docker.networks.mgmt!.subnet, n.index);
    n.container = { id: '', name: containerName(rec.name, n.name), mode: n.role === 'target' ? targetMode : 'guest', mgmtAddress };
    n.mgmtPort = AGENT_PORT;
    n.url = `http://${mgmtAddress}:${AGENT_PORT}`;
  }
  await writeRecord(rec);
  // The container's entry script and the management relay, read from the lab share.
  const guest = join(rec.shareDir, 'guest');
  await mkdir(guest, { recursive: true });
  await copyFile(join(PROJECT_ROOT, 'images', 'docker', 'node-entry.sh'), join(guest, 'node-entry.sh'));
  await copyFile(join(PROJECT_ROOT, 'images', 'docker', 'mgmt-relay.cjs'), join(guest, 'mgmt-relay.cjs'));
  await chmod(join(guest, 'node-entry.sh'), 0o755);
  return { nodeImage, privileges };
}

/** Remove a lab's containers, then its networks, found by label (works without the lab record). */
export async function removeDockerLab(lab: string, beforeRemove?: (c: { node: string; mode: string }) => Promise<void>): Promise<string[]> {
  const docker = dockerClient();
  const removed: string[] = [];
  for (const c of await labContainers(lab)) {
    if (c.running && beforeRemove) await beforeRemove(c);
    try {
      await docker.getContainer(c.id).remove({ force: true, v: true });
      removed.push(`container ${c.name}`);
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 404) throw e;
    }
  }
  removed.push(...(await removeLabRules(lab)));
  for (const n of await labNetworks(lab)) {
    try {
      await docker.getNetwork(n.id).remove();
      removed.push(`docker network ${n.name}`);
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 404) throw e;
    }
  }
  return removed;
}

/**
 * A target on the host's kernel must take its LIO and nvmet objects out of that kernel before its
 * container goes: nothing else would.
 */
async function cleanHostKernel(ctx: RemoveContext, c: { node: string; mode: string }, removed: string[]): Promise<void> {
  if (c.mode !== 'host-kernel' || !ctx.rec) return;
  try {
    await (await ctx.client(c.node)).target.cleanup({ timeoutMs: 120_000 });
    removed.push(`LIO and nvmet objects of ${c.node} in the host kernel`);
  } catch (e) {
    warn(`${c.node}: could not clean its LIO and nvmet objects out of the host kernel: ${(e as Error).message}`);
  }
}

/** Nodes in containers (the guest kernel under QEMU in the container, or a target on the host's kernel), on Docker networks. */
export const dockerProvider: Provider = {
  name: 'docker',

  async prepare(ctx: UpContext, nodes: NodeRecord[]): Promise<PreparedNodes> {
    const { rec, token, signal } = ctx;
    const { nodeImage, privileges } = await prepareDocker(rec, nodes, signal);
    throwIfAborted(signal);
    return {
      // testcontainers starts a container and waits for its wait strategy in one call: see ready.
      start: async () => undefined,
      async ready(node) {
        node.startedAt = new Date().toISOString();
        const started = await startDockerNode({ rec, node, image: imageOf(ctx, node), nodeImage, privileges, token, ...(signal ? { signal } : {}) });
        node.container!.id = started.id;
        node.pid = started.pid;
      },
    };
  },

  dryRun(rec, node, image) {
    // The container's own command: its entry script, then QEMU in the foreground behind the management relay.
    return [
      `# ${node.name}: provider docker, container ${containerName(rec.name, node.name)}; inside it:`,
      renderCommand(['node-entry.sh', 'qemu', ...qemuArgv({ ...qemuSpec(rec, node, image), mgmtHost: '127.0.0.1', mgmtPort: QEMU_FORWARD_PORT, foreground: true })]),
    ];
  },

  alive(node) {
    return Boolean(node.pid && processAlive(node.pid));
  },

  async hasState(name) {
    return (await labContainers(name)).length > 0 || (await labNetworks(name)).length > 0;
  },

  // Containers and Docker networks, found by label (a crashed `up` may have made some without a record).
  async remove(ctx) {
    const { name, rec } = ctx;
    if (rec?.docker && !(await enginePing())) {
      warn(`lab ${name} has docker nodes but no Docker Engine answers at ${engineAddress()}: its containers and networks may remain (docker rm -f $(docker ps -aq --filter label=${LAB_LABEL}=${name}))`);
    }
    const removed: string[] = [];
    const gone = await removeDockerLab(name, (c) => cleanHostKernel(ctx, c, removed)).catch((e: unknown) => {
      warn(`removing lab ${name}'s containers and networks: ${(e as Error).message}`);
      return [];
    });
    return [...removed, ...gone];
  },

  async leftovers(name) {
    const containers = (await labContainers(name)).map((c) => c.name);
    const networks = (await labNetworks(name)).map((n) => n.name);
    const rules = (await labRules(name)).map((r) => `DOCKER-USER ${r.bridge} (${r.lab})`);
    return { containers, networks, rules };
  },
};
