import type Docker from 'dockerode';
import { BrickError } from '../../../system/errors.js';
import { exec } from '../../../system/exec.js';
import type { DockerLabRecord } from '../../state.js';
import { formatIPv4, labTag, parseCidr, type Topology } from '../../topology.js';
import { dockerClient, dockerMessage, enginePing, LAB_LABEL } from './engine.js';

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

/** Networks of a lab, by label; empty when no engine answers. */
export async function labNetworks(lab?: string): Promise<Array<{ id: string; name: string; lab: string }>> {
  const docker = dockerClient();
  if (!(await enginePing(docker, 3000))) return [];
  const list = await docker.listNetworks({ filters: JSON.stringify({ label: [lab ? `${LAB_LABEL}=${lab}` : LAB_LABEL] }) });
  return list.map((n) => ({ id: n.Id, name: n.Name, lab: n.Labels?.[LAB_LABEL] ?? '' }));
}
