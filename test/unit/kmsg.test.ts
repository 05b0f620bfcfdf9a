import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { buildAgent } from '../../src/agent/server.js';
import { parseKmsgRecord, readKernelLog } from '../../src/system/kmsg.js';

// Records as read(2) on /dev/kmsg returns them, captured on compute-2 of the default lab (kernel
// 6.1.0-56-amd64) with `dd if=/dev/kmsg iflag=nonblock bs=16384` (test/fixtures/README.md).
const FIXTURE = readFileSync(fileURLToPath(new URL('../fixtures/guest-6.1.0-56/dev-kmsg', import.meta.url)), 'utf8');
/** The fixture cut into records: a record's dictionary lines start with a space. */
const RAW = FIXTURE.split(/\n(?! )/).filter(Boolean);
const TOKEN = 'a2VybmVsLWxvZy11bml0LXRlc3QtdG9rZW4tMTIzNDU2';

let kmsgReadable = true;
try {
  accessSync('/dev/kmsg', constants.R_OK);
} catch {
  kmsgReadable = false;
}

describe('parseKmsgRecord', () => {
  it('reads sequence number, level, time and text of every captured record, without the dictionary lines', () => {
    const recs = RAW.map(parseKmsgRecord);
    expect(recs.every((r) => r !== null)).toBe(true);
    const seqs = recs.map((r) => r!.seq);
    expect(seqs.slice(0, 3)).toEqual([91, 92, 93]);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
    expect(recs[2]).toEqual({ seq: 93, level: 6, usec: 0, text: 'rcu: \\x09RCU restricting CPUs from NR_CPUS=8192 to nr_cpu_ids=1.' });
    // A record with SUBSYSTEM= and DEVICE= lines: only its message.
    const withDict = RAW.findIndex((r) => r.includes('\n SUBSYSTEM='));
    expect(withDict).toBeGreaterThan(0);
    expect(recs[withDict]!.text).not.toContain('\n');
    expect(recs[withDict]!.text).not.toContain('SUBSYSTEM');
    // Written from user space with <4>: facility user (1), level 4.
    expect(recs.at(-1)).toEqual({ seq: 1832, level: 4, usec: 3494996278, text: 'brick-lab fixture: WARNING: a line written to /dev/kmsg' });
  });

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
