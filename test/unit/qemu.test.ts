import { describe, expect, it } from 'vitest';
import { macFor, qemuArgv, qemuName } from '../../src/lab/providers/qemu/argv.js';
import { tapName, tapPrefix } from '../../src/lab/providers/qemu/network.js';
import { qemuSpecFixture } from './lab-fixtures.js';

const spec = qemuSpecFixture;

/** Values that follow each occurrence of an option. */
function values(argv: string[], opt: string): string[] {
  return argv.flatMap((a, i) => (a === opt ? [argv[i + 1]!] : []));
}

function kv(arg: string): Map<string, string> {
  return new Map(arg.split(',').map((p) => [p.split('=')[0]!, p.slice(p.indexOf('=') + 1)]));
}

describe('qemuArgv', () => {
  const argv = qemuArgv(spec());

  it('names the VM brick-lab:LAB:NODE so a crashed lab can be found', () => {
    expect(argv[0]).toBe('qemu-system-x86_64');
    expect(values(argv, '-name')).toEqual(['brick-lab:unit:compute-1']);
    expect(qemuName('unit', 'compute-1')).toBe('brick-lab:unit:compute-1');
  });

  it('sets memory, CPUs, the kernel and initramfs, and the node on the kernel command line', () => {
    expect(values(argv, '-m')).toEqual(['384']);
    expect(values(argv, '-smp')).toEqual(['1']);
    expect(values(argv, '-kernel')).toEqual(['/cache/images/e14bea83a2389b37/vmlinuz']);
    expect(values(argv, '-initrd')).toEqual(['/cache/images/e14bea83a2389b37/initramfs.img']);
    expect(values(argv, '-append')[0]!.split(' ')).toContain('brick.node=compute-1');
    expect(values(argv, '-serial')).toEqual(['file:/state/labs/unit/compute-1.console.log']);
  });

  it('turns off address space randomisation in the guest (TCG finds its translations by virtual address)', () => {
    expect(values(argv, '-append')[0]!.split(' ')).toContain('norandmaps');
  });

  it('uses the accelerator arguments for the chosen accel', () => {
    expect(values(argv, '-accel')).toEqual(['tcg,tb-size=512']);
    expect(values(qemuArgv(spec({ accel: 'kvm' })), '-cpu')).toEqual(['host']);
  });

  it('attaches the image root read-only, as a raw virtio disk', () => {
    const drives = values(argv, '-drive').map(kv);
    const root = drives.find((d) => d.get('id') === 'root');
    expect(root).toBeDefined();
    expect(root!.get('file')).toBe('/cache/images/e14bea83a2389b37/root.erofs');
    expect(root!.get('readonly')).toBe('on');
    expect(root!.get('format')).toBe('raw');
    expect(root!.get('if')).toBe('none');
    expect(values(argv, '-device')).toContain('virtio-blk-pci,drive=root');
  });

  it('shares the lab and the runtime over 9p read-only, and only the node\'s own disk writable', () => {
    const fsdevs = values(argv, '-fsdev').map(kv);
    expect(fsdevs.map((f) => f.get('id'))).toEqual(['lab', 'node', 'disk']);
    expect(fsdevs.find((f) => f.get('id') === 'lab')!.get('path')).toBe('/state/labs/unit/share');
    expect(fsdevs.find((f) => f.get('id') === 'node')!.get('path')).toBe('/cache/node/v20');
    const disk = fsdevs.find((f) => f.get('id') === 'disk')!;
    expect(disk.get('path')).toBe('/state/labs/unit/disks/compute-1');
    expect(disk.get('readonly')).toBeUndefined();
    for (const f of [...fsdevs.filter((f) => f !== disk), ...values(argv, '-drive').map(kv)]) expect(f.get('readonly'), f.get('id')).toBe('on');
    for (const f of fsdevs) expect(values(argv, '-device')).toContain(`virtio-9p-pci,fsdev=${f.get('id')},mount_tag=${f.get('id')}`);
  });

  it('gives management a restricted user network with one forward from 127.0.0.1 to the agent', () => {
    const netdevs = values(argv, '-netdev');
    const user = netdevs.filter((n) => n.startsWith('user,'));
    expect(user).toHaveLength(1);
    const opts = kv(user[0]!);
    expect(opts.get('restrict')).toBe('on');
    expect(opts.get('net')).toBe('10.0.2.0/24');
    expect(opts.get('hostfwd')).toBe('tcp:127.0.0.1:41234-10.0.2.15:8080');
    // No forward anywhere binds an address other than loopback.
    const forwards = argv.join(' ').match(/hostfwd=[^,\s]*/g) ?? [];
    expect(forwards).toHaveLength(1);
    expect(forwards.every((f) => f.startsWith('hostfwd=tcp:127.0.0.1:'))).toBe(true);
    expect(values(argv, '-device')).toContain(`virtio-net-pci,netdev=mgmt,mac=${macFor(1, 0)}`);
  });

  it('has one tap netdev per NIC, with no helper scripts, and a NIC with its MAC on each', () => {
    const s = spec();
    const taps = values(argv, '-netdev').filter((n) => n.startsWith('tap,')).map(kv);
    expect(taps).toHaveLength(s.nics.length);
    taps.forEach((t, i) => {
      expect(t.get('ifname')).toBe(s.nics[i]!.tap);
      expect(t.get('script')).toBe('no');
      expect(t.get('downscript')).toBe('no');
      expect(values(argv, '-device')).toContain(`virtio-net-pci,netdev=${t.get('id')},mac=${s.nics[i]!.mac}`);
    });
    expect(new Set(taps.map((t) => t.get('id'))).size).toBe(taps.length);
  });

  it('gives the data NICs the node\'s model, and management virtio-net whatever it is', () => {
    const s = spec({ nicModel: 'vmxnet3' });
    const a = qemuArgv(s);
    const devs = values(a, '-device');
    s.nics.forEach((nic, i) => expect(devs).toContain(`vmxnet3,x-disable-pcie=on,netdev=net${i},mac=${nic.mac}`));
    expect(devs.filter((d) => d.startsWith('virtio-net-pci'))).toEqual([`virtio-net-pci,netdev=mgmt,mac=${macFor(1, 0)}`]);
  });

  it('has no tap netdev for a node without data networks', () => {
    const a = qemuArgv(spec({ nics: [] }));
    expect(values(a, '-netdev').filter((n) => n.startsWith('tap,'))).toEqual([]);
  });

  it('daemonizes and writes a pid file, last', () => {
    expect(argv.slice(-3)).toEqual(['-daemonize', '-pidfile', '/state/labs/unit/compute-1.pid']);
  });

  it('starts no default devices and reads no user config', () => {
    expect(argv).toContain('-nodefaults');
    expect(argv).toContain('-no-user-config');
  });

  it('lets the guest reboot in the same QEMU but ends QEMU on a kernel panic', () => {
    expect(argv).not.toContain('-no-reboot');
    expect(values(argv, '-device')).toContain('pvpanic-pci');
    expect(values(argv, '-action')).toEqual(['panic=exit-failure']);
  });
});

describe('macFor', () => {
  it('is a unicast, locally administered MAC', () => {
    const mac = macFor(3, 2);
    expect(mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    const first = parseInt(mac.slice(0, 2), 16);
    expect(first & 1).toBe(0);
    expect(first & 2).toBe(2);
  });

  it('is distinct for every node and NIC of a lab', () => {
    const macs: string[] = [];
    for (let node = 0; node < 32; node++) for (let nic = 0; nic < 8; nic++) macs.push(macFor(node, nic));
    expect(new Set(macs).size).toBe(macs.length);
  });
});

describe('tapName', () => {
  it('fits IFNAMSIZ (15 characters) for any node and network index a topology allows', () => {
    for (const lab of ['a', 'default', 'a-very-long-lab-name']) {
      for (let node = 0; node < 32; node++) {
        for (let net = 0; net < 12; net++) expect(tapName(lab, node, net).length).toBeLessThanOrEqual(15);
      }
    }
  });

  it('is distinct per node and network within a lab', () => {
    const names: string[] = [];
    for (let node = 0; node < 32; node++) for (let net = 0; net < 12; net++) names.push(tapName('default', node, net));
    expect(new Set(names).size).toBe(names.length);
  });

  it('differs across labs and starts with the lab prefix', () => {
    expect(tapName('lab-a', 0, 0)).not.toBe(tapName('lab-b', 0, 0));
    expect(tapName('lab-a', 2, 1).startsWith(tapPrefix('lab-a'))).toBe(true);
    expect(tapName('lab-a', 2, 1).startsWith(tapPrefix('lab-b'))).toBe(false);
  });

  it('uses only characters valid in an interface name', () => {
    expect(tapName('default', 31, 9)).toMatch(/^[a-z0-9-]+$/);
  });
});

function hostfwd(argv: string[]): string | undefined {
  const user = values(argv, '-netdev').filter((n) => n.startsWith('user,'));
  expect(user).toHaveLength(1);
  return user[0]!.split(',').find((p) => p.startsWith('hostfwd='))?.slice('hostfwd='.length);
}

describe('qemuArgv for docker nodes', () => {
  it('in the foreground: no -daemonize and no -pidfile, otherwise the same command line', () => {
    const fg = qemuArgv(spec({ foreground: true }));
    const bg = qemuArgv(spec());
    expect(fg).not.toContain('-daemonize');
    expect(fg).not.toContain('-pidfile');
    expect(fg).not.toContain('/state/labs/unit/compute-1.pid');
    expect(fg).toEqual(bg.slice(0, -3));
  });

  it('forwards from mgmtHost:mgmtPort to the agent', () => {
    const argv = qemuArgv(spec({ mgmtHost: '127.0.0.1', mgmtPort: 8081, foreground: true }));
    expect(hostfwd(argv)).toBe('tcp:127.0.0.1:8081-10.0.2.15:8080');
    expect(argv).not.toContain('-daemonize');
  });

  it('uses another mgmtHost when given', () => {
    expect(hostfwd(qemuArgv(spec({ mgmtHost: '172.18.0.10', mgmtPort: 8081 })))).toBe('tcp:172.18.0.10:8081-10.0.2.15:8080');
  });

  it('by default forwards from the host\'s loopback and daemonizes with a pid file', () => {
    const argv = qemuArgv(spec());
    expect(hostfwd(argv)).toBe('tcp:127.0.0.1:41234-10.0.2.15:8080');
    expect(argv.slice(-3)).toEqual(['-daemonize', '-pidfile', '/state/labs/unit/compute-1.pid']);
    expect(qemuArgv(spec({ foreground: false })).slice(-3)).toEqual(['-daemonize', '-pidfile', '/state/labs/unit/compute-1.pid']);
  });
});
