import type { DeviceInfo, TargetVolume } from '../agent/api/types.js';
import type { Scenario } from './catalog.js';
import { check, type Expected } from './context.js';
import { detachedClean, orphanPair, type Half } from './pair.js';

/**
 * Fibre Channel's orphan pairs: the FC connector's counterparts of the iSCSI sequences, on the
 * lab's FCoE fabrics. An FC host has no session or record of its own per volume (its logins are
 * the fabric's), so what a detach can leave is the volume's devices, their links, and
 * multipathd's watch of them.
 */

/** Everything an attached FC volume has on a lab compute: its SCSI device and disk, udev's links, multipathd's watch. */
export const FC_ALL = ['scsi-device', 'block-device', 'by-path-link', 'by-id-link', 'multipathd-path'] as const satisfies Expected;

/**
 * LUN ids of their own: every FC volume of the target shares its ports' LUN space (there is no
 * IQN per volume as with iSCSI), and scenarios beside this one take the lowest free ids.
 */
const REUSED_LUN = { faulty: 200, correct: 201 } as const;

/** The volume at the pair's LUN is deleted and the next volume made at that LUN, with its own data. */
async function reuseLun({ ctx, node, phase }: Half, first: TargetVolume): Promise<TargetVolume> {
  await ctx.deleteVolume(first);
  // Given to the same host (another of its instances): what CVE-2023-2088's reuse needs.
  const next = await ctx.createFc({ name: `${phase}-2`, lun: REUSED_LUN[phase], networks: ctx.networks(1), ...(node.fcWwpns ? { initiators: node.fcWwpns } : {}) });
  await ctx.target.client.writeSignature(next.name, { volume: next.name, id: next.id });
  ctx.step(`target: ${next.name} now at LUN ${next.fc!.lun} of port ${next.fc!.wwpns[0]}, with its own data`);
  return next;
}

const fcLunReuse = orphanPair<{ first: TargetVolume; d: DeviceInfo }>('orphan-fc-lun-reuse', {
  title: 'FC: LUN id reuse after a detach that left the disk: the stale path reads the next volume at that LUN (CVE-2023-2088; caught as an identity mismatch); a clean detach leaves nothing to misread',
  refs: ['OSSA-2023-003 / CVE-2023-2088 (os-brick\'s FC connector got force disconnect with it)', 'domain.md sequence 3'],
  async setup({ ctx, node, phase }) {
    const first = await ctx.createFc({ name: `${phase}-1`, lun: REUSED_LUN[phase], networks: ctx.networks(1) });
    const d = await ctx.connect(node, first);
    await ctx.writeSignature(node, d.path, first);
    return { first, d };
  },
  async faulty(h, { first, d }) {
    const { ctx, node } = h;
    // os-brick 6.1.0's FC detach raises at its first failure; here the detach flushes the disk
    // and stops before its delete: the disk stays, at the target's port and LUN.
    await ctx.faultyDetach(node, first, `the detach flushes ${d.path} and stops before the device delete`, () => node.client.run(['blockdev', '--flushbufs', d.path], { timeoutMs: 60_000 }));
    const next = await reuseLun(h, first);
    const stale = await ctx.readSignature(node, d.path);
    check(stale?.id === next.id, `${node.name}: the stale ${d.path} should read ${next.name}'s data (it read ${JSON.stringify(stale)})`);
    ctx.step(`${node.name}: the stale ${d.path} of ${first.name} reads ${next.name}'s signature: another volume's data`);
    await ctx.verdict(node, first, { phase: 'faulty: stale path, before any rescan', device: d, expect: FC_ALL });
    await ctx.sh(node, `echo 1 > /sys/block/${d.devices[0]}/device/rescan`);
    const left = await ctx.verdict(node, first, { phase: 'faulty: stale path after a rescan (now reports the new WWID)', device: d, expect: FC_ALL });
    check(left.some((o) => /identity mismatch/.test(o.evidence)), `${node.name}: the oracle did not say the stale device now holds another volume`);
    await ctx.disconnect(node, first, d, { force: true, ignoreErrors: true, builtin: true });
    await ctx.sh(node, `[ -e /sys/block/${d.devices[0]}/device/delete ] && echo 1 > /sys/block/${d.devices[0]}/device/delete; true`);
  },
  async correct(h, { first, d }) {
    const { ctx, node } = h;
    await ctx.disconnect(node, first, d);
    const next = await reuseLun(h, first);
    await ctx.verdict(node, first, { phase: 'correct: detached before the LUN was reused', device: d, expect: 'clean' });
    const n = await ctx.connect(node, next);
    check((await ctx.readSignature(node, n.path))?.id === next.id, `${node.name}: ${next.name} attached fresh does not read its own data`);
    await detachedClean(h, next, n, 'correct: the new volume attached and detached');
  },
  teardown: async ({ ctx, node }, { first }) => ctx.forget(node, first),
});

export const FC_PAIRS: Scenario[] = [fcLunReuse];
