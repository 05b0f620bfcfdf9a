import { mkdirSync, mkdtempSync, renameSync, rmSync, statfsSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { links, type BlockIndex } from '../../src/inventory/read-block.js';
import { realHostFs } from '../../src/system/hostfs.js';
import { recordingHostFs, replayHostFs } from '../../src/system/hostfs-record.js';
import { LinkDirCache } from '../../src/system/link-dir-cache.js';
import { FIXTURE_KERNELS, loadInventoryFixture } from './inventory-fixtures.js';

/**
 * The /dev/disk link cache (LinkDirCache) on real directories of this host: a listing is served
 * again only while the directory's stat is the one it was read under, and kept at all only when
 * the directory's mtime was old enough that a change after the read cannot stamp the same time.
 * devtmpfs is tmpfs, so the tests run on a tmpfs directory (/dev/shm), with real symbolic links;
 * utimes stands in for time passing (it sets the mtime, and the ctime to now).
 */
const TMPFS_MAGIC = 0x01021994;
const onTmpfs = (dir: string): boolean => {
  try {
    return statfsSync(dir).type === TMPFS_MAGIC;
  } catch {
    return false;
  }
};
const SHM = ['/dev/shm', tmpdir()].find(onTmpfs);

const made: string[] = [];
afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A directory under `root` with a link per entry of `targets` (name -> target). */
function linkDir(root: string, targets: Record<string, string>): string {
  const dir = mkdtempSync(join(root, 'brick-links-'));
  made.push(dir);
  for (const [name, target] of Object.entries(targets)) symlinkSync(target, join(dir, name));
  return dir;
}

/** Set the directory's mtime `ageMs` before now (its ctime becomes now). */
function age(dir: string, ageMs = 10_000): Date {
  const when = new Date(Date.now() - ageMs);
  utimesSync(dir, when, when);
  return when;
}

const mtimeMs = (dir: string): number => Number(statSync(dir, { bigint: true }).mtimeNs / 1_000_000n);

describe.skipIf(!SHM)(`LinkDirCache on tmpfs${SHM ? '' : ' (skipped: no tmpfs directory on this host)'}`, () => {
  it('reads each entry with its target, in name order, and serves a quiet directory again without reading it', () => {
    const dir = linkDir(SHM!, { 'wwn-0x2': '../../sdb', 'scsi-1': '../../sda', 'wwn-0x1': '../../sda' });
    writeFileSync(join(dir, 'not-a-link'), '');
    age(dir);
    const cache = new LinkDirCache();
    const first = cache.read(dir);
    expect(first).toEqual([
      { name: 'not-a-link', target: null },
      { name: 'scsi-1', target: '../../sda' },
      { name: 'wwn-0x1', target: '../../sda' },
      { name: 'wwn-0x2', target: '../../sdb' },
    ]);
    expect(cache.listed).toBe(1);
    expect(cache.size).toBe(1);
    expect(cache.read(dir)).toBe(first);
    expect(cache.read(dir)).toBe(first);
    expect(cache.listed).toBe(1);
  });

  it('reads again when an entry is made, removed or renamed over, though the mtime is set back to the one kept', () => {
    const dir = linkDir(SHM!, { a: '../../sda', b: '../../sdb' });
    const when = age(dir);
    const cache = new LinkDirCache();
    cache.read(dir);
    // Each change below is followed by utimes back to the same mtime: what is left to see it is
    // the ctime (and tmpfs's entry count in the size), which utimes cannot set back.
    symlinkSync('../../sdc', join(dir, 'c'));
    utimesSync(dir, when, when);
    expect(cache.read(dir)).toEqual([
      { name: 'a', target: '../../sda' },
      { name: 'b', target: '../../sdb' },
      { name: 'c', target: '../../sdc' },
    ]);
    expect(cache.listed).toBe(2);
    // A link pointed elsewhere the way udev does it: a new link renamed over the old one.
    symlinkSync('../../sdz', join(dir, '.b.tmp'));
    renameSync(join(dir, '.b.tmp'), join(dir, 'b'));
    utimesSync(dir, when, when);
    expect(cache.read(dir).find((l) => l.name === 'b')?.target).toBe('../../sdz');
    expect(cache.listed).toBe(3);
    unlinkSync(join(dir, 'a'));
    utimesSync(dir, when, when);
    expect(cache.read(dir).map((l) => l.name)).toEqual(['b', 'c']);
    expect(cache.listed).toBe(4);
    // Quiet again: served from what was kept.
    cache.read(dir);
    expect(cache.listed).toBe(4);
  });

  it('reads again when only a time changes, and when the directory is made anew with the same entries and times', () => {
    const dir = linkDir(SHM!, { a: '../../sda' });
    age(dir);
    const cache = new LinkDirCache();
    cache.read(dir);
    // mtime alone (the ctime moves with it).
    const when = age(dir, 20_000);
    cache.read(dir);
    expect(cache.listed).toBe(2);
    // A new directory in its place, given the mtime of the one kept: another inode.
    rmSync(dir, { recursive: true });
    mkdirSync(dir);
    symlinkSync('../../sdb', join(dir, 'a'));
    utimesSync(dir, when, when);
    expect(cache.read(dir)).toEqual([{ name: 'a', target: '../../sdb' }]);
    expect(cache.listed).toBe(3);
  });

  it('keeps no listing of a directory changed less than minAgeMs before the clock read ahead of the listing', () => {
    // Just made: its mtime is now, so every read lists it afresh.
    const fresh = linkDir(SHM!, { a: '../../sda' });
    const cache = new LinkDirCache();
    cache.read(fresh);
    cache.read(fresh);
    expect(cache.listed).toBe(2);
    expect(cache.size).toBe(0);
    // The same rule at its edge, with the clock given: 49 ms after the mtime is too recent, 51 ms is not.
    const dir = linkDir(SHM!, { a: '../../sda' });
    age(dir, 5000);
    const m = mtimeMs(dir);
    let now = m + 49;
    const edge = new LinkDirCache(50, () => now);
    edge.read(dir);
    edge.read(dir);
    expect(edge.listed).toBe(2);
    now = m + 51;
    edge.read(dir);
    expect(edge.listed).toBe(3);
    expect(edge.size).toBe(1);
    edge.read(dir);
    expect(edge.listed).toBe(3);
  });

  it('keeps no listing of a directory whose mtime is in the future', () => {
    const dir = linkDir(SHM!, { a: '../../sda' });
    const later = new Date(Date.now() + 60_000);
    utimesSync(dir, later, later);
    const cache = new LinkDirCache();
    cache.read(dir);
    cache.read(dir);
    expect(cache.listed).toBe(2);
  });

  it('drops what it kept when the wall clock goes back', () => {
    const dir = linkDir(SHM!, { a: '../../sda' });
    age(dir);
    let now = Date.now();
    const cache = new LinkDirCache(50, () => now);
    cache.read(dir);
    cache.read(dir);
    expect(cache.listed).toBe(1);
    now -= 1;
    cache.read(dir);
    expect(cache.listed).toBe(2);
    // Kept again from that read on (the mtime is still old).
    cache.read(dir);
    expect(cache.listed).toBe(2);
  });

  it('answers nothing for a directory that is not there, and forgets it', () => {
    const dir = linkDir(SHM!, { a: '../../sda' });
    age(dir);
    const cache = new LinkDirCache();
    expect(cache.read(dir)).toHaveLength(1);
    rmSync(dir, { recursive: true });
    expect(cache.read(dir)).toEqual([]);
    expect(cache.size).toBe(0);
    expect(cache.read(join(dir, 'nested'))).toEqual([]);
  });

  it('is what realHostFs.readLinks answers, recorded as the listing and a readlink per entry, and replayed the same', () => {
    const dir = linkDir(SHM!, { b: '../../sdb', a: '../../sda' });
    age(dir);
    const { fs, recording } = recordingHostFs(realHostFs);
    const read = fs.readLinks(dir);
    expect(read).toEqual([
      { name: 'a', target: '../../sda' },
      { name: 'b', target: '../../sdb' },
    ]);
    expect(recording.list[dir]).toEqual(['a', 'b']);
    expect(recording.link).toEqual({ [`${dir}/a`]: '../../sda', [`${dir}/b`]: '../../sdb' });
    expect(replayHostFs(recording).readLinks(dir)).toEqual(read);
    expect(realHostFs.readLinks(dir)).toEqual(read);
  });
});

const other = onTmpfs(tmpdir()) ? undefined : tmpdir();

describe.skipIf(!other)(`LinkDirCache on another file system${other ? '' : ' (skipped: no directory off tmpfs)'}`, () => {
  it('reads the directory afresh every time, however old its mtime', () => {
    const dir = linkDir(other!, { a: '../../sda' });
    age(dir);
    const cache = new LinkDirCache();
    expect(cache.read(dir)).toEqual([{ name: 'a', target: '../../sda' }]);
    cache.read(dir);
    expect(cache.listed).toBe(2);
    expect(cache.size).toBe(0);
  });
});

describe.each(FIXTURE_KERNELS)('links() over readLinks, on the leftovers captured on guest kernel %s', (kernel) => {
  const LEFTOVERS = loadInventoryFixture('inventory-leftovers.json', kernel);
  const index = (names: string[]): BlockIndex => ({ all: new Set(names), disks: names, real: new Map(), byHctl: new Map(), scsiPaths: new Map() });

  it('replays a recording made before readLinks from its listings and readlinks', () => {
    const fs = replayHostFs(LEFTOVERS.recording);
    const byPath = fs.readLinks('/dev/disk/by-path');
    expect(byPath.map((l) => l.name)).toEqual(LEFTOVERS.recording.list['/dev/disk/by-path']);
    for (const l of byPath) expect(l.target).toBe(LEFTOVERS.recording.link[`/dev/disk/by-path/${l.name}`]);
  });

  it('judges a link dangling against the devices the kernel has at each call, whatever listing it is given', () => {
    const listing = [
      { name: 'wwn-0x1', target: '../../sda' },
      { name: 'wwn-0x2', target: '../../sdz' },
      { name: 'odd', target: null },
    ];
    // One listing object answered every time, as the cache does.
    const fs = { ...replayHostFs(LEFTOVERS.recording), readLinks: () => listing };
    expect(links(fs, index(['sda']), ['by-id'])).toEqual([
      { dir: 'by-id', name: 'wwn-0x1', target: 'sda', dangling: false },
      { dir: 'by-id', name: 'wwn-0x2', target: null, dangling: true },
      { dir: 'by-id', name: 'odd', target: null, dangling: true },
    ]);
    expect(links(fs, index(['sda', 'sdz']), ['by-id']).map((l) => [l.target, l.dangling])).toEqual([
      ['sda', false],
      ['sdz', false],
      [null, true],
    ]);
    expect(links(fs, index([]), ['by-id']).every((l) => l.dangling)).toBe(true);
  });

  it("skips udev's temporary name of a link being made (.#NAME, renamed into place a moment later)", () => {
    // Seen in a compute's /dev/disk/by-id while udev handled a new NVMe namespace (kernel
    // 6.1.0-56, systemd-udevd 252): a baseline read in that moment held it, the next read not.
    const listing = [
      { name: '.#nvme-Linux_55035553369ba7d89aaa1141bf5bc0e0ad19', target: '../../nvme0n2' },
      { name: 'nvme-Linux_550355533', target: '../../nvme0n2' },
    ];
    const fs = { ...replayHostFs(LEFTOVERS.recording), readLinks: () => listing };
    expect(links(fs, index(['nvme0n2']), ['by-id'])).toEqual([{ dir: 'by-id', name: 'nvme-Linux_550355533', target: 'nvme0n2', dangling: false }]);
  });
});
