import type { DeviceInfo, TargetVolume } from '../agent/api/types.js';
import { waitFor } from '../system/wait.js';
import type { Scenario } from './catalog.js';
import { check, ScenarioFailure } from './context.js';
import { attachIscsi, attachMultipath, deviceState, ISCSI_ALL, portalOf, resetConnections, shortRecovery, waitAttrs } from './iscsi-steps.js';
import { detachedClean, forcedDetach, leftThenSwept, orphanPair, type Half } from './pair.js';

/**
 * The field's orphan mechanisms around dm-multipath (shared/docs/field-orphans.md, by row): a map
 * held open, left suspended, kept by its partition maps, claimed where it was not asked for.
 */

const primaryPortalOnly = orphanPair('field-primary-portal-only', {
  title: 'a volume attached over two portals: a detach that knows only the primary portal removes the map and its devices but logs out that portal alone, leaving the other session and record (caught); the connector logs out every portal',
  dataNetworks: 2,
  refs: ['field-orphans.md row 6', 'https://github.com/kubernetes/kubernetes/issues/45394', 'https://github.com/hpe-storage/common-host-libs/issues/138'],
  async setup(h) {
    const a = await attachMultipath(h, h.phase);
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
    const a = await attachMultipath(h, h.phase);
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
    const a = await attachMultipath(h, h.phase);
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
    const a = await attachMultipath(h, h.phase);
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
    await shortRecovery(node, sids);
    await ctx.outage(node, 300, ctx.networks(2));
    await resetConnections(node, ctx.networks(2).map((n) => portalOf(a.v, n)));
    await waitAttrs(node, a.d.devices.map(deviceState), (x) => x === 'transport-offline', 'the paths are not transport-offline since every path went down');
    ctx.step(`${node.name}: every path down; ${a.d.devices.join(' and ')} are transport-offline`);
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

export const MULTIPATH_FIELD_PAIRS: Scenario[] = [primaryPortalOnly, heldOpen, leftSuspended, partitionMaps, multipathdClaims];
