import { readdirSync, readlinkSync, statfsSync, statSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';

/** One entry of a directory read by `readLinks`. */
export interface DirLink {
  readonly name: string;
  readonly target: string | null;
}

/** statfs f_type of tmpfs (devtmpfs is tmpfs when the kernel has CONFIG_TMPFS) and of ramfs (what devtmpfs is without it). */
const TMPFS_MAGIC = 0x01021994;
const RAMFS_MAGIC = 0x858458f6;

/** What must be the same for a directory's listing kept earlier to be its listing now. */
interface DirStamp {
  dev: bigint;
  ino: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  size: bigint;
}

const stampOf = (st: BigIntStats): DirStamp => ({ dev: st.dev, ino: st.ino, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, size: st.size });

const sameStamp = (a: DirStamp, st: BigIntStats): boolean =>
  a.mtimeNs === st.mtimeNs && a.ctimeNs === st.ctimeNs && a.ino === st.ino && a.dev === st.dev && a.size === st.size;

/** A directory's entries in name order, each with its link's target (null when it has none); null when it cannot be listed. */
function listLinks(dir: string): DirLink[] | null {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return null;
  }
  const out: DirLink[] = new Array(names.length);
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    let target: string | null;
    try {
      target = readlinkSync(`${dir}/${name}`);
    } catch {
      target = null;
    }
    out[i] = { name, target };
  }
  return out;
}

/**
 * Directories of symbolic links (/dev/disk/by-id and by-path) listed and read once, then served
 * again for as long as the directory's stat shows it unchanged: one stat where a fresh read takes
 * a readlink per entry (about 1300 on a host with 257 disks, over 80 ms under TCG).
 *
 * Why an unchanged stat proves an unchanged listing on tmpfs (devtmpfs is tmpfs, or ramfs without
 * CONFIG_TMPFS): every create, unlink and rename of an entry sets the directory's mtime and ctime
 * to the current time, and a symbolic link's target is fixed when the link is made (udev replaces
 * a link by renaming a new one over it). The stamp also holds the inode and device numbers, so a
 * directory made anew or mounted over is never taken for the one read, and the size (tmpfs counts
 * its entries in it).
 *
 * The time is coarse, though: the jiffy (4 ms at HZ=250; tmpfs in 6.1 has nothing finer), so a
 * change in the jiffy the directory last changed in, right after a listing, would leave the stamp
 * as it was. A listing is therefore kept only when the directory's mtime was at least `minAgeMs`
 * older than the wall clock read before the stat: a change after that clock read stamps a time
 * no earlier than it, less the coarse clock's lag (under a jiffy), so never the mtime kept. A
 * directory that changed lately is read afresh each time until it has been quiet that long. A
 * wall clock set back could let a later change stamp an old time again: when the clock is seen
 * going back, every listing kept is dropped.
 *
 * Any other file system is read afresh every time: sysfs keeps no directory times worth the name,
 * and for the rest nothing here has shown that the rule holds.
 */
export class LinkDirCache {
  private readonly dirs = new Map<string, { stamp: DirStamp; links: ReadonlyArray<DirLink> }>();
  private lastNow = Number.NEGATIVE_INFINITY;
  private listings = 0;

  constructor(private readonly minAgeMs = 50, private readonly now: () => number = Date.now) {}

  read(dir: string): ReadonlyArray<DirLink> {
    // The clock before the stat: what the directory's mtime must be older than for the listing
    // read after it to be kept.
    const now = this.now();
    if (now < this.lastNow) this.dirs.clear();
    this.lastNow = now;
    let st: BigIntStats | undefined;
    try {
      st = statSync(dir, { bigint: true, throwIfNoEntry: false });
    } catch {
      st = undefined;
    }
    const kept = this.dirs.get(dir);
    if (st && kept && sameStamp(kept.stamp, st)) return kept.links;
    this.dirs.delete(dir);
    const links = st?.isDirectory() ? listLinks(dir) : null;
    if (links === null) return [];
    this.listings++;
    if (BigInt(now) * 1_000_000n - st!.mtimeNs >= BigInt(this.minAgeMs) * 1_000_000n && onTmpfs(dir)) {
      this.dirs.set(dir, { stamp: stampOf(st!), links });
    }
    return links;
  }

  /** How many times a directory was listed and its links read (not served from what was kept). */
  get listed(): number {
    return this.listings;
  }

  /** How many directories have a listing kept. */
  get size(): number {
    return this.dirs.size;
  }
}

function onTmpfs(dir: string): boolean {
  try {
    const type = statfsSync(dir).type;
    return type === TMPFS_MAGIC || type === RAMFS_MAGIC;
  } catch {
    return false;
  }
}
