import type { GuestImage } from '../../src/lab/image/build.js';

/** A guest image as the cache lays it out (the key of an image built for kernel 6.1.0-56); nothing is read from it. */
export const TEST_IMAGE: GuestImage = {
  key: 'e14bea83a2389b37',
  dir: '/cache/images/e14bea83a2389b37',
  rootImage: '/cache/images/e14bea83a2389b37/root.erofs',
  kernel: '/cache/images/e14bea83a2389b37/vmlinuz',
  initramfs: '/cache/images/e14bea83a2389b37/initramfs.img',
  kernelRelease: '6.1.0-56-amd64',
  nodeDir: '/cache/node/v20',
};
