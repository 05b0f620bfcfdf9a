import { open } from 'node:fs/promises';
import { BrickError } from '../system/errors.js';
import { exec } from '../system/exec.js';
import type { HostFs } from '../system/hostfs.js';
import { poll, realClock, waitFor, type Clock } from '../system/wait.js';

/**
 * Write out what the page cache holds for a block device and flush its cache, before the device
 * goes: open it and fsync. This is what `blockdev --flushbufs` does before it drops the cache,
 * without a process (130 ms under TCG), and unlike BLKFLSBUF, which ignores write-back errors,
 * fsync reports them. An offline SCSI device refuses the open (ENXIO): that is a failed flush too.
 */
export async function flushDevice(dev: string, timeoutMs = 60_000): Promise<void> {
  const fail = (why: string): BrickError =>
    new BrickError('FLUSH_FAILED', `flushing ${dev} failed: ${why}`, {
      hint: 'the device may be unreachable; disconnect with force to drop its data, or fix the path first',
    });
  let timer: NodeJS.Timeout | undefined;
  const flush = (async () => {
    const fh = await open(dev, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  })();
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(fail(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  flush.catch(() => undefined); // a flush still running when the timeout fired must not crash the agent later
  try {
    await Promise.race([flush, timeout]);
  } catch (e) {
    if (e instanceof BrickError) throw e;
    throw fail((e as Error).message);
  } finally {
    clearTimeout(timer);
  }
}

/** Remove a SCSI disk from the kernel and wait until sysfs no longer has it. */
export async function deleteScsiDevice(fs: HostFs, block: string, timeoutMs = 30_000): Promise<void> {
  const path = `/sys/block/${block}/device/delete`;
  if (!fs.exists(path)) return;
  await fs.write(path, '1');
  await waitFor(() => !fs.exists(`/sys/block/${block}`), {
    timeoutMs,
    intervalMs: 10,
    onTimeout: () => new BrickError('DEVICE_STUCK', `${block} is still in sysfs ${timeoutMs / 1000} s after delete`),
  });
}

/** Wait for something of a device (a session, a LUN, a map, an identity) to show; DEVICE_TIMEOUT "no WHAT within N s" when it does not. */
export function waitForDevice<T>(what: string, probe: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs: number, intervalMs = 100): Promise<T> {
  return waitFor(probe, { timeoutMs, intervalMs, onTimeout: () => new BrickError('DEVICE_TIMEOUT', `no ${what} within ${timeoutMs / 1000} s`) });
}

export async function settle(): Promise<void> {
  await exec(['udevadm', 'settle', '--timeout=30'], { timeoutMs: 40_000, reject: false });
}

/**
 * The /dev links udev made for block devices, read from udev's own database before the devices
 * go (/run/udev/data/bMAJ:MIN, one "S:" line per link): link path -> kernel name.
 */
export function udevLinksOf(fs: HostFs, blocks: Iterable<string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const b of blocks) {
    // No device, or udev keeps no record of it (udev not running): nothing to wait for.
    const dev = fs.readText(`/sys/class/block/${b}/dev`);
    const data = dev ? fs.readText(`/run/udev/data/b${dev}`) : null;
    for (const line of (data ?? '').split('\n')) if (line.startsWith('S:')) out.set(`/dev/${line.slice(2)}`, b);
  }
  return out;
}

/**
 * Wait until udev has taken away the links of devices that are gone: each link no longer exists,
 * points elsewhere, or its device came back under the same name (then it is not ours to judge).
 * This is what a `udevadm settle` at the end of a detach is for, without waiting for every other
 * event in udev's queue (or for a udevadm process). Returns the links still there at the timeout,
 * or as soon as udevd turns out not to run (its control socket is gone): nothing would take them.
 */
export async function waitLinksGone(fs: HostFs, links: Map<string, string>, timeoutMs = 30_000, clock: Clock = realClock): Promise<{ left: string[]; why: string }> {
  const start = clock.now();
  let left: string[] = [];
  const r = await poll(() => {
    left = [];
    for (const [link, block] of links) {
      if (fs.exists(`/sys/class/block/${block}`)) continue;
      const target = fs.link(link);
      if (target !== null && target.split('/').pop() === block) left.push(link);
    }
    if (left.length === 0) return { left, why: '' };
    if (clock.now() - start > 500 && !fs.exists('/run/udev/control')) return { left, why: 'udevd is not running: links of removed devices stay' };
    return null;
  }, { timeoutMs, intervalMs: 10, clock });
  return r.ok ? r.value : { left, why: `udev left links of removed devices for ${timeoutMs / 1000} s` };
}
