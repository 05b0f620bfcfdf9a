import type { DirLink, HostFs } from '../system/hostfs.js';
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
  /** HCTL -> where the SCSI device's attributes are, for SCSI disks (kept with the disk's place). */
  scsiPaths: Map<string, ScsiPaths>;
}

/** A SCSI device's attributes and its session, from its directory under /sys/devices. */
export interface ScsiPaths {
  session: number | null;
  rport: string | null;
  wwid: string;
  state: string;
  inquiry: string;
}

export function scsiPathsOf(dir: string): ScsiPaths {
  const at = dir.indexOf('/session');
  const session = at >= 0 ? Number.parseInt(dir.slice(at + 8), 10) : Number.NaN;
  // An FC disk hangs under its remote port: .../host2/rport-2:0-1/target2:0:0/2:0:0:0.
  const r = dir.includes('/rport-') ? /\/(rport-\d+:\d+-\d+)\//.exec(dir) : null;
  return { session: Number.isNaN(session) ? null : session, rport: r ? r[1]! : null, wwid: `${dir}/wwid`, state: `${dir}/state`, inquiry: `${dir}/inquiry` };
}

/**
 * /sys/block lists the whole disks; /sys/class/block also the partitions. Each entry links to
 * where the device sits: ../../devices/.../H:C:T:L/block/sdX for a SCSI disk,
 * .../nvme-subsystem/nvme-subsysN/nvmeXnY for an NVMe head.
 */
export function blockIndex(fs: HostFs): BlockIndex {
  const idx: BlockIndex = { all: new Set(fs.list('/sys/class/block')), disks: fs.list('/sys/block'), real: new Map(), byHctl: new Map(), scsiPaths: new Map() };
  let kept = placesKept.get(fs);
  if (!kept) placesKept.set(fs, (kept = new Map()));
  for (const name of idx.disks) {
    const at = placeOf(fs, kept, name);
    if (!at) continue;
    idx.real.set(name, at.real);
    if (at.scsi) {
      idx.byHctl.set(at.scsi.hctl, name);
      idx.scsiPaths.set(at.scsi.hctl, at.scsi.paths);
    }
  }
  // Forget the disks that are gone.
  if (kept.size > idx.disks.length) {
    const now = new Set(idx.disks);
    for (const name of kept.keys()) if (!now.has(name)) kept.delete(name);
  }
  return idx;
}

/** Where a disk sits under /sys/devices, and its H:C:T:L when it is a SCSI disk. */
interface DiskPlace {
  /** The disk's diskseq, as read just before the link. */
  seq: string;
  real: string;
  /** For a SCSI disk: its device's H:C:T:L and attribute paths (made once per place, so the held descriptors behind them are found without building each path again). */
  scsi: { hctl: string; paths: ScsiPaths } | null;
}

/**
 * Each host's disks as last placed, by name. A disk's place in the device tree is fixed for its
 * life (the kernel never moves a disk to another parent), and a name taken by a new disk comes
 * with a new diskseq: a number the kernel gives each disk it makes, and each media change of one,
 * from a counter that only grows while it runs (/sys/block/X/diskseq, since 5.15). So a disk
 * whose diskseq reads as kept is where it was, and one read (a held descriptor, SysfsReader)
 * stands for a readlink, which costs three times as much under TCG and made a third of a
 * snapshot of 257 disks. A kernel without diskseq, or a recording without it, has every link read.
 */
const placesKept = new WeakMap<HostFs, Map<string, DiskPlace>>();

function placeOf(fs: HostFs, kept: Map<string, DiskPlace>, name: string): DiskPlace | null {
  // diskseq first, then the link: a disk made anew at this name in between is read with the old
  // number, which differs from the new disk's next time, so the link is read again then.
  const seq = fs.readText(`/sys/block/${name}/diskseq`);
  const was = kept.get(name);
  if (seq !== null && was !== undefined && was.seq === seq) return was;
  const link = fs.link(`/sys/class/block/${name}`);
  if (!link) {
    kept.delete(name);
    return null;
  }
  // "../../devices/.../H:C:T:L/block/sdX": string operations, not regular expressions, as this
  // runs for every disk of the host.
  const at = link.indexOf('devices/');
  const real = `/sys/${at >= 0 ? link.slice(at) : link.replace(/^(\.\.\/)+/, '')}`;
  const blockAt = real.lastIndexOf('/block/');
  const hctl = blockAt > 0 ? real.slice(real.lastIndexOf('/', blockAt - 1) + 1, blockAt) : null;
  const place = { seq: seq ?? '', real, scsi: hctl !== null && isHctl(hctl) ? { hctl, paths: scsiPathsOf(real.slice(0, blockAt)) } : null };
  if (seq !== null) kept.set(name, place);
  else kept.delete(name);
  return place;
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
  return name.startsWith('dm-') || isMd(name);
}

/** md arrays: "md" and a digit (md0, md127, md_d0 is not one). */
function isMd(name: string): boolean {
  const c = name.charCodeAt(2);
  return name.startsWith('md') && c >= 48 && c <= 57;
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

/** A disk or partition as /proc/partitions lists it. */
export interface ListedDevice {
  /** "major:minor", as its sysfs `dev` shows it. */
  devt: string;
  sizeBytes: number;
}

/**
 * Every disk and partition with its number and size in one read: /proc/partitions prints each
 * device's dev_t (what `dev` under sysfs prints, there "%u:%u") and its size in 1 KiB blocks (the
 * kernel's sectors >> 1). It leaves out hidden disks (NVMe path devices) and empty ones (and their
 * partitions): those are read from sysfs. Parsed by hand, as it has a line per device.
 */
export function partitionTable(fs: HostFs): Map<string, ListedDevice> {
  const out = new Map<string, ListedDevice>();
  const text = fs.readText('/proc/partitions') ?? '';
  // "major minor #blocks name", right-aligned with spaces; the heading and the empty line after
  // it have no number first.
  const f = [0, 0, 0, 0, 0, 0, 0, 0];
  for (let at = 0; at < text.length; ) {
    let eol = text.indexOf('\n', at);
    if (eol < 0) eol = text.length;
    if (fieldsOf(text, at, eol, f) === 4 && isDigits(text, f[0]!, f[1]!) && isDigits(text, f[2]!, f[3]!) && isDigits(text, f[4]!, f[5]!)) {
      const name = text.slice(f[6], f[7]);
      // A disk name with a slash (cciss/c0d0) is "cciss!c0d0" under sysfs.
      out.set(name.includes('/') ? name.replaceAll('/', '!') : name, {
        devt: `${text.slice(f[0], f[1])}:${text.slice(f[2], f[3])}`,
        sizeBytes: Number(text.slice(f[4], f[5])) * 1024,
      });
    }
    at = eol + 1;
  }
  return out;
}

/**
 * The blank-separated fields of text[from, to): the start and end of the first four go to
 * `spans` (start, end, start, end...). Returns how many there are, 5 meaning more than four.
 */
function fieldsOf(text: string, from: number, to: number, spans: number[]): number {
  let n = 0;
  for (let i = from; ; ) {
    while (i < to && isBlank(text.charCodeAt(i))) i++;
    if (i === to) return n;
    if (n === 4) return 5;
    spans[2 * n] = i;
    while (i < to && !isBlank(text.charCodeAt(i))) i++;
    spans[2 * n + 1] = i;
    n++;
  }
}

const isBlank = (c: number): boolean => c === 32 || c === 9;

/** Whether s[from, to) is one or more decimal digits. */
function isDigits(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return to > from;
}

/**
 * Every disk with its dev_t, size, holders, slaves, partitions and dm or md state; only the dm
 * disks (no sizes, partitions or numbers) when not full.
 */
export function blockDevices(fs: HostFs, blocks: BlockIndex, stack: Stacking, full: boolean): BlockDevice[] {
  const out: BlockDevice[] = [];
  const table = full ? partitionTable(fs) : new Map<string, ListedDevice>();
  const parts = full ? partitionsByDisk(fs, blocks) : new Map<string, string[]>();
  for (const name of blocks.disks) {
    const dir = `/sys/block/${name}`;
    const isDm = name.startsWith('dm-');
    if (!full && !isDm) continue;
    // /proc/partitions leaves out hidden disks (NVMe path devices) and empty ones: read those.
    const listed = full ? table.get(name) : undefined;
    let size = listed ? listed.sizeBytes : null;
    let devt = listed ? listed.devt : null;
    if (full && !listed) {
      const sectors = fs.readText(`${dir}/size`);
      size = sectors === null ? null : Number(sectors) * 512;
      devt = fs.readText(`${dir}/dev`);
    }
    const suspended = full && isDm ? fs.readText(`${dir}/dm/suspended`) : null;
    out.push({
      name,
      devt,
      sizeBytes: size,
      holders: stack.holders.get(name) ?? [],
      slaves: stack.slaves.get(name) ?? [],
      staleSlaves: stack.stale.get(name) ?? [],
      partitions: (parts.get(name) ?? []).map((p) => ({ name: p, devt: table.get(p)?.devt ?? fs.readText(`/sys/class/block/${p}/dev`), holders: stack.holders.get(p) ?? [] })),
      dm: isDm ? { name: fs.readText(`${dir}/dm/name`), uuid: fs.readText(`${dir}/dm/uuid`), suspended: suspended === null ? null : suspended === '1', table: null } : null,
      md: full && isMd(name) ? { level: fs.readText(`${dir}/md/level`), state: fs.readText(`${dir}/md/array_state`) } : null,
    });
  }
  return out;
}

/**
 * The links of one directory as the last snapshot made them, by the listing they were made from:
 * a listing HostFs.readLinks hands back unchanged (udev left the directory alone) with the same
 * block devices present gives the same links, and they are not made again.
 */
const madeLinks = new WeakMap<ReadonlyArray<DirLink>, { all: ReadonlySet<string>; out: DevLink[] }>();

const sameSet = (a: ReadonlySet<string>, b: ReadonlySet<string>): boolean => {
  if (a === b) return true;
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
};

/** The links of these /dev/disk directories. The array may be shared with later calls: never change it. */
export function links(fs: HostFs, blocks: BlockIndex, dirs: ReadonlyArray<DevLink['dir']>): DevLink[] {
  const out: DevLink[] = [];
  for (const dir of dirs) {
    // One stat per directory while udev leaves it alone (HostFs.readLinks): the links' targets
    // are checked against the devices the kernel has now on every call, below.
    const listing = fs.readLinks(`/dev/disk/${dir}`);
    const made = madeLinks.get(listing);
    if (made && sameSet(made.all, blocks.all)) {
      // One directory: the very array made before, so that a caller holding it (PathsView) sees
      // nothing changed without comparing every link.
      if (dirs.length === 1) return made.out;
      out.push(...made.out);
      continue;
    }
    const mine: DevLink[] = [];
    for (const { name, target: to } of listing) {
      // udev makes each link as a temporary ".#NAME…" and renames it into place: a read in that
      // moment sees a name that is no link anyone uses, gone a moment later.
      if (name.startsWith('.#')) continue;
      const target = base(to);
      // Dangling when what it points at is no block device the kernel has (disk or partition).
      const dangling = !target || !blocks.all.has(target);
      mine.push({ dir, name, target: dangling ? null : target, dangling });
    }
    madeLinks.set(listing, { all: blocks.all, out: mine });
    out.push(...mine);
  }
  return out;
}

