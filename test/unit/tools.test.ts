import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { STORAGE_PACKAGES, parseDpkgStatus } from '../../src/system/packages.js';
import { FIXTURE_KERNELS, guestFixtureUrl, type FixtureKernel } from './inventory-fixtures.js';

/**
 * What each guest image's dpkg status holds (test/fixtures/README.md): bookworm's packages on the
 * 6.1 image, trixie's on the 6.12 one; cpio and e2fsprogs are hand-edited to a non-installed state
 * in both.
 */
const IMAGE: Record<FixtureKernel, { storage: Record<(typeof STORAGE_PACKAGES)[number], string>; tini: string; iproute2: string; cpio: string }> = {
  '6.1.0-56': {
    storage: {
      'open-iscsi': '2.1.8-1+deb12u1',
      'nvme-cli': '2.4+really2.3-3',
      'targetcli-fb': '1:2.1.53-1.1',
      'python3-rtslib-fb': '2.1.75-2.1',
      'multipath-tools': '0.9.4-3+deb12u2',
      lsscsi: '0.31-1+b1',
      'sg3-utils': '1.46-3',
      udev: '252.39-1~deb12u2',
      kmod: '30+20221128-1',
      'python3-os-brick': '6.1.0-3',
    },
    tini: '0.19.0-1+b3',
    iproute2: '6.1.0-3',
    cpio: '2.13+dfsg-7.1',
  },
  '6.12.117': {
    storage: {
      'open-iscsi': '2.1.11-1+deb13u2',
      'nvme-cli': '2.13-2',
      'targetcli-fb': '1:2.1.53-1.3',
      'python3-rtslib-fb': '2.1.76-3',
      'multipath-tools': '0.11.1-2',
      lsscsi: '0.32-2',
      'sg3-utils': '1.48-3~deb13u1',
      udev: '257.13-1~deb13u1',
      kmod: '34.2-2',
      'python3-os-brick': '6.11.0-2',
    },
    tini: '0.19.0-3+b8',
    iproute2: '6.15.0-1',
    cpio: '2.15+dfsg-2',
  },
};

describe.each(FIXTURE_KERNELS)('parseDpkgStatus on the guest image of kernel %s', (kernel) => {
  const STATUS = readFileSync(guestFixtureUrl('dpkg-status', kernel), 'utf8');
  const want = IMAGE[kernel];

  it('reports the installed version of every storage package', () => {
    expect(parseDpkgStatus(STATUS)).toEqual(want.storage);
  });

  it('reports only the packages asked for', () => {
    expect(Object.keys(parseDpkgStatus(STATUS)).sort()).toEqual([...STORAGE_PACKAGES].sort());
    expect(parseDpkgStatus(STATUS, ['tini'])).toEqual({ tini: want.tini });
  });

  it('reports null for a package that is not in the file', () => {
    expect(parseDpkgStatus(STATUS, ['iproute2', 'no-such-package'])).toEqual({ iproute2: want.iproute2, 'no-such-package': null });
  });

  it('reports null for a removed package whose config files remain (deinstall ok config-files)', () => {
    const version = want.cpio.replace(/[.+]/g, '\\$&');
    expect(STATUS).toMatch(new RegExp(`Package: cpio\\n(.+\\n)*?Status: deinstall ok config-files\\n(.+\\n)*?Version: ${version}\\n`));
    expect(parseDpkgStatus(STATUS, ['cpio'])).toEqual({ cpio: null });
  });

  it('reports null for a half-installed package', () => {
    expect(STATUS).toMatch(/Package: e2fsprogs\n(.+\n)*?Status: install reinstreq half-installed\n/);
    expect(parseDpkgStatus(STATUS, ['e2fsprogs'])).toEqual({ e2fsprogs: null });
  });
});

describe('parseDpkgStatus on written stanzas', () => {
  it('reports null for a purged package (not-installed)', () => {
    const text = 'Package: open-iscsi\nStatus: purge ok not-installed\nVersion: 2.1.8-1\n';
    expect(parseDpkgStatus(text, ['open-iscsi'])).toEqual({ 'open-iscsi': null });
  });

  it('counts a held package as installed', () => {
    const text = 'Package: nvme-cli\nStatus: hold ok installed\nPriority: optional\nVersion: 2.4+really2.3-3\n';
    expect(parseDpkgStatus(text, ['nvme-cli'])).toEqual({ 'nvme-cli': '2.4+really2.3-3' });
  });

  it('is not fooled by continuation lines that look like fields', () => {
    const text = [
      'Package: kmod',
      'Status: install ok installed',
      'Version: 30+20221128-1',
      'Description: tools for managing Linux kernel modules',
      ' Version: 99',
      ' Package: udev',
    ].join('\n');
    expect(parseDpkgStatus(text, ['kmod', 'udev'])).toEqual({ kmod: '30+20221128-1', udev: null });
  });
});
