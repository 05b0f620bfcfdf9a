import type { DeviceInfo, TargetVolume } from '../agent/api/types.js';
import { waitFor } from '../system/wait.js';
import type { Scenario } from './catalog.js';
import { check, ScenarioFailure, type ComputeHandle, type ScenarioContext } from './context.js';
import { attachIscsi, firstNetwork, ISCSI_ALL, portalOf, resetConnections, sessionOf } from './iscsi-steps.js';
import { detachedClean, forcedDetach, leftThenSwept, orphanPair, type Half } from './pair.js';

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
    await node.client.run([...record, '--login'], { timeoutMs: 120_000 });
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

const primaryPortalOnly = orphanPair('field-primary-portal-only', {
  title: 'a volume attached over two portals: a detach that knows only the primary portal removes the map and its devices but logs out that portal alone, leaving the other session and record (caught); the connector logs out every portal',
  dataNetworks: 2,
  refs: ['field-orphans.md row 6', 'https://github.com/kubernetes/kubernetes/issues/45394', 'https://github.com/hpe-storage/common-host-libs/issues/138'],
  async setup(h) {
    const a = await attachIscsi(h, h.phase, 2);
    check(a.d.multipath && a.d.devices.length === 2, `${h.node.name}: expected a dm-multipath map over two paths, got ${a.d.path} over ${a.d.devices.join(', ')}`);
    return a;
  },
  async faulty(h, { v, d }) {
    const { ctx, node } = h;
    const map = (await ctx.snapshot(node)).multipathMaps.find((m) => m.wwid === v.iscsi!.wwid);
    check(map, `${node.name}: no multipath map for ${v.iscsi!.wwid}`);
    const primary = portalOf(v);
    await ctx.faultyDetach(node, v, `the detach knows only the primary portal ${primary}: the map and both path devices go, but only that portal's session is logged out and its record deleted`, async () => {
      // As the connector flushes a map: udev may hold it open a moment after its last change.
      await ctx.sh(node, `for i in 1 2 3 4; do multipath -f '${map.name ?? map.dm}' && exit 0; udevadm settle --timeout=30; sleep 1; done; exit 1`);
      await ctx.sh(node, `${d.devices.map((x) => `echo 1 > /sys/block/${x}/device/delete`).join('; ')}; udevadm settle --timeout=60`);
      const record = ['iscsiadm', '-m', 'node', '-T', v.iscsi!.iqn, '-p', primary];
      await node.client.run([...record, '--logout'], { timeoutMs: 60_000 });
      await node.client.run([...record, '-o', 'delete'], { timeoutMs: 60_000 });
    });
    await leftThenSwept(h, v, d, 'faulty: the primary portal only', ['iscsi-session', 'iscsi-node-record']);
  },
  correct: (h, { v, d }) => detachedClean(h, v, d, 'correct: every portal of the volume'),
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
  await ctx.sh(node, `echo 5 > /sys/class/iscsi_session/session${sid}/recovery_tmo`);
  await ctx.deleteVolume(v);
  ctx.step(`target: ${v.iscsi!.iqn} destroyed (its LUN and the target itself) while ${node.name} is logged in`);
  const state = await ctx.sh(node, `for i in $(seq 1 120); do s=$(cat /sys/block/${dev}/device/state); case $s in *offline) echo $s; exit 0;; *) sleep 0.5;; esac; done; echo $s`);
  check(/offline$/.test(state.trim()), `${node.name}: ${dev} is ${state.trim()} 60 s after its target was destroyed, not offline`);
  ctx.step(`${node.name}: session${sid} lost its target; ${dev} is ${state.trim()}`);
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

/** Where the holder of pair held-open notes its pid. */
const HOLDER = '/run/brick-lab/holder.pid';

/**
 * A process that mounted the volume's map in a mount namespace of its own and keeps it: the
 * host's mount table does not show it (another container's or a pod's mount namespace).
 */
async function holdOpen({ ctx, node }: Half, dev: string): Promise<void> {
  await ctx.sh(node, `mkfs.ext4 -q -F ${dev} && udevadm settle --timeout=60`);
  ctx.undo.push({ what: `${node.name}: the holder of ${dev} ends`, fn: () => letGo({ ctx, node, phase: 'correct' }, dev) });
  await ctx.sh(
    node,
    `mkdir -p ${HOLDER.replace(/\/[^/]+$/, '')}; rm -f ${HOLDER}; ` +
      `setsid -f unshare -m --propagation private sh -c 'mkdir -p /mnt/held && mount ${dev} /mnt/held && echo $$ > ${HOLDER} && exec sleep 3600' </dev/null >/dev/null 2>&1; ` +
      `for i in $(seq 1 100); do [ -s ${HOLDER} ] && exit 0; sleep 0.1; done; echo 'the holder did not mount ${dev}' >&2; exit 1`,
  );
  const seen = (await ctx.sh(node, `grep -c ' /mnt/held ' /proc/self/mounts || true`)).trim();
  check(seen === '0', `${node.name}: the host's own mount table shows the holder's mount`);
  ctx.step(`${node.name}: pid ${(await ctx.sh(node, `cat ${HOLDER}`)).trim()} mounted ${dev} in a mount namespace of its own and holds it (the host's mount table does not show it)`);
}

/** The holder ends; with it its mount namespace and the mount, and so the last opener of `dev` (when it is still there). */
async function letGo({ ctx, node }: Half, dev: string): Promise<void> {
  await ctx.sh(node, `if [ -s ${HOLDER} ]; then kill "$(cat ${HOLDER})" 2>/dev/null; fi; rm -f ${HOLDER}; ` +
    `for i in $(seq 1 100); do [ -e ${dev} ] || exit 0; n=$(dmsetup info -c --noheadings -o open ${dev} 2>/dev/null) || exit 0; [ "$n" -eq 0 ] && exit 0; sleep 0.1; done; exit 0`);
}

const heldOpen = orphanPair('field-held-open', {
  title: 'a process in another mount namespace holds the volume open at detach: the flush fails busy and a detach that takes that for done skips the logout (caught); a correct detach refuses without force and touches nothing, and with force leaves only the held map, failing every I/O, which goes at its last close',
  dataNetworks: 2,
  refs: ['field-orphans.md row 8', 'https://github.com/kubernetes/kubernetes/issues/104785', 'https://github.com/openebs-archive/cstor-csi/issues/108'],
  async setup(h) {
    const a = await attachIscsi(h, h.phase, 2);
    check(a.d.multipath && a.d.devices.length === 2, `${h.node.name}: expected a dm-multipath map over two paths, got ${a.d.path} over ${a.d.devices.join(', ')}`);
    await holdOpen(h, a.d.path);
    return a;
  },
  async faulty(h, { v, d }) {
    const { ctx, node } = h;
    await ctx.faultyDetach(node, v, `the map's flush fails busy; the detach takes the volume for someone else's and reports success without its logout`, async () => {
      const r = await node.client.exec(['multipath', '-f', d.path]);
      check(r.exitCode !== 0, `${node.name}: multipath -f ${d.path} worked although the map is held open`);
      ctx.step(`${node.name}: multipath -f ${d.path}: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
    });
    await ctx.verdict(node, v, { phase: 'faulty: busy taken for done', device: d, expect: [...ISCSI_ALL, 'multipath-map'] });
    await letGo(h, d.path);
    await ctx.disconnect(node, v, d, { force: true, ignoreErrors: true, builtin: true });
  },
  async correct(h, { v, d }) {
    const { ctx, node } = h;
    const before = await ctx.paths(node, v);
    const refused = await ctx.disconnect(node, v, d, { force: false }).then(
      () => null,
      (e: Error) => e.message.split('\n')[0]!,
    );
    check(refused !== null, `${node.name}: the detach with force=False succeeded while ${d.path} is held open`);
    ctx.step(`${node.name}: the detach with force=False refused: ${refused}`);
    const after = await ctx.paths(node, v);
    check(JSON.stringify(after) === JSON.stringify(before), `${node.name}: the refused detach changed the volume: before ${before.devices.join(' ')}, after ${after.devices.join(' ')}`);
    ctx.step(`${node.name}: the refusal touched nothing (${after.devices.join(', ')})`);
    await forcedDetach(ctx, node, v, d);
    await ctx.verdict(node, v, { phase: 'held: force=True while the map is held', device: d, expect: ['by-id-link', 'multipath-map'] });
    await letGo(h, d.path);
    await ctx.verdict(node, v, { phase: 'correct: force=True, then the holder let go', device: d, expect: 'clean' });
  },
});

/**
 * A flush whose remove races udev's probe (blkid opens the map on the change event the suspend
 * sends): the map is suspended, the remove fails busy, and nothing resumes the map. The probe is
 * the shell itself, holding the map open on a descriptor while the remove runs.
 */
async function removeRacesProbe({ ctx, node }: Half, d: DeviceInfo): Promise<void> {
  const map = (await ctx.snapshot(node)).multipathMaps.find((m) => `/dev/${m.dm}` === d.path);
  check(map, `${node.name}: no multipath map at ${d.path}`);
  const name = map.name ?? map.dm;
  const out = await ctx.sh(node, `exec 3<${d.path}; dmsetup suspend ${name}; if dmsetup remove ${name} 2>&1; then echo 'removed although open'; exit 1; fi; exec 3<&-; cat /sys/block/${map.dm}/dm/suspended`);
  check(out.trim().endsWith('1'), `${node.name}: ${name} is not suspended after the failed remove: ${out.trim()}`);
  ctx.step(`${node.name}: ${name} suspended, its remove failed busy (${out.trim().split('\n')[0]}), and it was never resumed`);
}

const leftSuspended = orphanPair('field-left-suspended', {
  title: 'a flush whose remove races udev\'s probe leaves the map suspended: every I/O to it waits, and the volume stays (caught); a detach that finds the map suspended resumes it and leaves nothing',
  dataNetworks: 2,
  refs: ['field-orphans.md row 11', 'https://github.com/microsoft/azurelinux/issues/18793'],
  async setup(h) {
    const a = await attachIscsi(h, h.phase, 2);
    check(a.d.multipath, `${h.node.name}: expected a dm-multipath map, got ${a.d.path}`);
    // The correct half starts where the faulty one ended: an earlier flush left the map suspended.
    if (h.phase === 'correct') await removeRacesProbe(h, a.d);
    return a;
  },
  async faulty(h, { v, d }) {
    const { ctx, node } = h;
    await ctx.faultyDetach(node, v, 'the remove failed busy after the suspend, and the map was never resumed', () => removeRacesProbe(h, d));
    const left = await ctx.verdict(node, v, { phase: 'faulty: the failed remove left the map suspended', device: d, expect: [...ISCSI_ALL, 'multipath-map'] });
    const map = left.find((o) => o.kind === 'multipath-map');
    check(map?.evidence.includes('SUSPENDED'), `${node.name}: the oracle does not say that the map is suspended: ${map?.evidence}`);
    await ctx.disconnect(node, v, d, { force: true, ignoreErrors: true, builtin: true });
  },
  correct: (h, { v, d }) => detachedClean(h, v, d, 'correct: a detach that resumes the suspended map'),
});

const partitionMaps = orphanPair('field-partition-maps', {
  title: 'a partitioned multipath volume loses every path (the compute\'s links down): a detach that removes the map with dmsetup fails busy on the partition map kpartx made for as long as it retries, and leaves the map, its partition map and the dead paths (caught); multipath -f takes the partition maps with the map and leaves nothing',
  dataNetworks: 2,
  refs: ['field-orphans.md row 13', 'https://github.com/Seagate/seagate-exos-x-csi/issues/141', 'https://github.com/hpe-storage/csi-driver/issues/564'],
  async setup(h) {
    const { ctx, node } = h;
    const a = await attachIscsi(h, h.phase, 2);
    check(a.d.multipath && a.d.devices.length === 2, `${node.name}: expected a dm-multipath map over two paths, got ${a.d.path} over ${a.d.devices.join(', ')}`);
    // One partition over the whole volume; multipath-tools' udev rules run kpartx on the change.
    await ctx.sh(node, `echo ',,L' | sfdisk -q ${a.d.path} && udevadm settle --timeout=60`);
    const part = await waitFor(async () => (await ctx.snapshot(node)).blockDevices.find((b) => b.dm?.uuid === `part1-mpath-${a.v.iscsi!.wwid}`)?.name ?? null, {
      timeoutMs: 30_000,
      intervalMs: 500,
      onTimeout: () => new ScenarioFailure(`${node.name}: no partition map on ${a.d.path} 30 s after its partition table was written`),
    });
    ctx.step(`${node.name}: a partition table on ${a.d.path}; kpartx made the partition map ${part} on it`);
    // Every path lost: the compute's links on both networks go down (its sends fail at once),
    // and the sessions' short recovery timeout (the lab's stand-in for replacement_timeout's
    // 120 s) takes the paths offline.
    const sids = (await ctx.snapshot(node)).iscsiSessions.filter((x) => x.targetIqn === a.v.iscsi!.iqn).map((x) => x.sid);
    await ctx.sh(node, sids.map((sid) => `echo 5 > /sys/class/iscsi_session/session${sid}/recovery_tmo`).join('; '));
    await ctx.outage(node, 300, ctx.networks(2));
    await resetConnections(node, ctx.networks(2).map((n) => portalOf(a.v, n)));
    const states = await ctx.sh(node, `for i in $(seq 1 120); do s=$(cat ${a.d.devices.map((x) => `/sys/block/${x}/device/state`).join(' ')} | sort -u); [ "$s" = transport-offline ] && break; sleep 0.5; done; echo $s`);
    check(states.trim() === 'transport-offline', `${node.name}: the paths are ${states.trim()} 60 s after every path went down, not transport-offline`);
    ctx.step(`${node.name}: every path down; ${a.d.devices.join(' and ')} are ${states.trim()}`);
    return { ...a, part };
  },
  async faulty(h, { v, d, part }) {
    const { ctx, node } = h;
    await ctx.faultyDetach(node, v, `the map is removed with dmsetup, which fails busy for as long as the partition map ${part} stands on it; the detach retries, then gives up before its paths and logout`, async () => {
      for (let i = 1; i <= 3; i++) {
        const r = await node.client.exec(['dmsetup', 'remove', d.path]);
        check(r.exitCode !== 0, `${node.name}: dmsetup remove ${d.path} worked although ${part} stands on it`);
        if (i === 3) ctx.step(`${node.name}: dmsetup remove ${d.path}, 3 times: ${r.stderr.trim().split('\n')[0]}`);
      }
    });
    await leftThenSwept(h, v, d, 'faulty: dmsetup remove of a partitioned map', [...ISCSI_ALL, 'multipath-map', 'holder']);
  },
  async correct(h, { v, d }) {
    const { ctx, node } = h;
    // Nothing can be written back with every path gone: the detach is forced.
    await forcedDetach(ctx, node, v, d);
    await ctx.verdict(node, v, { phase: 'correct: forced detach of a partitioned map with every path lost', device: d, expect: 'clean' });
  },
  teardown: ({ ctx, node }) => ctx.endOutage(node),
});

/** A multipath.conf drop-in that has multipathd claim every path it can, single ones too (Longhorn's hosts had it so). */
const GREEDY = '/etc/multipath/conf.d/brick-lab-greedy.conf';

/** The map multipathd made over a single-path volume's disk, once it is there. */
async function claimedBy({ ctx, node }: Half, v: TargetVolume, disk: string): Promise<string> {
  return waitFor(async () => (await ctx.snapshot(node)).multipathMaps.find((m) => m.wwid === v.iscsi!.wwid && m.slaves.includes(disk))?.dm ?? null, {
    timeoutMs: 30_000,
    intervalMs: 500,
    onTimeout: () => new ScenarioFailure(`${node.name}: multipathd made no map over ${disk} in 30 s`),
  });
}

const multipathdClaims = orphanPair('field-multipathd-claims', {
  title: 'multipathd claims a single-path volume (find_multipaths greedy), and makes its map again after a flush while the path is there: a single-path detach that finds its disk held takes it for busy and stops (caught); a detach that flushes the map over its disk leaves nothing',
  refs: ['field-orphans.md rows 9 and 10', 'https://github.com/longhorn/longhorn/issues/1210', 'https://github.com/openmainframeproject/feilong/issues/493'],
  async prepare(ctx, node) {
    ctx.undo.push({ what: `${node.name}: ${GREEDY} removed`, fn: () => ctx.sh(node, `rm -f ${GREEDY}; multipathd reconfigure`) });
    await ctx.sh(node, `mkdir -p /etc/multipath/conf.d; printf 'defaults {\\n\\tfind_multipaths greedy\\n}\\n' > ${GREEDY}; multipathd reconfigure`);
    const mode = (await ctx.sh(node, `multipathd show config local | sed -n 's/^[[:space:]]*find_multipaths //p' | head -n1`)).trim();
    check(mode === '"greedy"', `${node.name}: multipathd runs with find_multipaths ${mode || '(unset)'}, not greedy, after ${GREEDY}`);
    ctx.step(`${node.name}: multipathd reconfigured with find_multipaths greedy: it claims every path, single ones too`);
  },
  async setup(h) {
    const a = await attachIscsi(h, h.phase);
    const disk = a.d.devices[0]!;
    const map = await claimedBy(h, a.v, disk);
    h.ctx.step(`${h.node.name}: multipathd claimed ${disk}, attached single-path: the map ${map} now holds it`);
    return { ...a, disk };
  },
  async faulty(h, { v, d, disk }) {
    const { ctx, node } = h;
    await ctx.faultyDetach(node, v, `multipath -f took the map, multipathd made it again at a reconfigure, and the single-path detach, finding ${disk} held, took it for busy and stopped`, async () => {
      await node.client.run(['multipath', '-f', v.iscsi!.wwid], { timeoutMs: 60_000 });
      check(!(await ctx.snapshot(node)).multipathMaps.some((m) => m.wwid === v.iscsi!.wwid), `${node.name}: multipath -f left the map over ${disk}`);
      // Anything that has multipathd look at its paths again (a reconfigure after a config change
      // or a package update, another connector's) finds the path still there.
      await node.client.run(['multipathd', 'reconfigure'], { timeoutMs: 60_000 });
      const back = await claimedBy(h, v, disk);
      ctx.step(`${node.name}: the map was flushed, and multipathd made it again (${back}) at its next reconfigure: the path was still there`);
      const holders = (await ctx.sh(node, `ls /sys/block/${disk}/holders`)).trim();
      check(holders !== '', `${node.name}: ${disk} has no holders: the single-path detach would go on`);
    });
    await leftThenSwept(h, v, d, 'faulty: the claimed disk taken for busy', [...ISCSI_ALL, 'multipath-map']);
  },
  correct: (h, { v, d }) => detachedClean(h, v, d, 'correct: the map over the single-path disk flushed with it'),
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

/** The target offline, long enough for any half; the half's end (or the scenario's) brings it back. */
const TARGET_OFFLINE_S = 300;

/** Wait until every controller of an NVMe volume's subsystem on the node is in `state`. */
async function controllersAre({ ctx, node }: Half, v: TargetVolume, state: string): Promise<string[]> {
  let seen: string[] = [];
  return waitFor(
    async () => {
      const cs = (await ctx.snapshot(node)).nvmeControllers.filter((c) => c.subsysNqn === v.nvme!.nqn);
      seen = cs.map((c) => `${c.name} ${c.state ?? '?'}`);
      return cs.length > 0 && cs.every((c) => c.state === state) ? seen : null;
    },
    { timeoutMs: 60_000, intervalMs: 500, onTimeout: () => new ScenarioFailure(`${node.name}: the controllers of ${v.nvme!.nqn} are not ${state} after 60 s: ${seen.join(', ') || 'none'}`) },
  );
}

const nvmeTargetOffline = orphanPair('field-nvme-target-offline', {
  title: 'the NVMe target is offline at detach: a disconnect that picks the subsystem\'s live paths finds none and disconnects nothing, and the controller reconnects forever (caught); a forced detach disconnects every controller, live or not, and leaves nothing, also once the target is back',
  refs: ['field-orphans.md row 18', 'https://github.com/linux-nvme/nvme-cli/issues/2603', 'https://github.com/linux-nvme/libnvme/issues/431'],
  async setup(h) {
    const { ctx, node, phase } = h;
    const v = await ctx.createNvme({ name: phase, networks: firstNetwork(ctx) });
    let d: DeviceInfo | null = null;
    if (phase === 'faulty') {
      // Attached the way os-brick 6.1 does it: ctrl_loss_tmo -1, a controller that never gives up.
      const p = v.portals[0]!;
      await node.client.run(['nvme', 'connect', '-t', 'tcp', '-a', p.address, '-s', String(p.port), '-n', v.nvme!.nqn, '-l', '-1'], { timeoutMs: 60_000 });
      ctx.attached.push({ node, volume: v, device: null });
      const ns = await waitFor(async () => (await ctx.snapshot(node)).nvmeNamespaces.find((n) => n.uuid === v.nvme!.uuid)?.name ?? null, {
        timeoutMs: 30_000,
        intervalMs: 300,
        onTimeout: () => new ScenarioFailure(`${node.name}: no namespace with uuid ${v.nvme!.uuid} 30 s after nvme connect`),
      });
      await node.client.exec(['udevadm', 'settle', '--timeout=60'], { timeoutMs: 90_000 });
      ctx.step(`${node.name}: nvme connect with ctrl_loss_tmo=-1 (os-brick's way): ${ns}`);
    } else {
      d = await ctx.connect(node, v);
    }
    await ctx.outage(ctx.target, TARGET_OFFLINE_S);
    // The host's connections reset now rather than at its keep-alive timeout.
    await resetConnections(node, v.portals.map((p) => `${p.address}:${p.port}`));
    ctx.step(`${node.name}: ${(await controllersAre(h, v, 'connecting')).join(', ')}: the target is offline`);
    return { v, d };
  },
  async faulty(h, { v }) {
    const { ctx, node } = h;
    await ctx.faultyDetach(node, v, 'the disconnect takes the subsystem\'s live paths from nvme list-subsys; with the target offline there are none, so nothing is disconnected', async () => {
      const out = await ctx.sh(node, `nvme list-subsys -o json`);
      const live = (JSON.parse(out) as Array<{ Subsystems?: Array<{ NQN: string; Paths?: Array<{ Name: string; State: string }> }> }>)
        .flatMap((h) => h.Subsystems ?? [])
        .filter((s) => s.NQN === v.nvme!.nqn)
        .flatMap((s) => (s.Paths ?? []).filter((p) => p.State === 'live'));
      check(live.length === 0, `${node.name}: ${v.nvme!.nqn} still has a live path: ${live.map((p) => p.Name).join(', ')}`);
    });
    await ctx.verdict(node, v, { phase: 'faulty: no live path, nothing disconnected', expect: ['nvme-controller', 'nvme-namespace', 'by-id-link'] });
    await ctx.endOutage(ctx.target);
    await ctx.disconnect(node, v, null, { force: true, ignoreErrors: true, builtin: true });
  },
  async correct(h, { v, d }) {
    const { ctx, node } = h;
    // Nothing can be written to a target that is offline: the detach is forced.
    await forcedDetach(ctx, node, v, d!);
    await ctx.verdict(node, v, { phase: 'correct: forced detach, the target offline', device: d, expect: 'clean' });
    await ctx.endOutage(ctx.target);
    // Once the target is back, nothing may reconnect (a controller left would go live again).
    await new Promise((r) => setTimeout(r, 5000));
    await ctx.verdict(node, v, { phase: 'correct: the target back online', device: d, expect: 'clean' });
  },
});

const nvmeSharedController = orphanPair('field-nvme-shared-controller', {
  title: 'several namespaces on one NVMe controller: a detach that disconnects the controller it used takes the namespace another volume still uses (collateral, caught); volumes of the subsystem attached and detached in turn (the target unexporting each) keep the controller for the one in use, and the last detach takes it',
  refs: ['field-orphans.md rows 20 and 17', 'https://github.com/ceph/ceph-csi/issues/6163', 'https://github.com/fenio/tns-csi/issues/204'],
  async setup({ ctx, node, phase }) {
    const net = firstNetwork(ctx);
    const a = await ctx.createNvme({ name: `${phase}-a`, nsid: 1, networks: net });
    const b = await ctx.createNvme({ name: `${phase}-b`, nqn: a.nvme!.nqn, nsid: 2, networks: net });
    const builtin = phase === 'faulty';
    const db = await ctx.connect(node, b, false, { builtin });
    await ctx.writeSignature(node, db.path, b);
    return { a, b, db, da: await ctx.connect(node, a, false, { builtin }) };
  },
  async faulty(h, { a, b, db, da }) {
    const { ctx, node } = h;
    await ctx.faultyDetach(node, a, `the detach disconnects the controller of ${da.path} without counting the other namespaces on it`, () => ctx.sh(node, `nvme disconnect -n ${a.nvme!.nqn}; udevadm settle --timeout=60`));
    check((await ctx.readSignature(node, db.path)) === null, `${node.name}: ${b.name} still reads at ${db.path} after the controller went`);
    await ctx.verdict(node, a, { phase: `faulty: the controller taken from under ${b.name}`, device: da, stillAttached: [b], expect: ['nvme-controller', 'nvme-namespace', 'block-device', 'by-id-link'] });
    ctx.forget(node, a);
    ctx.forget(node, b);
  },
  async correct(h, { a, b, db, da }) {
    const { ctx, node, phase } = h;
    // NVMe has no per-namespace logout: one volume of a shared subsystem goes when the host lets
    // go of it and the target stops exporting it (terminate_connection). Churn: three volumes of
    // the subsystem in turn, attached and detached back to back, the other namespace in use.
    let [v, d] = [a, da];
    for (let round = 1; round <= 3; round++) {
      await ctx.disconnect(node, v, d);
      await ctx.target.client.unmap(v.name);
      await ctx.waitGone(node, v);
      await ctx.verdict(node, v, { phase: `correct: round ${round}, detached; the controller kept for the other namespace`, device: d, stillAttached: [b], expect: 'clean' });
      if (round === 3) break;
      v = await ctx.createNvme({ name: `${phase}-a${round + 1}`, nqn: a.nvme!.nqn, nsid: round + 2, networks: firstNetwork(ctx) });
      d = await ctx.connect(node, v);
    }
    check((await ctx.readSignature(node, db.path))?.id === b.id, `${node.name}: ${b.name} no longer reads its data at ${db.path} after the churn`);
    ctx.step(`${node.name}: ${b.name} still reads its data after 3 rounds on its subsystem`);
    await detachedClean(h, b, db, 'correct: the last namespace detached, and the controller with it');
  },
});

/** The namespace of an NVMe volume on the node, once it is there (its head's name). */
async function namespaceOf({ ctx, node }: Half, v: TargetVolume): Promise<string> {
  return waitFor(async () => (await ctx.snapshot(node)).nvmeNamespaces.find((n) => n.uuid === v.nvme!.uuid)?.name ?? null, {
    timeoutMs: 30_000,
    intervalMs: 300,
    onTimeout: () => new ScenarioFailure(`${node.name}: no namespace with uuid ${v.nvme!.uuid} after 30 s`),
  });
}

const nvmeCtrlLoss = orphanPair('field-nvme-ctrl-loss', {
  title: "a partition outlasts ctrl_loss_tmo: the kernel deletes the controller, another volume gets the freed name, the re-attach gets a new one; a detach by the name the caller recorded disconnects the other volume and leaves its own (caught); a detach by the volume's identity takes only its own",
  refs: ['field-orphans.md row 19', 'https://github.com/openebs/mayastor/issues/1777'],
  async setup({ ctx, phase }) {
    const net = firstNetwork(ctx);
    return { a: await ctx.createNvme({ name: `${phase}-a`, networks: net }), b: await ctx.createNvme({ name: `${phase}-b`, networks: net }) };
  },
  async faulty(h, { a, b }) {
    const { ctx, node } = h;
    const p = a.portals[0]!;
    // A driver tuned for fast failover: ctrl_loss_tmo 5 s, a reconnect every second.
    const connect = (v: TargetVolume): Promise<unknown> => node.client.run(['nvme', 'connect', '-t', 'tcp', '-a', p.address, '-s', String(p.port), '-n', v.nvme!.nqn, '-l', '5', '-c', '1'], { timeoutMs: 60_000 });
    await connect(a);
    ctx.attached.push({ node, volume: a, device: null });
    const recorded = await namespaceOf(h, a);
    ctx.step(`${node.name}: ${a.name} attached with ctrl_loss_tmo=5 as /dev/${recorded}; the caller records that name`);
    await ctx.outage(node, 20, [p.network]);
    await resetConnections(node, [`${p.address}:${p.port}`]);
    const gone = await ctx.sh(node, `for i in $(seq 1 80); do [ -e /sys/block/${recorded} ] || { echo gone; exit 0; }; sleep 0.25; done; echo still`);
    check(gone.trim() === 'gone', `${node.name}: /dev/${recorded} is still there 20 s into the partition: the controller was not deleted`);
    ctx.step(`${node.name}: the partition outlasted ctrl_loss_tmo: the kernel deleted the controller and /dev/${recorded}`);
    await ctx.endOutage(node);
    await connect(b);
    ctx.attached.push({ node, volume: b, device: null });
    const bName = await namespaceOf(h, b);
    await connect(a);
    const aName = await namespaceOf(h, a);
    await node.client.exec(['udevadm', 'settle', '--timeout=60'], { timeoutMs: 90_000 });
    check(bName === recorded && aName !== recorded, `${node.name}: ${b.name} is /dev/${bName} and ${a.name} /dev/${aName}: the freed name did not go to the other volume`);
    ctx.step(`${node.name}: ${b.name} attached as /dev/${bName}, the freed name; ${a.name} re-attached as /dev/${aName}`);
    await ctx.writeSignature(node, `/dev/${bName}`, b);
    // The controllers under a namespace head: its paths are nvme<subsystem>c<controller>n<nsid>.
    const head = (await ctx.snapshot(node)).nvmeNamespaces.find((n) => n.name === recorded);
    const ctrls = (head?.paths ?? []).map((x) => /c(\d+)n\d+$/.exec(x)?.[1]).filter((x): x is string => x !== undefined).map((x) => `nvme${x}`);
    check(ctrls.length > 0, `${node.name}: no controller under /dev/${recorded} (paths ${head?.paths.join(', ') ?? 'none'})`);
    await ctx.faultyDetach(node, a, `the detach goes by the name recorded at the first attach, /dev/${recorded}, now ${b.name}'s: it disconnects that namespace's controller ${ctrls.join(', ')}`, async () => {
      for (const c of ctrls) await node.client.run(['nvme', 'disconnect', '-d', c], { timeoutMs: 60_000 });
      await node.client.exec(['udevadm', 'settle', '--timeout=60'], { timeoutMs: 90_000 });
    });
    check((await ctx.readSignature(node, `/dev/${bName}`)) === null, `${node.name}: ${b.name} still reads at /dev/${bName} after the detach by the stale name`);
    await ctx.verdict(node, a, { phase: `faulty: detached by a stale name, ${b.name}'s now`, stillAttached: [b], expect: ['nvme-controller', 'nvme-namespace', 'block-device', 'by-id-link'] });
    ctx.forget(node, b);
    await ctx.disconnect(node, a, null, { force: true, ignoreErrors: true, builtin: true });
  },
  async correct(h, { a, b }) {
    const { ctx, node } = h;
    const first = await ctx.connect(node, a);
    // The same state as the partition leaves, reached without waiting out the connector's own
    // ctrl_loss_tmo: the controller deleted as the kernel deletes it when that time is up.
    await ctx.sh(node, `nvme disconnect -n ${a.nvme!.nqn}; udevadm settle --timeout=60`);
    ctx.forget(node, a);
    ctx.step(`${node.name}: ${a.name}'s controller deleted, as at the end of ctrl_loss_tmo; its name ${first.path} is free`);
    const db = await ctx.connect(node, b);
    const again = await ctx.connect(node, a);
    check(db.path === first.path && again.path !== first.path, `${node.name}: ${b.name} is ${db.path} and ${a.name} ${again.path}: the freed name did not go to the other volume`);
    await ctx.writeSignature(node, db.path, b);
    await ctx.disconnect(node, a, first);
    check((await ctx.readSignature(node, db.path))?.id === b.id, `${node.name}: ${b.name} no longer reads its data at ${db.path} after ${a.name}'s detach with its stale device info`);
    await ctx.verdict(node, a, { phase: 'correct: detached by identity, the recorded name now another volume\'s', device: first, stillAttached: [b], expect: 'clean' });
    await detachedClean(h, b, db, 'correct: the volume that got the freed name, detached');
  },
});

const hostCutOff = orphanPair('field-host-cut-off', {
  title: 'the host is cut off from the array past the orchestrator\'s force-detach, the array unmaps the LUN, the host comes back: its session logs in again and the device of a LUN it no longer has stays (caught); a detach on its return, from the volume\'s properties, leaves nothing',
  refs: ['field-orphans.md row 4', 'https://github.com/kubernetes/kubernetes/issues/104493'],
  async setup(h) {
    const { ctx, node } = h;
    const a = await attachIscsi(h, h.phase);
    const { sid } = await sessionOf(ctx, node, a.v);
    await ctx.sh(node, `echo 5 > /sys/class/iscsi_session/session${sid}/recovery_tmo`);
    const net = a.v.portals[0]!.network;
    await ctx.outage(node, 60, [net]);
    await resetConnections(node, [portalOf(a.v)]);
    const lost = await ctx.sh(node, `for i in $(seq 1 120); do s=$(cat /sys/class/iscsi_session/session${sid}/state); [ "$s" != LOGGED_IN ] && break; sleep 0.5; done; echo $s`);
    check(lost.trim() !== 'LOGGED_IN', `${node.name}: session${sid} is still LOGGED_IN 60 s after its link went down`);
    ctx.step(`${node.name}: cut off; session${sid} is ${lost.trim()}`);
    // The force-detach while the host cannot be reached: the array takes the LUN away.
    await ctx.target.client.unmap(a.v.name);
    ctx.step(`target: LUN ${a.v.iscsi!.lun} of ${a.v.iscsi!.iqn} unmapped while ${node.name} is cut off (the orchestrator's force-detach)`);
    await ctx.endOutage(node);
    const state = await ctx.sh(node, `for i in $(seq 1 120); do s=$(cat /sys/class/iscsi_session/session${sid}/state); [ "$s" = LOGGED_IN ] && break; sleep 0.5; done; echo $s`);
    check(state.trim() === 'LOGGED_IN', `${node.name}: session${sid} is ${state.trim()} 60 s after the host came back, not LOGGED_IN`);
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

export const FIELD_PAIRS: Scenario[] = [byPathGone, autoScan, primaryPortalOnly, restartLostState, targetGone, heldOpen, leftSuspended, partitionMaps, multipathdClaims, sharedSession, nvmeTargetOffline, nvmeSharedController, nvmeCtrlLoss, hostCutOff];
