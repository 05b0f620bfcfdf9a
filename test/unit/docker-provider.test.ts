import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { containerName } from '../../src/lab/providers/docker/container.js';
import { nodeImagePackages, nodeImageSpec } from '../../src/lab/providers/docker/image.js';
import { containerAddress, dockerBridgeName, dockerNetworkName, parseLabRules } from '../../src/lab/providers/docker/networks.js';
import { CAPABILITIES, decidePrivileges, hostCapabilities, missingCapabilities, type PrivilegeProbe } from '../../src/lab/providers/docker/privileges.js';
import { loadRecipe, type ImageRecipe } from '../../src/lab/image/recipe.js';
import { dockerTargetMode } from '../../src/lab/providers/docker/provider.js';
import { tapName, tapPrefix } from '../../src/lab/providers/qemu/network.js';
import { assignAddresses, parseTopology } from '../../src/lab/topology.js';
import { BrickError } from '../../src/system/errors.js';

/** The BrickError fn throws (failing the test when it returns). */
function thrown(fn: () => unknown): BrickError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(BrickError);
    return e as BrickError;
  }
  throw new Error('expected a BrickError, but the call returned');
}

// ---------------------------------------------------------------------------------------------
// Capabilities
// ---------------------------------------------------------------------------------------------

/** Every capability up to CAP_CHECKPOINT_RESTORE (40): 41 bits set. */
const FULL_MASK = '1ffffffffff';

describe('CAPABILITIES', () => {
  it('has the kernel numbers of capability.h at known anchors', () => {
    expect(CAPABILITIES).toHaveLength(41);
    expect(CAPABILITIES[0]).toBe('CHOWN');
    expect(CAPABILITIES[12]).toBe('NET_ADMIN');
    expect(CAPABILITIES[16]).toBe('SYS_MODULE');
    expect(CAPABILITIES[21]).toBe('SYS_ADMIN');
    expect(CAPABILITIES[24]).toBe('SYS_RESOURCE');
    expect(CAPABILITIES[27]).toBe('MKNOD');
    expect(CAPABILITIES[37]).toBe('AUDIT_READ');
    expect(CAPABILITIES[40]).toBe('CHECKPOINT_RESTORE');
  });

  const header = '/usr/include/linux/capability.h';
  it.skipIf(!existsSync(header))('matches every numbered CAP_* of this host\'s linux/capability.h', () => {
    const defs = [...readFileSync(header, 'utf8').matchAll(/^#define CAP_([A-Z_]+)\s+(\d+)\s*$/gm)].map((m) => [Number(m[2]), m[1]!] as const);
    expect(defs.length).toBeGreaterThan(0);
    for (const [n, name] of defs) {
      if (n < CAPABILITIES.length) expect(CAPABILITIES[n], `CAP_${name}`).toBe(name);
    }
  });
});

describe('missingCapabilities', () => {
  it('finds exactly SYS_RESOURCE missing from 000001fffeffffff (cap_last_cap 40)', () => {
    expect(missingCapabilities('000001fffeffffff', 40)).toEqual(['SYS_RESOURCE']);
  });

  it('tolerates the trailing newline of a /proc line', () => {
    expect(missingCapabilities('000001fffeffffff\n', 40)).toEqual(['SYS_RESOURCE']);
  });

  it('finds nothing missing from a full mask', () => {
    expect(missingCapabilities(FULL_MASK, 40)).toEqual([]);
    expect(missingCapabilities(`0000${FULL_MASK}`, 40)).toEqual([]);
  });

  it('looks only at capabilities up to lastCap', () => {
    // Bits 0-37 set, 38-40 (PERFMON, BPF, CHECKPOINT_RESTORE) clear: an older kernel's full mask.
    expect(missingCapabilities('3fffffffff', 37)).toEqual([]);
    expect(missingCapabilities('3fffffffff', 40)).toEqual(['PERFMON', 'BPF', 'CHECKPOINT_RESTORE']);
    // A clear bit above lastCap is ignored, one at or below it is not.
    expect(missingCapabilities('000001fffeffffff', 23)).toEqual([]);
    expect(missingCapabilities('000001fffeffffff', 24)).toEqual(['SYS_RESOURCE']);
  });

  it('lists several missing capabilities in kernel order', () => {
    // FULL_MASK without bits 0 (CHOWN), 21 (SYS_ADMIN) and 24 (SYS_RESOURCE).
    expect(missingCapabilities('1fffedffffe', 40)).toEqual(['CHOWN', 'SYS_ADMIN', 'SYS_RESOURCE']);
  });

  it('an empty mask lacks every capability up to lastCap', () => {
    expect(missingCapabilities('', 40)).toEqual([...CAPABILITIES]);
    expect(missingCapabilities('0', 5)).toEqual(CAPABILITIES.slice(0, 6));
  });

  it('never names an unknown capability when the kernel knows more than the table', () => {
    const out = missingCapabilities('0', 63);
    expect(out).toEqual([...CAPABILITIES]);
    expect(out.every((c) => typeof c === 'string')).toBe(true);
  });

  it('agrees with this host\'s /proc/self/status read independently', () => {
    const { capBnd, lastCap } = hostCapabilities();
    const status = readFileSync('/proc/self/status', 'utf8');
    const line = status.split('\n').find((l) => l.startsWith('CapBnd:'));
    expect(line).toBeDefined();
    const rawHex = line!.slice('CapBnd:'.length).trim();
    expect(capBnd).toBe(rawHex);
    expect(lastCap).toBe(Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8')));
    expect(Number.isInteger(lastCap) && lastCap >= 0).toBe(true);

    const mask = BigInt(`0x${rawHex}`);
    const expected: string[] = [];
    for (let bit = 0; bit <= lastCap && bit < CAPABILITIES.length; bit++) {
      if ((mask & (1n << BigInt(bit))) === 0n) expected.push(CAPABILITIES[bit]!);
    }
    expect(missingCapabilities(capBnd, lastCap)).toEqual(expected);
  });
});

// ---------------------------------------------------------------------------------------------
// decidePrivileges
// ---------------------------------------------------------------------------------------------

describe('decidePrivileges', () => {
  const refused = 'Error response from daemon: privileged mode is disabled by policy';

  it('uses --privileged when the engine accepts it, whatever is missing', () => {
    const set = decidePrivileges({ privileged: { ok: true, detail: 'started and ran' } }, ['SYS_RESOURCE'], true);
    expect(set.mode).toBe('privileged');
    expect(set.summary).toBe('--privileged');
    expect(set.capAdd).toEqual([]);
    expect(set.capDrop).toEqual([]);
    expect(set.securityOpt).toEqual([]);
  });

  it('falls back to every capability but the missing ones, without seccomp, when --privileged is refused', () => {
    const probe: PrivilegeProbe = { privileged: { ok: false, detail: refused } };
    const set = decidePrivileges(probe, ['SYS_RESOURCE'], false);
    expect(set.mode).toBe('capabilities');
    expect(set.capAdd).toEqual(['ALL']);
    expect(set.capDrop).toEqual(['SYS_RESOURCE']);
    expect(set.securityOpt).toEqual(['seccomp=unconfined']);
    expect(set.summary).toBe('--cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined');
  });

  it('adds apparmor=unconfined only when AppArmor is enabled', () => {
    const probe: PrivilegeProbe = { privileged: { ok: false, detail: refused } };
    const on = decidePrivileges(probe, ['SYS_RESOURCE'], true);
    expect(on.securityOpt).toEqual(['seccomp=unconfined', 'apparmor=unconfined']);
    expect(on.summary).toBe('--cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined --security-opt apparmor=unconfined');
    const off = decidePrivileges(probe, ['SYS_RESOURCE'], false);
    expect(off.securityOpt).not.toContain('apparmor=unconfined');
    expect(off.summary).not.toContain('apparmor');
  });

  it('has no --cap-drop when nothing is missing', () => {
    const set = decidePrivileges({ privileged: { ok: false, detail: refused } }, [], false);
    expect(set.capDrop).toEqual([]);
    expect(set.summary).toBe('--cap-add ALL --security-opt seccomp=unconfined');
    expect(set.summary).not.toContain('--cap-drop');
    expect(set.reason).toContain('no capability is missing');
  });

  it('drops every missing capability and names them all', () => {
    const missing = ['SYS_ADMIN', 'SYS_RESOURCE'];
    const set = decidePrivileges({ privileged: { ok: false, detail: refused } }, missing, false);
    expect(set.capDrop).toEqual(missing);
    // One flag per capability, as the docker CLI takes them.
    expect(set.summary).toBe('--cap-add ALL --cap-drop SYS_ADMIN --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined');
    expect(set.reason).toContain('SYS_ADMIN, SYS_RESOURCE');
  });

  it('copies the missing list rather than aliasing the caller\'s array', () => {
    const missing = ['SYS_RESOURCE'];
    const set = decidePrivileges({ privileged: { ok: false, detail: refused } }, missing, false);
    missing.push('SYS_ADMIN');
    expect(set.capDrop).toEqual(['SYS_RESOURCE']);
  });

  it('the reason quotes the refusal and the bounding set, and says the fallback works', () => {
    const set = decidePrivileges({ privileged: { ok: false, detail: refused }, capabilities: { ok: true, detail: 'started and ran' } }, ['SYS_RESOURCE'], false);
    expect(set.reason).toContain(refused);
    expect(set.reason).toContain('SYS_RESOURCE');
    expect(set.reason).toMatch(/fallback works/);
    expect(set.reason).not.toMatch(/failed/);
  });

  it('the reason says the fallback failed too, with its detail', () => {
    const fallback = 'exited 2: ip: RTNETLINK answers: Operation not permitted';
    const set = decidePrivileges({ privileged: { ok: false, detail: refused }, capabilities: { ok: false, detail: fallback } }, ['SYS_RESOURCE'], false);
    expect(set.mode).toBe('capabilities');
    expect(set.reason).toContain(refused);
    expect(set.reason).toMatch(/also failed/);
    expect(set.reason).toContain(fallback);
    expect(set.reason).not.toMatch(/fallback works/);
  });

  it('says nothing about a fallback that was not tried', () => {
    const set = decidePrivileges({ privileged: { ok: false, detail: refused } }, ['SYS_RESOURCE'], false);
    expect(set.reason).not.toMatch(/fallback/);
  });
});

// ---------------------------------------------------------------------------------------------
// Topology: the provider field and addresses in a lab with docker nodes
// ---------------------------------------------------------------------------------------------

function topoError(text: string): BrickError {
  const err = thrown(() => parseTopology(text, 'docker.yaml'));
  expect(err.code).toBe('TOPOLOGY_INVALID');
  return err;
}

const NETS = `
networks:
  - name: path-a
    subnet: 10.10.1.0/24
  - name: path-b
    subnet: 10.10.2.0/24
`;

describe('topology provider field', () => {
  it('accepts docker per node and defaults the rest to qemu', () => {
    const t = parseTopology(
      `name: mixed${NETS}nodes:
  - name: target-1
    role: target
    provider: docker
  - name: compute-1
    role: compute
  - name: compute-2
    role: compute
    provider: qemu
`,
      'mixed.yaml',
    );
    expect(t.nodes.map((n) => [n.name, n.provider])).toEqual([
      ['target-1', 'docker'],
      ['compute-1', 'qemu'],
      ['compute-2', 'qemu'],
    ]);
  });

  it('refuses any other provider, naming nodes[i].provider', () => {
    for (const bad of ['podman', 'Docker', '""', '3']) {
      const err = topoError(`name: bad${NETS}nodes:
  - name: target-1
    role: target
  - name: compute-1
    role: compute
    provider: ${bad}
`);
      expect(err.message.startsWith('docker.yaml: nodes[1].provider: '), err.message).toBe(true);
      expect(err.details).toEqual({ field: 'nodes[1].provider' });
      expect(err.message).toContain('qemu or docker');
    }
  });
});

describe('topology: a lab with docker nodes keeps every host address of its subnets', () => {
  it('accepts the last host address and any other one: Docker networks do not use the lab subnets', () => {
    const text = `name: gw
networks:
  - name: path-a
    subnet: 10.10.1.0/29
nodes:
  - name: target-1
    role: target
    provider: docker
    addresses: {path-a: 10.10.1.6}
  - name: compute-1
    role: compute
    provider: docker
    addresses: {path-a: 10.10.1.1}
`;
    const t = parseTopology(text, 'gw.yaml');
    expect(assignAddresses(t).get('target-1')!.get('path-a')).toBe('10.10.1.6');
    expect(assignAddresses(t).get('compute-1')!.get('path-a')).toBe('10.10.1.1');
  });
});

// ---------------------------------------------------------------------------------------------
// dockerTargetMode
// ---------------------------------------------------------------------------------------------

describe('dockerTargetMode', () => {
  const yes = { ok: true, detail: 'host kernel 6.8.0 has target_core_mod, nvmet' };
  const no = { ok: false, detail: 'host kernel 6.8.0-azure lacks nvmet_tcp (modprobe -n finds no module)' };

  it('auto, unset and empty follow the host storage probe', () => {
    for (const setting of ['auto', undefined, '', '  ', 'AUTO']) {
      expect(dockerTargetMode(setting, yes), String(setting)).toBe('host-kernel');
      expect(dockerTargetMode(setting, no), String(setting)).toBe('guest');
    }
  });

  it('guest is always guest', () => {
    expect(dockerTargetMode('guest', yes)).toBe('guest');
    expect(dockerTargetMode('guest', no)).toBe('guest');
    expect(dockerTargetMode(' Guest ', yes)).toBe('guest');
  });

  it('host-kernel is host-kernel when the host kernel has the modules', () => {
    expect(dockerTargetMode('host-kernel', yes)).toBe('host-kernel');
  });

  it('host-kernel without the modules is refused with the probe detail', () => {
    const err = thrown(() => dockerTargetMode('host-kernel', no));
    expect(err.code).toBe('DOCKER_HOST_KERNEL_UNAVAILABLE');
    expect(err.message).toContain(no.detail);
  });

  it('an unknown value is a usage error naming it', () => {
    for (const bad of ['kvm', 'host', 'qemu']) {
      const err = thrown(() => dockerTargetMode(bad, yes));
      expect(err.code).toBe('USAGE');
      expect(err.message).toContain(JSON.stringify(bad));
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Names and addresses
// ---------------------------------------------------------------------------------------------

describe('containerAddress', () => {
  it('is .10 + the node index from the subnet base', () => {
    expect(containerAddress('172.18.0.0/16', 0)).toBe('172.18.0.10');
    expect(containerAddress('172.18.0.0/16', 3)).toBe('172.18.0.13');
    expect(containerAddress('192.168.48.0/20', 31)).toBe('192.168.48.41');
    expect(containerAddress('10.99.7.0/24', 1)).toBe('10.99.7.11');
  });

  it('refuses a subnet too small for the node', () => {
    expect(containerAddress('10.99.7.0/27', 20)).toBe('10.99.7.30');
    const err = thrown(() => containerAddress('10.99.7.0/27', 21));
    expect(err.code).toBe('DOCKER_NETWORK_INVALID');
    expect(err.message).toContain('no room for node 21');
  });

  it('refuses what is not an IPv4 subnet', () => {
    for (const bad of ['', 'bridge', '172.18.0.1/16', '172.18.0.0', 'fd00::/64', '300.1.0.0/16']) {
      const err = thrown(() => containerAddress(bad, 0));
      expect(err.code, bad).toBe('DOCKER_NETWORK_INVALID');
      expect(err.message).toContain(bad);
    }
  });
});

describe('dockerBridgeName', () => {
  const labs = ['a', 'default', 'a-very-long-lab-name'];

  it('fits IFNAMSIZ (15 characters) and starts with the lab\'s tap prefix', () => {
    for (const lab of labs) {
      for (const k of [0, 1, 9, 11, 99, 'm'] as const) {
        const name = dockerBridgeName(lab, k);
        expect(name.length, name).toBeLessThanOrEqual(15);
        expect(name.startsWith(tapPrefix(lab)), name).toBe(true);
        expect(name).toMatch(/^[a-z0-9-]+$/);
      }
    }
  });

  it('differs between labs', () => {
    expect(dockerBridgeName('lab-a', 0)).not.toBe(dockerBridgeName('lab-b', 0));
    expect(dockerBridgeName('lab-a', 'm')).not.toBe(dockerBridgeName('lab-b', 'm'));
    expect(dockerBridgeName('lab-a', 0).startsWith(tapPrefix('lab-b'))).toBe(false);
  });

  it('differs between networks and from management within a lab', () => {
    const names = [...Array.from({ length: 12 }, (_, k) => dockerBridgeName('default', k)), dockerBridgeName('default', 'm')];
    expect(new Set(names).size).toBe(names.length);
  });

  it('never equals a tap name of the same lab', () => {
    const bridges = new Set([...Array.from({ length: 12 }, (_, k) => dockerBridgeName('default', k)), dockerBridgeName('default', 'm')]);
    for (let node = 0; node < 32; node++) for (let net = 0; net < 12; net++) expect(bridges.has(tapName('default', node, net))).toBe(false);
  });
});

describe('containerName and dockerNetworkName', () => {
  it('carry the lab and the node or network', () => {
    expect(containerName('default', 'target-1')).toBe('brick-lab.default.target-1');
    expect(dockerNetworkName('default', 'path-a')).toBe('brick-lab.default.path-a');
    expect(dockerNetworkName('default', 'mgmt')).toBe('brick-lab.default.mgmt');
  });

  it('differ between labs, nodes and networks', () => {
    expect(containerName('lab-a', 'target-1')).not.toBe(containerName('lab-b', 'target-1'));
    expect(containerName('default', 'compute-1')).not.toBe(containerName('default', 'compute-2'));
    expect(dockerNetworkName('lab-a', 'path-a')).not.toBe(dockerNetworkName('lab-b', 'path-a'));
    expect(dockerNetworkName('default', 'path-a')).not.toBe(dockerNetworkName('default', 'path-b'));
    // Names hold dashes: lab a-b with node c is not lab a with node b-c.
    expect(containerName('a-b', 'c')).not.toBe(containerName('a', 'b-c'));
    expect(dockerNetworkName('a-b', 'mgmt')).not.toBe(dockerNetworkName('a', 'b-mgmt'));
  });
});

// ---------------------------------------------------------------------------------------------
// The node image
// ---------------------------------------------------------------------------------------------

describe('nodeImagePackages', () => {
  const { recipe } = loadRecipe();
  const pkgs = nodeImagePackages(recipe);

  it('has QEMU and the storage tools', () => {
    for (const p of ['qemu-system-x86', 'targetcli-fb', 'nvme-cli', 'iproute2']) expect(pkgs, p).toContain(p);
  });

  it('leaves out the kernel, tiny-initramfs and os-brick', () => {
    expect(recipe.packages).toContain('tiny-initramfs'); // else this test proves nothing
    expect(pkgs).not.toContain(recipe.kernel.package);
    expect(pkgs.some((p) => p.startsWith('linux-image'))).toBe(false);
    expect(pkgs).not.toContain('tiny-initramfs');
    expect(pkgs).not.toContain('python3-os-brick');
  });

  it('keeps the rest of the guest user land', () => {
    const skipped = new Set(['tiny-initramfs', 'python3-os-brick', recipe.kernel.package]);
    for (const p of recipe.packages.filter((x) => !skipped.has(x))) expect(pkgs, p).toContain(p);
  });

  it('is sorted and without duplicates (the recipe already lists iproute2, tini and procps)', () => {
    expect(pkgs).toEqual([...pkgs].sort());
    expect(new Set(pkgs).size).toBe(pkgs.length);
  });

  it('skips the recipe\'s own kernel package, whatever it is', () => {
    const r: ImageRecipe = { ...recipe, kernel: { package: 'linux-image-6.12.0-1-amd64', release: '6.12.0-1-amd64' }, packages: ['linux-image-6.12.0-1-amd64', 'zsh', 'udev', 'udev'] };
    const out = nodeImagePackages(r);
    expect(out).not.toContain('linux-image-6.12.0-1-amd64');
    expect(out).toContain('zsh');
    expect(out.filter((p) => p === 'udev')).toHaveLength(1);
  });
});

describe('nodeImageSpec', () => {
  it('tags brick-lab/node with a 16-hex key, stable across calls', () => {
    const a = nodeImageSpec();
    const b = nodeImageSpec();
    expect(a.tag).toMatch(/^brick-lab\/node:[0-9a-f]{16}$/);
    expect(a.tag).toBe(`brick-lab/node:${a.key}`);
    expect(b).toEqual(a);
  });

  it('carries the recipe\'s release, variant and the node packages', () => {
    const { recipe } = loadRecipe();
    const s = nodeImageSpec();
    expect(s.release).toBe(recipe.release);
    expect(s.variant).toBe(recipe.variant);
    expect(s.packages).toEqual(nodeImagePackages(recipe));
  });
});

describe('up --dry-run with a docker node', () => {
  it('prints the QEMU command each node runs: in its container for docker nodes, on the host for qemu nodes, and makes nothing', async () => {
    const { mkdtemp, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { up } = await import('../../src/lab/up.js');
    const { loadTopology } = await import('../../src/lab/topology.js');
    const { labDir } = await import('../../src/system/paths.js');
    const dir = await mkdtemp(join(tmpdir(), 'brick-unit-dry-'));
    const file = join(dir, 'lab.yaml');
    await writeFile(file, ['name: unit-dry', 'networks:', '  - {name: path-a, subnet: 10.10.1.0/24}', 'nodes:', '  - {name: target-1, role: target, provider: docker}', '  - {name: compute-1, role: compute}', ''].join('\n'));
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    }) as typeof process.stdout.write;
    try {
      await up(await loadTopology(file), { topologyFile: file, dryRun: true });
    } finally {
      process.stdout.write = write;
    }
    const lines = out.join('').trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe('# target-1: provider docker, container brick-lab.unit-dry.target-1; inside it:');
    expect(lines[1]).toMatch(/^node-entry\.sh qemu qemu-system-x86_64 /);
    expect(lines[1]).toContain('hostfwd=tcp:127.0.0.1:8081-10.0.2.15:8080');
    expect(lines[1]).not.toContain('-daemonize');
    expect(lines[1]).toContain('ifname=tp-path-a');
    expect(lines[2]).toMatch(/^qemu-system-x86_64 /);
    expect(lines[2]).toContain('-daemonize');
    expect(existsSync(labDir('unit-dry'))).toBe(false);
  });
});

describe('parseLabRules', () => {
  // `iptables -S DOCKER-USER` (iptables 1.8.9, nf_tables) on this host with lab dk up and one rule
  // of another lab added by hand, plus Docker's own RETURN.
  const listing = [
    '-N DOCKER-USER',
    '-A DOCKER-USER -i bk867b4b-b1 -o bk867b4b-b1 -m comment --comment "brick-lab:dk" -j ACCEPT',
    '-A DOCKER-USER -i bk867b4b-b0 -o bk867b4b-b0 -m comment --comment "brick-lab:dk" -j ACCEPT',
    '-A DOCKER-USER -i bk0a1b2c-b0 -o bk0a1b2c-b0 -m comment --comment "brick-lab:e2e-other" -j ACCEPT',
    '-A DOCKER-USER -i br-1234 -o br-1234 -m comment --comment "someone else" -j ACCEPT',
    '-A DOCKER-USER -i bk867b4b-b0 -o eth0 -m comment --comment "brick-lab:dk" -j ACCEPT',
    '-A DOCKER-USER -j RETURN',
  ].join('\n');

  it('finds a lab\'s same-bridge accept rules by their comment, and no one else\'s', () => {
    expect(parseLabRules(listing, 'dk')).toEqual([
      { lab: 'dk', bridge: 'bk867b4b-b1' },
      { lab: 'dk', bridge: 'bk867b4b-b0' },
    ]);
    expect(parseLabRules(listing).map((r) => r.lab)).toEqual(['dk', 'dk', 'e2e-other']);
    expect(parseLabRules(listing, 'd')).toEqual([]);
    expect(parseLabRules('')).toEqual([]);
  });
});
