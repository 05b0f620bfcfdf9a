import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { STORAGE_PACKAGES, parseDpkgStatus } from '../../src/system/packages.js';

const STATUS = readFileSync(new URL('../fixtures/guest-6.1.0-56/dpkg-status', import.meta.url), 'utf8');

describe('parseDpkgStatus on the guest image', () => {
  it('reports the installed version of every storage package', () => {
    expect(parseDpkgStatus(STATUS)).toEqual({
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
    });
  });

  it('reports only the packages asked for', () => {
    expect(Object.keys(parseDpkgStatus(STATUS)).sort()).toEqual([...STORAGE_PACKAGES].sort());
    expect(parseDpkgStatus(STATUS, ['tini'])).toEqual({ tini: '0.19.0-1+b3' });
  });

  it('reports null for a package that is not in the file', () => {
    expect(parseDpkgStatus(STATUS, ['iproute2', 'no-such-package'])).toEqual({ iproute2: '6.1.0-3', 'no-such-package': null });
  });

  it('reports null for a removed package whose config files remain (deinstall ok config-files)', () => {
    expect(STATUS).toMatch(/Package: cpio\n(.+\n)*?Status: deinstall ok config-files\n(.+\n)*?Version: 2\.13/);
    expect(parseDpkgStatus(STATUS, ['cpio'])).toEqual({ cpio: null });
  });

  it('reports null for a half-installed package', () => {
    expect(STATUS).toMatch(/Status: install reinstreq half-installed/);
    expect(parseDpkgStatus(STATUS, ['e2fsprogs'])).toEqual({ e2fsprogs: null });
  });

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
