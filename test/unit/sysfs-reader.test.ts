import { existsSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { exec } from '../../src/system/exec.js';
import { SysfsReader, UEVENT_SEQNUM } from '../../src/system/sysfs-read.js';

/**
 * The descriptor-keeping sysfs reader against this host's real kernfs: a tap interface is a sysfs
 * node the tests can make, change and take away without any storage module. Its `mtu` attribute
 * stands in for a SCSI device's `state` or `wwid`: same kernfs, same show-on-read.
 */
const TAP = `brkfd${process.pid % 100000}`;
const why = process.getuid?.() !== 0 ? 'needs root (it makes a tap interface)' : !existsSync('/dev/net/tun') ? 'needs /dev/net/tun' : null;
const ip = (...args: string[]) => exec(['ip', ...args], { timeoutMs: 10_000 });
const text = (b: Buffer | null): string | null => b?.toString('utf8').trim() ?? null;

afterAll(async () => {
  if (existsSync(`/sys/class/net/${TAP}`)) await ip('tuntap', 'del', 'dev', TAP, 'mode', 'tap');
});

describe.skipIf(why !== null)(`SysfsReader on real kernfs${why ? ` (skipped: ${why})` : ''}`, () => {
  it('re-reads a held attribute afresh, fails over once its node is gone, and reaches a new node at the same path', async () => {
    const reader = new SysfsReader(16);
    const mtu = `/sys/class/net/${TAP}/mtu`;
    try {
      await ip('tuntap', 'add', 'dev', TAP, 'mode', 'tap');
      expect(text(reader.read(mtu))).toBe('1500');
      expect(reader.size).toBe(1);
      // The value is the kernel's current one, not what was read when the descriptor was opened.
      await ip('link', 'set', 'dev', TAP, 'mtu', '1400');
      expect(text(reader.read(mtu))).toBe('1400');
      expect(reader.size).toBe(1);
      // Gone: the held descriptor's read fails (a regular file would still hand out old bytes).
      await ip('tuntap', 'del', 'dev', TAP, 'mode', 'tap');
      expect(reader.read(mtu)).toBeNull();
      expect(reader.size).toBe(0);
      // Made again under the same name: a new node, read from the start.
      await ip('tuntap', 'add', 'dev', TAP, 'mode', 'tap');
      expect(text(reader.read(mtu))).toBe('1500');
    } finally {
      reader.close();
    }
    expect(reader.size).toBe(0);
  });

  it('holds at most its cap (what is held stays held) and nothing for a path that does not exist', async () => {
    const reader = new SysfsReader(2);
    try {
      expect(reader.read('/sys/class/net/lo/mtu')).not.toBeNull();
      expect(reader.read('/sys/class/net/lo/address')).not.toBeNull();
      expect(reader.read('/sys/class/net/lo/mtu')).not.toBeNull();
      expect(reader.read('/sys/class/net/lo/flags')).not.toBeNull();
      expect(reader.size).toBe(2);
      // Still read, just not held: mtu and address stay, flags is read the plain way each time.
      expect(reader.read('/sys/class/net/lo/flags')).not.toBeNull();
      expect(reader.size).toBe(2);
      expect(reader.read('/sys/class/net/lo/no-such-attribute')).toBeNull();
      expect(reader.size).toBe(2);
    } finally {
      reader.close();
    }
  });

  it('closes descriptors left unread for its idle time', async () => {
    const reader = new SysfsReader(512, 0);
    try {
      reader.read('/sys/class/net/lo/mtu');
      expect(reader.size).toBe(1);
      // A sweep runs every 256 reads; with an idle time of 0 each sweep closes what the one
      // before it saw unread since: lo/mtu is not read again, lo/address is.
      for (let i = 0; i < 600; i++) reader.read('/sys/class/net/lo/address');
      expect(reader.size).toBe(1);
      expect(text(reader.read('/sys/class/net/lo/mtu'))).toBe('65536');
    } finally {
      reader.close();
    }
  });

  it('lets go of descriptors on a timer too, once they were unread for its idle time', async () => {
    const reader = new SysfsReader(16, 50);
    const timer = reader.sweepEvery();
    try {
      reader.read('/sys/class/net/lo/mtu');
      expect(reader.size).toBe(1);
      // No read comes: the first tick marks it unread since, a later one closes it.
      await new Promise((r) => setTimeout(r, 250));
      expect(reader.size).toBe(0);
      expect(text(reader.read('/sys/class/net/lo/mtu'))).toBe('65536');
    } finally {
      clearInterval(timer);
      reader.close();
    }
  });

  it('holds nothing under /sys/kernel or /sys/fs, where configfs and other file systems sit, but the uevent counter', () => {
    const reader = new SysfsReader(16);
    try {
      expect(text(reader.read('/sys/kernel/mm/transparent_hugepage/enabled') ?? Buffer.from('absent'))).toBeTruthy();
      expect(reader.size).toBe(0);
      expect(SysfsReader.holds('/sys/kernel/config/target/iscsi/discovery_auth/enforce_discovery_auth')).toBe(false);
      expect(SysfsReader.holds('/sys/kernel/mm/transparent_hugepage/enabled')).toBe(false);
      expect(SysfsReader.holds(UEVENT_SEQNUM)).toBe(true);
      expect(SysfsReader.holds('/sys/fs/cgroup/cgroup.procs')).toBe(false);
      expect(SysfsReader.holds('/sys/class/net/lo/mtu')).toBe(true);
      expect(SysfsReader.holds('/proc/partitions')).toBe(false);
    } finally {
      reader.close();
    }
  });

  // A uevent asked of the loopback device (what `udevadm trigger` does): root only.
  it.skipIf(process.getuid?.() !== 0)('reads each new number of the uevent counter through its held descriptor', () => {
    const reader = new SysfsReader(16);
    try {
      const before = Number(text(reader.read(UEVENT_SEQNUM)!));
      expect(reader.size).toBe(1);
      writeFileSync('/sys/class/net/lo/uevent', 'change');
      const after = Number(text(reader.read(UEVENT_SEQNUM)!));
      expect(reader.size).toBe(1);
      expect(after).toBeGreaterThan(before);
    } finally {
      reader.close();
    }
  });

  it('keeps nothing with a cap of 0', () => {
    const reader = new SysfsReader(0);
    expect(text(reader.read('/sys/class/net/lo/mtu'))).toBe('65536');
    expect(reader.size).toBe(0);
  });
});
