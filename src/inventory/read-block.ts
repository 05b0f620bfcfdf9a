import type { HostFs } from '../system/hostfs.js';
import type { BlockDevice, DevLink } from './model.js';

const base = (p: string | null): string | null => (p ? p.slice(p.lastIndexOf('/') + 1) : null);

/** Block devices as sysfs and /dev/disk show them: the index of disks, holders and slaves, sizes, links. */

/** Whole disks and partitions, with where each sits in the device tree. */
export interface BlockIndex {
  /** Every name under /sys/class/block (disks and partitions): what a /dev link may point at. */
  all: Set<string>;
  /** Whole disks, in /sys/block order. */
  disks: string[];
  /** Each disk's device directory under /sys, from its /sys/class/block link. */
  real: Map<string, string>;
  /** HCTL -> disk, for SCSI disks. */
  byHctl: Map<string, string>;
}

/**
 * /sys/block lists the whole disks; /sys/class/block also the partitions. Each entry links to
 * where the device sits: ../../devices/.../H:C:T:L/block/sdX for a SCSI disk,
 * .../nvme-subsystem/nvme-subsysN/nvmeXnY for an NVMe head.
 */
export function blockIndex(fs: HostFs): BlockIndex {
  const idx: BlockIndex = { all: new Set(fs.list('/sys/class/block')), disks: fs.list('/sys/block'), real: new Map(), byHctl: new Map() };
  for (const name of idx.disks) {
    const link = fs.link(`/sys/class/block/${name}`);
    if (!link) continue;
    // "../../devices/.../H:C:T:L/block/sdX": string operations, not regular expressions, as this
    // runs for every disk of the host.
    const at = link.indexOf('devices/');
    const real = `/sys/${at >= 0 ? link.slice(at) : link.replace(/^(\.\.\/)+/, '')}`;
    idx.real.set(name, real);
    const blockAt = real.lastIndexOf('/block/');
    if (blockAt > 0) {
      const hctl = real.slice(real.lastIndexOf('/', blockAt - 1) + 1, blockAt);
      if (isHctl(hctl)) idx.byHctl.set(hctl, name);
    }
  }
  return idx;
}

/** "H:C:T:L": four runs of digits joined by colons. */
export function isHctl(s: string): boolean {
  let colons = 0;
  let digits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 58) {
      if (digits === 0) return false;
      colons++;
      digits = 0;
    } else if (c >= 48 && c <= 57) digits++;
    else return false;
  }
  return colons === 3 && digits > 0;
}

/**
 * Holder links are made by bd_link_disk_holder, which device-mapper and md call on their member
 * disks and partitions (the only users in 6.1): listing the slaves of dm-* and md* disks and
 * turning them around gives every device's holders without listing a holders directory per disk.
 * A slave link whose device the kernel removed still lists (the map keeps it open by number):
 * those are the stale ones, found by the link no longer resolving.
 */
export function stacking(fs: HostFs, blocks: BlockIndex): Stacking {
  const slaves = new Map<string, string[]>();
  const stale = new Map<string, string[]>();
  const holders = new Map<string, string[]>();
  for (const name of blocks.disks) {
    if (!isStacked(name)) continue;
    const list = fs.list(`/sys/block/${name}/slaves`);
    slaves.set(name, list);
    const gone = list.filter((s) => !fs.exists(`/sys/block/${name}/slaves/${s}`));
    if (gone.length > 0) stale.set(name, gone);
    for (const s of list) if (!gone.includes(s)) holders.set(s, [...(holders.get(s) ?? []), name].sort());
  }
  return { slaves, stale, holders };
}

export interface Stacking {
  slaves: Map<string, string[]>;
  /** Per dm or md device, the slaves whose device is gone. */
  stale: Map<string, string[]>;
  /** Per disk or partition, what is stacked on it. */
  holders: Map<string, string[]>;
}

/** Devices that stack on others: device-mapper maps and md arrays. */
function isStacked(name: string): boolean {
  return name.startsWith('dm-') || /^md\d/.test(name);
}

/**
 * Partitions by disk: the names /sys/class/block has and /sys/block does not, each under its
 * disk's directory (".../block/sda/sda1").
 */
function partitionsByDisk(fs: HostFs, blocks: BlockIndex): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (blocks.all.size === blocks.disks.length) return out;
  const disks = new Set(blocks.disks);
  for (const name of blocks.all) {
    if (disks.has(name)) continue;
    const link = fs.link(`/sys/class/block/${name}`) ?? '';
    const parts = link.split('/');
    const disk = parts[parts.length - 2];
    if (disk && disks.has(disk)) out.set(disk, [...(out.get(disk) ?? []), name].sort());
  }
  return out;
}

/** Disk sizes in one read: /proc/partitions gives 1 KiB blocks (the kernel's sectors >> 1). */
function partitionSizes(fs: HostFs): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of ((fs.readText('/proc/partitions')) ?? '').split('\n')) {
    const m = /^\s*\d+\s+\d+\s+(\d+)\s+(\S+)$/.exec(line);
    if (m) out.set(m[2]!, Number(m[1]) * 1024);
  }
  return out;
}

/**
 * Every disk with its dev_t, size, holders, slaves, partitions and dm or md state; only the dm
 * disks (no sizes, partitions or numbers) when not full.
 */
export function blockDevices(fs: HostFs, blocks: BlockIndex, stack: Stacking, full: boolean): BlockDevice[] {
  const out: BlockDevice[] = [];
  const sizes = full ? partitionSizes(fs) : new Map<string, number>();
  const parts = full ? partitionsByDisk(fs, blocks) : new Map<string, string[]>();
  for (const name of blocks.disks) {
    const dir = `/sys/block/${name}`;
    const isDm = name.startsWith('dm-');
    if (!full && !isDm) continue;
    // /proc/partitions leaves out hidden disks (NVMe path devices) and empty ones: read those.
    let size = sizes.get(name) ?? null;
    if (full && size === null) {
      const sectors = fs.readText(`${dir}/size`);
      size = sectors === null ? null : Number(sectors) * 512;
    }
    const isMd = /^md\d/.test(name);
    const suspended = full && isDm ? fs.readText(`${dir}/dm/suspended`) : null;
    out.push({
      name,
      devt: full ? fs.readText(`${dir}/dev`) : null,
      sizeBytes: size,
      holders: stack.holders.get(name) ?? [],
      slaves: stack.slaves.get(name) ?? [],
      staleSlaves: stack.stale.get(name) ?? [],
      partitions: (parts.get(name) ?? []).map((p) => ({ name: p, devt: fs.readText(`/sys/class/block/${p}/dev`), holders: stack.holders.get(p) ?? [] })),
      dm: isDm ? { name: fs.readText(`${dir}/dm/name`), uuid: fs.readText(`${dir}/dm/uuid`), suspended: suspended === null ? null : suspended === '1', table: null } : null,
      md: full && isMd ? { level: fs.readText(`${dir}/md/level`), state: fs.readText(`${dir}/md/array_state`) } : null,
    });
  }
  return out;
}

export function links(fs: HostFs, blocks: BlockIndex, dirs: ReadonlyArray<DevLink['dir']>): DevLink[] {
  const out: DevLink[] = [];
  for (const dir of dirs) {
    // One stat per directory while udev leaves it alone (HostFs.readLinks): the links' targets
    // are checked against the devices the kernel has now on every call, below.
    for (const { name, target: to } of fs.readLinks(`/dev/disk/${dir}`)) {
      const target = base(to);
      // Dangling when what it points at is no block device the kernel has (disk or partition).
      const dangling = !target || !blocks.all.has(target);
      out.push({ dir, name, target: dangling ? null : target, dangling });
    }
  }
  return out;
}

