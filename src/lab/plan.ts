import { join } from 'node:path';
import { shellQuote } from '../system/exec.js';
import { fcoeWwpn } from '../system/fcoe.js';
import type { Accel } from './accel.js';
import type { GuestImage } from './image/build.js';
import { AGENT_PORT, macFor } from './providers/qemu/argv.js';
import { netnsName, tapName } from './providers/qemu/network.js';
import type { LabRecord, NodeRecord } from './state.js';
import { assignAddresses, MGMT_GUEST_ADDRESS, nodeGuest, stableUuid, type Topology } from './topology.js';

/**
 * The plan for every node, before anything is made (used by up and by --dry-run): complete
 * records, so that providers need nothing but them (addresses are assigned here, once).
 */
export function planNodes(lab: string, topo: Topology, dir: string): NodeRecord[] {
  const addrs = assignAddresses(topo);
  const prefixOf = new Map(topo.networks.map((n) => [n.name, Number(n.subnet.split('/')[1])]));
  return topo.nodes.map((n, i) => ({
    name: n.name,
    role: n.role,
    provider: n.provider,
    index: i,
    memoryMiB: n.memoryMiB,
    cpus: n.cpus,
    bootTimeoutSeconds: n.bootTimeoutSeconds,
    nicModel: n.nicModel,
    guest: nodeGuest(topo, n),
    mgmtPort: 0,
    url: '',
    pid: null,
    consoleLog: join(dir, 'logs', `${n.name}.console.log`),
    taps: n.networks.map((net) => {
      const k = topo.networks.findIndex((x) => x.name === net);
      // A docker node's taps live inside its container, named after their network.
      return { name: n.provider === 'docker' ? `tp-${net}` : tapName(lab, i, k), network: net, mac: macFor(i, k + 1), prefixLength: prefixOf.get(net)! };
    }),
    addresses: Object.fromEntries(addrs.get(n.name)!),
    initiatorIqn: `iqn.2026-11.io.brick-lab:${lab}:${n.name}`,
    hostNqn: `nqn.2014-08.org.nvmexpress:uuid:${stableUuid('brick-lab', lab, n.name)}`,
    startedAt: null,
    readyAt: null,
  }));
}

/** The lab's record as `up` first writes it (phase starting), with every node planned. */
export function draftRecord(name: string, topologyFile: string, topo: Topology, dir: string, accel: Accel, reason: string, image: GuestImage, images: ReadonlyMap<string, GuestImage> = new Map([[image.guest, image]])): LabRecord {
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
    images: Object.fromEntries([...images].map(([g, i]) => [g, { key: i.key, kernelRelease: i.kernelRelease, dir: i.dir }])),
    netns: netnsName(name),
    dir,
    tokenFile: join(dir, 'token'),
    shareDir: join(dir, 'share'),
    nodes: planNodes(name, topo, dir),
  };
}

/** Pure: a node's node.env (sourced by the guest's stage 2 or a container's entry script), from the records alone. */
export function nodeEnv(rec: LabRecord, node: NodeRecord): string {
  const nics = [`mgmt=${macFor(node.index, 0)}=${MGMT_GUEST_ADDRESS}/24`];
  for (const tap of node.taps) nics.push(`${tap.network}=${tap.mac}=${node.addresses[tap.network]}/${tap.prefixLength}`);
  const hosts: string[] = [];
  for (const n of rec.nodes) {
    Object.entries(n.addresses).forEach(([net, ip], i) => hosts.push(i === 0 ? `${ip} ${n.name} ${n.name}-${net}` : `${ip} ${n.name}-${net}`));
  }
  const vars: Record<string, string> = {
    BRICK_LAB: rec.name,
    BRICK_NODE: node.name,
    BRICK_ROLE: node.role,
    BRICK_NICS: nics.join(' '),
    // The data NICs' driver, when it is not the initramfs's virtio_net: loaded before they are named.
    BRICK_NIC_MODULE: node.nicModel === 'vmxnet3' ? 'vmxnet3' : '',
    BRICK_HOSTS: hosts.join('\n'),
    BRICK_INITIATOR_IQN: node.initiatorIqn,
    BRICK_HOST_NQN: node.hostNqn,
    BRICK_HOST_ID: node.hostNqn.split(':uuid:')[1]!,
    BRICK_DATA_NETWORKS: node.taps.map((t) => `${t.network}=${node.addresses[t.network]}`).join(' '),
    // A target's FC ports give the computes' ports (named after their data NICs' MACs) their ACLs
    // before they log in (targets/fc-volume.ts).
    BRICK_FC_INITIATORS: node.role === 'target' ? rec.nodes.filter((n) => n.role === 'compute').flatMap((n) => n.taps.map((t) => `${t.network}=${fcoeWwpn(t.mac)}`)).join(' ') : '',
    BRICK_AGENT_HOST: node.container?.mode === 'host-kernel' ? node.container.mgmtAddress : MGMT_GUEST_ADDRESS,
    BRICK_AGENT_PORT: String(AGENT_PORT),
  };
  return `${Object.entries(vars)
    .map(([k, v]) => `${k}=${shellQuote(v)}`)
    .join('\n')}\n`;
}
