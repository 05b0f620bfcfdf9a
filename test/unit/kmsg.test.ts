import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildAgent } from '../../src/agent/server.js';
import { parseKmsgRecord, readKernelLog, type KernelLogRecord } from '../../src/system/kmsg.js';
import { FIXTURE_KERNELS, guestFixtureUrl, type FixtureKernel } from './inventory-fixtures.js';

// Records as read(2) on /dev/kmsg returns them, read with `dd if=/dev/kmsg iflag=nonblock bs=16384`
// (test/fixtures/README.md): on compute-2 of a default lab (kernel 6.1.0-56-amd64), a subset of
// whole records; on compute-1 (6.12.117+deb13-amd64), the last 60 records, in a row. Both end with
// a line written to /dev/kmsg from user space with <4>: facility user (1), level 4.
const CAPTURED: Record<FixtureKernel, { first: number[]; count: number | null; sample: [number, KernelLogRecord]; last: KernelLogRecord }> = {
  '6.1.0-56': {
    first: [91, 92, 93],
    count: null,
    // A boot message with a \x09 escape (a tab).
    sample: [2, { seq: 93, level: 6, usec: 0, text: 'rcu: \\x09RCU restricting CPUs from NR_CPUS=8192 to nr_cpu_ids=1.' }],
    last: { seq: 1832, level: 4, usec: 3494996278, text: 'brick-lab fixture: WARNING: a line written to /dev/kmsg' },
  },
  '6.12.117': {
    first: [495, 496, 497],
    count: 60,
    sample: [2, { seq: 497, level: 3, usec: 124765688, text: 'I/O error, dev dm-0, sector 2048 op 0x0:(READ) flags 0x80700 phys_seg 16 prio class 2' }],
    last: { seq: 554, level: 4, usec: 358615755, text: 'brick-lab fixture: WARNING: a line written to /dev/kmsg' },
  },
};
const TOKEN = 'a2VybmVsLWxvZy11bml0LXRlc3QtdG9rZW4tMTIzNDU2';

let kmsgReadable = true;
try {
  accessSync('/dev/kmsg', constants.R_OK);
} catch {
  kmsgReadable = false;
}

describe.each(FIXTURE_KERNELS)('parseKmsgRecord on the records of guest kernel %s', (kernel) => {
  const FIXTURE = readFileSync(guestFixtureUrl('dev-kmsg', kernel), 'utf8');
  /** The fixture cut into records: a record's dictionary lines start with a space. */
  const RAW = FIXTURE.split(/\n(?! )/).filter(Boolean);
  const want = CAPTURED[kernel];

  it('reads sequence number, level, time and text of every captured record, without the dictionary lines', () => {
    const recs = RAW.map(parseKmsgRecord);
    expect(recs.every((r) => r !== null)).toBe(true);
    const seqs = recs.map((r) => r!.seq);
    expect(seqs.slice(0, 3)).toEqual(want.first);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
    // 6.12's are the last records the buffer held, one after the other.
    if (want.count !== null) expect(seqs).toEqual(Array.from({ length: want.count }, (_, i) => want.first[0]! + i));
    expect(recs[want.sample[0]]).toEqual(want.sample[1]);
    // A record with SUBSYSTEM= and DEVICE= lines: only its message.
    const withDict = RAW.findIndex((r) => r.includes('\n SUBSYSTEM='));
    expect(withDict).toBeGreaterThan(0);
    expect(recs[withDict]!.text).not.toContain('\n');
    expect(recs[withDict]!.text).not.toContain('SUBSYSTEM');
    // Written from user space with <4>: facility user (1), level 4 (PRI 12).
    expect(RAW.at(-1)!.startsWith('12,')).toBe(true);
    expect(recs.at(-1)).toEqual(want.last);
  });
});

describe('parseKmsgRecord', () => {

  it('is null for what is not a record', () => {
    for (const bad of ['', 'no semicolon here', 'x,1,2,-;text', '6,seq,0,-;text', ';text']) expect(parseKmsgRecord(bad), bad).toBeNull();
  });
});

describe('readKernelLog', () => {
  it('says which file it could not open and what the agent needs', () => {
    expect(() => readKernelLog(undefined, '/nonexistent/kmsg')).toThrow(/KERNEL_LOG_UNREADABLE|cannot read the kernel log at \/nonexistent\/kmsg/);
    try {
      readKernelLog(0, '/nonexistent/kmsg');
    } catch (e) {
      expect((e as { code: string }).code).toBe('KERNEL_LOG_UNREADABLE');
      expect((e as { hint: string }).hint).toContain('/dev/kmsg');
    }
  });

  // This host's own kernel log (the tests run as root in CI).
  it.skipIf(!kmsgReadable)('marks the next sequence number, and from a mark reads the records since, one per read', () => {
    const mark = readKernelLog();
    expect(mark.records).toEqual([]);
    expect(mark.next).toBeGreaterThan(0);
    const last = readKernelLog(mark.next - 3);
    expect(last.records.length).toBeGreaterThan(0);
    expect(last.records.length).toBeLessThanOrEqual(3 + (last.next - mark.next));
    for (const r of last.records) expect(r.seq).toBeGreaterThanOrEqual(mark.next - 3);
    expect(last.records.at(-1)!.seq).toBe(last.next - 1);
    expect(readKernelLog(last.next).records).toEqual(readKernelLog(last.next).records);
  });
});

describe('GET /v1/node/kernel-log', () => {
  const dir = mkdtempSync(join(tmpdir(), 'brick-kmsg-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('answers a mark and the records since; refuses no token and a bad since; a missing log is a coded 500', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const missing = await buildAgent({ lab: 'unit', node: 'compute-1', role: 'compute', token: TOKEN, kmsgFile: join(dir, 'none') });
    try {
      expect((await missing.inject({ method: 'GET', url: '/v1/node/kernel-log' })).statusCode).toBe(401);
      for (const since of ['-1', 'x', '1.5']) {
        const bad = await missing.inject({ method: 'GET', url: `/v1/node/kernel-log?since=${since}`, headers: auth });
        expect(bad.statusCode, since).toBe(400);
        expect(bad.json().message).toContain('since');
      }
      const gone = await missing.inject({ method: 'GET', url: '/v1/node/kernel-log', headers: auth });
      expect(gone.statusCode).toBe(500);
      expect(gone.json().code).toBe('KERNEL_LOG_UNREADABLE');
    } finally {
      await missing.close();
    }
    if (!kmsgReadable) return;
    const a = await buildAgent({ lab: 'unit', node: 'compute-1', role: 'compute', token: TOKEN });
    try {
      const mark = (await a.inject({ method: 'GET', url: '/v1/node/kernel-log', headers: auth })).json();
      expect(mark.records).toEqual([]);
      const since = (await a.inject({ method: 'GET', url: `/v1/node/kernel-log?since=${mark.next - 2}`, headers: auth })).json();
      expect(since.records.length).toBeGreaterThan(0);
      expect(since.records[0].seq).toBeGreaterThanOrEqual(mark.next - 2);
    } finally {
      await a.close();
    }
  });
});
