/**
 * A writer for the "newc" cpio format the kernel unpacks as an initramfs. Written here rather than
 * piping through cpio(1) so the build needs no shell pipeline and the archive is byte-for-byte
 * reproducible (fixed mtimes, sorted entries).
 */
export interface CpioEntry {
  /** Path inside the archive, without a leading slash. */
  path: string;
  kind: 'file' | 'dir' | 'symlink' | 'chardev';
  mode?: number;
  data?: Buffer;
  /** Target of a symlink. */
  target?: string;
  /** For device nodes. */
  major?: number;
  minor?: number;
}

const TYPE_BITS: Record<CpioEntry['kind'], number> = {
  file: 0o100000,
  dir: 0o040000,
  symlink: 0o120000,
  chardev: 0o020000,
};

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

function pad4(len: number): Buffer {
  const rem = len % 4;
  return Buffer.alloc(rem === 0 ? 0 : 4 - rem);
}

function header(ino: number, mode: number, size: number, nameLen: number, rdevMajor: number, rdevMinor: number): string {
  return (
    '070701' +
    hex8(ino) +
    hex8(mode) +
    hex8(0) + // uid
    hex8(0) + // gid
    hex8(1) + // nlink
    hex8(0) + // mtime: fixed for reproducibility
    hex8(size) +
    hex8(0) + // devmajor
    hex8(0) + // devminor
    hex8(rdevMajor) +
    hex8(rdevMinor) +
    hex8(nameLen) +
    hex8(0) // check
  );
}

export function buildCpio(entries: readonly CpioEntry[]): Buffer {
  const chunks: Buffer[] = [];
  // Sort by the name as written (leading slashes stripped), so a directory always precedes its contents.
  const sorted = entries
    .map((e) => ({ ...e, path: e.path.replace(/^\/+/, '') }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  let ino = 1;
  const push = (name: string, mode: number, body: Buffer, major = 0, minor = 0): void => {
    const nameBuf = Buffer.from(`${name}\0`, 'utf8');
    const head = Buffer.from(header(ino++, mode, body.length, nameBuf.length, major, minor), 'ascii');
    chunks.push(head, nameBuf, pad4(head.length + nameBuf.length), body, pad4(body.length));
  };
  for (const e of sorted) {
    const name = e.path;
    if (!name) throw new Error('cpio entry with an empty path');
    const perm = e.mode ?? (e.kind === 'dir' ? 0o755 : e.kind === 'symlink' ? 0o777 : 0o644);
    const body =
      e.kind === 'file' ? (e.data ?? Buffer.alloc(0)) : e.kind === 'symlink' ? Buffer.from(e.target ?? '', 'utf8') : Buffer.alloc(0);
    push(name, TYPE_BITS[e.kind] | (perm & 0o7777), body, e.major ?? 0, e.minor ?? 0);
  }
  push('TRAILER!!!', 0, Buffer.alloc(0));
  return Buffer.concat(chunks);
}
