import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Accounting, accountedBy, asFinding } from '../../src/inventory/hostwide.js';
import type { HostSnapshot } from '../../src/inventory/model.js';
import type { VolumeIdentity } from '../../src/volume/identity.js';
import { FIXTURE_KERNELS, fixtureIdentity, loadInventoryFixture, replaySnapshot, type InventoryFixture } from './inventory-fixtures.js';

/**
 * The host-wide view asks whether an attached volume accounts for a thing only of the volumes
 * that share a key with it (Accounting). Here that answer is checked against asking every
 * attached volume (accountedBy of each, united), for every item of every collection of the three
 * captured snapshots of each kernel (test/fixtures/guest-KERNEL), with any subset of the captured
 * volumes declared attached: a key too narrow would show as a difference.
 */
const COLLECTIONS = ['scsiDevices', 'iscsiSessions', 'iscsiNodes', 'iscsiDiscovery', 'iscsiIfaces', 'nvmeControllers', 'nvmeNamespaces', 'blockDevices', 'links'] as const;

/**
 * A snapshot with things only one key finds: each link again under a name that says nothing
 * (`alias-N`, as a by-label link would be), and each SCSI device again with its WWID alone (on no
 * session, at another LUN, no disk), as a second path through another target would show it.
 */
function widened(s: HostSnapshot): HostSnapshot {
  return {
    ...s,
    links: [...s.links, ...s.links.filter((l) => l.target).map((l, i) => ({ ...l, dir: 'by-id' as const, name: `alias-${i}` }))],
    scsiDevices: [...s.scsiDevices, ...s.scsiDevices.filter((d) => d.wwid).map((d, i) => ({ ...d, hctl: `9:0:0:${i}`, host: 9, session: null, lun: d.lun + 100, block: null, holders: [], sysfs: `/sys/class/scsi_device/9:0:0:${i}` }))],
  };
}

function volumesOf(fx: InventoryFixture): VolumeIdentity[] {
  const out = (Object.keys(fx.volumes) as Array<keyof typeof fx.volumes>).map((k) => fixtureIdentity(fx, k));
  // And volumes of the same targets at LUNs nobody attached (a key must not match them into a thing).
  const a = out.find((v) => v.iscsi)!;
  out.push({ protocol: 'iscsi', iscsi: { ...a.iscsi!, lun: 7, wwid: null } });
  if (fx.devices?.disk?.device) out.push({ protocol: 'local', local: { device: fx.devices.disk.device, wwid: fx.devices.disk.wwid ?? null } });
  return out;
}

describe.each(FIXTURE_KERNELS)('captured on guest kernel %s', (kernel) => {
  const FIXTURES = (['inventory-attached.json', 'inventory-leftovers.json', 'inventory-stacked.json'] as const).map((f) => loadInventoryFixture(f, kernel));

  describe('accountedBy with sessionsInUse', () => {
    it("keeps a session and its record for a volume only when one of the volume's LUNs is under it", () => {
      const fx = FIXTURES[0]!;
      const s = replaySnapshot(fx);
      const a = volumesOf(FIXTURES[0]!).find((v) => v.iscsi && v.iscsi.lun !== 7)!;
      const notYet: VolumeIdentity = { protocol: 'iscsi', iscsi: { ...a.iscsi!, lun: 7, wwid: null } };
      const sessions = (t: Set<string>): string[] => [...t].filter((x) => x.startsWith('session ') || x.startsWith('node '));
      // The volume's own session and record, either way.
      expect(sessions(accountedBy(s, a, { subsystemNamespaces: false, sessionsInUse: true }))).toEqual(sessions(accountedBy(s, a, { subsystemNamespaces: false })));
      expect(sessions(accountedBy(s, a, { subsystemNamespaces: false })).length).toBeGreaterThan(0);
      // A LUN of the same target not (yet) scanned: the session is the target's, not its.
      expect(sessions(accountedBy(s, notYet, { subsystemNamespaces: false })).length).toBeGreaterThan(0);
      expect(sessions(accountedBy(s, notYet, { subsystemNamespaces: false, sessionsInUse: true }))).toEqual([]);
    });
  });

  describe('Accounting: the keyed answer is the answer of asking every attached volume', () => {
    it('agrees on every item of every captured snapshot, for any set of attached volumes', () => {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: FIXTURES.length - 1 }), fc.integer({ min: 0, max: FIXTURES.length - 1 }), fc.boolean(), fc.boolean(), fc.boolean(), fc.infiniteStream(fc.boolean()), (fi, vi, subsystem, inUse, wide, picks) => {
          const s: HostSnapshot = wide ? widened(replaySnapshot(FIXTURES[fi]!)) : replaySnapshot(FIXTURES[fi]!);
          const all = volumesOf(FIXTURES[vi]!);
          const attached = all.filter(() => picks.next().value);
          const opts = { subsystemNamespaces: subsystem, sessionsInUse: inUse };
          const union = new Set<string>();
          for (const a of attached) for (const t of accountedBy(s, a, opts)) union.add(t);
          const acc = new Accounting(s, attached, opts);
          for (const kind of COLLECTIONS) {
            for (const item of s[kind] as unknown[]) {
              const e = { kind, key: '', item };
              const f = asFinding(s, e);
              if (!f) continue;
              expect(acc.item(e, f.thing), `${kind} ${f.thing} with ${attached.length} attached`).toBe(union.has(f.thing));
            }
          }
          for (const b of s.blockDevices) expect(acc.block(b.name), b.name).toBe(union.has(`block ${b.name}`));
        }),
        { numRuns: 80 },
      );
    });

    it('finds something accounted in each capture (the check above is not vacuous)', () => {
      for (let i = 0; i < FIXTURES.length; i++) {
        const s = replaySnapshot(FIXTURES[i]!);
        const acc = new Accounting(s, volumesOf(FIXTURES[i]!), { subsystemNamespaces: true });
        const yes = s.links.filter((l) => acc.item({ kind: 'links', key: '', item: l }, `link ${l.dir}/${l.name}`));
        expect(yes.length).toBeGreaterThan(0);
        expect(s.scsiDevices.some((d) => acc.item({ kind: 'scsiDevices', key: '', item: d }, `scsi ${d.hctl}`))).toBe(true);
      }
    });
  });
});
