import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseMultipathdMaps, parseMultipathdPaths } from '../../src/inventory/tools.js';

// Captured from a compute node (kernel 6.1.0-56-amd64, multipath-tools 0.9.4-3+deb12u2, under
// QEMU TCG) with one volume attached over both paths (dm-multipath) and one over a single path.
const fixture = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'guest-6.1.0-56', 'multipathd.json'), 'utf8')) as {
  multipathWwid: string;
  singlePathWwid: string;
  paths: string;
  maps: string;
};

describe('multipathd output', () => {
  it('lists the two paths of the multipath volume, and not the single-path one (find_multipaths strict)', () => {
    const paths = parseMultipathdPaths(fixture.paths);
    expect(paths.map((p) => [p.dev, p.wwid, p.dmState, p.checkerState, p.devState])).toEqual([
      ['sda', fixture.multipathWwid, 'active', 'ready', 'running'],
      ['sdb', fixture.multipathWwid, 'active', 'ready', 'running'],
    ]);
    expect(paths.some((p) => p.wwid === fixture.singlePathWwid)).toBe(false);
  });

  it('lists the map with its WWID, dm device and path count', () => {
    expect(parseMultipathdMaps(fixture.maps).map((m) => [m.name, m.wwid, m.dm, m.paths])).toEqual([[fixture.multipathWwid, fixture.multipathWwid, 'dm-0', 2]]);
  });

  it('reads nothing from empty or unrelated output', () => {
    expect(parseMultipathdPaths('')).toEqual([]);
    expect(parseMultipathdMaps('')).toEqual([]);
    expect(parseMultipathdMaps('ok\nfail\n')).toEqual([]);
    expect(parseMultipathdPaths('multipathd: error receiving packet\n')).toEqual([]);
  });
});
