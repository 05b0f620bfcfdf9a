import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { multipathPathStates, parseDmsetup, parseMultipathdMaps, parseMultipathdPaths } from '../../src/inventory/tools.js';
import { blockOf, FIXTURE_KERNELS, loadInventoryFixture } from './inventory-fixtures.js';

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

// multipathd-offline.json: a single-path iSCSI disk (kernel 6.1.0-56-amd64, multipath-tools
// 0.9.4-3+deb12u2) that went offline before multipathd took its add event, then the same disk
// taken while running; see test/fixtures/README.md.
const offline = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'guest-6.1.0-56', 'multipathd-offline.json'), 'utf8')) as {
  wwid: string;
  takenWhileOffline: string;
  takenWhileRunning: string;
  takenWhileRunningThenOffline: string;
};

describe('multipathd output of a path taken while its device was offline', () => {
  it('keeps the path with an empty WWID: multipathd still holds sda', () => {
    expect(offline.takenWhileOffline).toContain('sda  ');
    expect(parseMultipathdPaths(offline.takenWhileOffline).map((p) => [p.dev, p.wwid, p.dmState, p.checkerState, p.devState])).toEqual([['sda', '', 'undef', 'undef', 'unknown']]);
  });

  it('reads the same disk taken while running with its WWID, also once it went offline', () => {
    for (const text of [offline.takenWhileRunning, offline.takenWhileRunningThenOffline]) {
      expect(parseMultipathdPaths(text).map((p) => [p.dev, p.wwid, p.devState])).toEqual([['sda', offline.wwid, 'unknown']]);
    }
  });

  it('takes a checker state of two words whole (multipathd prints "i/o pending" for a check still running)', () => {
    // The running-disk line with its checker field replaced: raw output does not pad, so only that field holds a space.
    const line = offline.takenWhileRunning.replace(' undef undef ', ' active i/o pending ');
    expect(parseMultipathdPaths(line).map((p) => [p.dev, p.wwid, p.dmState, p.checkerState, p.devState])).toEqual([['sda', offline.wwid, 'active', 'i/o pending', 'unknown']]);
  });

  it('reads a map line with the fields in place, and no line of another shape', () => {
    expect(parseMultipathdMaps(`${offline.wwid} ${offline.wwid} dm-3 2\n`).map((m) => [m.name, m.wwid, m.dm, m.paths])).toEqual([[offline.wwid, offline.wwid, 'dm-3', 2]]);
    expect(parseMultipathdMaps(`${offline.wwid}  dm-3 2 extra\n`)).toEqual([]);
  });
});

/**
 * What multipathd and dmsetup printed at each inventory capture (test/fixtures/README.md), read
 * against the snapshot taken at the same moment: multipath-tools 0.9.4 on 6.1, 0.11.1 on 6.12.
 */
describe.each(FIXTURE_KERNELS)('multipathd and dmsetup output in the inventory captures of guest kernel %s', (kernel) => {
  const ATTACHED = loadInventoryFixture('inventory-attached.json', kernel);
  const STACKED = loadInventoryFixture('inventory-stacked.json', kernel);
  const wwid = ATTACHED.volumes.m.iscsi!.wwid;
  const paths = [...ATTACHED.devices!.dm.devices!].sort();
  const devtOf = (dev: string): string => ATTACHED.snapshot.blockDevices.find((b) => b.name === dev)!.devt!;

  it("lists every SCSI disk once, an iSCSI LUN's with its WWID, and only fm's two paths in a map", () => {
    const parsed = parseMultipathdPaths(ATTACHED.tools.multipathdPaths);
    expect(parsed).toHaveLength(ATTACHED.tools.multipathdPaths.trim().split('\n').length);
    const disks = ATTACHED.snapshot.scsiDevices.filter((d) => d.block);
    expect(parsed.map((p) => p.dev).sort()).toEqual(disks.map((d) => d.block).sort());
    for (const d of disks.filter((x) => x.session !== null)) expect(parsed.find((p) => p.dev === d.block)!.wwid, d.block!).toBe(d.wwid);
    expect(parsed.filter((p) => p.dmState !== 'undef').map((p) => [p.dev, p.wwid, p.dmState, p.checkerState, p.devState])).toEqual(paths.map((p) => [p, wwid, 'active', 'ready', 'running']));
    expect(parsed.filter((p) => p.dmState === 'undef').every((p) => p.checkerState === 'undef' && p.devState === 'unknown')).toBe(true);
    expect(parseMultipathdMaps(ATTACHED.tools.multipathdMaps).map((m) => [m.name, m.wwid, m.dm, m.paths])).toEqual([[wwid, wwid, blockOf(ATTACHED.devices!.dm), 2]]);
  });

  it("reads fm's paths active in dmsetup status, then failed everywhere once both were failed (stacked)", () => {
    const states = (text: string) => parseDmsetup(text).filter((l) => l.name === wwid && l.target === 'multipath').flatMap((l) => multipathPathStates(l.args));
    expect(states(ATTACHED.tools.dmsetupStatus)).toEqual(paths.map((p) => ({ devt: devtOf(p), state: 'A' })));
    expect(states(STACKED.tools.dmsetupStatus)).toEqual(paths.map((p) => ({ devt: devtOf(p), state: 'F' })));
    const failed = parseMultipathdPaths(STACKED.tools.multipathdPaths).filter((p) => p.wwid === wwid);
    expect(failed.map((p) => [p.dev, p.dmState, p.checkerState, p.devState])).toEqual(paths.map((p) => [p, 'failed', 'faulty', 'running']));
    expect(parseMultipathdMaps(STACKED.tools.multipathdMaps).map((m) => [m.wwid, m.paths])).toEqual([[wwid, 0]]);
  });
});
