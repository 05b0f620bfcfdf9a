import type { DeviceInfo, TargetVolume } from '../agent/api/types.js';
import { waitFor } from '../system/wait.js';
import { check, ScenarioFailure, type ComputeHandle, type Expected, type ScenarioContext } from './context.js';
import type { Half } from './pair.js';

/** Steps and expectations the iSCSI pairs share (orphan-pairs.ts, field-pairs.ts). */

export const firstNetwork = (ctx: ScenarioContext): string[] => ctx.networks(1);

/** "address:port" of a volume's portal on `network` (its first portal when none is named), as iSCSI writes it. */
export function portalOf(v: TargetVolume, network?: string): string {
  const p = network ? v.portals.find((x) => x.network === network) : v.portals[0];
  check(p, `${v.name} has no portal${network ? ` on ${network}` : ''}`);
  return `${p.address}:${p.port}`;
}

/** The iSCSI session (sid, SCSI host) of a volume's first portal, from the node's snapshot. */
export async function sessionOf(ctx: ScenarioContext, node: ComputeHandle, v: TargetVolume): Promise<{ sid: number; host: number }> {
  const s = (await ctx.snapshot(node)).iscsiSessions.find((x) => x.targetIqn === v.iscsi!.iqn);
  check(s && s.host !== null, `${node.name}: no session to ${v.iscsi!.iqn}`);
  return { sid: s.sid, host: s.host! };
}

/**
 * Cut these sessions' recovery timeout to 5 s, the lab's stand-in for replacement_timeout's 120:
 * a failed path's device goes offline in seconds.
 */
export async function shortRecovery(node: ComputeHandle, sids: number[]): Promise<void> {
  await node.client.run(['sh', '-c', 'for s in "$@"; do echo 5 > "/sys/class/iscsi_session/session$s/recovery_tmo" || exit 1; done', 'recovery', ...sids.map(String)], { timeoutMs: 30_000 });
}

/**
 * Reset the node's TCP connections to these portals ("address:port") now, as an iSCSI connection's
 * no-op timeouts (node.conn[0].timeo.noop_out_interval and _timeout: 10 s) or an NVMe/TCP
 * controller's keep-alive timeout would once their path is down: the lab's shortcut to a path
 * declared failed, with the kernel's own socket destroy (ss -K).
 */
export async function resetConnections(node: ComputeHandle, portals: string[]): Promise<void> {
  await node.client.run(['sh', '-c', 'for p in "$@"; do ss -K dst "$p" >/dev/null || exit 1; done', 'reset', ...portals], { timeoutMs: 30_000 });
}

/** An iSCSI volume made and attached, over the first data network or over two with dm-multipath. */
export interface Attached {
  v: TargetVolume;
  d: DeviceInfo;
}

/** The faulty half is the lab's from its attach on; the correct half attaches through the connector under test. */
export async function attachIscsi({ ctx, node, phase }: Half, name: string, paths: 1 | 2 = 1): Promise<Attached> {
  const v = await ctx.createIscsi({ name, networks: paths === 1 ? firstNetwork(ctx) : ctx.networks(2) });
  const d = await ctx.connect(node, v, paths === 2, { builtin: phase === 'faulty' });
  return { v, d };
}

/** An iSCSI volume attached over two portals, with the dm-multipath map over both paths checked. */
export async function attachMultipath(h: Half, name: string): Promise<Attached> {
  const a = await attachIscsi(h, name, 2);
  check(a.d.multipath && a.d.devices.length === 2, `${h.node.name}: expected a dm-multipath map over two paths, got ${a.d.path} over ${a.d.devices.join(', ')}`);
  return a;
}

/**
 * Wait until every one of these sysfs attributes reads a value `ok` takes, and return what they
 * read; a timeout fails the step with what each read last.
 */
export async function waitAttrs(node: ComputeHandle, files: string[], ok: (value: string) => boolean, what: string, timeoutMs = 60_000): Promise<string[]> {
  let last: string[] = [];
  return waitFor(
    async () => {
      const r = await node.client.exec(['cat', ...files]);
      last = r.stdout.trim().split('\n');
      return r.exitCode === 0 && last.length === files.length && last.every(ok) ? last : null;
    },
    { timeoutMs, intervalMs: 500, onTimeout: () => new ScenarioFailure(`${node.name}: ${what} after ${timeoutMs / 1000} s: ${files.map((f, i) => `${f} = ${last[i] ?? '?'}`).join(', ')}`) },
  );
}

/**
 * Wait until multipathd holds these disks with their WWID. It learns of a disk from udev a moment
 * after the attach returned (later on a busy host); a disk that goes offline before then is taken
 * with no WWID. A fault meant for an attached disk is injected after this.
 */
export async function multipathdHolds(node: ComputeHandle, devs: string[], timeoutMs = 30_000): Promise<void> {
  let last = '';
  await waitFor(
    async () => {
      // Raw output pads nothing: a path taken with no WWID reads "sda " and an empty field.
      const r = await node.client.exec(['multipathd', 'show', 'paths', 'raw', 'format', '%d %w']);
      last = r.stdout.trim();
      const held = r.exitCode === 0 ? r.stdout.split('\n').map((l) => l.trim().split(' ')).filter((f) => f.length === 2 && f[1] !== '') : [];
      return devs.every((d) => held.some((f) => f[0] === d));
    },
    { timeoutMs, intervalMs: 200, onTimeout: () => new ScenarioFailure(`${node.name}: multipathd did not take ${devs.join(', ')} within ${timeoutMs / 1000} s; it shows: ${last || 'nothing'}`) },
  );
}

/**
 * The disk of `wwid` that a scan brought in, once the host has it as a volume attached by hand
 * would be: its block device, then udev's work on it done (multipathd learns of a disk from
 * udev's event, which comes after the rules made the links). A scan returns before the disk's
 * block device and its uevent exist (sd probes asynchronously), so a `udevadm settle` right
 * after it can return with the event still to come. Returns the block device's name.
 */
export async function scannedIn(ctx: ScenarioContext, node: ComputeHandle, wwid: string, timeoutMs = 60_000): Promise<string> {
  const dev = await waitFor(async () => (await ctx.snapshot(node)).scsiDevices.find((x) => x.wwid === wwid && x.block)?.block ?? null, {
    timeoutMs,
    intervalMs: 300,
    onTimeout: () => new ScenarioFailure(`${node.name}: no disk with WWID ${wwid} within ${timeoutMs / 1000} s of the scan`),
  });
  await multipathdHolds(node, [dev], timeoutMs);
  return dev;
}

/** The device files of a SCSI disk's state and of a session's state. */
export const deviceState = (dev: string): string => `/sys/block/${dev}/device/state`;
export const sessionState = (sid: number): string => `/sys/class/iscsi_session/session${sid}/state`;

/**
 * Everything an attached iSCSI volume has on a lab compute: its SCSI device and disk, udev's links
 * to it, multipathd's watch of its path (multipathd runs on every compute and tracks every SCSI
 * disk, in a map or not), its session and its node record.
 */
export const ISCSI_ALL = ['scsi-device', 'block-device', 'by-path-link', 'by-id-link', 'multipathd-path', 'iscsi-session', 'iscsi-node-record'] as const satisfies Expected;
/** The same with no udev: no links, and multipathd, which learns of paths through udev, tracks none. */
export const ISCSI_NO_UDEV = ['scsi-device', 'block-device', 'iscsi-session', 'iscsi-node-record'] as const satisfies Expected;
/** What a LUN brought back by a scan has: no session or record of its own (another LUN's session serves it). */
export const ISCSI_DEVICE = ['scsi-device', 'block-device', 'by-path-link', 'by-id-link', 'multipathd-path'] as const satisfies Expected;
