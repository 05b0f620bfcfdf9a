import { open } from 'node:fs/promises';
import type { HostSnapshot } from '../inventory/model.js';
import { stackIndex } from '../inventory/stack.js';
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
    // Read-only, as blockdev --flushbufs opens it: fsync needs no write access, and a disk the
    // kernel set read-only (6.12, after a host was cut off from a LUN the array unmapped) refuses
    // an open for writing (EROFS) while it still takes a flush.
    const fh = await open(dev, 'r');
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

/**
 * One device of a holder stack as the snapshot shows it: a dm device with its name and uuid (from
 * the snapshot's blockDevices), or another kind (an md array) by its kernel name alone.
 */
export interface StackedDevice {
  dev: string;
  dm: { name: string | null; uuid: string | null } | null;
}

/**
 * A stack of holders on a volume's devices that the connector did not make: a linear map made by
 * hand on sda, kpartx's partition maps or LVM on the connector's own multipath map, an md array
 * on a partition. A device removed from under it leaves a table that names a device that is gone.
 */
export interface HeldStack {
  /** What it stands on: one device of the volume or a partition of one, or the paths under `via`. */
  on: string[];
  /** The connector's own multipath map between `on` and the holders, or null. */
  via: StackedDevice | null;
  /** The holders the connector did not make, bottom up: the first sits on `on` (or `via`), the last is the top. */
  holders: StackedDevice[];
}

/**
 * Every stack of holders on a volume's devices that the connector did not make, followed up to
 * its top: one stack per top. `devices` are the volume's kernel devices (sdX; nvmeXnY and its
 * path devices), `ownMaps` the dm devices the connector made for it (its multipath map): a holder
 * that is an own map is the connector's, a holder of an own map is not, except kpartx's partition
 * maps on it with nothing on them (multipath -f takes them with the map). A partition of a device
 * counts as the device. Holders come from every list of the snapshot that has them; a 'paths'
 * snapshot lists dm devices only in blockDevices, so there a partition's holder is seen when it is
 * a dm device (LVM, a map made by hand), not when it is an md array.
 */
export function heldBy(snap: HostSnapshot, devices: Iterable<string>, ownMaps: Iterable<string> = []): HeldStack[] {
  const holders = stackIndex(snap).holders;
  const blocks = new Map(snap.blockDevices.map((b) => [b.name, b]));
  const layer = (dev: string): StackedDevice => {
    const dm = blocks.get(dev)?.dm;
    return { dev, dm: dm ? { name: dm.name, uuid: dm.uuid } : null };
  };
  const own = new Set(ownMaps);
  // kpartx's partition maps on an own map, which multipath-tools' udev rules make with it and
  // `multipath -f` removes with it: the map's own too, unless something stands on them.
  const ownPartition = (h: string, below: string): boolean => {
    const uuid = blocks.get(h)?.dm?.uuid ?? '';
    const under = blocks.get(below)?.dm?.uuid;
    return own.has(below) && Boolean(under) && /^part\d+-/.test(uuid) && uuid.slice(uuid.indexOf('-') + 1) === under && (holders.get(h) ?? []).length === 0;
  };
  const out: HeldStack[] = [];
  const stacksOn = (below: string, on: string[], via: StackedDevice | null): void => {
    for (const h of holders.get(below) ?? []) {
      if (own.has(h) || ownPartition(h, below)) continue;
      for (const chain of upward(holders, h)) out.push({ on, via, holders: chain.map(layer) });
    }
  };
  for (const d of new Set(devices)) for (const x of [d, ...partitionsOf(d, holders.keys())]) stacksOn(x, [x], null);
  for (const m of own) stacksOn(m, blocks.get(m)?.slaves ?? [], layer(m));
  return out;
}

/** Every chain from `dev` up through its holders to a top: [dev, ..., top], one per top. A device met twice (no kernel stacks a loop) ends the chain. */
function upward(holders: Map<string, string[]>, dev: string, below: ReadonlySet<string> = new Set()): string[][] {
  const seen = new Set([...below, dev]);
  const above = (holders.get(dev) ?? []).filter((h) => !seen.has(h));
  if (above.length === 0) return [[dev]];
  return above.flatMap((h) => upward(holders, h, seen).map((chain) => [dev, ...chain]));
}

/** The kernel's partitions of a disk among `names`: sda1 of sda, nvme0n1p1 of nvme0n1 (a 'p' when the disk's name ends in a digit). */
export function partitionsOf(disk: string, names: Iterable<string>): string[] {
  const number = /\d$/.test(disk) ? /^p\d+$/ : /^\d+$/;
  return [...names].filter((n) => n.startsWith(disk) && number.test(n.slice(disk.length)));
}

/** A device of a stack as a message names it: `dm-1 (name mylinear)`, `dm-0 (mpath 3600…)` for the connector's own map, `md0`. */
function labelOf(l: StackedDevice, own = false): string {
  return l.dm?.name ? `${l.dev} (${own ? 'mpath' : 'name'} ${l.dm.name})` : l.dev;
}

/** A stack bottom up, each held by the next: `sda <- dm-1 (name mylinear)`, `sdc,sdd <- dm-0 (mpath 3600…) <- dm-2 (name part1)`. */
export function stackText(s: HeldStack): string {
  return [s.on.join(','), ...(s.via ? [labelOf(s.via, true)] : []), ...s.holders.map((h) => labelOf(h))].join(' <- ');
}

/** A stack a detach left in place, as its result lists it: `holder dm-1 (name mylinear) on sda`. */
export function leftText(s: HeldStack): string {
  return `holder ${s.holders.map((h) => labelOf(h)).join(' <- ')} on ${s.via ? labelOf(s.via, true) : s.on.join(',')}`;
}

/** Where a device of a stack is opened: /dev/mapper/NAME for a named dm device, else /dev/NAME. */
function devPath(l: StackedDevice): string {
  return l.dm?.name ? `/dev/mapper/${l.dm.name}` : `/dev/${l.dev}`;
}

/** The VG of an LVM dm name: "VG-LV", with each '-' of either doubled ("my--vg-lv" is VG my-vg). */
function lvmVg(name: string): string {
  const m = /^((?:[^-]|--)+)-[^-]/.exec(name);
  return (m ? m[1]! : name).replace(/--/g, '-');
}

/** The command that takes one holder down, by what made it (its dm uuid's prefix); `below` is what it stands on. */
function takeDown(l: StackedDevice, below: string): string {
  const uuid = l.dm?.uuid ?? '';
  const name = l.dm?.name ?? l.dev;
  if (/^part\d+-/.test(uuid)) return `kpartx -d ${below}`;
  if (uuid.startsWith('LVM-')) return `vgchange -an ${lvmVg(name)}`;
  if (uuid.startsWith('CRYPT-')) return `cryptsetup close ${name}`;
  if (uuid.startsWith('mpath-')) return `multipath -f ${name}`;
  if (l.dm) return `dmsetup remove ${name}`;
  if (l.dev.startsWith('md')) return `mdadm --stop /dev/${l.dev}`;
  return `take ${l.dev} down`;
}

/** The commands that take every stack down, tops first (a layer under several tops after all of them). */
export function takeDownCommands(stacks: HeldStack[]): string[] {
  const all = stacks.flatMap((s) =>
    s.holders
      .map((h, i) => takeDown(h, i > 0 ? devPath(s.holders[i - 1]!) : s.via ? devPath(s.via) : `/dev/${s.on[0]}`))
      .reverse(),
  );
  return all.filter((c, i) => all.lastIndexOf(c) === i);
}

/** The refusal of a detach that would remove devices from under holders it did not make (DEVICE_HELD). */
export function heldError(stacks: HeldStack[]): BrickError {
  const commands = takeDownCommands(stacks).map((c) => `\`${c}\``);
  return new BrickError('DEVICE_HELD', `devices of the volume carry holders the connector did not make (each device held by the next): ${stacks.map(stackText).join('; ')}`, {
    hint: `take the holders down first, tops first (${commands.join(', then ')}); or detach with force=true to leave them in place, knowing that their tables will then name a device that is gone`,
    details: { held: stacks.map(stackText) },
  });
}
