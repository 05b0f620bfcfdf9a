import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { BrickError } from '../system/errors.js';
import { isObject } from '../system/text.js';
import { checkGuest, DEFAULT_GUEST, guestNames } from './image/recipe.js';

export type NodeRole = 'target' | 'compute';
export type ProviderName = 'qemu' | 'docker';
export const PROVIDERS: readonly ProviderName[] = ['qemu', 'docker'];
/**
 * The model of a node's data NICs. virtio-net, the default, is the fastest under emulation;
 * vmxnet3 is a NIC whose network interface sits right under its PCI function in sysfs, as a real
 * HBA's or CNA's does (a virtio NIC's sits under a virtioN device): connectors that read an FCoE
 * port's PCI address from that path (os-brick's FC connector) find it there.
 */
export type NicModel = 'virtio' | 'vmxnet3';
export const NIC_MODELS: readonly NicModel[] = ['virtio', 'vmxnet3'];

export interface NetworkSpec {
  name: string;
  /** IPv4 CIDR, e.g. 10.10.1.0/24. */
  subnet: string;
}

export interface NodeSpec {
  name: string;
  role: NodeRole;
  provider: ProviderName;
  memoryMiB: number;
  cpus: number;
  /** Data networks this node is on, by name. */
  networks: string[];
  /** Explicit addresses per network; the rest are assigned. */
  addresses: Record<string, string>;
  /** Seconds from QEMU start to a ready agent before `up` gives up on this node. */
  bootTimeoutSeconds: number;
  /** The model of its data NICs (NIC_MODELS). */
  nicModel: NicModel;
  /** The guest it runs (images/guests/<guest>.json) when the file names one for it; else the lab's (Topology.guest). */
  guest?: string;
}

export interface Topology {
  /** Default lab name when --name is not given. */
  name: string;
  /** The guest of every node that names none (images/guests/<guest>.json): bookworm unless the file or --guest says. */
  guest: string;
  networks: NetworkSpec[];
  nodes: NodeSpec[];
}

export const LAB_NAME = /^[a-z][a-z0-9-]{0,19}$/;
/** A node's name in a topology (and so in a lab). */
export const NODE_NAME = /^[a-z][a-z0-9-]{0,19}$/;
// Network names become guest interface names (IFNAMSIZ 16) and bridge names "br-<name>".
const NET_NAME = /^[a-z][a-z0-9-]{0,11}$/;
const RESERVED_NETS = new Set(['mgmt', 'lo']);
/** QEMU's user-mode management network inside every guest; data networks must not overlap it. */
export const MGMT_SUBNET = '10.0.2.0/24';
export const MGMT_GUEST_ADDRESS = '10.0.2.15';

export function invalid(source: string, field: string, why: string): BrickError {
  return new BrickError('TOPOLOGY_INVALID', `${source}: ${field}: ${why}`, {
    hint: 'fix the field in the topology file (lab/default.yaml shows every field)',
    details: { field },
  });
}

export function parseIPv4(text: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return null;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Cidr {
  base: number;
  prefix: number;
}

export function parseCidr(text: string): Cidr | null {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(text);
  if (!m) return null;
  const ip = parseIPv4(m[1]!);
  const prefix = Number(m[2]);
  if (ip === null || prefix < 8 || prefix > 29) return null;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  if ((ip & mask) >>> 0 !== ip) return null; // host bits set: ambiguous, refuse
  return { base: ip, prefix };
}

function inCidr(ip: number, c: Cidr): boolean {
  const mask = (0xffffffff << (32 - c.prefix)) >>> 0;
  return (ip & mask) >>> 0 === c.base;
}

function overlaps(a: Cidr, b: Cidr): boolean {
  return inCidr(a.base, b) || inCidr(b.base, a);
}

const TOP_FIELDS = new Set(['name', 'guest', 'networks', 'nodes']);
const NET_FIELDS = new Set(['name', 'subnet']);
const NODE_FIELDS = new Set(['name', 'role', 'provider', 'memoryMiB', 'cpus', 'networks', 'addresses', 'bootTimeoutSeconds', 'nicModel', 'guest']);

function checkFields(obj: Record<string, unknown>, allowed: Set<string>, source: string, at: string): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.has(k)) throw invalid(source, at ? `${at}.${k}` : k, `unknown field (allowed: ${[...allowed].join(', ')})`);
  }
}

/** A guest's name, checked against the recipes there are; null when the field is absent. */
function guestField(v: unknown, source: string, field: string): string | null {
  if (v === undefined) return null;
  const known = guestNames();
  if (typeof v !== 'string' || !known.includes(v)) throw invalid(source, field, `must be one of the guests ${known.join(', ')} (got ${JSON.stringify(v)})`);
  return v;
}

/** The guest a node runs: its own, else the lab's. */
export function nodeGuest(topo: Partial<Pick<Topology, 'guest'>>, node: Pick<NodeSpec, 'guest'> & Partial<Pick<NodeSpec, 'provider'>>): string {
  // A docker node's image is built from the default guest's recipe, whatever the lab's guest.
  if (node.provider === 'docker') return DEFAULT_GUEST;
  // A lab record written before guests has no guest anywhere: bookworm.
  return node.guest ?? topo.guest ?? DEFAULT_GUEST;
}

/** The topology with another lab-wide guest (--guest): nodes that name their own keep it. */
export function withGuest(topo: Topology, guest: string | undefined): Topology {
  return guest === undefined ? topo : { ...topo, guest: checkGuest(guest) };
}

/** Every guest a topology's nodes run, in node order. */
export function guestsOf(topo: Topology): string[] {
  return [...new Set(topo.nodes.map((n) => nodeGuest(topo, n)))];
}

function intField(v: unknown, source: string, field: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalid(source, field, `must be a whole number from ${min} to ${max} (got ${JSON.stringify(v)})`);
  }
  return v;
}

/** Validate a parsed topology document; every refusal names the field. */
export function validateTopology(doc: unknown, source = 'topology'): Topology {
  if (!isObject(doc)) throw invalid(source, '(top level)', 'must be a mapping with name, networks and nodes');
  checkFields(doc, TOP_FIELDS, source, '');
  const name = doc.name ?? 'default';
  if (typeof name !== 'string' || !LAB_NAME.test(name)) {
    throw invalid(source, 'name', `must match ${LAB_NAME} (got ${JSON.stringify(name)})`);
  }
  const guest = guestField(doc.guest, source, 'guest') ?? DEFAULT_GUEST;
  if (!Array.isArray(doc.networks) || doc.networks.length === 0) throw invalid(source, 'networks', 'must be a non-empty list');
  const networks: NetworkSpec[] = [];
  const cidrs: Cidr[] = [];
  const mgmt = parseCidr(MGMT_SUBNET)!;
  doc.networks.forEach((n: unknown, i: number) => {
    const at = `networks[${i}]`;
    if (!isObject(n)) throw invalid(source, at, 'must be a mapping with name and subnet');
    checkFields(n, NET_FIELDS, source, at);
    if (typeof n.name !== 'string' || !NET_NAME.test(n.name) || RESERVED_NETS.has(n.name)) {
      throw invalid(source, `${at}.name`, `must match ${NET_NAME} and not be mgmt or lo (got ${JSON.stringify(n.name)})`);
    }
    if (networks.some((x) => x.name === n.name)) throw invalid(source, `${at}.name`, `duplicate network ${n.name}`);
    const c = typeof n.subnet === 'string' ? parseCidr(n.subnet) : null;
    if (!c) throw invalid(source, `${at}.subnet`, `must be an IPv4 network like 10.10.1.0/24 with prefix 8-29 and no host bits (got ${JSON.stringify(n.subnet)})`);
    if (overlaps(c, mgmt)) throw invalid(source, `${at}.subnet`, `overlaps the management network ${MGMT_SUBNET}`);
    const clash = cidrs.findIndex((o) => overlaps(o, c));
    if (clash >= 0) throw invalid(source, `${at}.subnet`, `overlaps networks[${clash}] (${networks[clash]!.subnet})`);
    cidrs.push(c);
    networks.push({ name: n.name, subnet: n.subnet as string });
  });

  if (!Array.isArray(doc.nodes) || doc.nodes.length === 0) throw invalid(source, 'nodes', 'must be a non-empty list');
  if (doc.nodes.length > 32) throw invalid(source, 'nodes', 'at most 32 nodes');
  const nodes: NodeSpec[] = [];
  doc.nodes.forEach((n: unknown, i: number) => {
    const at = `nodes[${i}]`;
    if (!isObject(n)) throw invalid(source, at, 'must be a mapping with at least name and role');
    checkFields(n, NODE_FIELDS, source, at);
    if (typeof n.name !== 'string' || !NODE_NAME.test(n.name)) {
      throw invalid(source, `${at}.name`, `must match ${NODE_NAME} (got ${JSON.stringify(n.name)})`);
    }
    if (nodes.some((x) => x.name === n.name)) throw invalid(source, `${at}.name`, `duplicate node ${n.name}`);
    if (n.role !== 'target' && n.role !== 'compute') {
      throw invalid(source, `${at}.role`, `must be target or compute (got ${JSON.stringify(n.role)})`);
    }
    const provider = n.provider ?? 'qemu';
    if (typeof provider !== 'string' || !PROVIDERS.includes(provider as ProviderName)) {
      throw invalid(source, `${at}.provider`, `must be ${PROVIDERS.join(' or ')} (got ${JSON.stringify(provider)})`);
    }
    const nicModel = n.nicModel ?? 'virtio';
    if (typeof nicModel !== 'string' || !NIC_MODELS.includes(nicModel as NicModel)) {
      throw invalid(source, `${at}.nicModel`, `must be ${NIC_MODELS.join(' or ')} (got ${JSON.stringify(nicModel)})`);
    }
    if (nicModel !== 'virtio' && provider !== 'qemu') throw invalid(source, `${at}.nicModel`, `is for nodes of the qemu provider (a ${provider} node's data links are its container's)`);
    const nodeGuest = guestField(n.guest, source, `${at}.guest`);
    if (nodeGuest !== null && nodeGuest !== DEFAULT_GUEST && provider !== 'qemu') throw invalid(source, `${at}.guest`, `must be ${DEFAULT_GUEST} on a ${provider} node (its image is built from that guest's recipe; the lab's guest does not apply to it)`);
    const nets = n.networks ?? networks.map((x) => x.name);
    if (!Array.isArray(nets) || nets.some((x) => typeof x !== 'string')) throw invalid(source, `${at}.networks`, 'must be a list of network names');
    nets.forEach((x: string, j: number) => {
      if (!networks.some((y) => y.name === x)) throw invalid(source, `${at}.networks[${j}]`, `no network named ${x}`);
    });
    if (new Set(nets).size !== nets.length) throw invalid(source, `${at}.networks`, 'lists a network twice');
    const addresses: Record<string, string> = {};
    if (n.addresses !== undefined) {
      if (!isObject(n.addresses)) throw invalid(source, `${at}.addresses`, 'must map network names to IPv4 addresses');
      for (const [net, addr] of Object.entries(n.addresses)) {
        const k = networks.findIndex((y) => y.name === net);
        if (k < 0 || !nets.includes(net)) throw invalid(source, `${at}.addresses.${net}`, `node is not on a network named ${net}`);
        const ip = typeof addr === 'string' ? parseIPv4(addr) : null;
        if (ip === null) throw invalid(source, `${at}.addresses.${net}`, `not an IPv4 address (got ${JSON.stringify(addr)})`);
        const c = cidrs[k]!;
        const hostMax = (1 << (32 - c.prefix)) - 1;
        if (!inCidr(ip, c) || ip === c.base || ip === c.base + hostMax) {
          throw invalid(source, `${at}.addresses.${net}`, `${addr} is not a host address in ${networks[k]!.subnet}`);
        }
        addresses[net] = addr as string;
      }
    }
    nodes.push({
      name: n.name,
      role: n.role,
      provider: provider as ProviderName,
      memoryMiB: intField(n.memoryMiB, source, `${at}.memoryMiB`, 192, 16384, 384),
      cpus: intField(n.cpus, source, `${at}.cpus`, 1, 8, 1),
      networks: nets,
      addresses,
      bootTimeoutSeconds: intField(n.bootTimeoutSeconds, source, `${at}.bootTimeoutSeconds`, 1, 1800, 180),
      nicModel: nicModel as NicModel,
      ...(nodeGuest !== null ? { guest: nodeGuest } : {}),
    });
  });
  const topo: Topology = { name, guest, networks, nodes };
  assignAddresses(topo, source); // refuses duplicates early
  return topo;
}

/** Every node's address on each of its networks: explicit ones, else .10 + node index. */
export function assignAddresses(topo: Topology, source = 'topology'): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  const used = new Map<string, string>();
  topo.nodes.forEach((node, i) => {
    const perNet = new Map<string, string>();
    for (const net of node.networks) {
      const spec = topo.networks.find((n) => n.name === net)!;
      const c = parseCidr(spec.subnet)!;
      let addr = node.addresses[net];
      if (!addr) {
        const host = 10 + i;
        if (host >= (1 << (32 - c.prefix)) - 1) throw invalid(source, `nodes[${i}].addresses.${net}`, `${spec.subnet} has no room for an automatic address; give one`);
        addr = formatIPv4(c.base + host);
      }
      const key = `${net}/${addr}`;
      const other = used.get(key);
      if (other) throw invalid(source, `nodes[${i}].addresses.${net}`, `${addr} is already ${other}'s address`);
      used.set(key, node.name);
      perNet.set(net, addr);
    }
    out.set(node.name, perNet);
  });
  return out;
}

export function parseTopology(text: string, source: string): Topology {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true });
  } catch (e) {
    throw new BrickError('TOPOLOGY_INVALID', `${source}: not valid YAML: ${(e as Error).message}`, {
      hint: 'fix the syntax; lab/default.yaml is a working example',
    });
  }
  return validateTopology(doc, source);
}

export async function loadTopology(path: string): Promise<Topology> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new BrickError('TOPOLOGY_MISSING', `cannot read topology ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      hint: 'pass --topology with an existing file, or omit it for lab/default.yaml',
    });
  }
  return parseTopology(text, path);
}

/** A topology file's text, for code that makes labs (tests, benchmarks): what a user would write. */
export function renderTopology(t: { name: string; guest?: string; networks?: NetworkSpec[]; nodes: Array<Partial<NodeSpec> & { name: string; role: NodeRole }> }): string {
  const networks = t.networks ?? [
    { name: 'path-a', subnet: '10.10.1.0/24' },
    { name: 'path-b', subnet: '10.10.2.0/24' },
  ];
  return stringifyYaml({ name: t.name, ...(t.guest ? { guest: t.guest } : {}), networks, nodes: t.nodes });
}

/** A short stable hash of the lab name, used where names must be short (interfaces). */
export function labTag(lab: string): string {
  return createHash('sha256').update(lab).digest('hex').slice(0, 6);
}

/** A UUID-shaped identifier derived from lab and node, for NVMe host NQN / host id. */
export function stableUuid(...parts: string[]): string {
  const h = createHash('sha256').update(parts.join('\0')).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
