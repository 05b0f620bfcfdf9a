import { BrickError } from '../system/errors.js';
import { exec } from '../system/exec.js';
import type { HostFs } from '../system/hostfs.js';
import { sleep } from '../system/wait.js';
import { takeSnapshot } from '../inventory/snapshot.js';
import type { MultipathMap } from '../inventory/model.js';
import { flushDevice, waitForDevice } from './block.js';

/**
 * dm-multipath the way os-brick uses it: the WWID goes into multipath's wwids file, each path is
 * handed to multipathd, and the map (named by its WWID) appears as a dm device.
 */
export async function multipathdRunning(): Promise<boolean> {
  const r = await exec(['multipathd', 'show', 'daemon'], { timeoutMs: 10_000, reject: false }).catch(() => null);
  return r?.exitCode === 0 && /running|idle/.test(r.stdout);
}

export async function multipathMapFor(fs: HostFs, wwid: string, devices: string[]): Promise<string> {
  if (!(await multipathdRunning())) {
    throw new BrickError('MULTIPATHD_NOT_RUNNING', 'multipath was asked for but multipathd is not running on this node');
  }
  await exec(['multipath', '-a', wwid], { timeoutMs: 30_000, reject: false });
  for (const d of devices) await exec(['multipathd', 'add', 'path', d], { timeoutMs: 30_000, reject: false });
  return waitForDevice(`multipath map for ${wwid}`, async () => (await takeSnapshot(fs, { scope: 'paths' })).multipathMaps.find((m) => m.wwid === wwid && m.slaves.length >= devices.length)?.dm ?? null, 60_000);
}

/**
 * A map an earlier failed remove left suspended queues every I/O, a flush's included: resumed
 * first, by the detach step this returns (null when the map is not suspended).
 */
export function resumeIfSuspended(fs: HostFs, m: MultipathMap): { what: string; run: () => Promise<unknown> } | null {
  if (fs.readText(`/sys/block/${m.dm}/dm/suspended`) !== '1') return null;
  return { what: `suspension of multipath map ${m.name ?? m.dm}`, run: () => exec(['dmsetup', 'resume', m.name ?? m.dm], { timeoutMs: 60_000 }) };
}

/**
 * What became of a map at detach: flushed and removed, or (with force, when something still holds
 * it open) its table replaced by one that fails every I/O and its removal deferred to its last
 * close: it no longer names the volume's paths, so they can go from under it.
 */
export type MapFlush = 'removed' | 'deferred';

export async function flushMultipathMap(m: MultipathMap, force: boolean): Promise<MapFlush> {
  // Forced: what cannot be written now is dropped, so a map with no path left must not queue the
  // flush (queue_if_no_path, no_path_retry) until its paths come back.
  if (force) await exec(['multipathd', 'disablequeueing', 'map', m.name ?? m.dm], { timeoutMs: 30_000, reject: false });
  try {
    await flushDevice(`/dev/${m.dm}`);
  } catch (e) {
    if (!force) throw e;
  }
  // A path that just failed makes dm send a change event, and udev's probe holds the map open
  // for a moment: `multipath -f` then says the map is in use. Let udev finish and try again, as
  // os-brick does (3 attempts); a map still in use after that is an error.
  let last: Awaited<ReturnType<typeof exec>> | null = null;
  for (let attempt = 1; attempt <= 4; attempt++) {
    last = await exec(['multipath', '-f', m.name ?? m.dm], { timeoutMs: 60_000, reject: false });
    if (last.exitCode === 0) return 'removed';
    await exec(['udevadm', 'settle', '--timeout=10'], { timeoutMs: 20_000, reject: false });
    await sleep(250 * attempt);
  }
  const why = (last!.stderr || last!.stdout).trim().split('\n').pop() ?? `exit ${last!.exitCode}`;
  if (force) {
    // Held open (a process, a mount in another mount namespace): dm fails every I/O to it from
    // now on, and removes it at its last close.
    const r = await exec(['dmsetup', 'remove', '--force', '--deferred', m.name ?? m.dm], { timeoutMs: 60_000, reject: false });
    const gone = !(await exec(['dmsetup', 'info', m.name ?? m.dm], { timeoutMs: 30_000, reject: false })).stdout.trim();
    if (r.exitCode === 0 || gone) return gone ? 'removed' : 'deferred';
    throw new BrickError('MULTIPATH_FLUSH_FAILED', `multipath -f ${m.name ?? m.dm} failed 4 times (${why}), and so did dmsetup remove --force --deferred: ${(r.stderr || r.stdout).trim()}`);
  }
  throw new BrickError('MULTIPATH_FLUSH_FAILED', `multipath -f ${m.name ?? m.dm} failed 4 times: ${why}`, {
    hint: 'something holds the map open (a mount, a process, a holder device); `dmsetup info` shows its open count; with force=true its table is replaced by one that fails every I/O and it goes at its last close',
  });
}
