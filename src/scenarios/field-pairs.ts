import type { TargetVolume } from '../agent/api/types.js';
import { waitFor } from '../system/wait.js';
import type { Scenario } from './catalog.js';
import { check, ScenarioFailure, type ComputeHandle, type ScenarioContext } from './context.js';
import { attachIscsi, deviceState, firstNetwork, ISCSI_ALL, portalOf, resetConnections, sessionOf, sessionState, shortRecovery, waitAttrs } from './iscsi-steps.js';
import { detachedClean, forcedDetach, leftThenSwept, orphanPair, type Half } from './pair.js';
import { MULTIPATH_FIELD_PAIRS } from './field-multipath.js';
import { NVME_FIELD_PAIRS } from './field-nvme.js';
import { REBOOT_FIELD_PAIRS } from './field-reboot.js';

/**
 * Orphan mechanisms users of real connectors reported (shared/docs/field-orphans.md, by row),
 * each as a red/green pair: the faulty half performs the reported sequence and the oracle must
 * name exactly what it leaves; the correct half (the connector under test, under validate) must
 * leave nothing.
 */

/** An iSCSI volume's by-path links, as brick-lab's own lookup finds them. */
async function byPathLinks(ctx: ScenarioContext, node: ComputeHandle, v: TargetVolume): Promise<string[]> {
  return (await ctx.paths(node, v)).paths.filter((p) => p.startsWith('/dev/disk/by-path/'));
}

const byPathGone = orphanPair('field-bypath-gone', {
  title: 'the by-path link is gone before the detach: a detach that checks the link first stops before its logout (caught); a detach that finds the volume in sysfs leaves nothing',
  refs: ['field-orphans.md row 14', 'https://github.com/kubernetes/kubernetes/issues/141839'],
  async setup(h) {
    const { ctx, node } = h;
    const a = await attachIscsi(h, h.phase);
    const links = await byPathLinks(ctx, node, a.v);
    check(links.length === 1, `${node.name}: expected one by-path link for ${a.v.name}, found ${links.join(', ') || 'none'}`);
    await node.client.run(['rm', '-f', '--', links[0]!]);
    ctx.step(`${node.name}: ${links[0]} removed while attached (a udev rules reload or another detach's clean-up)`);
    return { ...a, link: links[0]! };
  },
  async faulty(h, { v, d, link }) {
    const { ctx, node } = h;
    await ctx.faultyDetach(node, v, `the detach checks that ${link} exists before it logs out; it does not, so the detach fails its own check and stops`, async () => {
      const r = await node.client.exec(['test', '-e', link]);
      check(r.exitCode !== 0, `${node.name}: ${link} is back: the faulty detach would go on`);
    });
    await leftThenSwept(h, v, d, 'faulty: stopped at its own by-path check', ['scsi-device', 'block-device', 'by-id-link', 'multipathd-path', 'iscsi-session', 'iscsi-node-record']);
  },
  correct: (h, { v, d }) => detachedClean(h, v, d, 'correct: detach with the by-path link gone'),
});

const autoScan = orphanPair('field-auto-scan', {
  title: 'a login with automatic scan on a shared target brings in every LUN: detaching the one asked for leaves the LUN nobody asked for, its session and record (caught); a manual-scan login with a targeted scan brings in only that LUN',
  refs: ['field-orphans.md row 7', 'https://github.com/kubernetes/kubernetes/issues/90982', 'os-brick bug 1483326'],
  async setup({ ctx, phase }) {
    const asked = await ctx.createIscsi({ name: `${phase}-asked`, lun: 0, networks: firstNetwork(ctx) });
    const other = await ctx.createIscsi({ name: `${phase}-other`, iqn: asked.iscsi!.iqn, lun: 1, networks: firstNetwork(ctx) });
    return { asked, other };
  },
  async faulty({ ctx, node }, { asked, other }) {
    const record = ['iscsiadm', '-m', 'node', '-T', asked.iscsi!.iqn, '-p', portalOf(asked)];
    // The lab's attach, as a connector that keeps open-iscsi's automatic scan: the login scans
    // every LUN of the target.
    await node.client.run([...record, '-o', 'new'], { timeoutMs: 60_000 });
    await node.client.run([...record, '-o', 'update', '-n', 'node.session.scan', '-v', 'auto'], { timeoutMs: 60_000 });
    ctx.attached.push({ node, volume: asked, device: null }, { node, volume: other, device: null });
    await ctx.loggingIn(() => node.client.run([...record, '--login'], { timeoutMs: 120_000 }));
    // Both LUNs on the host: the disk of LUN 0, once LUN 1's device is there too.
    const dev = await waitFor(
      async () => {
        const ds = (await ctx.snapshot(node)).scsiDevices;
        return ds.some((x) => x.wwid === other.iscsi!.wwid) ? ds.find((x) => x.wwid === asked.iscsi!.wwid)?.block : null;
      },
      { timeoutMs: 60_000, intervalMs: 500, onTimeout: () => new ScenarioFailure(`${node.name}: the automatic scan did not bring in both LUNs of ${asked.iscsi!.iqn} in 60 s`) },
    );
    await node.client.exec(['udevadm', 'settle', '--timeout=60'], { timeoutMs: 90_000 });
    ctx.step(`${node.name}: logged in with node.session.scan = auto: LUN 0 (asked for) and LUN 1 (never asked for) are both on the host`);
    // The detach removes the device it was asked for; the session still carries a device, so it
    // is taken for another volume's and kept.
    await ctx.faultyDetach(node, asked, `only the LUN asked for is removed: LUN 1, which the login brought in, keeps the session, which is taken for another volume's`, () =>
      ctx.sh(node, `echo 1 > /sys/block/${dev}/device/delete; udevadm settle --timeout=60`),
    );
    // What is left is LUN 1's: its device, links and path, and the session and record that now
    // serve it alone (for LUN 0, the oracle rightly sees them kept for LUN 1).
    await ctx.verdict(node, other, { phase: 'faulty: the LUN nobody asked for', expect: ISCSI_ALL });
    for (const v of [other, asked]) await ctx.disconnect(node, v, null, { force: true, ignoreErrors: true, builtin: true });
  },
  async correct(h, { asked, other }) {
    const { ctx, node } = h;
    const d = await ctx.connect(node, asked);
    await ctx.verdict(node, other, { phase: 'correct: the LUN nobody asked for, while the other is attached', stillAttached: [asked], expect: 'clean' });
    await detachedClean(h, asked, d, 'correct: the LUN asked for, detached');
    await ctx.verdict(node, other, { phase: 'correct: the LUN nobody asked for, after the detach', expect: 'clean' });
  },
});

/** Where the faulty connector keeps its attach table: scratch space that its restart loses. */
const SCRATCH = '/run/brick-lab/faulty-connector';

const restartLostState = orphanPair('field-restart-lost-state', {
  title: "the connector's process restarts between attach and detach: a detach that trusts the attach table it kept finds it gone and reports success (caught); a detach from the volume's properties alone leaves nothing",
  refs: ['field-orphans.md row 1', 'https://github.com/truenas/truenas-csi/issues/55', 'https://github.com/kubernetes/kubernetes/issues/85476'],
  async setup(h) {
    const { ctx, node, phase } = h;
    const a = await attachIscsi(h, phase);
    if (phase === 'faulty') {
      // The faulty connector notes the attach in its scratch space, as a CSI driver keeps it in
      // memory or under a path its container loses.
      await node.client.run(['mkdir', '-p', SCRATCH]);
      await node.client.run(['cp', '/dev/null', `${SCRATCH}/${a.v.name}`]);
    }
    await ctx.restartAgent(node);
    if (phase === 'faulty') {
      await node.client.run(['rm', '-rf', SCRATCH]);
      ctx.step(`${node.name}: the connector's scratch space went with its process`);
    }
    return a;
  },
  async faulty(h, { v, d }) {
    const { ctx, node } = h;
    await ctx.faultyDetach(node, v, `the detach looks ${v.name} up in the attach table it kept; the restart lost it, so the volume is taken for detached and nothing is removed`, async () => {
      const r = await node.client.exec(['test', '-e', `${SCRATCH}/${v.name}`]);
      check(r.exitCode !== 0, `${node.name}: the attach table survived the restart`);
    });
    await leftThenSwept(h, v, d, 'faulty: the attach table lost with the process', ISCSI_ALL);
  },
  correct: (h, { v, d }) => detachedClean(h, v, d, 'correct: detached from its properties after the restart'),
});

/**
 * The session of an attached volume, once its target is gone: a short recovery timeout (the lab's
 * stand-in for replacement_timeout's 120 s) and the wait until the kernel declares it failed and
 * the device offline, as it is on a host whose array deleted the target.
 */
async function targetDestroyed({ ctx, node }: Half, v: TargetVolume, dev: string): Promise<{ sid: number }> {
  const { sid } = await sessionOf(ctx, node, v);
  await shortRecovery(node, [sid]);
  await ctx.deleteVolume(v);
  ctx.step(`target: ${v.iscsi!.iqn} destroyed (its LUN and the target itself) while ${node.name} is logged in`);
  const [state] = await waitAttrs(node, [deviceState(dev)], (x) => x.endsWith('offline'), `${dev} is not offline since its target was destroyed`);
  ctx.step(`${node.name}: session${sid} lost its target; ${dev} is ${state}`);
  return { sid };
}

const targetGone = orphanPair('field-target-destroyed', {
  title: 'the target is destroyed before the detach: a detach that deletes the device and then looks its session up through it skips the logout, and the session retries a target that no longer exists (caught); a forced detach logs out of the failed session and leaves nothing',
  refs: ['field-orphans.md row 3', 'https://github.com/democratic-csi/democratic-csi/issues/536'],
  async setup(h) {
    const a = await attachIscsi(h, h.phase);
    return { ...a, ...(await targetDestroyed(h, a.v, a.d.devices[0]!)) };
  },
  async faulty(h, { v, d, sid }) {
    const { ctx, node } = h;
    const dev = d.devices[0]!;
    await ctx.faultyDetach(node, v, `${dev} is deleted first and its session looked up through it afterwards: nothing is found, and the logout is skipped`, () =>
      ctx.sh(
        node,
        `echo 1 > /sys/block/${dev}/device/delete; udevadm settle --timeout=60; ` +
          `s=$(readlink -f /sys/block/${dev}/device 2>/dev/null | grep -o 'session[0-9]*' | head -n1); ` +
          `if [ -n "$s" ]; then iscsiadm -m session -r "\${s#session}" --logout; fi`,
      ),
    );
    // What the report's users saw: the session left behind keeps trying to log back in.
    // The kernel's session is FAILED while it recovers and FREE once its recovery timed out; iscsid
    // keeps reopening it either way.
    const state = (await ctx.sh(node, `cat /sys/class/iscsi_session/session${sid}/state`)).trim();
    check(state === 'FAILED' || state === 'FREE', `${node.name}: session${sid} is ${state}, not FAILED or FREE (retrying a target that is gone)`);
    const internal = (await ctx.sh(node, `iscsiadm -m session -r ${sid} -P 1 | sed -n 's/.*Internal iscsid Session State: *//p'`)).trim();
    ctx.step(`${node.name}: session${sid} is left ${state} (iscsid: ${internal || 'no state'}): it keeps retrying the destroyed target`);
    await leftThenSwept(h, v, d, 'faulty: device deleted, session looked up through it', ['iscsi-session', 'iscsi-node-record']);
  },
  async correct(h, { v, d }) {
    const { ctx, node } = h;
    // Nothing can be written back to a target that is gone: the detach is forced.
    await forcedDetach(ctx, node, v, d);
    await ctx.verdict(node, v, { phase: 'correct: forced detach of a volume whose target is gone', device: d, expect: 'clean' });
  },
});

const sharedSession = orphanPair('field-shared-session', {
  title: "volumes that share a target's session: a cleanup that logs out the session it found takes another attached volume's device with it (collateral, caught); the detach of a target's last volume and the attach of another at once, serialised by the connector, leave the new one working and nothing of the old",
  refs: ['field-orphans.md rows 24 and 22', 'https://github.com/kubernetes/kubernetes/issues/41041', 'https://github.com/hpe-storage/csi-driver/issues/269', 'cinder bug 1947370'],
  async setup({ ctx, node, phase }) {
    const net = firstNetwork(ctx);
    const a = await ctx.createIscsi({ name: `${phase}-a`, lun: 0, networks: net });
    const b = await ctx.createIscsi({ name: `${phase}-b`, iqn: a.iscsi!.iqn, lun: 1, networks: net });
    return { a, b, da: await ctx.connect(node, a, false, { builtin: phase === 'faulty' }) };
  },
  async faulty(h, { a, b, da }) {
    const { ctx, node } = h;
    const db = await ctx.connect(node, b, false, { builtin: true });
    await ctx.writeSignature(node, db.path, b);
    const { sid } = await sessionOf(ctx, node, a);
    await ctx.faultyDetach(node, a, `the cleanup logs out session${sid}, the one it found for ${a.name}, and deletes its record, although ${b.name}'s LUN is under it too`, async () => {
      await ctx.sh(node, `echo 1 > /sys/block/${da.devices[0]}/device/delete; udevadm settle --timeout=60`);
      const record = ['iscsiadm', '-m', 'node', '-T', a.iscsi!.iqn, '-p', portalOf(a)];
      await node.client.run([...record, '--logout'], { timeoutMs: 60_000 });
      await node.client.run([...record, '-o', 'delete'], { timeoutMs: 60_000 });
      await node.client.exec(['udevadm', 'settle', '--timeout=60'], { timeoutMs: 90_000 });
    });
    check((await ctx.readSignature(node, db.path)) === null, `${node.name}: ${db.path} still reads ${b.name} after its session was logged out`);
    // What the cleanup took is all another volume's: the oracle names it as collateral.
    await ctx.verdict(node, a, { phase: `faulty: the cleanup took ${b.name}'s session`, device: da, stillAttached: [b], expect: ['scsi-device', 'block-device', 'by-path-link', 'by-id-link', 'iscsi-session', 'iscsi-node-record'] });
    ctx.forget(node, a);
    await ctx.disconnect(node, b, db, { force: true, ignoreErrors: true, builtin: true });
  },
  async correct(h, { a, b, da }) {
    const { ctx, node } = h;
    // A's detach finds no other LUN under the session and logs out, unless B's attach got there
    // first: a connector must not let the two interleave.
    const [, db] = await ctx.together(`${node.name}: detach of ${a.name}, the target's last volume here, and attach of ${b.name} on the same target`, () => ctx.disconnect(node, a, da), () => ctx.connect(node, b));
    const bPaths = await ctx.paths(node, b);
    check(bPaths.devices.includes(db.devices[0]!), `${node.name}: ${b.name}'s device ${db.devices[0]} is gone once both calls ended: ${bPaths.devices.join(', ') || 'none'}`);
    await ctx.writeSignature(node, db.path, b);
    check((await ctx.readSignature(node, db.path))?.id === b.id, `${node.name}: ${b.name} does not read back what was written at ${db.path}`);
    ctx.step(`${node.name}: ${b.name} at ${db.path} reads and writes`);
    await ctx.verdict(node, a, { phase: 'correct: detached while another attach ran', device: da, stillAttached: [b], expect: 'clean' });
    await detachedClean(h, b, db, 'correct: the volume attached meanwhile, detached');
  },
});

const hostCutOff = orphanPair('field-host-cut-off', {
  title: 'the host is cut off from the array past the orchestrator\'s force-detach, the array unmaps the LUN, the host comes back: its session logs in again and the device of a LUN it no longer has stays (caught); a detach on its return, from the volume\'s properties, leaves nothing',
  refs: ['field-orphans.md row 4', 'https://github.com/kubernetes/kubernetes/issues/104493'],
  // iscsid logs the session in again by itself when the link comes back (see LoginGuard).
  wholeLab: true,
  async setup(h) {
    const { ctx, node } = h;
    const a = await attachIscsi(h, h.phase);
    const { sid } = await sessionOf(ctx, node, a.v);
    await shortRecovery(node, [sid]);
    const net = a.v.portals[0]!.network;
    await ctx.outage(node, 60, [net]);
    await resetConnections(node, [portalOf(a.v)]);
    const [lost] = await waitAttrs(node, [sessionState(sid)], (x) => x !== 'LOGGED_IN', `session${sid} is still logged in since its link went down`);
    ctx.step(`${node.name}: cut off; session${sid} is ${lost}`);
    // The force-detach while the host cannot be reached: the array takes the LUN away.
    await ctx.target.client.unmap(a.v.name);
    ctx.step(`target: LUN ${a.v.iscsi!.lun} of ${a.v.iscsi!.iqn} unmapped while ${node.name} is cut off (the orchestrator's force-detach)`);
    await ctx.endOutage(node);
    await waitAttrs(node, [sessionState(sid)], (x) => x === 'LOGGED_IN', `session${sid} did not log in again since the host came back`);
    ctx.step(`${node.name}: back; session${sid} logged in again, ${a.d.devices[0]} still there`);
    return a;
  },
  async faulty(h, { v, d }) {
    const { ctx, node } = h;
    // Nothing runs on the host for the volume: the orchestrator took it for detached.
    await ctx.faultyDetach(node, v, 'the orchestrator took the volume for detached when it force-detached it; nothing on the host detaches it once it is back', async () => undefined);
    await leftThenSwept(h, v, d, 'faulty: nothing detached on the host\'s return', ISCSI_ALL);
  },
  correct: (h, { v, d }) => detachedClean(h, v, d, 'correct: detached on the host\'s return'),
});

const [primaryPortalOnly, heldOpen, leftSuspended, partitionMaps, multipathdClaims] = MULTIPATH_FIELD_PAIRS as [Scenario, Scenario, Scenario, Scenario, Scenario];

/** In the order of lab/scenarios.yaml's field set. */
export const FIELD_PAIRS: Scenario[] = [byPathGone, autoScan, primaryPortalOnly, restartLostState, targetGone, heldOpen, leftSuspended, partitionMaps, multipathdClaims, sharedSession, ...NVME_FIELD_PAIRS, hostCutOff, ...REBOOT_FIELD_PAIRS];
