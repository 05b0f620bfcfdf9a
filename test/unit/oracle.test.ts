import { describe, expect, it } from 'vitest';
import { orphansWithTools, verdictWithTools } from '../../src/inventory/oracle.js';
import { findOrphans, type Orphan } from '../../src/inventory/orphans.js';
import type { ToolViews } from '../../src/inventory/tools.js';
import { FIXTURE_KERNELS, fixtureTools, iscsiadmSid, loadInventoryFixture, nvmeCliControllers, portalOf, type InventoryFixture, fixtureIdentity } from './inventory-fixtures.js';

/**
 * The oracle's merge of sysfs (findOrphans) with the tools' own views (multipathd, dmsetup), on
 * the captures: the snapshot and what the tools printed at the same moment, on each captured kernel.
 */

/** Everything the tools printed when the fixture was captured (iscsiadm, nvme-cli, multipathd, dmsetup). */
const toolsOf = (fx: InventoryFixture): ToolViews => fixtureTools(fx);

const identity = fixtureIdentity;
const ofKind = (orphans: Orphan[], kind: Orphan['kind']): Orphan[] => orphans.filter((o) => o.kind === kind);

describe.each(FIXTURE_KERNELS)('captured on guest kernel %s', (kernel) => {
  const ATTACHED = loadInventoryFixture('inventory-attached.json', kernel);
  const LEFTOVERS = loadInventoryFixture('inventory-leftovers.json', kernel);
  const D = ATTACHED.devices!;

  describe('orphansWithTools on the attached capture', () => {
    const A = identity(ATTACHED, 'a');
    const B = identity(ATTACHED, 'b');
    const sid = iscsiadmSid(ATTACHED, A.iscsi!.iqn, portalOf(ATTACHED.volumes.a, 0));

    it('keeps the session iscsiadm shows and sysfs shows too once, with the sysfs evidence (it carries fb\'s LUN)', () => {
      const v = verdictWithTools(ATTACHED.snapshot, A, [], toolsOf(ATTACHED));
      const out = v.orphans;
      expect(ofKind(out, 'iscsi-session')).toEqual([]);
      const sessions = v.kept.filter((o) => o.kind === 'iscsi-session');
      expect(sessions.map((o) => o.id)).toEqual([`session${sid}`]);
      expect(sessions[0]!.evidence).toMatch(new RegExp(`^/sys/class/iscsi_session/session${sid} `));
      // With the tools' view the answer is the sysfs one, plus multipathd's own line for fa's disk:
      // it tracks every SCSI disk it sees, in a map or not ("undef" states).
      const fa = D.da.path!.slice(5);
      expect(out.filter((o) => o.kind !== 'multipathd-path')).toEqual(findOrphans(ATTACHED.snapshot, A, []));
      expect(ofKind(out, 'multipathd-path').map((o) => [o.id, o.evidence])).toEqual([[fa, expect.stringMatching(new RegExp(`^multipathd show paths: ${fa} ${A.iscsi!.wwid} undef undef`))]]);
    });

    it('keeps the session a still-attached volume (fb) shares', () => {
      const out = orphansWithTools(ATTACHED.snapshot, A, [B], toolsOf(ATTACHED));
      expect(ofKind(out, 'iscsi-session')).toEqual([]);
      expect(ofKind(out, 'iscsi-node-record')).toEqual([]);
      // fa's own device is still its own.
      expect(ofKind(out, 'scsi-device')).toHaveLength(1);
    });

    it('does not take a session sysfs no longer shows from anything else (iscsiadm reads the same sysfs)', () => {
      // A copy of the snapshot without the session, changed in memory (the guest had it in both).
      const snap = { ...ATTACHED.snapshot, iscsiSessions: ATTACHED.snapshot.iscsiSessions.filter((s) => s.sid !== sid) };
      expect(ofKind(orphansWithTools(snap, A, [], toolsOf(ATTACHED)), 'iscsi-session')).toEqual([]);
    });
  });

  describe('orphansWithTools on the leftovers capture', () => {
    const N = identity(LEFTOVERS, 'n');
    const nqn = N.nvme!.nqn;

    it('reports each controller of fn that both sysfs and nvme-cli show once', () => {
      const out = orphansWithTools(LEFTOVERS.snapshot, N, [], toolsOf(LEFTOVERS));
      const names = nvmeCliControllers(LEFTOVERS, nqn).map((c) => c.name);
      expect(names.length).toBeGreaterThan(0);
      expect(ofKind(out, 'nvme-controller').map((o) => o.id).sort()).toEqual(names);
      expect(ofKind(out, 'nvme-controller').every((o) => o.evidence.startsWith('/sys/class/nvme/'))).toBe(true);
    });

    it('reports no session for fa: fb logged it out, and neither sysfs nor iscsiadm shows it', () => {
      const A = identity(LEFTOVERS, 'a');
      expect(ofKind(orphansWithTools(LEFTOVERS.snapshot, A, [], toolsOf(LEFTOVERS)), 'iscsi-session')).toEqual([]);
    });
  });
});
