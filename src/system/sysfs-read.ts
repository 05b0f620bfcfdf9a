import { closeSync, openSync, readSync } from 'node:fs';

/*
 * Reading sysfs and /proc files with as few system calls as can be: under TCG each costs about
 * 30 us, and a snapshot makes hundreds. `realHostFs` (hostfs.ts) reads through these.
 */

let buffer = Buffer.allocUnsafe(64 * 1024);

/** The number of the last uevent the kernel sent: one more for every device added, removed or changed. */
export const UEVENT_SEQNUM = '/sys/kernel/uevent_seqnum';

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
export const asText = (n: number): string => buffer.toString('utf8', 0, n).trim();
export const asBytes = (n: number): Buffer => Buffer.from(buffer.subarray(0, n));

/** open, read, close: three system calls where readFileSync makes five (an fstat, and a second read). */
export function readOnce(path: string): number | null {
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
 * so it reaches the new device or finds nothing. Descriptors not used for 10-20 s are closed (a
 * removed device's are never read again, so that is when they go; `sweepEvery` runs the sweep on
 * a timer, else it runs as reads come), and at most `cap` are kept (the open-file limit less 1024, or half a small one; when full, further paths are read
 * the plain way).
 */
export class SysfsReader {
  private readonly fds = new Map<string, { fd: number; gen: number }>();
  private gen = 0;
  private reads = 0;
  private lastSweep = Date.now();

  constructor(private readonly cap = SysfsReader.defaultCap(), private readonly idleMs = 10_000) {}

  /** Sweep on a timer as well as on reads, so an idle process lets go of what it held (unref'd). */
  sweepEvery(): NodeJS.Timeout {
    return setInterval(() => this.sweep(), this.idleMs).unref();
  }

  static defaultCap(): number {
    const n = readOnce('/proc/self/limits');
    const soft = Number(/^Max open files\s+(\d+)/m.exec(n === null ? '' : asText(n))?.[1] ?? 1024);
    return Math.max(0, Math.min(16384, soft >= 2048 ? soft - 1024 : Math.floor(soft / 2)));
  }

  /**
   * Whether a path is sysfs's own (kernfs) and may be held. /sys/kernel and /sys/fs are where
   * other file systems sit (configfs, debugfs, securityfs, tracefs, cgroup, bpf, pstore): configfs,
   * for one, fills a file's buffer once per open and would hand a held descriptor old text. The
   * kernel's uevent counter is sysfs's own (an attribute of the kernel kobject) and read on every
   * answer made from a kept view (PathsView): it is held.
   */
  static holds(path: string): boolean {
    return path.startsWith('/sys/') && ((!path.startsWith('/sys/kernel/') && !path.startsWith('/sys/fs/')) || path === UEVENT_SEQNUM);
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
