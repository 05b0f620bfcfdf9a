import { createWriteStream, existsSync } from 'node:fs';
import { release as osRelease } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { GenericContainer, type WaitStrategy } from 'testcontainers';
import { BrickError } from '../../system/errors.js';
import { exec, which } from '../../system/exec.js';
import type { Accel } from '../accel.js';
import type { GuestImage } from '../image/build.js';
import { AGENT_PORT, qemuArgv, type QemuNodeSpec } from '../qemu.js';
import { waitReady } from '../ready.js';
import type { DockerLabRecord, LabRecord, NodeRecord } from '../state.js';
import { formatIPv4, labTag, parseCidr, type Topology } from '../topology.js';
import { dockerClient, enginePing, LAB_LABEL, NODE_LABEL } from './engine.js';
import { kvmDevice, tunDevice, type PrivilegeSet } from './privileges.js';

/** The container-local port QEMU forwards to the guest's agent; mgmt-relay.cjs serves the agent port in front of it. */
export const QEMU_FORWARD_PORT = 8081;

/** Where a docker node's lab share is seen in a host-kernel container (the guest's own path). */
const SHARE_IN_CONTAINER = '/brick';

/**
 * Names joined with dots, which lab, node and network names cannot hold: lab `a-b` node `c` and
 * lab `a` node `b-c` must not both be `brick-a-b-c`.
 */
export function containerName(lab: string, node: string): string {
  return `brick-lab.${lab}.${node}`;
}

export function dockerNetworkName(lab: string, network: string): string {
  return `brick-lab.${lab}.${network}`;
}

/**
 * The host-side bridge of a lab's Docker network: short (IFNAMSIZ) and carrying the lab's tap
 * prefix, so that `leftovers` sees it and two labs never share a name. k is the data network's
 * index, or 'm' for management.
 */
export function dockerBridgeName(lab: string, k: number | 'm'): string {
  return `bk${labTag(lab)}-b${k}`;
}

/**
 * A node container's address on one of the lab's Docker networks: .10 + the node's index in the
 * subnet the engine picked. Fixed, so that the entry script finds each network's interface by it.
 */
export function containerAddress(subnet: string, index: number): string {
  const c = parseCidr(subnet);
  if (!c) throw new BrickError('DOCKER_NETWORK_INVALID', `the Docker network's subnet ${subnet} is not an IPv4 network`);
  if (10 + index >= 2 ** (32 - c.prefix) - 1) {
    throw new BrickError('DOCKER_NETWORK_INVALID', `the Docker network's subnet ${subnet} has no room for node ${index} (.${10 + index})`, {
      hint: "give dockerd default-address-pools with a size of /24 or larger",
    });
  }
  return formatIPv4(c.base + 10 + index);
}

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

function dockerMessage(e: unknown): string {
  return ((e as { json?: { message?: string } }).json?.message ?? (e as Error).message).trim();
}

/**
 * The lab's Docker networks: one internal bridge network per data network and one for
 * management. Each gets a subnet the engine picks from its own pools (it avoids the host's routes
 * and every other network), never the topology's: in a data network Docker's addresses only name
 * the container's interfaces, and the nodes' own addresses (the topology's) live in the guests,
 * as in a QEMU lab. So the host has no address in a lab subnet, and two labs with the same
 * subnets run side by side. Internal: no way out of the lab.
 */
export async function createDockerNetworks(docker: Docker, lab: string, topo: Topology): Promise<DockerLabRecord['networks']> {
  const out: DockerLabRecord['networks'] = {};
  const keys: Array<[string, number | 'm']> = [...topo.networks.map((n, k): [string, number] => [n.name, k]), ['mgmt', 'm']];
  for (const [key, k] of keys) out[key] = await makeNetwork(docker, lab, key, dockerBridgeName(lab, k));
  return out;
}

/**
 * Docker accepts fixed container addresses only on a subnet named at creation: let the engine
 * pick a free subnet, then make the network again with that subnet named. Another engine client
 * can take the subnet in between; then pick again.
 */
async function makeNetwork(docker: Docker, lab: string, key: string, bridge: string): Promise<{ name: string; bridge: string; subnet: string }> {
  const name = dockerNetworkName(lab, key);
  const create = (subnet?: string): Promise<Docker.Network> =>
    docker.createNetwork({
      Name: name,
      Driver: 'bridge',
      Internal: true,
      CheckDuplicate: true,
      Labels: { [LAB_LABEL]: lab },
      Options: { 'com.docker.network.bridge.name': bridge },
      ...(subnet ? { IPAM: { Driver: 'default', Config: [{ Subnet: subnet }] } } : {}),
    });
  let last: unknown;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      const probe = await create();
      const info = (await probe.inspect()) as { IPAM?: { Config?: Array<{ Subnet?: string }> } };
      const subnet = info.IPAM?.Config?.[0]?.Subnet;
      await probe.remove();
      if (!subnet || !parseCidr(subnet)) throw new BrickError('DOCKER_NETWORK_FAILED', `the engine gave Docker network ${name} no IPv4 subnet (got ${JSON.stringify(subnet)})`);
      await create(subnet);
      return { name, bridge, subnet };
    } catch (e) {
      if (e instanceof BrickError) throw e;
      last = e;
      if (!/overlap/i.test(dockerMessage(e))) break;
    }
  }
  const msg = dockerMessage(last);
  throw new BrickError(/pool|overlap|exhausted/i.test(msg) ? 'DOCKER_NETWORK_CONFLICT' : 'DOCKER_NETWORK_FAILED', `cannot create Docker network ${name}: ${msg}`, {
    hint: /pool|exhausted/i.test(msg)
      ? "the engine's address pools are used up: take other labs down (`brick-lab down --all`), remove unused networks (`docker network prune`) or give dockerd larger default-address-pools"
      : 'check the engine with `docker network ls`; `brick-lab down` removes what this lab made',
    cause: last,
  });
}

/** The comment that marks a lab's firewall rules, so that `down` finds them without the record. */
function ruleComment(lab: string): string {
  return `brick-lab:${lab}`;
}

const IPTABLES_TIMEOUT = 15_000;

/**
 * Docker loads br_netfilter, so frames crossing a Docker bridge pass the host's FORWARD chain,
 * where Docker drops, on an internal network, whatever is not from and to the network's own
 * subnet. The guests' addresses are the topology's, not Docker's: let frames that stay on one of
 * the lab's data bridges through, in DOCKER-USER (the chain Docker leaves to its users, consulted
 * first). Only bridge to the same bridge: nothing leaves the network. An engine without iptables
 * (no DOCKER-USER chain) filters nothing, and needs nothing.
 */
export async function allowLabBridges(lab: string, bridges: readonly string[]): Promise<string[]> {
  const chain = await exec(['iptables', '-w', '5', '-S', 'DOCKER-USER'], { timeoutMs: IPTABLES_TIMEOUT, reject: false }).catch(() => null);
  if (!chain || chain.exitCode !== 0) return [];
  for (const br of bridges) {
    await exec(['iptables', '-w', '5', '-I', 'DOCKER-USER', '-i', br, '-o', br, '-m', 'comment', '--comment', ruleComment(lab), '-j', 'ACCEPT'], { timeoutMs: IPTABLES_TIMEOUT });
  }
  return bridges.map((br) => `DOCKER-USER accept ${br} -> ${br}`);
}

/** The lab's rules in DOCKER-USER, as (bridge) found by their comment; empty without iptables. */
export async function labRules(lab?: string): Promise<Array<{ lab: string; bridge: string }>> {
  const chain = await exec(['iptables', '-w', '5', '-S', 'DOCKER-USER'], { timeoutMs: IPTABLES_TIMEOUT, reject: false }).catch(() => null);
  if (!chain || chain.exitCode !== 0) return [];
  return parseLabRules(chain.stdout, lab);
}

/** Pure: brick-lab's rules in `iptables -S DOCKER-USER` output (of one lab, or of all). */
export function parseLabRules(text: string, lab?: string): Array<{ lab: string; bridge: string }> {
  const out: Array<{ lab: string; bridge: string }> = [];
  for (const line of text.split('\n')) {
    const m = /^-A DOCKER-USER -i (\S+) -o \1 -m comment --comment "?brick-lab:([a-z][a-z0-9-]*)"? -j ACCEPT$/.exec(line.trim());
    if (m && (!lab || m[2] === lab)) out.push({ lab: m[2]!, bridge: m[1]! });
  }
  return out;
}

/** Remove a lab's DOCKER-USER rules (also after a crash: found by their comment). */
export async function removeLabRules(lab: string): Promise<string[]> {
  const removed: string[] = [];
  for (const r of await labRules(lab)) {
    await exec(['iptables', '-w', '5', '-D', 'DOCKER-USER', '-i', r.bridge, '-o', r.bridge, '-m', 'comment', '--comment', ruleComment(lab), '-j', 'ACCEPT'], { timeoutMs: IPTABLES_TIMEOUT, reject: false });
    removed.push(`firewall rule for ${r.bridge}`);
  }
  return removed;
}

export interface DockerNodeStart {
  rec: LabRecord;
  node: NodeRecord;
  image: GuestImage;
  nodeImage: string;
  privileges: PrivilegeSet;
  mode: 'guest' | 'host-kernel';
  accel: Accel;
  token: string;
  bootTimeoutMs: number;
  signal?: AbortSignal;
  /** The QEMU spec of a guest-mode node, made by the lab (the same as the qemu provider's, with container paths). */
  qemu?: QemuNodeSpec;
}

/** Waits on the agent's health route until the node is ready, failing at once when the container stops. */
class AgentReadyWait implements WaitStrategy {
  private startupTimeoutMs: number;
  private timeoutSet = false;

  constructor(private readonly start: DockerNodeStart) {
    this.startupTimeoutMs = start.bootTimeoutMs;
  }

  withStartupTimeout(ms: number): this {
    this.startupTimeoutMs = ms;
    this.timeoutSet = true;
    return this;
  }

  isStartupTimeoutSet(): boolean {
    return this.timeoutSet;
  }

  getStartupTimeout(): number {
    return this.startupTimeoutMs;
  }

  async waitUntilReady(container: Docker.Container): Promise<void> {
    const { node, token, signal } = this.start;
    const alive = async (): Promise<boolean> => {
      const info = await container.inspect().catch(() => null);
      return Boolean(info?.State.Running);
    };
    await waitReady(node, token, this.startupTimeoutMs, signal, alive);
  }
}

/**
 * A node container. testcontainers has no setter for devices, device cgroup rules, sysctls, an
 * init process or a fixed address on a network, so they are set on its create options just before
 * the container is made, and the data networks are connected (with the node's own addresses)
 * right after, before it starts.
 */
class NodeContainer extends GenericContainer {
  constructor(
    image: string,
    private readonly extra: {
      devices: Docker.DeviceMapping[];
      cgroupRules: string[];
      sysctls: Record<string, string>;
      mgmt: { network: string; address: string };
      data: Array<{ network: string; address: string }>;
      hostname: string;
    },
  ) {
    super(image);
  }

  protected override async beforeContainerCreated(): Promise<void> {
    this.hostConfig.Init = true;
    this.hostConfig.Devices = this.extra.devices;
    if (this.extra.cgroupRules.length) this.hostConfig.DeviceCgroupRules = this.extra.cgroupRules;
    if (Object.keys(this.extra.sysctls).length) this.hostConfig.Sysctls = this.extra.sysctls;
    this.createOpts.Hostname = this.extra.hostname;
    this.createOpts.NetworkingConfig = { EndpointsConfig: { [this.extra.mgmt.network]: { IPAMConfig: { IPv4Address: this.extra.mgmt.address } } } };
  }

  protected override async containerCreated(containerId: string): Promise<void> {
    const docker = dockerClient();
    for (const d of this.extra.data) {
      await docker.getNetwork(d.network).connect({ Container: containerId, EndpointConfig: { IPAMConfig: { IPv4Address: d.address } } });
    }
  }
}

/**
 * Start one docker node and wait until its agent is ready. Guest mode runs the qemu provider's
 * own QEMU command line inside the container (same kernel, image and share, at the same paths);
 * host-kernel mode runs the agent on the host's LIO and nvmet.
 */
export async function startDockerNode(s: DockerNodeStart): Promise<{ id: string; pid: number | null }> {
  const { rec, node } = s;
  const docker = rec.docker!;
  const mgmt = docker.networks.mgmt!;
  const address = node.container!.mgmtAddress;
  // Each data network's interface is found in the container by its Docker address; the node's own
  // (topology) address then goes to the guest, or onto that interface for a host-kernel target.
  const nics = Object.entries(node.addresses).map(([net, addr]) => {
    const dockerNet = docker.networks[net]!;
    const prefix = rec.topology.networks.find((n) => n.name === net)!.subnet.split('/')[1]!;
    return { net, network: dockerNet.name, dockerAddress: containerAddress(dockerNet.subnet, node.index), address: `${addr}/${prefix}` };
  });
  const data = nics.map((n) => ({ network: n.network, address: n.dockerAddress }));
  const logDir = join(rec.dir, 'logs');
  const devices = [tunDevice(), ...(s.accel === 'kvm' ? [kvmDevice()] : [])];

  const c = new NodeContainer(s.nodeImage, {
    devices: s.mode === 'host-kernel' ? [] : devices,
    // A host-kernel target sees the host's /dev: loop devices it makes must be usable.
    cgroupRules: s.mode === 'host-kernel' && s.privileges.mode !== 'privileged' ? ['b *:* rwm', 'c *:* rwm'] : [],
    sysctls: s.mode === 'host-kernel' ? { 'net.ipv4.conf.all.arp_ignore': '1', 'net.ipv4.conf.all.arp_announce': '2' } : {},
    mgmt: { network: mgmt.name, address },
    data,
    hostname: node.name,
  })
    .withName(node.container!.name)
    .withLabels({ [LAB_LABEL]: rec.name, [NODE_LABEL]: node.name, 'io.brick-lab.mode': s.mode })
    .withNetworkMode(mgmt.name)
    .withEnvironment({
      BRICK_NODE: node.name,
      BRICK_DOCKER_NICS: nics.map((n) => `${n.net}=${n.dockerAddress}=${n.address}`).join(' '),
    })
    .withStartupTimeout(s.bootTimeoutMs)
    .withWaitStrategy(new AgentReadyWait(s))
    .withLogConsumer((stream: Readable) => {
      const out = createWriteStream(join(logDir, `${node.name}.container.log`), { flags: 'a' });
      stream.pipe(out);
      stream.on('error', () => out.end());
    });
  if (s.privileges.mode === 'privileged') c.withPrivilegedMode();
  else c.withAddedCapabilities(...s.privileges.capAdd).withDroppedCapabilities(...s.privileges.capDrop).withSecurityOpt(...s.privileges.securityOpt);

  if (s.mode === 'guest') {
    const q = s.qemu!;
    c.withBindMounts([
      { source: s.image.dir, target: s.image.dir, mode: 'ro' },
      { source: s.image.nodeDir, target: s.image.nodeDir, mode: 'ro' },
      { source: rec.shareDir, target: rec.shareDir, mode: 'ro' },
      { source: logDir, target: logDir, mode: 'rw' },
    ])
      .withEnvironment({
        BRICK_RELAY_NODE: join(s.image.nodeDir, 'node'),
        BRICK_RELAY_SCRIPT: join(rec.shareDir, 'guest', 'mgmt-relay.cjs'),
        BRICK_RELAY_HOST: address,
        BRICK_RELAY_PORT: String(AGENT_PORT),
        BRICK_RELAY_TARGET: String(QEMU_FORWARD_PORT),
      })
      .withEntrypoint([join(rec.shareDir, 'guest', 'node-entry.sh')])
      .withCommand(['qemu', ...qemuArgv({ ...q, mgmtHost: '127.0.0.1', mgmtPort: QEMU_FORWARD_PORT, foreground: true })]);
  } else {
    c.withBindMounts([
      { source: rec.shareDir, target: SHARE_IN_CONTAINER, mode: 'ro' },
      { source: s.image.nodeDir, target: '/opt/brick-lab/node', mode: 'ro' },
      { source: '/lib/modules', target: '/lib/modules', mode: 'ro' },
      { source: '/dev', target: '/dev', mode: 'rw' },
      { source: '/sys/kernel/config', target: '/sys/kernel/config', mode: 'rw' },
    ])
      .withEntrypoint([`${SHARE_IN_CONTAINER}/guest/node-entry.sh`])
      .withCommand(['host-kernel']);
  }
  let started;
  try {
    started = await c.start();
  } catch (e) {
    if (e instanceof BrickError) throw e;
    throw new BrickError('DOCKER_NODE_START_FAILED', `the container of node ${node.name} did not start: ${dockerMessage(e)}`, {
      hint: `its output: ${join(logDir, `${node.name}.container.log`)}; \`brick-lab down\` removes what the lab made`,
      cause: e,
    });
  }
  const info = await dockerClient().getContainer(started.getId()).inspect();
  return { id: started.getId(), pid: info.State.Pid || null };
}

/** Containers of a lab (any state), by label; empty when no engine answers. */
export async function labContainers(lab?: string): Promise<Array<{ id: string; name: string; lab: string; node: string; mode: string; running: boolean }>> {
  const docker = dockerClient();
  if (!(await enginePing(docker, 3000))) return [];
  const list = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [lab ? `${LAB_LABEL}=${lab}` : LAB_LABEL] }) });
  return list.map((c) => ({
    id: c.Id,
    name: (c.Names[0] ?? '').replace(/^\//, ''),
    lab: c.Labels[LAB_LABEL] ?? '',
    node: c.Labels[NODE_LABEL] ?? '',
    mode: c.Labels['io.brick-lab.mode'] ?? '',
    running: c.State === 'running',
  }));
}

/** Networks of a lab, by label; empty when no engine answers. */
export async function labNetworks(lab?: string): Promise<Array<{ id: string; name: string; lab: string }>> {
  const docker = dockerClient();
  if (!(await enginePing(docker, 3000))) return [];
  const list = await docker.listNetworks({ filters: JSON.stringify({ label: [lab ? `${LAB_LABEL}=${lab}` : LAB_LABEL] }) });
  return list.map((n) => ({ id: n.Id, name: n.Name, lab: n.Labels?.[LAB_LABEL] ?? '' }));
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
