import type { DeviceInfo, TargetVolume } from '../agent/api/types.js';
import type { Scenario } from './catalog.js';
import { waitFor } from '../system/wait.js';
import { check, ScenarioFailure } from './context.js';
import { detachedClean, expectFailure, forcedDetach, leftThenSwept, orphanPair, type Half } from './pair.js';
import { attachIscsi, attachMultipath, deviceState, firstNetwork, ISCSI_ALL, ISCSI_DEVICE, ISCSI_NO_UDEV, multipathdHolds, portalOf, resetConnections, scannedIn, sessionOf, shortRecovery, waitAttrs } from './iscsi-steps.js';

/**
 * The sequences of domain.md that leave orphans, each as a pair run on real kernels: the faulty
 * sequence leaves the orphan and the oracle must name it (red, asserted), then the correct
 * sequence must leave nothing (green).
 */

/** A detach with force=True, then nothing may be left. */
async function forcedClean({ ctx, node }: Half, v: TargetVolume, d: DeviceInfo, phase: string): Promise<void> {
  await forcedDetach(ctx, node, v, d);
  await ctx.verdict(node, v, { phase, device: d, expect: 'clean' });
}

const flushFailure = orphanPair('orphan-flush-failure', {
  title: 'the flush fails with force=False: device, link, session and record stay by design (caught); force=True leaves nothing',
  refs: ['domain.md sequence 1'],
  halves: 'continued',
  setup: (h) => attachIscsi(h, 'vol'),
  async faulty({ ctx, node }, { v, d }) {
    const dev = d.devices[0]!;
    // The disk goes offline once attached, multipathd's watch included.
    await multipathdHolds(node, [dev]);
    // An offline SCSI device refuses to open (sd_open: ENXIO), so blockdev --flushbufs fails.
    await ctx.sh(node, `echo offline > /sys/block/${dev}/device/state`);
    ctx.step(`${node.name}: ${dev} set offline, so that the flush cannot reach it`);
    // The lab's own detach: a connector under test may rightly refuse the same way, or not.
    await expectFailure(ctx, `${node.name}: detach with force=False`, ['FLUSH_FAILED'], () => ctx.disconnect(node, v, d, { force: false, builtin: true }));
    await ctx.verdict(node, v, { phase: 'faulty: force=False', device: d, expect: ISCSI_ALL });
  },
  correct: (h, { v, d }) => forcedClean(h, v, d, 'correct: force=True'),
});

const unmappedIscsi = orphanPair('orphan-lun-unmapped', {
  title: 'the target unmaps the LUN before the host detaches: skipping the detach leaves device and session (caught); detaching anyway leaves nothing',
  refs: ['domain.md sequence 2'],
  async setup(h) {
    const { ctx, node } = h;
    const a = await attachIscsi(h, h.phase);
    await ctx.target.client.unmap(a.v.name);
    ctx.step(`target: LUN ${a.v.iscsi!.lun} of ${a.v.iscsi!.iqn} unmapped while attached`);
    check((await ctx.readSignature(node, a.d.path)) === null, `${node.name}: ${a.d.path} still reads after the unmap`);
    return a;
  },
  async faulty(h, { v, d }) {
    const { ctx, node } = h;
    const dev = d.devices[0]!;
    // democratic-csi#536: the dead device is removed first, then its session is looked up through
    // it; the lookup finds nothing, and the logout is skipped.
    await ctx.faultyDetach(node, v, `the session is looked up through ${dev} after ${dev} was deleted: nothing is found, and the logout is skipped`, () =>
      ctx.sh(
        node,
        `echo 1 > /sys/block/${dev}/device/delete; udevadm settle --timeout=60; ` +
          `s=$(readlink -f /sys/block/${dev}/device 2>/dev/null | grep -o 'session[0-9]*' | head -n1); ` +
          `if [ -n "$s" ]; then iscsiadm -m session -r "\${s#session}" --logout; fi`,
      ),
    );
    await leftThenSwept(h, v, d, 'faulty: device deleted, session looked up through it', ['iscsi-session', 'iscsi-node-record']);
  },
  correct: (h, { v, d }) => detachedClean(h, v, d, 'correct: detach after the unmap'),
});

/** The target removes the namespace while the host is connected; wait until the host has dropped it. */
async function removeNamespace({ ctx, node }: Half, v: TargetVolume): Promise<void> {
  await ctx.target.client.unmap(v.name);
  ctx.step(`target: namespace ${v.nvme!.nsid} removed from ${v.nvme!.nqn} while connected`);
  // Wait until the host has dropped the namespace (the target's change notice, then a rescan).
  await ctx.waitGone(node, v);
}

const nvmeNamespaceGone = orphanPair('orphan-nvme-namespace-gone', {
  title: 'the namespace is removed before the host detaches: a disconnect that finds no namespace leaves both controllers reconnecting forever (caught); disconnecting by subsystem leaves nothing',
  dataNetworks: 2,
  refs: ['domain.md sequences 2 and 8', 'os-brick NVMe disconnect returns when no path is found (ctrl_loss_tmo=-1)'],
  setup: ({ ctx, phase }) => ctx.createNvme({ name: phase, networks: ctx.networks(2) }),
  async faulty(h, v) {
    const { ctx, node } = h;
    // Attached the way os-brick 6.1 does it: every portal, ctrl_loss_tmo -1.
    for (const p of v.portals) await node.client.run(['nvme', 'connect', '-t', 'tcp', '-a', p.address, '-s', String(p.port), '-n', v.nvme!.nqn, '-l', '-1'], { timeoutMs: 60_000 });
    ctx.attached.push({ node, volume: v, device: null });
    ctx.step(`${node.name}: nvme connect on ${v.portals.length} portals with ctrl_loss_tmo=-1 (os-brick's way)`);
    await removeNamespace(h, v);
    // os-brick 6.1's disconnect: find the namespace by its UUID, disconnect its subsystem, and
    // return when none is found.
    await ctx.faultyDetach(node, v, 'the disconnect looks for the namespace by its UUID, finds none, and returns without disconnecting', async () => {
      const out = await ctx.sh(
        node,
        `for b in /sys/block/nvme*; do [ "$(cat "$b/uuid" 2>/dev/null)" = '${v.nvme!.uuid}' ] || continue; ` +
          `nvme disconnect -n "$(cat "$b/device/subsysnqn")"; echo disconnected; exit 0; done; echo "no namespace with uuid ${v.nvme!.uuid}"`,
      );
      check(/^no namespace/.test(out.trim()), `${node.name}: the namespace was still found after the target removed it: ${out.trim()}`);
    });
    await ctx.verdict(node, v, { phase: 'faulty: no namespace found, nothing disconnected', expect: ['nvme-controller'] });
    const ctrls = (await ctx.snapshot(node)).nvmeControllers.filter((c) => c.subsysNqn === v.nvme!.nqn);
    check(ctrls.length === v.portals.length, `${node.name}: expected ${v.portals.length} controllers left, found ${ctrls.length}`);
    for (const c of ctrls) await node.client.run(['nvme', 'disconnect', '-d', c.name]);
    ctx.forget(node, v);
  },
  async correct(h, v) {
    const { ctx, node } = h;
    const d = await ctx.connect(node, v, true);
    await removeNamespace(h, v);
    await ctx.disconnect(node, v, null);
    await ctx.verdict(node, v, { phase: 'correct: disconnect by subsystem, no device info', device: d, expect: 'clean' });
  },
});

/** LUN 0's volume is deleted and the next volume made at LUN 0 of the same IQN, with its own data. */
async function reuseLun({ ctx, phase }: Half, first: TargetVolume): Promise<TargetVolume> {
  await ctx.deleteVolume(first);
  const next = await ctx.createIscsi({ name: `${phase}-2`, iqn: first.iscsi!.iqn, lun: 0, networks: firstNetwork(ctx) });
  await ctx.target.client.writeSignature(next.name, { volume: next.name, id: next.id });
  ctx.step(`target: ${next.name} now at LUN 0 of ${next.iscsi!.iqn}, with its own data`);
  return next;
}

const lunReuse = orphanPair('orphan-lun-reuse', {
  title: 'LUN id reuse after a leftover: the stale path reads the next volume at that LUN (CVE-2023-2088; caught as an identity mismatch); a clean detach leaves nothing to misread',
  refs: ['domain.md sequence 3', 'OSSA-2023-003 / CVE-2023-2088'],
  async setup({ ctx, node, phase }) {
    // A second LUN keeps the target (and the host's session) alive, as on a shared array.
    const first = await ctx.createIscsi({ name: `${phase}-1`, lun: 0, networks: firstNetwork(ctx) });
    await ctx.createIscsi({ name: `${phase}-anchor`, iqn: first.iscsi!.iqn, lun: 1, networks: firstNetwork(ctx) });
    const d = await ctx.connect(node, first);
    await ctx.writeSignature(node, d.path, first);
    return { first, d };
  },
  async faulty(h, { first, d }) {
    const { ctx, node } = h;
    // kubernetes#73181's shape: the session serves another LUN, so the logout is rightly skipped,
    // and the device delete is skipped with it.
    await ctx.faultyDetach(node, first, `the session still serves LUN 1, so the detach flushes ${d.path} and returns: the device delete is skipped with the logout`, () =>
      node.client.run(['blockdev', '--flushbufs', d.path], { timeoutMs: 60_000 }),
    );
    const next = await reuseLun(h, first);
    const stale = await ctx.readSignature(node, d.path);
    check(stale?.id === next.id, `${node.name}: the stale ${d.path} should read ${next.name}'s data (it read ${JSON.stringify(stale)})`);
    ctx.step(`${node.name}: the stale ${d.path} of ${first.name} reads ${next.name}'s signature: another volume's data`);
    await ctx.verdict(node, first, { phase: 'faulty: stale path, before any rescan', device: d, expect: ISCSI_ALL });
    await ctx.sh(node, `echo 1 > /sys/block/${d.devices[0]}/device/rescan`);
    const left = await ctx.verdict(node, first, { phase: 'faulty: stale path after a rescan (now reports the new WWID)', device: d, expect: ISCSI_ALL });
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

const rescanDuringDetach = orphanPair('orphan-rescan-during-detach', {
  title: 'a whole-session rescan after a detach brings the removed LUN back (caught); a targeted scan of the next LUN does not',
  refs: ['domain.md sequences 4 and 5', 'os-brick bug 1483326'],
  async setup({ ctx, node, phase }) {
    const gone = await ctx.createIscsi({ name: `${phase}-gone`, lun: 0, networks: firstNetwork(ctx) });
    const kept = await ctx.createIscsi({ name: `${phase}-kept`, iqn: gone.iscsi!.iqn, lun: 1, networks: firstNetwork(ctx) });
    const dg = await ctx.connect(node, gone);
    const dk = await ctx.connect(node, kept);
    await ctx.disconnect(node, gone, dg);
    await ctx.verdict(node, gone, { phase: 'detached, session kept for the other LUN', device: dg, stillAttached: [kept], expect: 'clean' });
    return { gone, kept, dk };
  },
  async faulty({ ctx, node }, { gone, kept }) {
    const s = await sessionOf(ctx, node, kept);
    await node.client.run(['iscsiadm', '-m', 'session', '-r', String(s.sid), '--rescan'], { timeoutMs: 60_000 });
    const back = await scannedIn(ctx, node, gone.iscsi!.wwid);
    ctx.step(`${node.name}: iscsiadm -m session -r ${s.sid} --rescan (a whole-session scan, as an automatic scan or another attach does): ${gone.name} is back as ${back}`);
    await ctx.verdict(node, gone, { phase: 'faulty: whole-session rescan', stillAttached: [kept], expect: ISCSI_DEVICE });
    await ctx.sh(node, `for d in /sys/class/iscsi_session/session${s.sid}/device/target*/*:0; do [ -e "$d/delete" ] && echo 1 > "$d/delete"; done; true`);
  },
  async correct({ ctx, node }, { gone, kept }) {
    const third = await ctx.createIscsi({ name: 'correct-third', iqn: gone.iscsi!.iqn, lun: 2, networks: firstNetwork(ctx) });
    const dt = await ctx.connect(node, third);
    ctx.step(`${node.name}: ${third.name} attached with a targeted scan of LUN 2 only`);
    await ctx.verdict(node, gone, { phase: 'correct: targeted scan of another LUN', stillAttached: [kept, third], expect: 'clean' });
    await ctx.disconnect(node, third, dt);
  },
  async teardown({ ctx, node, phase }, { gone, kept, dk }) {
    await ctx.disconnect(node, kept, dk);
    await ctx.verdict(node, kept, { phase: `after the ${phase} half: last LUN detached`, device: dk, expect: 'clean' });
    await ctx.verdict(node, gone, { phase: `after the ${phase} half: last LUN detached`, expect: 'clean' });
  },
});

const severalSessions = orphanPair('orphan-several-sessions', {
  title: 'two sessions to one (portal, IQN): removing only the first session\'s device leaves the second (caught); the connector removes both',
  refs: ['domain.md sequence 6', 'os-brick bugs 2116553 / 2092195'],
  async setup(h) {
    const { ctx, node } = h;
    const { v, d } = await attachIscsi(h, h.phase);
    const first = await sessionOf(ctx, node, v);
    await ctx.loggingIn(() => node.client.run(['iscsiadm', '-m', 'session', '-r', String(first.sid), '--op', 'new'], { timeoutMs: 60_000 }));
    const sessions = (await ctx.snapshot(node)).iscsiSessions.filter((s) => s.targetIqn === v.iscsi!.iqn);
    check(sessions.length === 2, `${node.name}: expected two sessions to ${v.iscsi!.iqn}, found ${sessions.length}`);
    const second = sessions.find((s) => s.sid !== first.sid)!;
    await ctx.sh(node, `echo "- - ${v.iscsi!.lun}" > /sys/class/scsi_host/host${second.host}/scan`);
    await waitFor(async () => (await ctx.snapshot(node)).scsiDevices.some((x) => x.wwid === v.iscsi!.wwid && x.session === second.sid && x.block), {
      timeoutMs: 60_000,
      intervalMs: 300,
      onTimeout: () => new ScenarioFailure(`${node.name}: the scan of session${second.sid} did not bring in LUN ${v.iscsi!.lun} within 60 s`),
    });
    await multipathdHolds(node, (await ctx.snapshot(node)).scsiDevices.filter((x) => x.wwid === v.iscsi!.wwid).map((x) => x.block!));
    const devices = (await ctx.snapshot(node)).scsiDevices.filter((x) => x.wwid === v.iscsi!.wwid);
    check(devices.length === 2, `${node.name}: expected the LUN on both sessions, found ${devices.length} devices`);
    ctx.step(`${node.name}: a second session (session${second.sid}) to the same portal and IQN, with the LUN as ${devices.find((x) => x.session === second.sid)?.block}`);
    return { v, d, first: first.sid };
  },
  async faulty(h, { v, d, first }) {
    const { ctx, node } = h;
    await ctx.faultyDetach(node, v, `the detach knows one session per (portal, IQN): it removes ${d.devices[0]} and logs out session${first}, and never looks for the second`, async () => {
      await ctx.sh(node, `echo 1 > /sys/block/${d.devices[0]}/device/delete`);
      await node.client.run(['iscsiadm', '-m', 'session', '-r', String(first), '--logout'], { timeoutMs: 60_000 });
    });
    await leftThenSwept(h, v, d, 'faulty: first session only', ISCSI_ALL);
  },
  correct: (h, { v, d }) => detachedClean(h, v, d, 'correct: every session of the (portal, IQN)'),
});

const noUdev = orphanPair('orphan-no-udev', {
  title: 'no udev: no by-path link, yet the device exists; a by-path-only check calls a skipped detach clean, the oracle does not (caught); the connector detaches from sysfs',
  refs: ['domain.md sequence 9'],
  async prepare(ctx, node) {
    // The events of what ran before are processed first, with udevd running (a worker busy with
    // one held udevd past 60 s after --exit once, in a CI run with a scenario on the other compute).
    await node.client.exec(['udevadm', 'settle', '--timeout=120'], { timeoutMs: 150_000 });
    await node.client.run(['udevadm', 'control', '--exit'], { timeoutMs: 30_000 });
    // udevadm returns once udevd was told; a udevd still busy with an event goes on a moment, and
    // would make the links of the device attached next. Wait until no udevd process is left, or
    // say that it would not go and what each udevd process was doing: 60 s at most.
    await ctx.sh(
      node,
      // A deadline by the clock: under TCG each round's grep over /proc takes about 0.1 s itself.
      'end=$(($(date +%s) + 60)); while [ "$(date +%s)" -lt "$end" ]; do grep -qsx systemd-udevd /proc/[0-9]*/comm || exit 0; sleep 0.1; done; ' +
        'echo "udevd still runs 60 s after udevadm control --exit:" >&2; ' +
        'for p in $(pgrep -x systemd-udevd); do echo "pid $p: $(tr "\\0" " " < /proc/$p/cmdline) state $(awk \'/^State/{print $2}\' /proc/$p/status) wchan $(cat /proc/$p/wchan) children $(pgrep -P $p | tr "\\n" " ")" >&2; ' +
        'for c in $(pgrep -P $p); do echo "  child $c: $(tr "\\0" " " < /proc/$c/cmdline) wchan $(cat /proc/$c/wchan)" >&2; done; done; exit 1',
    );
    ctx.undo.push({
      what: `${node.name}: udevd restarted`,
      fn: async () => {
        await node.client.run(['/lib/systemd/systemd-udevd', '--daemon', '--resolve-names=never'], { timeoutMs: 30_000 });
        await node.client.exec(['udevadm', 'settle', '--timeout=60']);
      },
    });
    ctx.step(`${node.name}: udevd stopped`);
  },
  async setup(h) {
    const { ctx, node } = h;
    const { v, d } = await attachIscsi(h, h.phase);
    const p = await ctx.paths(node, v);
    check(p.paths.length === 0, `${node.name}: udev is stopped, yet by-path links exist: ${p.paths.join(', ')}`);
    check(p.devices.includes(d.devices[0]!), `${node.name}: getVolumePaths did not find ${d.devices[0]} in sysfs without udev`);
    return { v, d, paths: p.paths };
  },
  async faulty(h, { v, d, paths }) {
    const { ctx, node } = h;
    // The detach finds its devices by a by-path glob; without udev the glob finds nothing, and
    // the detach returns as if the volume was not attached (no delete, no logout).
    await ctx.faultyDetach(node, v, 'the by-path glob finds nothing without udev, so the detach takes the volume for detached', async () => {
      const links = await ctx.sh(node, `ls /dev/disk/by-path 2>/dev/null | grep -F -- '${v.iscsi!.iqn}-lun-${v.iscsi!.lun}' || true`);
      check(links.trim() === '', `${node.name}: a by-path glob found ${links.trim()}`);
    });
    await leftThenSwept(h, v, d, 'faulty: by-path glob empty, nothing removed', ISCSI_NO_UDEV, paths);
  },
  correct: (h, { v, d, paths }) => detachedClean(h, v, d, 'correct: detach from sysfs without udev', paths),
});

const pathFailsDuringMultipathDetach = orphanPair('orphan-multipath-path-fails', {
  title: 'a data path fails under a dm-multipath volume: a detach that stops at the failed path leaves its device and both sessions (caught); force=True leaves nothing',
  dataNetworks: 2,
  refs: ['domain.md sequence 7', 'os-brick bugs 1921381 / 1924652'],
  async setup(h) {
    const { ctx, node } = h;
    const [, second] = ctx.networks(2) as [string, string];
    const { v, d } = await attachMultipath(h, h.phase);
    await ctx.writeSignature(node, d.path, v);
    const snap = await ctx.snapshot(node);
    const failing = snap.iscsiSessions.find((x) => x.targetIqn === v.iscsi!.iqn && x.portal === portalOf(v, second));
    check(failing, `${node.name}: no session over ${second}`);
    const failingDev = snap.scsiDevices.find((x) => x.session === failing.sid && x.wwid === v.iscsi!.wwid)?.block;
    check(failingDev, `${node.name}: no device under session${failing.sid}`);
    await shortRecovery(node, [failing.sid]);
    // The compute's own link on that network: its sends fail at once, so the path fails without
    // waiting for the connection's no-op timeouts.
    await ctx.outage(node, 300, [second]);
    await resetConnections(node, [portalOf(v, second)]);
    ctx.step(`${node.name}: ${second} down under ${d.path}; session${failing.sid} (${failingDev}) fails`);
    // First the session blocks (I/O waits), then its recovery timeout declares the path dead.
    const [state] = await waitAttrs(node, [deviceState(failingDev)], (x) => x.endsWith('offline'), `${failingDev} is not offline since its path went down`);
    ctx.step(`${node.name}: ${failingDev} is ${state}; the map still reads over the other path`);
    check((await ctx.readSignature(node, d.path))?.id === v.id, `${node.name}: ${d.path} no longer reads its data over the remaining path`);
    return { v, d, second };
  },
  async faulty(h, { v, d }) {
    const { ctx, node } = h;
    // The lab's own detach with force=False stops at the failed path's flush.
    await expectFailure(ctx, `${node.name}: detach with force=False`, ['FLUSH_FAILED', 'MULTIPATH_FLUSH_FAILED'], () => ctx.disconnect(node, v, d, { force: false, builtin: true }));
    await leftThenSwept(h, v, d, 'faulty: stopped at the failed path', ISCSI_ALL);
  },
  async correct(h, { v, d }) {
    const { ctx, node } = h;
    if (ctx.connector) {
      // A connector under test may flush the map over the remaining path and detach with
      // force=False (os-brick does): not a fault, as long as nothing is left. If it stops
      // instead, force=True must then leave nothing.
      const stopped = await ctx.disconnect(node, v, d, { force: false }).then(
        () => null,
        (e: Error) => e.message.split('\n')[0]!,
      );
      if (stopped === null) {
        await ctx.verdict(node, v, { phase: 'correct: the connector detached over the remaining path (force=False)', device: d, expect: 'clean' });
        return;
      }
      ctx.step(`${node.name}: the connector's detach with force=False stopped: ${stopped}`);
    }
    await forcedClean(h, v, d, 'correct: force=True with the path down');
  },
  teardown: ({ ctx, node }) => ctx.endOutage(node),
});

export const ORPHAN_PAIRS: Scenario[] = [flushFailure, unmappedIscsi, nvmeNamespaceGone, lunReuse, rescanDuringDetach, severalSessions, noUdev, pathFailsDuringMultipathDetach];
