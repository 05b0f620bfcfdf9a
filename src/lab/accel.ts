import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exec } from '../system/exec.js';
import { progress } from '../system/log.js';
import { cacheDir } from '../system/paths.js';
import type { GuestImage } from './image/build.js';

export type Accel = 'kvm' | 'tcg';

export interface AccelDecision {
  accel: Accel;
  reason: string;
}

export interface KvmProbe {
  ok: boolean;
  detail: string;
  seconds: number;
}

/**
 * Pure decision: an explicit choice wins (and KVM asked for but unusable is refused by the
 * caller), else KVM only when a probe boot proved it runs this kernel. /dev/kvm existing proves
 * nothing: on PVM hosts it exists and QEMU asserts or hangs.
 */
export function decideAccel(input: { override?: string | undefined; kvmDevice: boolean; probe?: KvmProbe | undefined }): AccelDecision {
  const o = input.override?.trim().toLowerCase();
  if (o === 'tcg') return { accel: 'tcg', reason: 'BRICK_LAB_ACCEL=tcg' };
  if (o === 'kvm') return { accel: 'kvm', reason: 'BRICK_LAB_ACCEL=kvm' };
  if (!input.kvmDevice) return { accel: 'tcg', reason: 'no /dev/kvm on this host' };
  if (!input.probe) return { accel: 'tcg', reason: 'KVM was not probed' };
  if (input.probe.ok) return { accel: 'kvm', reason: `KVM probe boot succeeded in ${input.probe.seconds} s` };
  return { accel: 'tcg', reason: `/dev/kvm exists but a probe boot failed (${input.probe.detail})` };
}

export function accelArgs(accel: Accel): string[] {
  // tb-size=512: a full translation cache is emptied whole, and every translation (the kernel's,
  // the agent's, udev's) is made again. At 128 MiB a compute emptied it every 8-15 s while
  // attaching volumes, and each side of the connector bench found the other's work gone: attach +
  // detach 746 ms at 128 MiB, 504 ms at 512 (the same run's os-brick 1.96 and 2.09 s). TCG's
  // default (1 GiB) would cost up to 1 GiB of RSS per VM; the buffer's pages are taken as used.
  const tb = Number(process.env.BRICK_LAB_TB_MIB ?? 512);
  return accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', `tcg,tb-size=${tb}`, '-cpu', 'max'];
}

async function bootId(): Promise<string> {
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => 'unknown')).trim();
}

/** Boot the guest kernel with KVM into stage 1's probe mode; proof is a line on the second serial port. */
export function probeKvm(image: GuestImage, timeoutMs = 12_000): Promise<KvmProbe> {
  return probeBoot(image, 'kvm', timeoutMs);
}

/**
 * Boot the guest kernel and initramfs into stage 1's probe mode under `accel`: stage 1 loads its
 * modules, writes a line on the second serial port and powers off, with nothing else to do.
 * `seconds` is from QEMU's start to its end. The KVM probe, and bench:boot's floor (three at once,
 * under the lab's accelerator).
 */
export async function probeBoot(image: GuestImage, accel: Accel, timeoutMs = 12_000): Promise<KvmProbe> {
  const dir = join(cacheDir(), 'probe');
  await mkdir(dir, { recursive: true });
  const out = join(dir, `${accel}-${process.pid}-${randomUUID().slice(0, 8)}.out`);
  await rm(out, { force: true });
  const started = performance.now();
  const r = await exec(
    [
      'qemu-system-x86_64',
      '-name', 'brick-lab-probe',
      '-machine', 'q35',
      ...accelArgs(accel),
      '-m', '256',
      '-nodefaults', '-no-reboot', '-display', 'none',
      '-kernel', image.kernel,
      '-initrd', image.initramfs,
      '-append', `console=ttyS0 quiet panic=-1 brick.probe=${accel}`,
      '-serial', 'null',
      '-serial', `file:${out}`,
    ],
    { timeoutMs, reject: false },
  );
  const seconds = Math.round((performance.now() - started) / 100) / 10;
  const text = existsSync(out) ? await readFile(out, 'utf8') : '';
  await rm(out, { force: true });
  if (text.includes(`brick-probe-ok ${accel}`)) return { ok: true, detail: 'guest userland ran', seconds };
  const why = r.timedOut
    ? `no sign of life within ${timeoutMs / 1000} s`
    : `qemu exited ${r.exitCode}: ${(r.stderr.trim().split('\n').pop() ?? '').slice(0, 200)}`;
  return { ok: false, detail: why, seconds };
}

/**
 * KVM or TCG for this host, probed once per host boot (the answer cannot change before a reboot)
 * and cached. BRICK_LAB_ACCEL=kvm|tcg skips the probe.
 */
export async function chooseAccel(image: GuestImage): Promise<AccelDecision> {
  const override = process.env.BRICK_LAB_ACCEL;
  const kvmDevice = existsSync('/dev/kvm');
  if (override || !kvmDevice) return decideAccel({ override, kvmDevice });
  const cache = join(cacheDir(), 'probe', `kvm-${await bootId()}-${image.key}.json`);
  let probe: KvmProbe | undefined;
  try {
    probe = JSON.parse(await readFile(cache, 'utf8')) as KvmProbe;
  } catch {
    progress('accel', '/dev/kvm exists: probing whether KVM can boot the guest kernel');
    probe = await probeKvm(image);
    await writeFile(cache, JSON.stringify(probe));
  }
  return decideAccel({ kvmDevice, probe });
}
