import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { diffSnapshots, type DiffEntry } from '../../src/inventory/diff.js';
import type { HostSnapshot } from '../../src/inventory/snapshot.js';

/** Snapshots captured through the compute agent's `GET /v1/inventory?record=1` (see test/fixtures/README.md). */
const load = (name: string): HostSnapshot =>
  (JSON.parse(readFileSync(new URL(`../fixtures/guest-6.1.0-56/${name}`, import.meta.url), 'utf8')) as { snapshot: HostSnapshot }).snapshot;
const ATTACHED = load('inventory-attached.json');
const LEFTOVERS = load('inventory-leftovers.json');

const keys = (entries: DiffEntry[], kind: string): string[] => entries.filter((e) => e.kind === kind).map((e) => e.key);

describe('diffSnapshots between the attached and the leftovers captures', () => {
  const d = diffSnapshots(ATTACHED, LEFTOVERS);

  it('adds only the hand-made dangling by-path link', () => {
    expect(d.added).toEqual([
      {
        kind: 'links',
        key: 'by-path/ip-10.10.1.10:3260-iscsi-iqn.2026-11.io.brick-lab:fixture.gone-lun-4 -> (nothing)',
        item: { dir: 'by-path', name: 'ip-10.10.1.10:3260-iscsi-iqn.2026-11.io.brick-lab:fixture.gone-lun-4', target: null, dangling: true },
      },
    ]);
  });

  it("removes fa's and fb's SCSI devices and the NVMe namespace head", () => {
    expect(keys(d.removed, 'scsiDevices')).toEqual(['6:0:0:0 360014055d801e3efcf54267a15a3e2f7 sda', '6:0:0:1 360014055fac4079f2c1477c9ae2e7311 sdb']);
    expect(keys(d.removed, 'nvmeNamespaces')).toEqual(['nvme0n1 9d996e72-b896-413e-a157-43162a07de87']);
    expect(d.removed.find((e) => e.kind === 'nvmeNamespaces')!.item).toEqual(ATTACHED.nvmeNamespaces[0]);
  });

  it('removes the shared session and its node record, which fb’s disconnect logged out and deleted', () => {
    expect(keys(d.removed, 'iscsiSessions')).toEqual(['session1 iqn.2026-11.io.brick-lab:fixture.shared 10.10.1.10:3260']);
    expect(keys(d.removed, 'iscsiNodes')).toEqual(['iqn.2026-11.io.brick-lab:fixture.shared 10.10.1.10:3260']);
  });

  it('removes the block devices and the links of what went, and nothing of fm, fbig, the local disk or the controllers', () => {
    expect(keys(d.removed, 'blockDevices')).toEqual(['nvme0c0n1', 'nvme0c1n1', 'nvme0n1', 'sda', 'sdb']);
    const links = keys(d.removed, 'links');
    expect(links).toHaveLength(13);
    for (const l of links) expect(l).toMatch(/-> (sda|sdb|nvme0n1)$/);
    expect(keys(d.removed, 'nvmeControllers')).toEqual([]);
    expect(keys(d.removed, 'multipathMaps')).toEqual([]);
    const all = JSON.stringify(d.removed);
    for (const kept of ['sdc', 'sdd', 'sde', 'sdf', 'dm-0', 'dev.fm', 'fixture.big']) expect(all).not.toContain(kept);
  });

  it('is the reverse the other way round', () => {
    const back = diffSnapshots(LEFTOVERS, ATTACHED);
    expect(back.added).toEqual(d.removed);
    expect(back.removed).toEqual(d.added);
  });
});

describe('diffSnapshots of a snapshot with itself', () => {
  it.each([
    ['attached', ATTACHED],
    ['leftovers', LEFTOVERS],
  ])('is empty for the %s capture, whatever takenAt says', (_name, s) => {
    expect(diffSnapshots(s, s)).toEqual({ added: [], removed: [] });
    expect(diffSnapshots(s, { ...structuredClone(s), takenAt: '2030-01-01T00:00:00.000Z' })).toEqual({ added: [], removed: [] });
  });
});
