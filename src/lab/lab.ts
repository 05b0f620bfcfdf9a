import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { BrickError } from '../system/errors.js';
import { exec, which } from '../system/exec.js';
import { progress, warn } from '../system/log.js';
import { labDir, PROJECT_ROOT, stateDir } from '../system/paths.js';
import { chooseAccel, type Accel } from './accel.js';
import { AgentClient } from '../agent/api/client.js';
import { NodeClient } from '../agent/api/node-client.js';
import { dockerClient, engineAddress, enginePing, LAB_LABEL, requireEngine } from './docker/engine.js';
import { ensureNodeImage } from './docker/image.js';
import { choosePrivileges, type PrivilegeSet } from './docker/privileges.js';
import { allowLabBridges, containerName, createDockerNetworks, labRules, QEMU_FORWARD_PORT, labContainers, labNetworks, containerAddress, probeHostStorage, removeDockerLab, startDockerNode } from './docker/provider.js';
import { ensureImage, findImage, type GuestImage } from './image/build.js';
import { loadRecipe } from './image/recipe.js';
import { createLabNetwork, destroyLabNetwork, listLinks, netnsExists, netnsName, plugTap, plugTapInto, tapName, tapPrefix } from './network.js';
import { AGENT_PORT, findQemuProcesses, macFor, processAlive, qemuArgv, stopProcesses, type QemuNodeSpec } from './qemu.js';
import { throwIfAborted, waitReady } from './ready.js';
import { readRecord, recordPath, writeRecord, type DockerLabRecord, type LabRecord, type NodeRecord } from './state.js';
import { assignAddresses, LAB_NAME, loadTopology, MGMT_GUEST_ADDRESS, stableUuid, type Topology } from './topology.js';

export const DEFAULT_TOPOLOGY = join(PROJECT_ROOT, 'lab', 'default.yaml');

/** What `npm run build` leaves in dist/agent and every guest gets in its lab share. */
export const AGENT_FILES = ['agent.cjs', 'agent.cjs.cache', 'agent-loader.cjs', 'lio_helper.py'] as const;

export interface UpOptions {
  topologyFile?: string;
  name?: string;
  dryRun?: boolean;
  signal?: AbortSignal;
  accel?: Accel;
}

export function checkLabName(name: string): string {
  if (!LAB_NAME.test(name)) {
    throw new BrickError('LAB_NAME_INVALID', `lab name ${JSON.stringify(name)} is not valid`, {
      hint: 'use 1-20 characters: lowercase letters, digits and dashes, starting with a letter',
    });
  }
  return name;
}

function shellQuote(v: string): string {
  return `'${v.replace(/'/g, `'\\''`)}'`;
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

/** Host tools `up` needs, each with the Debian package that provides it. */
export const HOST_TOOLS: ReadonlyArray<{ program: string; pkg: string; for: string }> = [
  { program: 'qemu-system-x86_64', pkg: 'qemu-system-x86', for: 'running the nodes' },
  { program: 'mmdebstrap', pkg: 'mmdebstrap', for: 'building the guest image' },
  { program: 'mkfs.erofs', pkg: 'erofs-utils', for: 'packing the guest image' },
  { program: 'ip', pkg: 'iproute2', for: 'the lab network namespace, bridges and taps' },
  { program: 'chroot', pkg: 'coreutils', for: 'depmod inside the image' },
  { program: 'xz', pkg: 'xz-utils', for: 'unpacking the guest kernel' },
  { program: 'umount', pkg: 'mount', for: 'cleaning up an interrupted image build' },
];

/** Missing host tools; QEMU is not needed on the host when every node runs in a container. */
export async function missingHostTools(topo?: Topology): Promise<Array<{ program: string; pkg: string; for: string }>> {
  const qemuOnHost = !topo || topo.nodes.some((n) => n.provider === 'qemu');
  const out = [];
  for (const t of HOST_TOOLS) {
    if (!qemuOnHost && t.program.startsWith('qemu-system')) continue;
    if (!(await which(t.program))) out.push(t);
  }
  return out;
}

async function preflight(topo: Topology): Promise<void> {
  const missing = await missingHostTools(topo);
  if (missing.length > 0) {
    throw new BrickError('HOST_TOOLS_MISSING', `missing on this host: ${missing.map((m) => `${m.program} (package ${m.pkg}, for ${m.for})`).join(', ')}`, {
      hint: `run scripts/bootstrap, or: apt-get install -y ${[...new Set(missing.map((m) => m.pkg))].join(' ')}`,
    });
  }
  if (process.getuid?.() !== 0) {
    throw new BrickError('NOT_ROOT', 'brick-lab needs root for network namespaces, bridges and taps', {
      hint: 'run it as root (sudo -E npx brick-lab ...)',
    });
  }
  if (!existsSync('/dev/net/tun')) {
    throw new BrickError('NO_TUN', '/dev/net/tun is missing: QEMU cannot create the data-network taps', {
      hint: 'modprobe tun, or in a container pass --device /dev/net/tun',
    });
  }
}

function nodeEnv(lab: string, topo: Topology, addrs: Map<string, Map<string, string>>, rec: NodeRecord): string {
  const nics = [`mgmt=${macFor(rec.index, 0)}=${MGMT_GUEST_ADDRESS}/24`];
  for (const tap of rec.taps) {
    const spec = topo.networks.find((n) => n.name === tap.network)!;
    nics.push(`${tap.network}=${tap.mac}=${rec.addresses[tap.network]}/${spec.subnet.split('/')[1]}`);
  }
  const hosts: string[] = [];
  for (const n of topo.nodes) {
    const perNet = addrs.get(n.name)!;
    let first = true;
    for (const [net, ip] of perNet) {
      hosts.push(first ? `${ip} ${n.name} ${n.name}-${net}` : `${ip} ${n.name}-${net}`);
      first = false;
    }
  }
  const vars: Record<string, string> = {
    BRICK_LAB: lab,
    BRICK_NODE: rec.name,
    BRICK_ROLE: rec.role,
    BRICK_NICS: nics.join(' '),
    BRICK_HOSTS: hosts.join('\n'),
    BRICK_INITIATOR_IQN: rec.initiatorIqn,
    BRICK_HOST_NQN: rec.hostNqn,
    BRICK_HOST_ID: rec.hostNqn.split(':uuid:')[1]!,
    BRICK_DATA_NETWORKS: rec.taps.map((t) => `${t.network}=${rec.addresses[t.network]}`).join(' '),
    BRICK_AGENT_HOST: rec.container?.mode === 'host-kernel' ? rec.container.mgmtAddress : MGMT_GUEST_ADDRESS,
    BRICK_AGENT_PORT: String(AGENT_PORT),
  };
  return `${Object.entries(vars)
    .map(([k, v]) => `${k}=${shellQuote(v)}`)
    .join('\n')}\n`;
}

/** The plan for every node, before anything is made (used by up and by --dry-run). */
function planNodes(name: string, topo: Topology, dir: string): NodeRecord[] {
  const addrs = assignAddresses(topo);
  return topo.nodes.map((n, i) => ({
    name: n.name,
    role: n.role,
    provider: n.provider,
    index: i,
    memoryMiB: n.memoryMiB,
    mgmtPort: 0,
    url: '',
    pid: null,
    consoleLog: join(dir, 'logs', `${n.name}.console.log`),
    taps: n.networks.map((net) => {
      const k = topo.networks.findIndex((x) => x.name === net);
      // A docker node's taps live inside its container, named after their network.
      return { name: n.provider === 'docker' ? `tp-${net}` : tapName(name, i, k), network: net, mac: macFor(i, k + 1) };
    }),
    addresses: Object.fromEntries(addrs.get(n.name)!),
    initiatorIqn: `iqn.2026-11.io.brick-lab:${name}:${n.name}`,
    hostNqn: `nqn.2014-08.org.nvmexpress:uuid:${stableUuid('brick-lab', name, n.name)}`,
    startedAt: null,
    readyAt: null,
  }));
}

function nodeSpec(rec: LabRecord, node: NodeRecord, image: GuestImage): QemuNodeSpec {
  const topoNode = rec.topology.nodes.find((n) => n.name === node.name)!;
  return {
    lab: rec.name,
    node: node.name,
    memoryMiB: node.memoryMiB,
    cpus: topoNode.cpus,
    accel: rec.accel,
    image,
    shareDir: rec.shareDir,
    consoleLog: node.consoleLog,
    pidFile: join(rec.dir, 'run', `${node.name}.pid`),
    mgmtPort: node.mgmtPort,
    mgmtMac: macFor(node.index, 0),
    nics: node.taps.map((t) => ({ network: t.network, tap: t.name, mac: t.mac })),
  };
}

export async function isUp(name: string): Promise<boolean> {
  const rec = await readRecord(name).catch(() => null);
  if (rec?.nodes.some((n) => n.pid && processAlive(n.pid))) return true;
  return (await findQemuProcesses(name)).length > 0;
}

/** Bring a lab up: image, acceleration, network, all nodes booted in parallel, all agents ready. */
export async function up(opts: UpOptions = {}): Promise<LabRecord> {
  const topologyFile = opts.topologyFile ?? DEFAULT_TOPOLOGY;
  const topo = await loadTopology(topologyFile);
  const name = checkLabName(opts.name ?? topo.name);
  const dir = labDir(name);

  if (opts.dryRun) {
    const image = (await findImage()) ?? (await placeholderImage());
    const rec = draftRecord(name, topologyFile, topo, dir, opts.accel ?? 'tcg', 'dry run', image);
    rec.nodes.forEach((n, i) => (n.mgmtPort = 40000 + i));
    const quote = (argv: string[]): string => argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a}'`)).join(' ');
    for (const n of rec.nodes) {
      if (n.provider === 'docker') {
        // The container's own command: its entry script, then QEMU in the foreground behind the management relay.
        process.stdout.write(`# ${n.name}: provider docker, container ${containerName(name, n.name)}; inside it:\n`);
        process.stdout.write(`${quote(['node-entry.sh', 'qemu', ...qemuArgv({ ...nodeSpec(rec, n, image), mgmtHost: '127.0.0.1', mgmtPort: QEMU_FORWARD_PORT, foreground: true })])}\n`);
      } else {
        process.stdout.write(`${quote(qemuArgv(nodeSpec(rec, n, image)))}\n`);
      }
    }
    return rec;
  }

  await preflight(topo);
  if (await isUp(name)) {
    throw new BrickError('LAB_EXISTS', `lab ${name} is already up`, {
      hint: `use it (brick-lab status --name ${name}), take it down first (brick-lab down --name ${name}), or pick another --name`,
    });
  }
  if (existsSync(recordPath(name)) || (await netnsExists(netnsName(name))) || (await labContainers(name)).length > 0 || (await labNetworks(name)).length > 0) {
    warn(`lab ${name} left state behind (a crashed run?); cleaning it first`);
    await down(name, { quiet: true });
  }

  const signal = opts.signal;
  let rec: LabRecord | null = null;
  const t0 = performance.now();
  const since = (): string => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  try {
    progress('image', 'checking the guest image');
    const image = await ensureImage(signal ? { signal } : {});
    throwIfAborted(signal);
    const accel = opts.accel ? { accel: opts.accel, reason: 'asked for' } : await chooseAccel(image);
    progress('accel', `using ${accel.accel.toUpperCase()} (${accel.reason})`);
    throwIfAborted(signal);

    await rm(dir, { recursive: true, force: true });
    await mkdir(join(dir, 'logs'), { recursive: true });
    await mkdir(join(dir, 'run'), { recursive: true });
    rec = draftRecord(name, topologyFile, topo, dir, accel.accel, accel.reason, image);
    await writeRecord(rec);
    const dockerNodes = rec.nodes.filter((n) => n.provider === 'docker');
    let nodeImage = '';
    let privileges: PrivilegeSet | null = null;
    if (dockerNodes.length > 0) {
      ({ nodeImage, privileges } = await prepareDocker(rec, signal));
      throwIfAborted(signal);
    }

    // The lab share: what every guest reads at boot (stage 2, the agent, its own config, the token).
    const token = randomBytes(24).toString('base64url');
    await writeFile(rec.tokenFile, `${token}\n`, { mode: 0o600 });
    await mkdir(join(rec.shareDir, 'guest'), { recursive: true });
    await copyFile(join(PROJECT_ROOT, 'images', 'guest', 'stage2.sh'), join(rec.shareDir, 'guest', 'stage2.sh'));
    if (dockerNodes.length > 0) {
      await copyFile(join(PROJECT_ROOT, 'images', 'docker', 'node-entry.sh'), join(rec.shareDir, 'guest', 'node-entry.sh'));
      await copyFile(join(PROJECT_ROOT, 'images', 'docker', 'mgmt-relay.cjs'), join(rec.shareDir, 'guest', 'mgmt-relay.cjs'));
      await chmod(join(rec.shareDir, 'guest', 'node-entry.sh'), 0o755);
    }
    const agentDir = join(PROJECT_ROOT, 'dist', 'agent');
    for (const f of AGENT_FILES) {
      if (!existsSync(join(agentDir, f))) {
        throw new BrickError('AGENT_NOT_BUILT', `the node agent bundle ${join(agentDir, f)} is missing`, { hint: 'run `npm run build` (scripts/bootstrap does it)' });
      }
      await copyFile(join(agentDir, f), join(rec.shareDir, f));
    }
    await copyFile(rec.tokenFile, join(rec.shareDir, 'token'));
    const addrs = assignAddresses(topo);
    for (const n of rec.nodes) {
      await mkdir(join(rec.shareDir, 'nodes', n.name), { recursive: true });
      await writeFile(join(rec.shareDir, 'nodes', n.name, 'node.env'), nodeEnv(name, topo, addrs, n));
    }

    if (!rec.docker) {
      progress('network', `namespace ${rec.netns} with bridges for ${topo.networks.map((n) => n.name).join(', ')}`);
      await createLabNetwork(name, topo.networks.map((n) => n.name));
      throwIfAborted(signal);
    }

    progress('boot', `starting ${rec.nodes.length} nodes (${accel.accel.toUpperCase()}): ${rec.nodes.map((n) => `${n.name}${n.container ? ` (container, ${n.container.mode === 'guest' ? 'own kernel' : 'host kernel'})` : ''}`).join(', ')}`);
    const current = rec;
    await settleAll(current.nodes.filter((n) => n.provider !== 'docker').map((n) => startNode(current, n, image)));
    await writeRecord(current);
    throwIfAborted(signal);

    const token2 = token;
    await settleAll(
      current.nodes.map(async (n) => {
        const spec = topo.nodes.find((x) => x.name === n.name)!;
        if (n.provider === 'docker') {
          n.startedAt = new Date().toISOString();
          const started = await startDockerNode({
            rec: current,
            node: n,
            image,
            nodeImage,
            privileges: privileges!,
            mode: n.container!.mode,
            accel: current.accel,
            token: token2,
            bootTimeoutMs: spec.bootTimeoutSeconds * 1000,
            ...(signal ? { signal } : {}),
            qemu: nodeSpec(current, n, image),
          });
          n.container!.id = started.id;
          n.pid = started.pid;
        } else {
          await waitReady(n, token2, spec.bootTimeoutSeconds * 1000, signal);
        }
        n.readyAt = new Date().toISOString();
        progress('boot', `${n.name} ready after ${since()}`);
      }),
    );
    current.phase = 'up';
    await writeRecord(current);
    progress('up', `lab ${name} is up in ${since()}: ${current.nodes.map((n) => `${n.name} ${n.url}`).join(', ')}`);
    return current;
  } catch (e) {
    if (rec) {
      rec.phase = 'failed';
      await writeRecord(rec).catch(() => undefined);
    }
    progress('cleanup', `up failed; removing everything lab ${name} made`);
    await down(name, { quiet: true, keepLogs: true }).catch((err: unknown) => warn(`cleanup after a failed up: ${(err as Error).message}`));
    if (signal?.aborted && !(e instanceof BrickError && e.code === 'LAB_INTERRUPTED')) {
      throw new BrickError('LAB_INTERRUPTED', 'interrupted; everything made so far was removed', { cause: e });
    }
    throw e;
  }
}

/**
 * Like Promise.all, but waits for every promise to settle before it rejects with the first error:
 * cleanup after a failed node must not run while another node is still being made.
 */
async function settleAll(promises: Array<Promise<unknown>>): Promise<void> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

async function placeholderImage(): Promise<GuestImage> {
  const { recipe, key } = loadRecipe();
  const d = join('<cache>', 'images', key);
  return { key, dir: d, rootImage: join(d, 'root.erofs'), kernel: join(d, 'vmlinux'), initramfs: join(d, 'initramfs.img'), kernelRelease: recipe.kernel.release, nodeDir: '<cache>/node' };
}

function draftRecord(name: string, topologyFile: string, topo: Topology, dir: string, accel: Accel, reason: string, image: GuestImage): LabRecord {
  return {
    name,
    phase: 'starting',
    topologyFile,
    topology: topo,
    createdAt: new Date().toISOString(),
    ownerPid: process.pid,
    accel,
    accelReason: reason,
    image: { key: image.key, kernelRelease: image.kernelRelease, dir: image.dir },
    netns: netnsName(name),
    dir,
    tokenFile: join(dir, 'token'),
    shareDir: join(dir, 'share'),
    nodes: planNodes(name, topo, dir),
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
 * host allows, each node's mode, and the lab's Docker networks. Says what it chose.
 */
async function prepareDocker(rec: LabRecord, signal?: AbortSignal): Promise<{ nodeImage: string; privileges: PrivilegeSet }> {
  const docker = dockerClient();
  const engine = await requireEngine(docker);
  progress('docker', `Docker Engine ${engine.version} (API ${engine.apiVersion}, ${engine.storageDriver}, cgroup v${engine.cgroupVersion})`);
  const nodeImage = (await ensureNodeImage(docker, signal ? { signal } : {})).tag;
  throwIfAborted(signal);
  const privileges = await choosePrivileges(docker, nodeImage);
  progress('docker', `privileges: ${privileges.summary} (${privileges.reason})`);
  const dockerTargets = rec.nodes.filter((n) => n.provider === 'docker' && n.role === 'target');
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
  for (const n of rec.nodes) {
    if (n.provider !== 'docker') continue;
    const mgmtAddress = containerAddress(rec.docker.networks.mgmt!.subnet, n.index);
    n.container = { id: '', name: containerName(rec.name, n.name), mode: n.role === 'target' ? targetMode : 'guest', mgmtAddress };
    n.mgmtPort = AGENT_PORT;
    n.url = `http://${mgmtAddress}:${AGENT_PORT}`;
  }
  await writeRecord(rec);
  return { nodeImage, privileges };
}

async function startNode(rec: LabRecord, node: NodeRecord, image: GuestImage): Promise<void> {
  // A port found free can be taken before QEMU binds it; retry with another.
  for (let attempt = 1; ; attempt++) {
    node.mgmtPort = await freePort();
    node.url = `http://127.0.0.1:${node.mgmtPort}`;
    const spec = nodeSpec(rec, node, image);
    const r = await exec(qemuArgv(spec), { timeoutMs: 60_000, reject: false });
    if (r.exitCode === 0) {
      node.pid = Number.parseInt((await readFile(spec.pidFile, 'utf8')).trim(), 10);
      node.startedAt = new Date().toISOString();
      break;
    }
    const err = r.stderr.trim();
    if (/host forwarding rule|Could not set up host forwarding/i.test(err) && attempt < 4) continue;
    throw new BrickError('QEMU_START_FAILED', `QEMU did not start node ${node.name}: ${err.split('\n').slice(-5).join(' | ')}`, {
      hint: 'run `brick-lab doctor`; `brick-lab up --dry-run` prints the exact QEMU command',
    });
  }
  for (const tap of node.taps) {
    // In a lab with containers, the data networks are Docker's bridges in the host namespace.
    const bridge = rec.docker?.networks[tap.network]?.bridge;
    if (bridge) await plugTapInto(tap.name, bridge);
    else await plugTap(rec.name, tap.name, tap.network);
  }
}

export interface DownReport {
  name: string;
  removed: string[];
}

/**
 * Take a lab down and remove everything it made. Works from any process, with or without the
 * record (after a crash, or a corrupt record): VMs are found by their QEMU -name, taps by their
 * prefix, the namespace by its name.
 */
export async function down(name: string, opts: { quiet?: boolean; keepLogs?: boolean } = { keepLogs: true }): Promise<DownReport> {
  checkLabName(name);
  const removed: string[] = [];
  const rec = await readRecord(name).catch(() => null);
  // Containers and Docker networks first, found by label (a crashed `up` may have made some
  // without a record). A target on the host's kernel must first take its LIO and nvmet objects
  // out of that kernel: nothing else would.
  if (rec?.docker && !(await enginePing())) {
    warn(`lab ${name} has docker nodes but no Docker Engine answers at ${engineAddress()}: its containers and networks may remain (docker rm -f $(docker ps -aq --filter label=${LAB_LABEL}=${name}))`);
  }
  removed.push(
    ...(await removeDockerLab(name, async (c) => {
      if (c.mode !== 'host-kernel' || !rec) return;
      try {
        await (await labClient(rec, c.node)).target.cleanup({ timeoutMs: 120_000 });
        removed.push(`LIO and nvmet objects of ${c.node} in the host kernel`);
      } catch (e) {
        warn(`${c.node}: could not clean its LIO and nvmet objects out of the host kernel: ${(e as Error).message}`);
      }
    }).catch((e: unknown) => {
      warn(`removing lab ${name}'s containers and networks: ${(e as Error).message}`);
      return [];
    })),
  );
  const pids = new Set<number>();
  for (const n of rec?.nodes ?? []) if (n.pid && processAlive(n.pid)) {
    // Only a pid whose command line is still this lab's VM (pids are reused).
    const cmd = await readFile(`/proc/${n.pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(`brick-lab:${name}:${n.name}`)) pids.add(n.pid);
  }
  for (const p of await findQemuProcesses(name)) pids.add(p.pid);
  // A QEMU still daemonizing (after a killed `up`) can fork its child after the scan: stop what
  // was found, then look again, until a scan finds nothing new.
  const stopped = new Set<number>();
  for (let round = 0; pids.size > 0 && round < 5; round++) {
    await stopProcesses([...pids]);
    for (const p of pids) {
      stopped.add(p);
      removed.push(`qemu pid ${p}`);
    }
    pids.clear();
    for (const p of await findQemuProcesses(name)) if (!stopped.has(p.pid)) pids.add(p.pid);
  }
  removed.push(...(await destroyLabNetwork(name)));
  const dir = labDir(name);
  if (existsSync(dir)) {
    for (const entry of await readdir(dir)) {
      if (opts.keepLogs !== false && entry === 'logs') continue;
      await rm(join(dir, entry), { recursive: true, force: true });
    }
    if (opts.keepLogs === false) await rm(dir, { recursive: true, force: true });
    removed.push(`state ${dir}${opts.keepLogs !== false ? ' (console logs kept)' : ''}`);
  }
  if (!opts.quiet) progress('down', removed.length ? `lab ${name}: removed ${removed.join(', ')}` : `lab ${name}: nothing to remove`);
  return { name, removed };
}

export interface NodeStatus {
  name: string;
  role: string;
  provider: 'qemu' | 'docker';
  /** A docker node's container: its name and whether it boots its own kernel or uses the host's. */
  container: { name: string; mode: 'guest' | 'host-kernel' } | null;
  state: 'ready' | 'booting' | 'unreachable' | 'stopped';
  kernel: string | null;
  url: string;
  pid: number | null;
  consoleLog: string;
  addresses: Record<string, string>;
}

export interface LabStatus {
  name: string;
  phase: LabRecord['phase'] | 'down';
  accel: string | null;
  accelReason: string | null;
  tokenFile: string | null;
  netns: string | null;
  image: LabRecord['image'] | null;
  /** What the docker provider chose, when the lab has docker nodes. */
  docker: DockerLabRecord | null;
  nodes: NodeStatus[];
}

export async function labClient(rec: LabRecord, node: string): Promise<NodeClient> {
  const n = rec.nodes.find((x) => x.name === node);
  if (!n) {
    throw new BrickError('NODE_UNKNOWN', `lab ${rec.name} has no node ${node}`, { hint: `nodes: ${rec.nodes.map((x) => x.name).join(', ')}` });
  }
  const token = (await readFile(rec.tokenFile, 'utf8')).trim();
  return new NodeClient(n.name, n.url, token);
}

export async function requireLab(name: string): Promise<LabRecord> {
  checkLabName(name);
  const rec = await readRecord(name);
  if (!rec || rec.phase !== 'up') {
    throw new BrickError('LAB_NOT_UP', `lab ${name} is not up`, { hint: `start it with \`brick-lab up --name ${name}\`` });
  }
  return rec;
}

export async function status(name: string): Promise<LabStatus> {
  checkLabName(name);
  const rec = await readRecord(name);
  if (!rec) return { name, phase: 'down', accel: null, accelReason: null, tokenFile: null, netns: null, image: null, docker: null, nodes: [] };
  const token = (await readFile(rec.tokenFile, 'utf8').catch(() => '')).trim();
  const nodes = await Promise.all(
    rec.nodes.map(async (n): Promise<NodeStatus> => {
      const base = {
        name: n.name,
        role: n.role,
        provider: n.provider ?? 'qemu',
        container: n.container ? { name: n.container.name, mode: n.container.mode } : null,
        url: n.url,
        pid: n.pid,
        consoleLog: n.consoleLog,
        addresses: n.addresses,
      };
      if (!n.pid || !processAlive(n.pid)) return { ...base, state: 'stopped', kernel: null };
      try {
        const h = await new AgentClient(n.name, n.url, token).health(3000);
        return { ...base, state: h.state, kernel: h.kernel };
      } catch {
        return { ...base, state: 'unreachable', kernel: null };
      }
    }),
  );
  return { name, phase: rec.phase, accel: rec.accel, accelReason: rec.accelReason, tokenFile: rec.tokenFile, netns: rec.docker ? null : rec.netns, image: rec.image, docker: rec.docker ?? null, nodes };
}

export async function listLabs(): Promise<string[]> {
  try {
    const names = await readdir(join(stateDir(), 'labs'));
    return names.filter((n) => existsSync(recordPath(n))).sort();
  } catch {
    return [];
  }
}

/** What a lab (or every lab) still holds on this host: used by tests and `doctor`. */
export async function leftovers(name?: string): Promise<{ qemu: number[]; taps: string[]; netns: string[]; containers: string[]; networks: string[]; rules: string[] }> {
  const qemu = (await findQemuProcesses(name)).map((p) => p.pid);
  const taps = (await listLinks()).filter((l) => (name ? l.startsWith(tapPrefix(name)) : /^bk[0-9a-f]{6}-/.test(l)));
  let netns: string[] = [];
  try {
    netns = (await readdir('/run/netns')).filter((n) => (name ? n === netnsName(name) : n.startsWith('brick-')));
  } catch {
    netns = [];
  }
  const containers = (await labContainers(name)).map((c) => c.name);
  const networks = (await labNetworks(name)).map((n) => n.name);
  const rules = (await labRules(name)).map((r) => `DOCKER-USER ${r.bridge} (${r.lab})`);
  return { qemu, taps, netns, containers, networks, rules };
}

export async function readLabOrNull(name: string): Promise<LabRecord | null> {
  return readRecord(checkLabName(name));
}
