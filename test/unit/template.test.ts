import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAgentEnv } from '../../src/agent/agent-env.js';
import { macFor, qemuArgv, type QemuNodeSpec } from '../../src/lab/providers/qemu/argv.js';
import { shapeName, shapeOf, templateKey, templatesEnabled, TEMPLATE_NODE_INDEX } from '../../src/lab/providers/qemu/template.js';
import { kernelRandomBytes, kernelRandomUUID } from '../../src/system/random.js';
import { qemuSpecFixture } from './lab-fixtures.js';

function spec(over: Partial<QemuNodeSpec> = {}): QemuNodeSpec {
  return qemuSpecFixture({
    templated: { control: '/state/labs/unit/run/compute-1.ctl', qmp: '/state/labs/unit/run/compute-1.qmp', runtimeDisk: '/cache/runtime/abc.erofs' },
    ...over,
  });
}

/** The devices in order (what a saved state must find again on the machine it is loaded into). */
function devices(argv: string[]): string[] {
  return argv.flatMap((a, i) => (a === '-device' ? [argv[i + 1]!.split(',')[0]!] : []));
}

describe('a templated VM', () => {
  const node = qemuArgv(spec());
  const template = qemuArgv(spec({
    node: 'template-compute-384m-1c-2n',
    templateRole: 'compute',
    mgmtMac: macFor(TEMPLATE_NODE_INDEX, 0),
    nics: [
      { network: 'nic1', tap: null, mac: macFor(TEMPLATE_NODE_INDEX, 1) },
      { network: 'nic2', tap: null, mac: macFor(TEMPLATE_NODE_INDEX, 2) },
    ],
  }));

  it('has the same devices, in the same order, as the template it starts from', () => {
    expect(devices(node)).toEqual(devices(template));
    expect(devices(node)).toEqual([
      'pvpanic-pci', 'vmgenid', 'virtio-blk-pci', 'virtio-blk-pci', 'virtio-9p-pci', 'virtio-9p-pci', 'virtio-9p-pci',
      'virtio-net-pci', 'virtio-net-pci', 'virtio-net-pci',
    ]);
  });

  it('has a control line on the second serial port, QMP and the runtime disk right after the image', () => {
    expect(node.join(' ')).toContain('-chardev socket,id=ctl,path=/state/labs/unit/run/compute-1.ctl,server=on,wait=off -serial chardev:ctl');
    expect(node.join(' ')).toContain('-qmp unix:/state/labs/unit/run/compute-1.qmp,server=on,wait=off');
    const drives = node.flatMap((a, i) => (a === '-drive' ? [node[i + 1]!] : []));
    expect(drives[1]).toBe('file=/cache/runtime/abc.erofs,if=none,id=runtime,format=raw,readonly=on,cache=unsafe');
  });

  it('boots a template as its role, with no management forward and NICs with no backend', () => {
    const append = template[template.indexOf('-append') + 1]!;
    expect(append.split(' ')).toContain('brick.template=compute');
    expect(append).not.toContain('brick.node=');
    expect(template.join(' ')).not.toContain('hostfwd');
    expect(template).toContain('virtio-net-pci,mac=52:54:00:4c:ff:01');
    expect(template.join(' ')).not.toContain('-netdev tap');
  });

  it('loads a saved state through `exec:cat PATH`, and refuses a path /bin/sh would take apart', () => {
    const argv = qemuArgv(spec({ incoming: '/cache/templates/compute-384m-1c-2n/0123.state' }));
    expect(argv.slice(argv.indexOf('-incoming'), argv.indexOf('-incoming') + 2)).toEqual(['-incoming', 'exec:cat /cache/templates/compute-384m-1c-2n/0123.state']);
    for (const bad of ['/cache/my templates/x.state', '/cache/x.state;rm -rf /', '/cache/$(id).state', "/cache/x'.state"]) {
      expect(() => qemuArgv(spec({ incoming: bad }))).toThrow(/QEMU hands it to \/bin\/sh/);
    }
  });

  it("gives a template the MACs stage 2 looks for when it hands a restored node's NICs their own", () => {
    const script = readFileSync(join(__dirname, '..', '..', 'images', 'guest', 'stage2.sh'), 'utf8');
    const prefix = macFor(TEMPLATE_NODE_INDEX, 0).slice(0, -2);
    expect(script).toContain(`"${prefix}\${mac##*:}"`);
  });

  it('is left alone for a VM without templates (and docker nodes): one serial port, no QMP, no runtime disk', () => {
    const plain = qemuArgv(spec({ templated: undefined }));
    expect(plain).not.toContain('-qmp');
    expect(plain.filter((a) => a === '-serial')).toHaveLength(1);
    expect(devices(plain)).not.toContain('vmgenid');
  });
});

describe('template keys', () => {
  const base = { image: 'img', stage2: 's2', runtime: 'rt', qemu: '/usr/bin/qemu:1:2', accel: 'tcg' as const, shape: { role: 'compute', memoryMiB: 384, cpus: 1, nics: 2, nicModel: 'virtio' as const, guest: 'bookworm' } };

  it('changes with everything that shapes the saved machine', () => {
    const k = templateKey(base);
    expect(k).toMatch(/^[0-9a-f]{16}$/);
    expect(templateKey({ ...base })).toBe(k);
    for (const over of [{ image: 'img2' }, { stage2: 's3' }, { runtime: 'rt2' }, { qemu: '/usr/bin/qemu:1:3' }, { accel: 'kvm' as const },
      { shape: { ...base.shape, role: 'target' } }, { shape: { ...base.shape, memoryMiB: 512 } }, { shape: { ...base.shape, cpus: 2 } }, { shape: { ...base.shape, nics: 3 } }, { shape: { ...base.shape, nicModel: 'vmxnet3' as const } }, { shape: { ...base.shape, guest: 'trixie' } }]) {
      expect(templateKey({ ...base, ...over })).not.toBe(k);
    }
  });

  it('names a shape by role, memory, CPUs and NICs', () => {
    expect(shapeName(shapeOf({ role: 'target', memoryMiB: 384, cpus: 1, taps: [{ name: 'a', network: 'path-a', mac: 'm', prefixLength: 24 }] }))).toBe('target-384m-1c-1n');
    // A record written before NIC models has virtio-net NICs, and keeps its templates' names.
    const taps = [{ name: 'a', network: 'path-a', mac: 'm', prefixLength: 24 }];
    expect(shapeName(shapeOf({ role: 'compute', memoryMiB: 384, cpus: 1, taps, nicModel: 'virtio' }))).toBe('compute-384m-1c-1n');
    expect(shapeName(shapeOf({ role: 'compute', memoryMiB: 384, cpus: 1, taps, nicModel: 'vmxnet3' }))).toBe('compute-384m-1c-1n-vmxnet3');
    // Another guest than bookworm is named; a record written before guests runs bookworm.
    expect(shapeName(shapeOf({ role: 'compute', memoryMiB: 384, cpus: 1, taps, nicModel: 'virtio', guest: 'trixie' }))).toBe('compute-384m-1c-1n-trixie');
    expect(shapeName(shapeOf({ role: 'compute', memoryMiB: 384, cpus: 1, taps, nicModel: 'vmxnet3', guest: 'bookworm' }))).toBe('compute-384m-1c-1n-vmxnet3');
  });

  it('are on unless BRICK_LAB_TEMPLATES=0', () => {
    expect(templatesEnabled({})).toBe(true);
    expect(templatesEnabled({ BRICK_LAB_TEMPLATES: '1' })).toBe(true);
    expect(templatesEnabled({ BRICK_LAB_TEMPLATES: '0' })).toBe(false);
  });
});

describe("the agent's environment from stage 2", () => {
  it('is what stage 2 writes (its agent_env, run by sh), read back whole', () => {
    const script = readFileSync(join(__dirname, '..', '..', 'images', 'guest', 'stage2.sh'), 'utf8');
    const fn = /^agent_env\(\) \{\n[\s\S]*?\n\}\n/m.exec(script)![0];
    const out = execFileSync('sh', ['-c', `set -u\nAGENT_ENV=$(mktemp -u)\n${fn}\nagent_env\ncat "$AGENT_ENV"\nrm -f "$AGENT_ENV"`], {
      env: { PATH: process.env.PATH, BRICK_LAB: 'unit', BRICK_NODE: 'compute-2', BRICK_ROLE: 'compute', BRICK_AGENT_HOST: '10.0.2.15', BRICK_AGENT_PORT: '8080', BRICK_DATA_NETWORKS: 'path-a=10.10.1.12 path-b=10.10.2.12' },
      encoding: 'utf8',
    });
    const env = parseAgentEnv(out);
    expect(env).toMatchObject({
      BRICK_LAB: 'unit',
      BRICK_NODE: 'compute-2',
      BRICK_ROLE: 'compute',
      BRICK_AGENT_HOST: '10.0.2.15',
      BRICK_AGENT_PORT: '8080',
      BRICK_DATA_NETWORKS: 'path-a=10.10.1.12 path-b=10.10.2.12',
      BRICK_AGENT_TOKEN_FILE: '/brick/token',
      BRICK_AGENT_READY_FILE: '/run/brick-lab/ready',
    });
    // And the same lines, sourced by sh, give the same values (the agent loop's restarts).
    const sourced = execFileSync('sh', ['-c', `${out}\nprintf '%s|%s' "$BRICK_NODE" "$BRICK_DATA_NETWORKS"`], { encoding: 'utf8' });
    expect(sourced).toBe('compute-2|path-a=10.10.1.12 path-b=10.10.2.12');
  });

  it('takes only BRICK_ variables in export lines, nothing else', () => {
    expect(parseAgentEnv("export BRICK_NODE='a'\nexport PATH='/x'\nBRICK_LAB='b'\nexport BRICK_ROLE='c' ; id\n")).toEqual({ BRICK_NODE: 'a' });
  });
});

describe('kernel random numbers', () => {
  it('reads /dev/urandom, and makes version 4 UUIDs', () => {
    expect(kernelRandomBytes(32)).toHaveLength(32);
    const ids = new Set(Array.from({ length: 200 }, () => kernelRandomUUID()));
    expect(ids.size).toBe(200);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
