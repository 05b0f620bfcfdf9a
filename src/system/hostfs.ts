import { closeSync, existsSync, openSync, readdirSync, readlinkSync, readSync, statfsSync, statSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { writeFile } from 'node:fs/promises';

/**
 * The one way the inventory and the connectors reach a host: sysfs, /dev links and iscsid's node
 * records, read, and the sysfs files connectors write (a targeted SCSI scan, a device delete,
 * scsi_debug's add_host). Real on a node; a recorded copy of the same reads in unit tests
 * (captured from a real guest), so parsers are tested on what a kernel really wrote and not on
 * hand-made trees.
 */
export interface HostFs {
  readText(path: string): string | null;
  /** Raw bytes (sysfs binary attributes such as a SCSI device's inquiry data). */
  readBinary(path: string): Uint8Array | null;
  list(path: string): string[];
  link(path: string): string | null;
  /**
   * Every entry of a directory with what it links to (null for an entry that is no symbolic link
   * or went away meanwhile), in name order; nothing when the directory is not there. The same
   * answers as `list` and a `link` per entry, which is how a recording keeps them. The array may
   * be shared with later calls: never change it.
   */
  readLinks(dir: string): ReadonlyArray<DirLink>;
  exists(path: string): boolean;
  /**
   * Write a text to a file that exists (a sysfs attribute): asynchronous, as the kernel may take
   * its time to act on it (a device delete syncs its cache first). Throws what the write throws.
   */
  write(path: string, text: string): Promise<void>;
}

/** One entry of a directory read by `readLinks`. */
export interface DirLink {
  readonly name: string;
  readonly target: string | null;
}

/** One write through a HostFs, as recorded or replayed. */
export interface HostFsWrite {
  path: string;
  text: string;
}

let buffer = Buffer.allocUnsafe(64 * 1024);

/**
 * Read from an open descriptor at offset 0 until the end. A sysfs attribute hands over its whole
 * value in the first read, so a short read (under a page) under /sys is the end; anything else
 * (/proc, /etc) is read until read returns 0. Throws what read throws.
 */
function readAll(fd: number, sysfs: boolean): number {
  let n = 0;
  for (;;) {
    if (n === buffer.length) {
      const bigger = Buffer.allocUnsafe(buffer.length * 2);
      buffer.copy(bigger);
      buffer = bigger;
    }
    const want = buffer.length - n;
    const got = readSync(fd, buffer, n, want, n);
    n += got;
    // Binary attributes come in page-sized pieces: a full page is not the end.
    if (got === 0 || (sysfs && got < want && got < 4096)) break;
  }
  return n;
}

/** What a read left in the shared buffer, as trimmed text or as a copy of the bytes. */
const asText = (n: number): string => buffer.toString('utf8', 0, n).trim();
const asBytes = (n: number): Buffer => Buffer.from(buffer.subarray(0, n));

/** open, read, close: three system calls where readFileSync makes five (an fstat, and a second read). */
function readOnce(path: string): number | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    return readAll(fd, path.startsWith('/sys/'));
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/**
 * sysfs attributes read through descriptors kept open: one pread instead of open, read and
 * close, which under TCG is most of what a snapshot costs (about 30 us per system call).
 *
 * This tells the truth because of how kernfs answers a read: every read at offset 0 calls the
 * attribute's show (or a binary attribute's read) afresh, so the value is the kernel's current
 * one, never a copy; and once the device behind it is gone, its kernfs node is deactivated and
 * every read of a descriptor opened on it fails with ENODEV, even when a new device has since
 * appeared at the same path. A failed read closes the descriptor and the path is opened again,
 * so it reaches the new device or finds nothing. Descriptors not used for a minute are closed,
 * and at most `cap` are kept (the open-file limit less 1024, or half a small one; when full, further paths are read
 * the plain way).
 */
export class SysfsReader {
  private readonly fds = new Map<string, { fd: number; gen: number }>();
  private gen = 0;
  private reads = 0;
  private lastSweep = Date.now();

  constructor(private readonly cap = SysfsReader.defaultCap(), private readonly idleMs = 60_000) {}

  static defaultCap(): number {
    const n = readOnce('/proc/self/limits');
    const soft = Number(/^Max open files\s+(\d+)/m.exec(n === null ? '' : asText(n))?.[1] ?? 1024);
    return Math.max(0, Math.min(16384, soft >= 2048 ? soft - 1024 : Math.floor(soft / 2)));
  }

  /**
   * Whether a path is sysfs's own (kernfs) and may be held. /sys/kernel and /sys/fs are where
   * other file systems sit (configfs, debugfs, securityfs, tracefs, cgroup, bpf, pstore): configfs,
   * for one, fills a file's buffer once per open and would hand a held descriptor old text.
   */
  static holds(path: string): boolean {
    return path.startsWith('/sys/') && !path.startsWith('/sys/kernel/') && !path.startsWith('/sys/fs/');
  }

  /** The value's length in the shared buffer, or null when there is none to read. */
  private readInto(path: string): number | null {
    if (!SysfsReader.holds(path)) return readOnce(path);
    if (++this.reads % 256 === 0) this.sweep();
    const held = this.fds.get(path);
    if (held) {
      try {
        const out = readAll(held.fd, true);
        held.gen = this.gen;
        return out;
      } catch {
        this.drop(path);
      }
    }
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      return null;
    }
    let out: number;
    try {
      out = readAll(fd, true);
    } catch {
      closeSync(fd);
      return null;
    }
    // When full, what is held stays held and this one is closed again: a snapshot reads the same
    // paths in the same order every time, and evicting to make room would miss on every read.
    if (this.fds.size >= this.cap) closeSync(fd);
    else this.fds.set(path, { fd, gen: this.gen });
    return out;
  }

  read(path: string): Buffer | null {
    const n = this.readInto(path);
    return n === null ? null : asBytes(n);
  }

  readText(path: string): string | null {
    const n = this.readInto(path);
    return n === null ? null : asText(n);
  }

  /** How many descriptors are held. */
  get size(): number {
    return this.fds.size;
  }

  close(): void {
    for (const p of [...this.fds.keys()]) this.drop(p);
  }

  private drop(path: string): void {
    const held = this.fds.get(path);
    if (!held) return;
    this.fds.delete(path);
    try {
      closeSync(held.fd);
    } catch {
      // already closed
    }
  }

  /** Close what was not read since the sweep before last (idle for idleMs to twice that). */
  private sweep(): void {
    const now = Date.now();
    if (now - this.lastSweep < this.idleMs) return;
    this.lastSweep = now;
    for (const [p, h] of [...this.fds]) if (h.gen < this.gen) this.drop(p);
    this.gen++;
  }
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

const sysfs = new SysfsReader();
const linkDirs = new LinkDirCache();

/**
 * The real host, read synchronously: sysfs files are tiny and answered from kernel memory, and
 * under TCG a trip through libuv's thread pool (or even an await) per file costs more than the
 * read itself (a snapshot makes hundreds of them).
 */
export const realHostFs: HostFs = {
  readText(path) {
    if (SysfsReader.holds(path)) return sysfs.readText(path);
    const n = readOnce(path);
    return n === null ? null : asText(n);
  },
  readBinary(path) {
    if (SysfsReader.holds(path)) return sysfs.read(path);
    const n = readOnce(path);
    return n === null ? null : asBytes(n);
  },
  list(path) {
    try {
      return readdirSync(path).sort();
    } catch {
      return [];
    }
  },
  link(path) {
    try {
      return readlinkSync(path);
    } catch {
      return null;
    }
  },
  readLinks(dir) {
    return linkDirs.read(dir);
  },
  exists(path) {
    return existsSync(path);
  },
  async write(path, text) {
    await writeFile(path, text);
  },
};

export interface HostFsRecording {
  text: Record<string, string | null>;
  /** Base64. */
  binary?: Record<string, string | null>;
  list: Record<string, string[]>;
  link: Record<string, string | null>;
  exists: Record<string, boolean>;
  /** Writes made through the HostFs, in order; left out when there were none. */
  writes?: HostFsWrite[];
}

/** Wraps a HostFs and keeps every answer, to be saved as a fixture. */
export function recordingHostFs(inner: HostFs): { fs: HostFs; recording: HostFsRecording } {
  const recording: HostFsRecording = { text: {}, binary: {}, list: {}, link: {}, exists: {} };
  return {
    recording,
    fs: {
      readText(p) {
        return (recording.text[p] = inner.readText(p));
      },
      readBinary(p) {
        const b = inner.readBinary(p);
        recording.binary![p] = b ? Buffer.from(b).toString('base64') : null;
        return b;
      },
      list(p) {
        return (recording.list[p] = inner.list(p));
      },
      link(p) {
        return (recording.link[p] = inner.link(p));
      },
      // Kept as the listing and a readlink per entry: the answers readLinks stands for, so a
      // recording needs no field of its own and replays the same either way.
      readLinks(dir) {
        const links = inner.readLinks(dir);
        recording.list[dir] = links.map((l) => l.name);
        for (const l of links) recording.link[`${dir}/${l.name}`] = l.target;
        return links;
      },
      exists(p) {
        return (recording.exists[p] = inner.exists(p));
      },
      async write(p, text) {
        (recording.writes ??= []).push({ path: p, text });
        await inner.write(p, text);
      },
    },
  };
}

/**
 * Replays a recording; a read the recording does not hold is an error (the fixture is stale).
 * Writes change nothing that is read afterwards: they are kept in `written`, in order, for a test
 * to look at.
 */
export function replayHostFs(r: HostFsRecording): HostFs & { written: HostFsWrite[] } {
  const written: HostFsWrite[] = [];
  const miss = (kind: string, p: string): never => {
    throw new Error(`fixture has no ${kind} of ${p}: re-capture it`);
  };
  const list = (p: string): string[] => (p in r.list ? r.list[p]! : miss('listing', p));
  const link = (p: string): string | null => (p in r.link ? r.link[p]! : miss('readlink', p));
  return {
    readText(p) {
      if (p in r.text) return r.text[p]!;
      // A recording made before snapshots read diskseq replays as a kernel without it (before
      // 5.15): every disk's link is read, as it was then. Any other read missing is stale.
      if (p.startsWith('/sys/block/') && p.endsWith('/diskseq')) return null;
      return miss('read', p);
    },
    readBinary(p) {
      if (!r.binary || !(p in r.binary)) return miss('binary read', p);
      const b = r.binary[p];
      return b === null || b === undefined ? null : new Uint8Array(Buffer.from(b, 'base64'));
    },
    list,
    link,
    readLinks(dir) {
      return list(dir).map((name) => ({ name, target: link(`${dir}/${name}`) }));
    },
    exists(p) {
      return p in r.exists ? r.exists[p]! : miss('exists', p);
    },
    written,
    async write(p, text) {
      written.push({ path: p, text });
    },
  };
}
