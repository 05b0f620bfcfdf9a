import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { diffKey, diffSnapshots, KEY_FIELDS, sameKey, type DiffEntry } from '../../src/inventory/diff.js';
import type { HostSnapshot } from '../../src/inventory/model.js';
import { blockOf, FIXTURE_ISCSI_DB, FIXTURE_KERNELS, hctlOf, iscsiadmSid, lioByIdLinks, loadInventoryFixture, portalOf } from './inventory-fixtures.js';

const keys = (entries: DiffEntry[], kind: string): string[] => entries.filter((e) => e.kind === kind).map((e) => e.key);

describe.each(FIXTURE_KERNELS)('captured on guest kernel %s', (kernel) => {
  /** Snapshots captured through the compute agent's `GET /v1/inventory?record=1` (see test/fixtures/README.md). */
  const ATTACHED_FX = loadInventoryFixture('inventory-attached.json', kernel);
  const ATTACHED = ATTACHED_FX.snapshot;
  const LEFTOVERS = loadInventoryFixture('inventory-leftovers.json', kernel).snapshot;
  const V = ATTACHED_FX.volumes;
  const D = ATTACHED_FX.devices!;

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
      const [fa, fb, head] = [blockOf(D.da), blockOf(D.db), blockOf(D.dn)];
      expect(keys(d.removed, 'scsiDevices')).toEqual([`${hctlOf(ATTACHED, fa)} ${V.a.iscsi!.wwid} ${fa}`, `${hctlOf(ATTACHED, fb)} ${V.b.iscsi!.wwid} ${fb}`]);
      expect(keys(d.removed, 'nvmeNamespaces')).toEqual([`${head} ${V.n.nvme!.uuid}`]);
      expect(d.removed.find((e) => e.kind === 'nvmeNamespaces')!.item).toEqual(ATTACHED.nvmeNamespaces[0]);
    });

    it('removes the shared session and its node record, which fb’s disconnect logged out and deleted', () => {
      const { iqn } = V.a.iscsi!;
      const portal = portalOf(V.a, 0);
      expect(iqn).toBe('iqn.2026-11.io.brick-lab:fixture.shared');
      expect(keys(d.removed, 'iscsiSessions')).toEqual([`session${iscsiadmSid(ATTACHED_FX, iqn, portal)} ${iqn} ${portal}`]);
      expect(keys(d.removed, 'iscsiNodes')).toEqual([`${iqn} ${portal}`]);
    });

    it('removes the block devices and the links of what went, and nothing of fm, fbig, the local disk or the controllers', () => {
      const gone = [blockOf(D.da), blockOf(D.db), blockOf(D.dn)];
      // The NVMe head and its two path devices (the connect result names all three), fa's and fb's disks.
      expect(D.dn.devices).toHaveLength(3);
      expect(keys(d.removed, 'blockDevices')).toEqual([...D.dn.devices!, blockOf(D.da), blockOf(D.db)].sort());
      const links = keys(d.removed, 'links');
      // fa and fb: one by-path link each and their by-id links (four each on 6.1, two on 6.12: its
      // udev makes no T10 or serial names for an LIO LUN); the head: three by-id links.
      for (const [vol, dev] of [[V.a, D.da], [V.b, D.db]] as const) {
        const want = [`by-path/ip-${portalOf(vol, 0)}-iscsi-${vol.iscsi!.iqn}-lun-${vol.iscsi!.lun}`, ...lioByIdLinks(vol, kernel).map((n) => `by-id/${n}`)];
        expect(links.filter((l) => l.endsWith(`-> ${blockOf(dev)}`)).sort()).toEqual(want.map((n) => `${n} -> ${blockOf(dev)}`).sort());
      }
      expect(links).toHaveLength(kernel === '6.1.0-56' ? 13 : 9);
      for (const l of links) expect(gone.some((g) => l.endsWith(`-> ${g}`)), l).toBe(true);
      expect(keys(d.removed, 'nvmeControllers')).toEqual([]);
      expect(keys(d.removed, 'multipathMaps')).toEqual([]);
      const all = JSON.stringify(d.removed);
      const kept = [...D.dm.devices!, blockOf(D.dm), blockOf(D.dbig), blockOf(D.disk.device), V.m.iscsi!.iqn, 'fixture.big', V.m.iscsi!.wwid, V.big.iscsi!.wwid];
      for (const k of kept) expect(all).not.toContain(k);
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

  describe('diffSnapshots with a baseline from an agent that read fewer lists', () => {
    it('takes a list the baseline lacks (iSCSI discovery records, ifaces) as empty, not as an error', () => {
      const { iscsiDiscovery: _d, iscsiIfaces: _i, ...older } = ATTACHED;
      const withRecord = { ...ATTACHED, iscsiDiscovery: [{ type: 'sendtargets' as const, portal: '10.10.1.10:3260', targets: [], path: `${FIXTURE_ISCSI_DB[kernel]}/send_targets/10.10.1.10,3260` }] };
      const d = diffSnapshots(older as typeof ATTACHED, withRecord);
      expect(d.added.map((e) => e.key)).toEqual(['sendtargets 10.10.1.10:3260']);
      expect(d.removed).toEqual([]);
    });
  });

  describe('diffSnapshots pairs the unchanged runs field by field', () => {
    const FX = [ATTACHED, LEFTOVERS, loadInventoryFixture('inventory-stacked.json', kernel).snapshot];
    const kinds = Object.keys(KEY_FIELDS) as Array<keyof typeof KEY_FIELDS>;

    it('takes two items as the same exactly when their keys are the same, on every pair of captured items', () => {
      for (const kind of kinds) {
        const items = FX.flatMap((s) => (s[kind] ?? []) as unknown[]);
        for (const a of items) for (const b of items) expect(sameKey(kind, a, b)).toBe(diffKey(kind, a as never) === diffKey(kind, b as never));
      }
    });

    /** The diff by keys alone, item by item: what the runs must not change. */
    const byKeys = (before: HostSnapshot, after: HostSnapshot): { added: string[]; removed: string[] } => {
      const out = { added: [] as string[], removed: [] as string[] };
      for (const kind of kinds) {
        const b = new Set(((before[kind] ?? []) as never[]).map((x) => diffKey(kind, x)));
        const a = new Set(((after[kind] ?? []) as never[]).map((x) => diffKey(kind, x)));
        for (const k of a) if (!b.has(k)) out.added.push(`${kind} ${k}`);
        for (const k of b) if (!a.has(k)) out.removed.push(`${kind} ${k}`);
      }
      return out;
    };

    it('finds what a diff by keys finds, whatever was taken out, put in or moved', () => {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: FX.length - 1 }), fc.integer({ min: 0, max: FX.length - 1 }), fc.infiniteStream(fc.integer({ min: 0, max: 9 })), (i, j, dice) => {
          // Each list of one capture edited at random: items dropped, items of another capture put in, neighbours swapped.
          const edit = (s: HostSnapshot, other: HostSnapshot): HostSnapshot => {
            const out = { ...s } as HostSnapshot;
            for (const kind of kinds) {
              const list = [...((s[kind] ?? []) as unknown[])].filter(() => dice.next().value !== 0);
              for (const x of (other[kind] ?? []) as unknown[]) if (dice.next().value === 0) list.splice(dice.next().value % (list.length + 1), 0, x);
              for (let k = 0; k + 1 < list.length; k++) if (dice.next().value === 0) [list[k], list[k + 1]] = [list[k + 1], list[k]];
              (out as unknown as Record<string, unknown>)[kind] = list;
            }
            return out;
          };
          const before = FX[i]!;
          const after = edit(before, FX[j]!);
          const d = diffSnapshots(before, after);
          const want = byKeys(before, after);
          expect(d.added.map((e) => `${e.kind} ${e.key}`).sort()).toEqual(want.added.sort());
          expect(d.removed.map((e) => `${e.kind} ${e.key}`).sort()).toEqual(want.removed.sort());
        }),
        { numRuns: 150 },
      );
    });
  });
});
