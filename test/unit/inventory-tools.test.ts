import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { HostSnapshot } from '../../src/inventory/snapshot.js';
import { parseIscsiadmSessions, parseNvmeListSubsys } from '../../src/inventory/tools.js';

/**
 * `iscsiadm -m session` and `nvme list-subsys -o json` as open-iscsi 2.1.8 and nvme-cli 2.3 printed
 * them on the guest, at the moment of each inventory capture (see test/fixtures/README.md).
 */
interface InventoryFixture {
  snapshot: HostSnapshot;
  tools: { iscsiadmSession: string; nvmeListSubsys: string };
}

const load = (name: string): InventoryFixture => JSON.parse(readFileSync(new URL(`../fixtures/guest-6.1.0-56/${name}`, import.meta.url), 'utf8')) as InventoryFixture;
const ATTACHED = load('inventory-attached.json');
const LEFTOVERS = load('inventory-leftovers.json');

describe('parseIscsiadmSessions on what iscsiadm printed', () => {
  it('reads every session of the attached capture: sid, portal without the tpgt, target', () => {
    expect(parseIscsiadmSessions(ATTACHED.tools.iscsiadmSession)).toEqual([
      { sid: 1, portal: '10.10.1.10:3260', iqn: 'iqn.2026-11.io.brick-lab:fixture.shared', line: 'tcp: [1] 10.10.1.10:3260,1 iqn.2026-11.io.brick-lab:fixture.shared (non-flash)' },
      { sid: 2, portal: '10.10.1.10:3260', iqn: 'iqn.2026-11.io.brick-lab:dev.fm', line: 'tcp: [2] 10.10.1.10:3260,1 iqn.2026-11.io.brick-lab:dev.fm (non-flash)' },
      { sid: 3, portal: '10.10.2.10:3260', iqn: 'iqn.2026-11.io.brick-lab:dev.fm', line: 'tcp: [3] 10.10.2.10:3260,1 iqn.2026-11.io.brick-lab:dev.fm (non-flash)' },
      { sid: 4, portal: '10.10.1.10:3260', iqn: 'iqn.2026-11.io.brick-lab:fixture.big', line: 'tcp: [4] 10.10.1.10:3260,1 iqn.2026-11.io.brick-lab:fixture.big (non-flash)' },
    ]);
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
    expect(parseIscsiadmSessions(LEFTOVERS.tools.iscsiadmSession).map((x) => x.sid)).toEqual([2, 3, 4]);
  });

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

describe('parseNvmeListSubsys on what nvme-cli printed', () => {
  it('reads both controllers of the subsystem with NQN, address and state', () => {
    const nqn = 'nqn.2026-11.io.brick-lab:dev.fn';
    expect(parseNvmeListSubsys(ATTACHED.tools.nvmeListSubsys)).toEqual([
      { name: 'nvme0', nqn, address: 'traddr=10.10.1.10,trsvcid=4420,src_addr=10.10.1.11', state: 'live' },
      { name: 'nvme1', nqn, address: 'traddr=10.10.2.10,trsvcid=4420,src_addr=10.10.2.11', state: 'live' },
    ]);
    // nvme-cli lists the paths in no fixed order: here nvme1 comes first.
    expect(parseNvmeListSubsys(LEFTOVERS.tools.nvmeListSubsys).map((c) => c.name)).toEqual(['nvme1', 'nvme0']);
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

  it('reads a single host object as well as the list nvme-cli 2.3 prints', () => {
    const doc = JSON.parse(ATTACHED.tools.nvmeListSubsys) as unknown[];
    expect(parseNvmeListSubsys(JSON.stringify(doc[0]))).toEqual(parseNvmeListSubsys(ATTACHED.tools.nvmeListSubsys));
  });

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
