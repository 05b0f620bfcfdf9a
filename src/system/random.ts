import { closeSync, openSync, readSync } from 'node:fs';

/**
 * Random bytes from the kernel (/dev/urandom), not from the process's own generator (OpenSSL's,
 * behind node:crypto). A node restored from a template (src/lab/providers/qemu/template.ts) runs
 * an agent whose process was started in the template: its generator's state is the same in every
 * node restored from it, in every lab, and nothing reseeds it. The guest kernel reseeds its own
 * at the restore (the VM generation ID changes: "crng reseeded due to virtual machine fork").
 */
export function kernelRandomBytes(n: number): Buffer {
  const buf = Buffer.alloc(n);
  const fd = openSync('/dev/urandom', 'r');
  try {
    let got = 0;
    while (got < n) got += readSync(fd, buf, got, n - got, null);
  } finally {
    closeSync(fd);
  }
  return buf;
}

/** A version 4 UUID from the kernel's random numbers. */
export function kernelRandomUUID(): string {
  const b = kernelRandomBytes(16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
