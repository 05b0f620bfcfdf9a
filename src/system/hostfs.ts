import { closeSync, existsSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';

/**
 * The one way the inventory reads a host: sysfs, /dev links and iscsid's node records. Real on a
 * node; a recorded copy of the same reads in unit tests (captured from a real guest), so parsers
 * are tested on what a kernel really wrote and not on hand-made trees.
 */
export interface HostFs {
  readText(path: string): Promise<string | null>;
  /** Raw bytes (sysfs binary attributes such as a SCSI device's inquiry data). */
  readBinary(path: string): Promise<Uint8Array | null>;
  list(path: string): Promise<string[]>;
  link(path: string): Promise<string | null>;
  exists(path: string): Promise<boolean>;
}

let buffer = Buffer.allocUnsafe(64 * 1024);

/**
 * Read from an open descriptor at offset 0 until the end. A sysfs attribute hands over its whole
 * value in the first read, so a short read (under a page) under /sys is the end; anything else
 * (/proc, /etc) is read until read returns 0. Throws what read throws.
 */
function readAll(fd: number, sysfs: boolean): Buffer {
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
  return Buffer.from(buffer.subarray(0, n));
}

/** open, read, close: three system calls where readFileSync makes five (an fstat, and a second read). */
function readOnce(path: string): Buffer | null {
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
 * and at most `cap` are kept (a quarter of the open-file limit, least recently used first out).
 */
export class SysfsReader {
  private readonly fds = new Map<string, { fd: number; gen: number }>();
  private gen = 0;
  private reads = 0;
  private lastSweep = Date.now();

  constructor(private readonly cap = SysfsReader.defaultCap(), private readonly idleMs = 60_000) {}

  static defaultCap(): number {
    const soft = Number(/^Max open files\s+(\d+)/m.exec(readOnce('/proc/self/limits')?.toString('latin1') ?? '')?.[1] ?? 1024);
    return Math.max(0, Math.min(8192, Math.floor(soft / 4)));
  }

  read(path: string): Buffer | null {
    if (++this.reads % 256 === 0) this.sweep();
    const held = this.fds.get(path);
    if (held) {
      try {
        const out = readAll(held.fd, true);
        // Least recently used first out: a Map iterates in insertion order.
        this.fds.delete(path);
        this.fds.set(path, { fd: held.fd, gen: this.gen });
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
    let out: Buffer;
    try {
      out = readAll(fd, true);
    } catch {
      closeSync(fd);
      return null;
    }
    if (this.cap === 0) closeSync(fd);
    else {
      if (this.fds.size >= this.cap) this.drop(this.fds.keys().next().value!);
      this.fds.set(path, { fd, gen: this.gen });
    }
    return out;
  }

  /** How many descriptors are held (for tests and the agent's health). */
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

const sysfs = new SysfsReader();

function readSmall(path: string): Buffer | null {
  return path.startsWith('/sys/') ? sysfs.read(path) : readOnce(path);
}

/**
 * Synchronous reads behind an async face: sysfs files are tiny and answered from kernel memory,
 * and under TCG a trip through libuv's thread pool per file costs far more than the read itself
 * (a snapshot makes hundreds of them).
 */
export const realHostFs: HostFs = {
  async readText(path) {
    return readSmall(path)?.toString('utf8').trim() ?? null;
  },
  async readBinary(path) {
    return readSmall(path);
  },
  async list(path) {
    try {
      return readdirSync(path).sort();
    } catch {
      return [];
    }
  },
  async link(path) {
    try {
      return readlinkSync(path);
    } catch {
      return null;
    }
  },
  async exists(path) {
    return existsSync(path);
  },
};

export interface HostFsRecording {
  text: Record<string, string | null>;
  /** Base64. */
  binary?: Record<string, string | null>;
  list: Record<string, string[]>;
  link: Record<string, string | null>;
  exists: Record<string, boolean>;
}

/** Wraps a HostFs and keeps every answer, to be saved as a fixture. */
export function recordingHostFs(inner: HostFs): { fs: HostFs; recording: HostFsRecording } {
  const recording: HostFsRecording = { text: {}, binary: {}, list: {}, link: {}, exists: {} };
  return {
    recording,
    fs: {
      async readText(p) {
        return (recording.text[p] = await inner.readText(p));
      },
      async readBinary(p) {
        const b = await inner.readBinary(p);
        recording.binary![p] = b ? Buffer.from(b).toString('base64') : null;
        return b;
      },
      async list(p) {
        return (recording.list[p] = await inner.list(p));
      },
      async link(p) {
        return (recording.link[p] = await inner.link(p));
      },
      async exists(p) {
        return (recording.exists[p] = await inner.exists(p));
      },
    },
  };
}

/** Replays a recording; a read the recording does not hold is an error (the fixture is stale). */
export function replayHostFs(r: HostFsRecording): HostFs {
  const miss = (kind: string, p: string): never => {
    throw new Error(`fixture has no ${kind} of ${p}: re-capture it`);
  };
  return {
    async readText(p) {
      return p in r.text ? r.text[p]! : miss('read', p);
    },
    async readBinary(p) {
      if (!r.binary || !(p in r.binary)) return miss('binary read', p);
      const b = r.binary[p];
      return b === null || b === undefined ? null : new Uint8Array(Buffer.from(b, 'base64'));
    },
    async list(p) {
      return p in r.list ? r.list[p]! : miss('listing', p);
    },
    async link(p) {
      return p in r.link ? r.link[p]! : miss('readlink', p);
    },
    async exists(p) {
      return p in r.exists ? r.exists[p]! : miss('exists', p);
    },
  };
}
