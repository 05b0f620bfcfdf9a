/**
 * The kernel's log as /dev/kmsg gives it: one record per read(2), each with its sequence number.
 * A reader that marks the next sequence number and later asks for what came since sees every
 * record written in between, however many the ring buffer holds; counting `dmesg` lines cannot
 * tell a wrapped buffer from a quiet one. No process is started (under TCG a `dmesg` costs a
 * guest 100-400 ms of its vCPU; this read costs a few).
 *
 * A record (Documentation/ABI/testing/dev-kmsg): `PRI,SEQ,USEC,FLAGS[,...];MESSAGE` then
 * dictionary lines that start with a space; non-printable bytes of the message come as \xNN.
 */
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { BrickError } from './errors.js';

export interface KernelLogRecord {
  seq: number;
  /** The syslog level, 0 (emerg) to 7 (debug). */
  level: number;
  /** Microseconds since boot. */
  usec: number;
  text: string;
}

/** One record as read(2) returns it, or null when it is not one (the caller skips it). */
export function parseKmsgRecord(raw: string): KernelLogRecord | null {
  const semi = raw.indexOf(';');
  if (semi < 0) return null;
  const [pri, seq, usec] = raw.slice(0, semi).split(',').map(Number);
  if (!Number.isInteger(pri) || !Number.isInteger(seq) || !Number.isInteger(usec)) return null;
  const end = raw.indexOf('\n', semi);
  return { seq: seq!, level: pri! & 7, usec: usec!, text: raw.slice(semi + 1, end < 0 ? undefined : end) };
}

export interface KernelLog {
  /** The sequence number the next record will have: what a later read passes as `since`. */
  next: number;
  /** The records with a sequence number of at least `since`, oldest first. */
  records: KernelLogRecord[];
}

/**
 * Every record still in the kernel's buffer with a sequence number of at least `since` (none when
 * `since` is not given: a mark). A record overwritten while this read ran (EPIPE) is skipped, as
 * the kernel does for a reader it overtook.
 */
export function readKernelLog(since?: number, file = '/dev/kmsg'): KernelLog {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new BrickError('KERNEL_LOG_UNREADABLE', `cannot read the kernel log at ${file}: ${(e as Error).message}`, {
      hint: 'the agent reads /dev/kmsg as root; in a container it needs the host\'s /dev/kmsg and CAP_SYSLOG',
      cause: e,
    });
  }
  const records: KernelLogRecord[] = [];
  let next = since ?? 0;
  // A record is at most 8 KiB (CONSOLE_EXT_LOG_MAX); a shorter buffer gets EINVAL.
  const buf = Buffer.allocUnsafe(16 * 1024);
  try {
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') break;
        if (code === 'EPIPE') continue;
        throw e;
      }
      if (n === 0) break;
      const r = parseKmsgRecord(buf.toString('utf8', 0, n));
      if (!r) continue;
      next = Math.max(next, r.seq + 1);
      if (since !== undefined && r.seq >= since) records.push(r);
    }
  } finally {
    closeSync(fd);
  }
  return { next, records };
}
