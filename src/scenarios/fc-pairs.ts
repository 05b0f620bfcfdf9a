import type { DeviceInfo, TargetVolume } from '../agent/api/types.js';
import type { Scenario } from './catalog.js';
import { check, type Expected } from './context.js';
import { scannedIn } from './iscsi-steps.js';
import { detachedClean, leftThenSwept, orphanPair, type Half } from './pair.js';

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
    await node.client.run(['sh', '-c', 'echo 1 > "/sys/block/$1/device/rescan"', 'rescan', d.devices[0]!], { timeoutMs: 60_000 });
    const left = await ctx.verdict(node, first, { phase: 'faulty: stale path after a rescan (now reports the new WWID)', device: d, expect: FC_ALL });
    check(left.some((o) => /identity mismatch/.test(o.evidence)), `${node.name}: the oracle did not say the stale device now holds another volume`);
    await ctx.disconnect(node, first, d, { force: true, ignoreErrors: true, builtin: true });
    await dropDisks(node, [first.fc!.lun]);
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

/** Delete the FC disks at these LUNs under any remote port (what a half made and must not leave). */
async function dropDisks(node: Half['node'], luns: number[]): Promise<void> {
  await node.client.run(['sh', '-c', 'for l in "$@"; do for f in /sys/class/fc_remote_ports/rport-*/device/target*/*:*:*:"$l"/delete; do [ -e "$f" ] && echo 1 > "$f"; done; done; udevadm settle --timeout=60; true', 'drop', ...luns.map(String)], { timeoutMs: 90_000 });
}

/**
 * The host's FC port on the volume's fabric logs out and in again (a link bounce, a switch
 * reboot, a target port reset): disabled and enabled through /sys/bus/fcoe, then waited for until
 * its remote port to the target is back online with its SCSI target id, and the volume `back`
 * (mapped to the host) has come back with it, udev and multipathd done with its disk: the
 * transport's scan of the returning port has run.
 */
async function bounce({ ctx, node }: Half, v: TargetVolume, back: TargetVolume): Promise<void> {
  const net = v.portals[0]!.network;
  const port = v.fc!.wwpns[0]!;
  // A fixed script: the network, the target's port name and the LUN are its arguments, never spliced in.
  await node.client.run(
    [
      'sh', '-c',
      'online() { for r in /sys/class/fc_remote_ports/rport-*; do [ "$(cat $r/port_name)" = "0x$2" ] && [ "$(cat $r/port_state)" = Online ] && return 0; done; return 1; }; ' +
        'c=$(ls -d /sys/class/net/"$1"/ctlr_* | head -n1); c=${c##*/}; echo 0 > /sys/bus/fcoe/devices/$c/enabled; ' +
        // Down first (the remote port blocked), so that what follows is the port coming back.
        'for i in $(seq 1 100); do online "$@" || break; sleep 0.1; done; online "$@" && { echo "the remote port 0x$2 stayed online" >&2; exit 1; }; ' +
        'echo 1 > /sys/bus/fcoe/devices/$c/enabled; ' +
        'for i in $(seq 1 300); do for r in /sys/class/fc_remote_ports/rport-*; do ' +
        '[ "$(cat $r/port_name)" = "0x$2" ] && [ "$(cat $r/port_state)" = Online ] && [ "$(cat $r/scsi_target_id)" != -1 ] && rp=$r; done; [ -n "$rp" ] && break; sleep 0.1; done; ' +
        '[ -n "$rp" ] || { echo "the remote port 0x$2 did not come back" >&2; exit 1; }; ' +
        // The transport scans the returning port in the background: the LUN `back` says it has.
        'for i in $(seq 1 300); do ls -d "$rp"/device/target*/*:*:*:"$3" >/dev/null 2>&1 && break; sleep 0.1; done; ' +
        'ls -d "$rp"/device/target*/*:*:*:"$3" >/dev/null 2>&1 || { echo "LUN $3 did not come back with 0x$2" >&2; exit 1; }',
      'bounce', net, port, String(back.fc!.lun),
    ],
    { timeoutMs: 90_000 },
  );
  await scannedIn(ctx, node, back.fc!.wwid);
  ctx.step(`${node.name}: its FC port on ${net} logged out and in again (a link bounce); the remote port 0x${port} is back`);
}

const fcRelogin = orphanPair<{ v: TargetVolume; d: DeviceInfo }>('orphan-fc-relogin-scan', {
  title: 'FC: a detach that leaves the LUN mapped to the host: when the host\'s port logs in again the transport scans every mapped LUN and the volume comes back (caught); unmapped after the detach (terminate_connection), nothing comes back',
  refs: ['scsi_transport_fc: a remote port that comes back is scanned whole (fc_scsi_scan_rport)', 'Cinder: os-brick detaches, then terminate_connection unmaps', 'domain.md sequences 4 and 5'],
  async setup({ ctx, node, phase }) {
    const v = await ctx.createFc({ name: `${phase}-vol`, networks: ctx.networks(1) });
    const d = await ctx.connect(node, v);
    return { v, d };
  },
  async faulty(h, { v, d }) {
    const { ctx, node } = h;
    await ctx.disconnect(node, v, d);
    await ctx.verdict(node, v, { phase: 'detached, the LUN still mapped to the host', device: d, expect: 'clean' });
    await bounce(h, v, v);
    await leftThenSwept(h, v, d, 'faulty: the port logged in again and scanned the mapped LUN back', FC_ALL);
    await ctx.target.client.unmap(v.name);
  },
  async correct(h, { v, d }) {
    const { ctx, node } = h;
    // Another volume mapped to the host and not attached: it must come back with the port, which
    // shows that the transport's scan ran (and found nothing of the unmapped one).
    const control = await ctx.createFc({ name: 'correct-control', networks: ctx.networks(1), ...(node.fcWwpns ? { initiators: node.fcWwpns } : {}) });
    await ctx.disconnect(node, v, d);
    const r = await ctx.target.client.unmap(v.name);
    ctx.step(`target: LUN ${v.fc!.lun} of ${v.name} unmapped from ${r.removed} host port(s) (terminate_connection)`);
    await bounce(h, v, control);
    ctx.step(`${node.name}: LUN ${control.fc!.lun} (${control.name}, mapped to it) came back with the port: the scan ran`);
    // The control's disk is the host's now (the scan brought it): declared, so that it is not taken for the volume's.
    await ctx.verdict(node, v, { phase: 'correct: unmapped, then the port logged in again', device: d, stillAttached: [control], expect: 'clean' });
    await dropDisks(node, [control.fc!.lun]);
  },
});

export const FC_PAIRS: Scenario[] = [fcLunReuse, fcRelogin];
