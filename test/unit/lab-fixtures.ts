import type { GuestImage } from '../../src/lab/image/build.js';
import { macFor, type QemuNodeSpec } from '../../src/lab/providers/qemu/argv.js';
import { tapName } from '../../src/lab/providers/qemu/network.js';

/** A guest image as the cache lays it out (the key of an image built for kernel 6.1.0-56); nothing is read from it. */
export const TEST_IMAGE: GuestImage = {
  guest: 'bookworm',
  key: 'e14bea83a2389b37',
  dir: '/cache/images/e14bea83a2389b37',
  rootImage: '/cache/images/e14bea83a2389b37/root.erofs',
  kernel: '/cache/images/e14bea83a2389b37/vmlinuz',
  initramfs: '/cache/images/e14bea83a2389b37/initramfs.img',
  kernelRelease: '6.1.0-56-amd64',
  nodeDir: '/cache/node/v20',
};

/** A QEMU node spec (compute-1 of lab `unit`, on path-a and path-b), with `over` on top. */
export function qemuSpecFixture(over: Partial<QemuNodeSpec> = {}): QemuNodeSpec {
  return {
    lab: 'unit',
    node: 'compute-1',
    memoryMiB: 384,
    cpus: 1,
    accel: 'tcg',
    image: TEST_IMAGE,
    shareDir: '/state/labs/unit/share',
    diskDir: '/state/labs/unit/disks/compute-1',
    consoleLog: '/state/labs/unit/compute-1.console.log',
    pidFile: '/state/labs/unit/compute-1.pid',
    mgmtPort: 41234,
    mgmtMac: macFor(1, 0),
    nics: [
      { network: 'path-a', tap: tapName('unit', 1, 0), mac: macFor(1, 1) },
      { network: 'path-b', tap: tapName('unit', 1, 1), mac: macFor(1, 2) },
    ],
    ...over,
  };
}
