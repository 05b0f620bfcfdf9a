import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { GenericContainer, type WaitStrategy } from 'testcontainers';
import { BrickError } from '../../../system/errors.js';
import type { GuestImage } from '../../image/build.js';
import { waitReady } from '../../ready.js';
import type { LabRecord, NodeRecord } from '../../state.js';
import { AGENT_PORT, qemuArgv, qemuSpec } from '../qemu/argv.js';
import { dockerClient, dockerMessage, enginePing, LAB_LABEL, NODE_LABEL } from './engine.js';
import { containerAddress } from './networks.js';
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

/** One docker node to start: everything else (mode, accel, boot timeout, QEMU spec) comes from the records. */
export interface DockerNodeStart {
  rec: LabRecord;
  node: NodeRecord;
  image: GuestImage;
  nodeImage: string;
  privileges: PrivilegeSet;
  token: string;
  signal?: AbortSignal;
}

/** Waits on the agent's health route until the node is ready, failing at once when the container stops. */
class AgentReadyWait implements WaitStrategy {
  private startupTimeoutMs: number;
  private timeoutSet = false;

  constructor(private readonly start: DockerNodeStart) {
    this.startupTimeoutMs = start.node.bootTimeoutSeconds * 1000;
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
  const mode = node.container!.mode;
  const docker = rec.docker!;
  const mgmt = docker.networks.mgmt!;
  const address = node.container!.mgmtAddress;
  // Each data network's interface is found in the container by its Docker address; the node's own
  // (topology) address then goes to the guest, or onto that interface for a host-kernel target.
  const nics = node.taps.map((tap) => {
    const dockerNet = docker.networks[tap.network]!;
    return { net: tap.network, network: dockerNet.name, dockerAddress: containerAddress(dockerNet.subnet, node.index), address: `${node.addresses[tap.network]}/${tap.prefixLength}` };
  });
  const data = nics.map((n) => ({ network: n.network, address: n.dockerAddress }));
  const logDir = join(rec.dir, 'logs');
  const devices = [tunDevice(), ...(rec.accel === 'kvm' ? [kvmDevice()] : [])];

  const c = new NodeContainer(s.nodeImage, {
    devices: mode === 'host-kernel' ? [] : devices,
    // A host-kernel target sees the host's /dev: loop devices it makes must be usable.
    cgroupRules: mode === 'host-kernel' && s.privileges.mode !== 'privileged' ? ['b *:* rwm', 'c *:* rwm'] : [],
    sysctls: mode === 'host-kernel' ? { 'net.ipv4.conf.all.arp_ignore': '1', 'net.ipv4.conf.all.arp_announce': '2' } : {},
    mgmt: { network: mgmt.name, address },
    data,
    hostname: node.name,
  })
    .withName(node.container!.name)
    .withLabels({ [LAB_LABEL]: rec.name, [NODE_LABEL]: node.name, 'io.brick-lab.mode': mode })
    .withNetworkMode(mgmt.name)
    .withEnvironment({
      BRICK_NODE: node.name,
      BRICK_DOCKER_NICS: nics.map((n) => `${n.net}=${n.dockerAddress}=${n.address}`).join(' '),
    })
    .withStartupTimeout(node.bootTimeoutSeconds * 1000)
    .withWaitStrategy(new AgentReadyWait(s))
    .withLogConsumer((stream: Readable) => {
      const out = createWriteStream(join(logDir, `${node.name}.container.log`), { flags: 'a' });
      stream.pipe(out);
      stream.on('error', () => out.end());
    });
  if (s.privileges.mode === 'privileged') c.withPrivilegedMode();
  else c.withAddedCapabilities(...s.privileges.capAdd).withDroppedCapabilities(...s.privileges.capDrop).withSecurityOpt(...s.privileges.securityOpt);

  if (mode === 'guest') {
    const q = qemuSpec(rec, node, s.image);
    c.withBindMounts([
      { source: s.image.dir, target: s.image.dir, mode: 'ro' },
      { source: s.image.nodeDir, target: s.image.nodeDir, mode: 'ro' },
      { source: rec.shareDir, target: rec.shareDir, mode: 'ro' },
      { source: q.diskDir, target: q.diskDir, mode: 'rw' },
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
