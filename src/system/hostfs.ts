import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { LinkDirCache, type DirLink } from './link-dir-cache.js';
import { asBytes, asText, readOnce, SysfsReader } from './sysfs-read.js';

export type { DirLink } from './link-dir-cache.js';

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

/** One write through a HostFs, as recorded or replayed. */
export interface HostFsWrite {
  path: string;
  text: string;
}

const sysfs = new SysfsReader();
let sweeping: NodeJS.Timeout | null = null;

/**
 * In a long-lived process (the node agent): let go of sysfs descriptors unread for 10-20 s on a
 * timer, so that those of devices removed since (never read again) do not stay open until the
 * next reads come.
 */
export function tidySysfsReader(): void {
  sweeping ??= sysfs.sweepEvery();
}
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
