import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { BrickError } from '../system/errors.js';
import { exec } from '../system/exec.js';

/** Steps every connector shares on a block device. */
export async function flushDevice(dev: string): Promise<void> {
  const r = await exec(['blockdev', '--flushbufs', dev], { timeoutMs: 60_000, reject: false });
  if (r.exitCode !== 0) {
    throw new BrickError('FLUSH_FAILED', `flushing ${dev} failed: ${r.stderr.trim() || `exit ${r.exitCode}`}`, {
      hint: 'the device may be unreachable; disconnect with force to drop its data, or fix the path first',
      statusCode: 409,
    });
  }
}

/** Remove a SCSI disk from the kernel and wait until sysfs no longer has it. */
export async function deleteScsiDevice(block: string, timeoutMs = 30_000): Promise<void> {
  const path = `/sys/block/${block}/device/delete`;
  if (!existsSync(path)) return;
  await writeFile(path, '1');
  const deadline = Date.now() + timeoutMs;
  while (existsSync(`/sys/block/${block}`)) {
    if (Date.now() > deadline) throw new BrickError('DEVICE_STUCK', `${block} is still in sysfs ${timeoutMs / 1000} s after delete`, { statusCode: 409 });
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined>, timeoutMs: number, stepMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new BrickError('DEVICE_TIMEOUT', `no ${what} within ${timeoutMs / 1000} s`, { statusCode: 504 });
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export async function settle(): Promise<void> {
  await exec(['udevadm', 'settle', '--timeout=30'], { timeoutMs: 40_000, reject: false });
}
