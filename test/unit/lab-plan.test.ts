import { describe, expect, it } from 'vitest';
import { draftRecord, nodeEnv, planNodes } from '../../src/lab/plan.js';
import { macFor, qemuArgv, qemuSpec } from '../../src/lab/providers/qemu/argv.js';
import { tapName } from '../../src/lab/providers/qemu/network.js';
import { parseTopology, renderTopology, type Topology } from '../../src/lab/topology.js';
import { TEST_IMAGE } from './lab-fixtures.js';

const IMAGE = TEST_IMAGE;

function topology(): Topology {
  return parseTopology(
    renderTopology({
      name: 'plan',
      networks: [
        { name: 'path-a', subnet: '10.10.1.0/24' },
        { name: 'path-b', subnet: '172.16.0.0/16' },
      ],
      nodes: [
        { name: 'target-1', role: 'target', cpus: 2, bootTimeoutSeconds: 90, addresses: { 'path-a': '10.10.1.5' } },
        { name: 'compute-1', role: 'compute', memoryMiB: 512, networks: ['path-b'] },
        { name: 'compute-2', role: 'compute', provider: 'docker' },
      ],
    }),
    'plan.yaml',
  );
}

describe('planNodes', () => {
  it('makes complete records: cpus, boot timeout, taps with their prefix lengths, addresses, identities', () => {
    const nodes = planNodes('plan', topology(), '/state/labs/plan');
    expect(nodes.map((n) => [n.name, n.provider, n.index, n.memoryMiB, n.cpus, n.bootTimeoutSeconds])).toEqual([
      ['target-1', 'qemu', 0, 384, 2, 90],
      ['compute-1', 'qemu', 1, 512, 1, 180],
      ['compute-2', 'docker', 2, 384, 1, 180],
    ]);
    expect(nodes[0]!.taps).toEqual([
      { name: tapName('plan', 0, 0), network: 'path-a', mac: macFor(0, 1), prefixLength: 24 },
      { name: tapName('plan', 0, 1), network: 'path-b', mac: macFor(0, 2), prefixLength: 16 },
    ]);
    // A node on path-b only: its one tap keeps path-b's index (1) in its name and MAC.
    expect(nodes[1]!.taps).toEqual([{ name: tapName('plan', 1, 1), network: 'path-b', mac: macFor(1, 2), prefixLength: 16 }]);
    // A docker node's taps live in its container, named after their network.
    expect(nodes[2]!.taps.map((t) => t.name)).toEqual(['tp-path-a', 'tp-path-b']);
    expect(nodes[0]!.addresses).toEqual({ 'path-a': '10.10.1.5', 'path-b': '172.16.0.10' });
    expect(nodes[1]!.addresses).toEqual({ 'path-b': '172.16.0.11' });
    expect(nodes[2]!.addresses).toEqual({ 'path-a': '10.10.1.12', 'path-b': '172.16.0.12' });
    expect(nodes[1]!.consoleLog).toBe('/state/labs/plan/logs/compute-1.console.log');
    expect(nodes[1]!.initiatorIqn).toBe('iqn.2026-11.io.brick-lab:plan:compute-1');
    expect(nodes[1]!.hostNqn).toMatch(/^nqn\.2014-08\.org\.nvmexpress:uuid:[0-9a-f-]{36}$/);
    for (const n of nodes) expect([n.mgmtPort, n.url, n.pid, n.startedAt, n.readyAt]).toEqual([0, '', null, null, null]);
  });

  it('is the same plan every time (stable names, MACs and identities)', () => {
    expect(planNodes('plan', topology(), '/d')).toEqual(planNodes('plan', topology(), '/d'));
  });
});

describe('the record carries what a provider needs', () => {
  it('the QEMU spec comes from the record alone, without the topology', () => {
    const rec = draftRecord('plan', '/topo/plan.yaml', topology(), '/state/labs/plan', 'kvm', 'unit', IMAGE);
    expect(rec).toMatchObject({ name: 'plan', phase: 'starting', topologyFile: '/topo/plan.yaml', accel: 'kvm', netns: 'brick-plan', tokenFile: '/state/labs/plan/token', shareDir: '/state/labs/plan/share' });
    // Nothing re-joins the topology by name: take it away and the spec is the same.
    const alone = { ...rec, topology: { name: 'plan', guest: 'bookworm', networks: [], nodes: [] } };
    const target = rec.nodes[0]!;
    const spec = qemuSpec(alone, target, IMAGE);
    expect(spec).toEqual(qemuSpec(rec, target, IMAGE));
    expect(spec).toMatchObject({ lab: 'plan', node: 'target-1', cpus: 2, memoryMiB: 384, accel: 'kvm', pidFile: '/state/labs/plan/run/target-1.pid', mgmtMac: macFor(0, 0) });
    expect(spec.nics).toEqual(target.taps.map((t) => ({ network: t.network, tap: t.name, mac: t.mac })));
    expect(qemuArgv(spec)).toContain('-smp');
    expect(qemuArgv(spec)[qemuArgv(spec).indexOf('-smp') + 1]).toBe('2');
  });

  it('node.env comes from the records: NICs with prefix lengths, every node in hosts, values quoted for sh', () => {
    const rec = draftRecord('plan', '/t.yaml', topology(), '/s', 'tcg', 'unit', IMAGE);
    const env = nodeEnv({ ...rec, topology: { name: 'plan', guest: 'bookworm', networks: [], nodes: [] } }, rec.nodes[0]!);
    const vars = Object.fromEntries(env.trimEnd().split(/\n(?=[A-Z_]+=)/).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    expect(vars.BRICK_LAB).toBe('plan');
    expect(vars.BRICK_NODE).toBe('target-1');
    expect(vars.BRICK_NICS).toBe(`'mgmt=${macFor(0, 0)}=10.0.2.15/24 path-a=${macFor(0, 1)}=10.10.1.5/24 path-b=${macFor(0, 2)}=172.16.0.10/16'`);
    expect(vars.BRICK_HOSTS).toBe(
      "'10.10.1.5 target-1 target-1-path-a\n172.16.0.10 target-1-path-b\n172.16.0.11 compute-1 compute-1-path-b\n10.10.1.12 compute-2 compute-2-path-a\n172.16.0.12 compute-2-path-b'",
    );
    expect(vars.BRICK_DATA_NETWORKS).toBe("'path-a=10.10.1.5 path-b=172.16.0.10'");
    // The target is told each compute port's name (2000 and its NIC's MAC, numbered by the lab's networks) and fabric; compute-1 is on path-b only.
    expect(vars.BRICK_FC_INITIATORS).toBe(`'path-b=2000${macFor(1, 2).replace(/:/g, '')} path-a=2000${macFor(2, 1).replace(/:/g, '')} path-b=2000${macFor(2, 2).replace(/:/g, '')}'`);
    expect(nodeEnv(rec, rec.nodes[1]!)).toContain("BRICK_FC_INITIATORS=''\n");
    expect(vars.BRICK_AGENT_HOST).toBe('10.0.2.15');
    expect(vars.BRICK_AGENT_PORT).toBe('8080');
    expect(vars.BRICK_HOST_ID).toBe(rec.nodes[0]!.hostNqn.split(':uuid:')[1]);
  });

  it('a host-kernel target answers on its container address', () => {
    const rec = draftRecord('plan', '/t.yaml', topology(), '/s', 'tcg', 'unit', IMAGE);
    const node = { ...rec.nodes[2]!, container: { id: '', name: 'c', mode: 'host-kernel' as const, mgmtAddress: '172.30.0.12' } };
    expect(nodeEnv(rec, node)).toContain('BRICK_AGENT_HOST=172.30.0.12\n');
  });

  it("quotes a value holding ' so that sh reads it back", () => {
    const rec = draftRecord('plan', '/t.yaml', topology(), '/s', 'tcg', 'unit', IMAGE);
    const node = { ...rec.nodes[1]!, initiatorIqn: "iqn.x:it's" };
    expect(nodeEnv(rec, node)).toContain(`BRICK_INITIATOR_IQN='iqn.x:it'\\''s'\n`);
  });
});
