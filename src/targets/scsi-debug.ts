import { join } from 'node:path';
import { BrickError } from '../system/errors.js';
import { exec } from '../system/exec.js';
import { realHostFs, type HostFs } from '../system/hostfs.js';
import { serialQueue } from '../system/serial.js';
import { waitFor } from '../system/wait.js';
import { scsiWwid } from '../volume/ids.js';

/**
 * Local SCSI disks from scsi_debug on a compute node. Stage 2 loads the module with add_host=0 and
 * per_host_store=1, so each added host is one disk with a store of its own (a shared store would
 * make every disk show the same data and defeat signatures).
 */
const DRIVER = '/sys/bus/pseudo/drivers/scsi_debug';

export interface LocalDisk {
  host: number;
  hctl: string;
  device: string | null;
  wwid: string | null;
  sizeBytes: number | null;
}

function hostsOfDriver(fs: HostFs): number[] {
  const out: number[] = [];
  for (const e of fs.list(DRIVER)) {
    const m = /^adapter(\d+)$/.exec(e);
    if (!m) continue;
    for (const h of fs.list(`${DRIVER}/${e}`)) {
      const hm = /^host(\d+)$/.exec(h);
      if (hm) out.push(Number(hm[1]));
    }
  }
  return out.sort((x, y) => x - y);
}

function disksOfHost(fs: HostFs, host: number): LocalDisk[] {
  const out: LocalDisk[] = [];
  for (const e of fs.list('/sys/class/scsi_device')) {
    if (!e.startsWith(`${host}:`)) continue;
    const dev = `/sys/class/scsi_device/${e}/device`;
    const block = fs.list(`${dev}/block`)[0] ?? null;
    const wwid = scsiWwid(fs.readText(`${dev}/wwid`));
    const sectors = block ? fs.readText(`/sys/block/${block}/size`) : null;
    const size = sectors === null ? NaN : Number(sectors) * 512;
    out.push({ host, hctl: e, device: block ? `/dev/${block}` : null, wwid, sizeBytes: Number.isFinite(size) ? size : null });
  }
  return out;
}

export async function listLocalDisks(fs: HostFs = realHostFs): Promise<LocalDisk[]> {
  if (!fs.exists(DRIVER)) return [];
  return hostsOfDriver(fs).flatMap((h) => disksOfHost(fs, h));
}

/**
 * What a local disk may not leave the node below: its store is allocated in full when the disk is
 * made (vzalloc of dev_size_mb), so five 32 MiB disks once drove a 384 MiB compute out of memory
 * and the kernel killed the agent. With this much left (three disks on a fresh 384 MiB compute),
 * a multipath attach, a full inventory and a detach ran without the OOM killer stirring.
 */
export const LOCAL_DISK_RESERVE_MIB = 64;

/** kB from a /proc/meminfo line, or null. */
function meminfoKiB(text: string, key: string): number | null {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(text);
  return m ? Number(m[1]) : null;
}

/** Refuses (LIMIT_REACHED) a disk whose store would leave less than the reserve available. */
export function checkRoomForDisk(fs: HostFs): void {
  const sizeMiB = Number(fs.readText('/sys/module/scsi_debug/parameters/dev_size_mb') ?? '8');
  const meminfo = fs.readText('/proc/meminfo') ?? '';
  const availableKiB = meminfoKiB(meminfo, 'MemAvailable');
  if (availableKiB === null || !Number.isFinite(sizeMiB)) return;
  const leftMiB = Math.floor(availableKiB / 1024) - sizeMiB;
  if (leftMiB < LOCAL_DISK_RESERVE_MIB) {
    throw new BrickError('LIMIT_REACHED', `local disks: another ${sizeMiB} MiB disk would leave ${Math.max(0, leftMiB)} MiB of this node's memory available, under the ${LOCAL_DISK_RESERVE_MIB} MiB its agent and daemons need`, {
      hint: 'remove a local disk (DELETE /v1/local-disks/HOST), or give the node more memory (memoryMiB in the topology)',
    });
  }
}

/** Add one disk (one scsi_debug host) and wait until its block device exists and udev settled. */
export function addLocalDisk(fs: HostFs = realHostFs): Promise<LocalDisk> {
  return oneAtATime(() => addNow(fs));
}

/**
 * Disk changes one at a time: the memory check and telling the new host from the others by what
 * was there before both assume no other add runs in between (two requests at once would both
 * pass the check, and could each take the other's host for its own).
 */
const oneAtATime = serialQueue();

async function addNow(fs: HostFs): Promise<LocalDisk> {
  if (!fs.exists(DRIVER)) {
    throw new BrickError('SCSI_DEBUG_MISSING', 'scsi_debug is not loaded on this node', { hint: 'local disks exist on compute nodes only' });
  }
  checkRoomForDisk(fs);
  const before = new Set(hostsOfDriver(fs));
  await fs.write(join(DRIVER, 'add_host'), '1');
  const host = hostsOfDriver(fs).find((h) => !before.has(h));
  if (host === undefined) throw new BrickError('SCSI_DEBUG_FAILED', 'scsi_debug did not add a host');
  const hasDevice = async (): Promise<LocalDisk | null> => {
    const disks = disksOfHost(fs, host);
    return disks[0]?.device ? disks[0] : null;
  };
  const disk = await waitFor(hasDevice, {
    timeoutMs: 30_000,
    intervalMs: 100,
    onTimeout: () => new BrickError('SCSI_DEBUG_FAILED', `scsi_debug host${host} has no block device after 30 s`),
  });
  // The disk as a host has it once udev is done with it (its links made): udev keeps a record
  // of a device once it has processed its event. A settle alone can run before the disk's event
  // is queued (sd probes asynchronously); seen on trixie, whose links came after the caller read
  // the host. Without udev running there is nothing to wait for.
  const name = disk.device!.slice('/dev/'.length);
  const devno = fs.readText(`/sys/block/${name}/dev`);
  if (devno && fs.exists('/run/udev/control')) {
    await waitFor(() => fs.exists(`/run/udev/data/b${devno}`), {
      timeoutMs: 30_000,
      intervalMs: 100,
      onTimeout: () => new BrickError('SCSI_DEBUG_FAILED', `udev did not take ${disk.device} (no /run/udev/data/b${devno}) within 30 s`),
    });
  }
  await exec(['udevadm', 'settle', '--timeout=60'], { timeoutMs: 70_000, reject: false });
  return disk;
}

/**
 * Remove a local disk: its SCSI devices are deleted, then scsi_debug hosts are removed from the
 * newest down while they hold no device (the driver can only remove its newest host).
 */
export function removeLocalDisk(host: number, fs: HostFs = realHostFs): Promise<{ removed: string[] }> {
  return oneAtATime(() => removeNow(host, fs));
}

async function removeNow(host: number, fs: HostFs): Promise<{ removed: string[] }> {
  const hosts = hostsOfDriver(fs);
  if (!hosts.includes(host)) {
    throw new BrickError('DISK_UNKNOWN', `host: no scsi_debug host ${host} on this node`, { details: { field: 'host' } });
  }
  const removed: string[] = [];
  for (const d of disksOfHost(fs, host)) {
    await fs.write(join('/sys/class/scsi_device', d.hctl, 'device', 'delete'), '1');
    removed.push(`scsi device ${d.hctl}${d.device ? ` (${d.device})` : ''}`);
  }
  for (const h of [...hosts].reverse()) {
    if (disksOfHost(fs, h).length > 0) break;
    await fs.write(join(DRIVER, 'add_host'), '-1');
    removed.push(`scsi_debug host${h}`);
  }
  await exec(['udevadm', 'settle', '--timeout=60'], { timeoutMs: 70_000, reject: false });
  return { removed };
}
