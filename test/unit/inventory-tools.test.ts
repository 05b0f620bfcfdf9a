import { describe, expect, it } from 'vitest';
import { parseIscsiadmSessions, parseNvmeListSubsys } from './tool-output.js';
import { FIXTURE_KERNELS, loadInventoryFixture, portalOf, FIXTURE_LAB } from './inventory-fixtures.js';

/**
 * `iscsiadm -m session` and `nvme list-subsys -o json` as the guest's tools printed them at the
 * moment of each inventory capture (see test/fixtures/README.md): open-iscsi 2.1.8 and nvme-cli 2.3
 * on 6.1, open-iscsi 2.1.11 and nvme-cli 2.13 on 6.12.
 */
describe.each(FIXTURE_KERNELS)('captured on guest kernel %s', (kernel) => {
  const ATTACHED = loadInventoryFixture('inventory-attached.json', kernel);
  const LEFTOVERS = loadInventoryFixture('inventory-leftovers.json', kernel);
  const V = ATTACHED.volumes;

  describe('parseIscsiadmSessions on what iscsiadm printed', () => {
    it('reads every session of the attached capture: sid, portal without the tpgt, target', () => {
      const parsed = parseIscsiadmSessions(ATTACHED.tools.iscsiadmSession);
      // Every line, whole and in order.
      expect(parsed.map((x) => x.line)).toEqual(ATTACHED.tools.iscsiadmSession.trim().split('\n'));
      // One per login, in login order: fa and fb share one on the first portal, fm has one per
      // portal, fbig one on the first.
      expect([...parsed].sort((x, y) => x.sid - y.sid).map((x) => [x.iqn, x.portal])).toEqual([
        ['iqn.2026-11.io.brick-lab:fixture.shared', portalOf(V.a, 0)],
        [V.m.iscsi!.iqn, portalOf(V.m, 0)],
        [V.m.iscsi!.iqn, portalOf(V.m, 1)],
        ['iqn.2026-11.io.brick-lab:fixture.big', portalOf(V.big, 0)],
      ]);
      // The sid is the number in brackets; the portal leaves out the ",tpgt" that follows it.
      for (const x of parsed) expect(x.line).toBe(`tcp: [${x.sid}] ${x.portal},1 ${x.iqn} (non-flash)`);
      expect(new Set(parsed.map((x) => x.sid)).size).toBe(4);
    });

    it.each([
      ['attached', ATTACHED],
      ['leftovers', LEFTOVERS],
    ])("agrees with the %s snapshot's sysfs sessions", (_name, fx) => {
      const fromTool = parseIscsiadmSessions(fx.tools.iscsiadmSession).map((x) => [x.sid, x.portal, x.iqn]);
      const fromSysfs = fx.snapshot.iscsiSessions.map((x) => [x.sid, x.portal, x.targetIqn]);
      expect(fromTool).toEqual(fromSysfs);
    });

    it('no longer shows the shared session in the leftovers capture', () => {
      const before = parseIscsiadmSessions(ATTACHED.tools.iscsiadmSession);
      expect(before.filter((x) => x.iqn === V.a.iscsi!.iqn)).toHaveLength(1);
      expect(parseIscsiadmSessions(LEFTOVERS.tools.iscsiadmSession)).toEqual(before.filter((x) => x.iqn !== V.a.iscsi!.iqn));
    });
  });

  describe('parseNvmeListSubsys on what nvme-cli printed', () => {
    it('reads both controllers of the subsystem with NQN, address and state', () => {
      const nqn = V.n.nvme!.nqn;
      // The target's own name for it, LAB.fn: the capture's lab was "dev" for 6.1's, "fx" for 6.12's.
      expect(nqn).toBe(`nqn.2026-11.io.brick-lab:${FIXTURE_LAB[kernel]}.fn`);
      // One per portal, each from compute-1's address on that path's network.
      const byAddress = (fx: typeof ATTACHED) => [...parseNvmeListSubsys(fx.tools.nvmeListSubsys)].sort((x, y) => x.address.localeCompare(y.address));
      for (const fx of [ATTACHED, LEFTOVERS]) {
        const got = byAddress(fx);
        expect(got.map(({ name: _n, ...rest }) => rest)).toEqual([
          { nqn, address: `traddr=${V.n.portals[0]!.address},trsvcid=${V.n.portals[0]!.port},src_addr=10.10.1.11`, state: 'live' },
          { nqn, address: `traddr=${V.n.portals[1]!.address},trsvcid=${V.n.portals[1]!.port},src_addr=10.10.2.11`, state: 'live' },
        ]);
        for (const c of got) expect(c.name).toMatch(/^nvme\d+$/);
        expect(new Set(got.map((c) => c.name)).size).toBe(2);
      }
      // nvme-cli lists the paths in no fixed order: the parser keeps the order it printed them in.
      for (const fx of [ATTACHED, LEFTOVERS]) {
        const printed = (JSON.parse(fx.tools.nvmeListSubsys) as Array<{ Subsystems: Array<{ Paths: Array<{ Name: string }> }> }>)[0]!.Subsystems[0]!.Paths.map((p) => p.Name);
        expect(parseNvmeListSubsys(fx.tools.nvmeListSubsys).map((c) => c.name)).toEqual(printed);
      }
    });

    it.each([
      ['attached', ATTACHED],
      ['leftovers', LEFTOVERS],
    ])("agrees with the %s snapshot's sysfs controllers", (_name, fx) => {
      const fromTool = parseNvmeListSubsys(fx.tools.nvmeListSubsys)
        .map((c) => [c.name, c.nqn, c.address.split(',').slice(0, 2).join(','), c.state])
        .sort();
      const fromSysfs = fx.snapshot.nvmeControllers.map((c) => [c.name, c.subsysNqn, `traddr=${c.traddr},trsvcid=${c.trsvcid}`, c.state]).sort();
      expect(fromTool).toEqual(fromSysfs);
    });

    it('reads a single host object as well as the list nvme-cli 2.x prints', () => {
      const doc = JSON.parse(ATTACHED.tools.nvmeListSubsys) as unknown[];
      expect(parseNvmeListSubsys(JSON.stringify(doc[0]))).toEqual(parseNvmeListSubsys(ATTACHED.tools.nvmeListSubsys));
    });
  });
});

describe('parseIscsiadmSessions on written lines', () => {
  it('reads an IPv6 portal and a tpgt other than 1', () => {
    expect(parseIscsiadmSessions('tcp: [12] [fd00::10]:3260,7 iqn.2026-11.io.brick-lab:v6 (non-flash)')).toEqual([
      { sid: 12, portal: '[fd00::10]:3260', iqn: 'iqn.2026-11.io.brick-lab:v6', line: 'tcp: [12] [fd00::10]:3260,7 iqn.2026-11.io.brick-lab:v6 (non-flash)' },
    ]);
  });

  it('gives nothing for empty output or what iscsiadm prints when there is no session', () => {
    expect(parseIscsiadmSessions('')).toEqual([]);
    expect(parseIscsiadmSessions('\n\n')).toEqual([]);
    expect(parseIscsiadmSessions('iscsiadm: No active sessions.\n')).toEqual([]);
    expect(parseIscsiadmSessions('garbage\n{"not":"iscsiadm"}\n[1] 10.0.0.1:3260\n')).toEqual([]);
  });
});

describe('parseNvmeListSubsys on written output', () => {
  it('gives nothing for empty, non-JSON or unexpected output', () => {
    expect(parseNvmeListSubsys('')).toEqual([]);
    expect(parseNvmeListSubsys('garbage')).toEqual([]);
    expect(parseNvmeListSubsys('{"truncated": [')).toEqual([]);
    expect(parseNvmeListSubsys('[]')).toEqual([]);
    expect(parseNvmeListSubsys('{}')).toEqual([]);
    expect(parseNvmeListSubsys('[{"HostNQN":"nqn.x","Subsystems":[]}]')).toEqual([]);
    expect(parseNvmeListSubsys('[{"Subsystems":[{"NQN":"nqn.x"}]}]')).toEqual([]);
    // JSON of the wrong shape must not throw either: the orphan route would fail on it.
    expect(parseNvmeListSubsys('null')).toEqual([]);
    expect(parseNvmeListSubsys('42')).toEqual([]);
    expect(parseNvmeListSubsys('[null, "x"]')).toEqual([]);
    expect(parseNvmeListSubsys('[{"Subsystems":[null,{"NQN":"nqn.x","Paths":[null]}]}]')).toEqual([]);
    expect(parseNvmeListSubsys('[{"Subsystems":5}]')).toEqual([]);
    expect(parseNvmeListSubsys('[{"Subsystems":[{"NQN":"nqn.x","Paths":{"Name":"nvme0"}}]}]')).toEqual([]);
  });
});
