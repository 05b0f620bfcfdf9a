import type { TargetVolume } from '../agent/api/types.js';
import type { Scenario } from './catalog.js';
import { check, type ComputeHandle } from './context.js';
import { attachIscsi, portalOf, sessionOf, sessionState, waitAttrs } from './iscsi-steps.js';
import { detachedClean, leftThenSwept, orphanPair } from './pair.js';

/**
 * Field mechanisms that need the host to reboot (`brick-lab reboot`): what the host keeps on its
 * disk (node records with node.startup = automatic) decides what comes back at boot.
 */

/** The `node.startup` of a volume's node record, as iscsiadm shows it (null: no record). */
async function recordStartup(node: ComputeHandle, v: TargetVolume): Promise<string | null> {
  const r = await node.client.exec(['iscsiadm', '-m', 'node', '-T', v.iscsi!.iqn, '-p', portalOf(v), '-o', 'show']);
  if (r.exitCode !== 0) return null;
  return /^node\.startup = (\S+)$/m.exec(r.stdout)?.[1] ?? null;
}

/** Whether the node has a session to the volume's target. */
async function hasSession(node: ComputeHandle, v: TargetVolume): Promise<boolean> {
  const r = await node.client.exec(['iscsiadm', '-m', 'session']);
  return r.exitCode === 0 && r.stdout.includes(v.iscsi!.iqn);
}

const rebootAutologin = orphanPair('field-reboot-autologin', {
  title: 'the host goes down (a reset) past the orchestrator\'s force-detach and the array unmaps the LUN meanwhile; at boot its node record (node.startup = automatic) logs the session in again: nothing on the host detaches it (caught); a detach on its return deletes the record, and the next boot\'s login step logs in to nothing',
  refs: ['field-orphans.md rows 23 and 4', 'https://github.com/claytono/infra/pull/576', 'https://github.com/kubernetes/kubernetes/issues/104493'],
  // The boot logs the session in by itself (see LoginGuard).
  wholeLab: true,
  async setup(h) {
    const { ctx, node } = h;
    const a = await attachIscsi(h, h.phase);
    const startup = await recordStartup(node, a.v);
    check(startup !== null, `${node.name}: the attach left no node record for ${a.v.iscsi!.iqn} at ${portalOf(a.v)}`);
    if (startup === 'automatic') {
      ctx.step(`${node.name}: the attach left the node record of ${a.v.iscsi!.iqn} at ${portalOf(a.v)} with node.startup = automatic`);
    } else {
      // A connector that leaves its records manual is not the one this row caught, but its host
      // may still log in at boot: RHEL's iscsid.conf makes every new record automatic.
      await node.client.run(['iscsiadm', '-m', 'node', '-T', a.v.iscsi!.iqn, '-p', portalOf(a.v), '-o', 'update', '-n', 'node.startup', '-v', 'automatic']);
      ctx.step(`${node.name}: the attach left node.startup = ${startup}; set to automatic, as RHEL's iscsid.conf makes every new record`);
    }
    await ctx.reboot(node, {
      hard: true,
      whileDown: async () => {
        await ctx.target.client.unmap(a.v.name);
        ctx.step(`target: LUN ${a.v.iscsi!.lun} of ${a.v.iscsi!.iqn} unmapped while ${node.name} is down (the orchestrator's force-detach)`);
      },
    });
    const { sid } = await sessionOf(ctx, node, a.v);
    const [state] = await waitAttrs(node, [sessionState(sid)], (x) => x === 'LOGGED_IN', `session${sid} is not logged in after the boot`);
    ctx.step(`${node.name}: back; the boot logged in to ${a.v.iscsi!.iqn} again from its record (session${sid} ${state}), with no LUN of its own`);
    return a;
  },
  async faulty(h, { v, d }) {
    const { ctx, node } = h;
    await ctx.faultyDetach(node, v, 'the orchestrator took the volume for detached when it force-detached it; nothing on the host detaches it after the boot', async () => undefined);
    await leftThenSwept(h, v, d, 'faulty: the session the boot logged in stays', ['iscsi-session', 'iscsi-node-record']);
  },
  async correct(h, { v, d }) {
    const { ctx, node } = h;
    await detachedClean(h, v, d, 'correct: detached on the host\'s return, from the volume\'s properties');
    // The next boot's login step, run now (a reboot of its own adds nothing the record check
    // above did not judge: the boot logs in from the records and nothing else).
    const r = await node.client.exec(['iscsiadm', '-m', 'node', '--loginall=automatic'], { timeoutMs: 60_000 });
    ctx.step(`${node.name}: the boot's login step (iscsiadm -m node --loginall=automatic) exited ${r.exitCode}${r.exitCode === 21 ? ' (no records)' : ''}`);
    check(!(await hasSession(node, v)), `${node.name}: the boot's login step logged in to ${v.iscsi!.iqn} after the detach: its record stayed`);
    await ctx.verdict(node, v, { phase: 'correct: the next boot\'s login step logs in to nothing', device: d, expect: 'clean' });
  },
});

/** In the order of lab/scenarios.yaml's field set. */
export const REBOOT_FIELD_PAIRS: Scenario[] = [rebootAutologin];
