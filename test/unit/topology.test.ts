import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BrickError } from '../../src/system/errors.js';
import {
  assignAddresses,
  labTag,
  parseCidr,
  guestsOf,
  nodeGuest,
  parseTopology,
  withGuest,
  renderTopology,
  stableUuid,
  validateTopology,
} from '../../src/lab/topology.js';

const DEFAULT_YAML = readFileSync(new URL('../../lab/default.yaml', import.meta.url), 'utf8');

/** A valid document to break one field at a time. */
function base(): Record<string, any> {
  return {
    name: 'unit',
    networks: [
      { name: 'path-a', subnet: '10.10.1.0/24' },
      { name: 'path-b', subnet: '10.10.2.0/24' },
    ],
    nodes: [
      { name: 'target-1', role: 'target' },
      { name: 'compute-1', role: 'compute' },
    ],
  };
}

function refusal(fn: () => unknown): BrickError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(BrickError);
    const err = e as BrickError;
    expect(err.code).toBe('TOPOLOGY_INVALID');
    return err;
  }
  throw new Error('expected a TOPOLOGY_INVALID refusal, but the topology was accepted');
}

/** Refused with TOPOLOGY_INVALID, and the message names the field (as "source: field: why"). */
function expectRefused(doc: unknown, field: string, why?: RegExp): BrickError {
  const err = refusal(() => validateTopology(doc, 'test.yaml'));
  expect(err.message.startsWith(`test.yaml: ${field}: `)).toBe(true);
  expect(err.details).toEqual({ field });
  if (why) expect(err.message).toMatch(why);
  return err;
}

describe('parseTopology on lab/default.yaml', () => {
  const topo = parseTopology(DEFAULT_YAML, 'lab/default.yaml');

  it('reads the lab name, three nodes and two networks', () => {
    expect(topo.name).toBe('default');
    expect(topo.networks).toEqual([
      { name: 'path-a', subnet: '10.10.1.0/24' },
      { name: 'path-b', subnet: '10.10.2.0/24' },
    ]);
    expect(topo.nodes.map((n) => [n.name, n.role])).toEqual([
      ['target-1', 'target'],
      ['compute-1', 'compute'],
      ['compute-2', 'compute'],
    ]);
  });

  it('fills the defaults for fields the file leaves out', () => {
    for (const n of topo.nodes) {
      expect(n.provider).toBe('qemu');
      expect(n.memoryMiB).toBe(384);
      expect(n.cpus).toBe(1);
      expect(n.bootTimeoutSeconds).toBe(180);
      expect(n.nicModel).toBe('virtio');
      expect(n.networks).toEqual(['path-a', 'path-b']);
      expect(n.addresses).toEqual({});
    }
  });

  it('assigns .10, .11 and .12 on both networks in node order', () => {
    const addrs = assignAddresses(topo);
    expect(Object.fromEntries([...addrs].map(([node, m]) => [node, Object.fromEntries(m)]))).toEqual({
      'target-1': { 'path-a': '10.10.1.10', 'path-b': '10.10.2.10' },
      'compute-1': { 'path-a': '10.10.1.11', 'path-b': '10.10.2.11' },
      'compute-2': { 'path-a': '10.10.1.12', 'path-b': '10.10.2.12' },
    });
  });
});

describe('validateTopology accepts', () => {
  it('explicit addresses and keeps them, assigning the rest', () => {
    const doc = base();
    doc.nodes[1].addresses = { 'path-b': '10.10.2.200' };
    const topo = validateTopology(doc);
    const addrs = assignAddresses(topo);
    expect(addrs.get('compute-1')?.get('path-b')).toBe('10.10.2.200');
    expect(addrs.get('compute-1')?.get('path-a')).toBe('10.10.1.11');
    expect(addrs.get('target-1')?.get('path-b')).toBe('10.10.2.10');
  });

  it('a node on a subset of networks gets addresses only there', () => {
    const doc = base();
    doc.nodes[0].networks = ['path-b'];
    const addrs = assignAddresses(validateTopology(doc));
    expect([...addrs.get('target-1')!.keys()]).toEqual(['path-b']);
  });

  it('a network name of exactly 12 characters and the limits of memoryMiB', () => {
    const doc = base();
    doc.networks[0].name = 'abcdefghijkl';
    doc.nodes[0].networks = ['abcdefghijkl'];
    doc.nodes[0].memoryMiB = 192;
    doc.nodes[1].memoryMiB = 16384;
    const topo = validateTopology(doc);
    expect(topo.networks[0]!.name).toBe('abcdefghijkl');
    expect(topo.nodes.map((n) => n.memoryMiB)).toEqual([192, 16384]);
  });

  it('a missing lab name as "default"', () => {
    const doc = base();
    delete doc.name;
    expect(validateTopology(doc).name).toBe('default');
  });
});

describe('validateTopology refuses, naming the field', () => {
  it('an unknown node field', () => {
    const doc = base();
    doc.nodes[1].memry = 512;
    expectRefused(doc, 'nodes[1].memry', /unknown field/);
  });

  it('an unknown top-level and network field', () => {
    expectRefused({ ...base(), node: [] }, 'node', /unknown field/);
    const doc = base();
    doc.networks[1].vlan = 7;
    expectRefused(doc, 'networks[1].vlan', /unknown field/);
  });

  it('a bad role', () => {
    const doc = base();
    doc.nodes[0].role = 'storage';
    expectRefused(doc, 'nodes[0].role', /target or compute/);
  });

  it('a duplicate node name', () => {
    const doc = base();
    doc.nodes[1].name = 'target-1';
    expectRefused(doc, 'nodes[1].name', /duplicate node target-1/);
  });

  it('a node on an unknown network', () => {
    const doc = base();
    doc.nodes[1].networks = ['path-a', 'path-c'];
    expectRefused(doc, 'nodes[1].networks[1]', /no network named path-c/);
  });

  it('a subnet with host bits set', () => {
    const doc = base();
    doc.networks[0].subnet = '10.10.1.5/24';
    expectRefused(doc, 'networks[0].subnet', /no host bits/);
  });

  it('a subnet that is not a CIDR at all', () => {
    const doc = base();
    doc.networks[1].subnet = '10.10.2.0';
    expectRefused(doc, 'networks[1].subnet');
  });

  it('a subnet overlapping another network, either way round', () => {
    const wider = base();
    wider.networks[1].subnet = '10.10.0.0/16';
    expectRefused(wider, 'networks[1].subnet', /overlaps networks\[0\]/);
    const narrower = base();
    narrower.networks[0].subnet = '10.10.0.0/16';
    narrower.networks[1].subnet = '10.10.2.128/25';
    expectRefused(narrower, 'networks[1].subnet', /overlaps networks\[0\]/);
  });

  it('a subnet overlapping the management network 10.0.2.0/24', () => {
    for (const subnet of ['10.0.2.0/24', '10.0.0.0/16', '10.0.2.64/26']) {
      const doc = base();
      doc.networks[1].subnet = subnet;
      expectRefused(doc, 'networks[1].subnet', /management network 10\.0\.2\.0\/24/);
    }
  });

  it('a network named mgmt', () => {
    const doc = base();
    doc.networks[0].name = 'mgmt';
    expectRefused(doc, 'networks[0].name', /mgmt/);
  });

  it('a network name of 13 characters', () => {
    const doc = base();
    doc.networks[1].name = 'abcdefghijklm';
    expectRefused(doc, 'networks[1].name', /abcdefghijklm/);
  });

  it('a duplicate network name', () => {
    const doc = base();
    doc.networks[1].name = 'path-a';
    expectRefused(doc, 'networks[1].name', /duplicate network path-a/);
  });

  it('memoryMiB out of range or not a whole number', () => {
    for (const bad of [191, 16385, 384.5, '384', -1]) {
      const doc = base();
      doc.nodes[1].memoryMiB = bad;
      expectRefused(doc, 'nodes[1].memoryMiB', /whole number from 192 to 16384/);
    }
  });

  it('cpus and bootTimeoutSeconds out of range', () => {
    const cpus = base();
    cpus.nodes[0].cpus = 0;
    expectRefused(cpus, 'nodes[0].cpus');
    const boot = base();
    boot.nodes[0].bootTimeoutSeconds = 0;
    expectRefused(boot, 'nodes[0].bootTimeoutSeconds');
  });

  it('lab/pci-nics.yaml: the default lab with its computes on vmxnet3 data NICs', () => {
    const pci = parseTopology(readFileSync(new URL('../../lab/pci-nics.yaml', import.meta.url), 'utf8'), 'lab/pci-nics.yaml');
    expect(pci.name).toBe('pci');
    expect(pci.nodes.map((n) => [n.name, n.role, n.nicModel])).toEqual([
      ['target-1', 'target', 'virtio'],
      ['compute-1', 'compute', 'vmxnet3'],
      ['compute-2', 'compute', 'vmxnet3'],
    ]);
    expect(pci.networks).toEqual(parseTopology(DEFAULT_YAML, 'lab/default.yaml').networks);
  });

  it('a guest per lab and per node: the lab\'s for nodes that name none, --guest replacing the lab\'s only', () => {
    // A trixie lab whose target runs bookworm.
    const doc = base();
    doc.guest = 'trixie';
    doc.nodes[0].guest = 'bookworm';
    const t = validateTopology(doc, 'unit');
    expect(t.guest).toBe('trixie');
    expect(t.nodes.map((n) => nodeGuest(t, n))).toEqual(['bookworm', 'trixie']);
    expect(guestsOf(t)).toEqual(['bookworm', 'trixie']);
    const swapped = withGuest(t, 'bookworm');
    expect(swapped.nodes.map((n) => nodeGuest(swapped, n))).toEqual(['bookworm', 'bookworm']);
    expect(() => withGuest(t, 'sid')).toThrow(/no guest called "sid"; the guests are bookworm, trixie/);
    const plain = validateTopology(base(), 'unit');
    expect(plain.guest).toBe('bookworm');
    expect(plain.nodes.every((n) => n.guest === undefined)).toBe(true);
    // A record written before guests: bookworm.
    expect(nodeGuest({}, {})).toBe('bookworm');
  });

  it('a guest there is no recipe for, or another than bookworm on a node that is a container', () => {
    const lab = base();
    lab.guest = 'buster';
    expectRefused(lab, 'guest', /must be one of the guests bookworm, trixie \(got "buster"\)/);
    const node = base();
    node.nodes[1].guest = 7;
    expectRefused(node, 'nodes[1].guest', /must be one of the guests/);
    const docker = base();
    docker.nodes[1].provider = 'docker';
    docker.nodes[1].guest = 'trixie';
    expectRefused(docker, 'nodes[1].guest', /must be bookworm on a docker node/);
    // The lab's guest does not reach a docker node: its image is bookworm's.
    const mixed = base();
    mixed.guest = 'trixie';
    mixed.nodes[1].provider = 'docker';
    const t = validateTopology(mixed, 'unit');
    expect(t.nodes.map((n) => nodeGuest(t, n))).toEqual(['trixie', 'bookworm']);
    expect(guestsOf(t)).toEqual(['trixie', 'bookworm']);
  });

  it('a data NIC model it does not know, or one on a node that is a container', () => {
    const ok = base();
    ok.nodes[1].nicModel = 'vmxnet3';
    expect(validateTopology(ok, 'unit').nodes[1]!.nicModel).toBe('vmxnet3');
    for (const bad of ['e1000', 'VMXNET3', 3]) {
      const doc = base();
      doc.nodes[1].nicModel = bad;
      expectRefused(doc, 'nodes[1].nicModel', /must be virtio or vmxnet3/);
    }
    const docker = base();
    docker.nodes[1].provider = 'docker';
    docker.nodes[1].nicModel = 'vmxnet3';
    expectRefused(docker, 'nodes[1].nicModel', /qemu provider/);
  });

  it('an explicit address outside its subnet', () => {
    const doc = base();
    doc.nodes[0].addresses = { 'path-a': '10.10.2.5' };
    expectRefused(doc, 'nodes[0].addresses.path-a', /not a host address in 10\.10\.1\.0\/24/);
  });

  it('the network address and the broadcast address', () => {
    for (const addr of ['10.10.1.0', '10.10.1.255']) {
      const doc = base();
      doc.nodes[0].addresses = { 'path-a': addr };
      expectRefused(doc, 'nodes[0].addresses.path-a', /not a host address/);
    }
  });

  it('an address that is not IPv4', () => {
    const doc = base();
    doc.nodes[0].addresses = { 'path-a': '10.10.1.256' };
    expectRefused(doc, 'nodes[0].addresses.path-a', /not an IPv4 address/);
  });

  it('an address on a network the node is not on', () => {
    const doc = base();
    doc.nodes[0].networks = ['path-a'];
    doc.nodes[0].addresses = { 'path-b': '10.10.2.5' };
    expectRefused(doc, 'nodes[0].addresses.path-b', /not on a network named path-b/);
  });

  it('a duplicate address, explicit against automatic', () => {
    const doc = base();
    // target-1 gets 10.10.1.10 automatically.
    doc.nodes[1].addresses = { 'path-a': '10.10.1.10' };
    expectRefused(doc, 'nodes[1].addresses.path-a', /already target-1's address/);
  });

  it('a duplicate address, explicit against explicit', () => {
    const doc = base();
    doc.nodes[0].addresses = { 'path-b': '10.10.2.50' };
    doc.nodes[1].addresses = { 'path-b': '10.10.2.50' };
    expectRefused(doc, 'nodes[1].addresses.path-b', /10\.10\.2\.50 is already target-1's address/);
  });

  it('an empty or missing nodes list', () => {
    expectRefused({ ...base(), nodes: [] }, 'nodes', /non-empty/);
    const doc = base();
    delete doc.nodes;
    expectRefused(doc, 'nodes');
  });

  it('an empty networks list', () => {
    expectRefused({ ...base(), networks: [] }, 'networks', /non-empty/);
  });

  it('a bad lab name', () => {
    for (const name of ['Default', '1lab', 'lab_1', 'a'.repeat(21), 42]) {
      expectRefused({ ...base(), name }, 'name');
    }
  });

  it('a document that is not a mapping', () => {
    expectRefused(['nodes'], '(top level)');
    expectRefused(null, '(top level)');
  });
});

describe('parseTopology', () => {
  it('refuses invalid YAML syntax with TOPOLOGY_INVALID naming the file', () => {
    const err = refusal(() => parseTopology('name: x\nnodes: [ {name: a\n', 'broken.yaml'));
    expect(err.message).toMatch(/^broken\.yaml: not valid YAML/);
  });

  it('refuses duplicate keys', () => {
    const err = refusal(() => parseTopology('name: a\nname: b\n', 'dup.yaml'));
    expect(err.message).toMatch(/^dup\.yaml: /);
  });

  it('validates the parsed document with the file name as source', () => {
    const text = DEFAULT_YAML.replace('role: compute', 'role: controller');
    const err = refusal(() => parseTopology(text, 'mine.yaml'));
    expect(err.message).toMatch(/^mine\.yaml: nodes\[1\]\.role: /);
  });
});

describe('parseCidr', () => {
  it('parses a network with its prefix', () => {
    expect(parseCidr('10.10.1.0/24')).toEqual({ base: (10 << 24) + (10 << 16) + (1 << 8), prefix: 24 });
    expect(parseCidr('192.168.0.0/16')).toEqual({ base: 0xc0a80000, prefix: 16 });
  });

  it('refuses host bits, bad octets, and prefixes outside 8-29', () => {
    expect(parseCidr('10.10.1.1/24')).toBeNull();
    expect(parseCidr('10.10.1.256/24')).toBeNull();
    expect(parseCidr('10.0.0.0/7')).toBeNull();
    expect(parseCidr('10.0.0.0/30')).toBeNull();
    expect(parseCidr('10.0.0.0')).toBeNull();
    expect(parseCidr('ten/24')).toBeNull();
  });
});

describe('stableUuid and labTag', () => {
  it('stableUuid is UUID-shaped (version 4, RFC variant) and deterministic', () => {
    const u = stableUuid('default', 'compute-1');
    expect(u).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(stableUuid('default', 'compute-1')).toBe(u);
  });

  it('stableUuid differs per node, per lab, and does not confuse part boundaries', () => {
    const all = [
      stableUuid('default', 'compute-1'),
      stableUuid('default', 'compute-2'),
      stableUuid('other', 'compute-1'),
      stableUuid('ab', 'c'),
      stableUuid('a', 'bc'),
    ];
    expect(new Set(all).size).toBe(all.length);
  });

  it('labTag is six hex characters, stable, and differs across labs', () => {
    expect(labTag('default')).toMatch(/^[0-9a-f]{6}$/);
    expect(labTag('default')).toBe(labTag('default'));
    expect(labTag('default')).not.toBe(labTag('default2'));
  });
});

describe('renderTopology', () => {
  it('writes a file that validates back to the same lab, with both data paths by default', () => {
    const text = renderTopology({ name: 'round-trip', nodes: [{ name: 't1', role: 'target' }, { name: 'c1', role: 'compute', memoryMiB: 768 }] });
    const t = parseTopology(text, 'rendered');
    expect(t.name).toBe('round-trip');
    expect(t.networks.map((n) => n.name)).toEqual(['path-a', 'path-b']);
    expect(t.nodes.map((n) => [n.name, n.role, n.memoryMiB, n.networks])).toEqual([
      ['t1', 'target', 384, ['path-a', 'path-b']],
      ['c1', 'compute', 768, ['path-a', 'path-b']],
    ]);
  });
});
