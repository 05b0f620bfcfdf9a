import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deleteNodeRecord, isRecordFile, NodeRecordTemplate, setRecordValues, staticRecordPath, updateNodeRecord, withNodeDbLock } from '../../src/connectors/iscsi-db.js';
import { iscsiNodes } from '../../src/inventory/read-scsi.js';
import { realHostFs } from '../../src/system/hostfs.js';
import { FIXTURE_KERNELS, guestFixturePath, type FixtureKernel } from './inventory-fixtures.js';

// `iscsiadm -m node -T iqn.2026-11.io.brick-lab:fixture.record -p 10.10.1.10:3260 --op new` in each
// captured guest (open-iscsi 2.1.8 on Debian bookworm, 6.1.0-56-amd64; 2.1.11 on trixie,
// 6.12.117+deb13-amd64, read from /var/lib/iscsi/nodes): the record file it wrote.
const IQN = 'iqn.2026-11.io.brick-lab:fixture.record';
// The same, for another target, address and port (test/fixtures/README.md): what the template
// learned from the first must write byte for byte.
const OTHER_IQN = 'iqn.2003-01.org.linux-iscsi.array:sn.4f2a9e';

/**
 * What each guest's iscsiadm writes differently in such a record: 2.1.11 marks its own version,
 * gives the transmit thread priority 0 where 2.1.8 gave -20 (a nice value), and adds
 * node.session.conn_reopen_log_freq, a key 2.1.8 does not know.
 */
const RECORD_OF: Record<FixtureKernel, { version: string; xmitThreadPriority: string; connReopenLogFreq: string[] }> = {
  '6.1.0-56': { version: '2.1.8', xmitThreadPriority: '-20', connReopenLogFreq: [] },
  '6.12.117': { version: '2.1.11', xmitThreadPriority: '0', connReopenLogFreq: ['1'] },
};

let dir: string;
let db: string;
let lockDir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'brick-iscsi-db-'));
  db = join(dir, 'nodes');
  lockDir = join(dir, 'lock');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const valueOf = (text: string, key: string): string[] => text.split('\n').filter((l) => l.split('=')[0]!.trim() === key).map((l) => l.split('=').slice(1).join('=').trim());

describe("open-iscsi's database lock", () => {
  it('holds lock.write while the work runs and lets go after, also when it throws', async () => {
    let seen = false;
    await withNodeDbLock(async () => {
      seen = existsSync(join(lockDir, 'lock.write'));
    }, { lockDir });
    expect(seen).toBe(true);
    expect(existsSync(join(lockDir, 'lock.write'))).toBe(false);
    await expect(withNodeDbLock(async () => {
      throw new Error('boom');
    }, { lockDir })).rejects.toThrow('boom');
    expect(existsSync(join(lockDir, 'lock.write'))).toBe(false);
  });

  it('waits for a holder (as for a running iscsiadm) and runs after it', async () => {
    const order: string[] = [];
    let release!: () => void;
    const first = withNodeDbLock(async () => {
      order.push('first in');
      await new Promise<void>((r) => (release = r));
      order.push('first out');
    }, { lockDir });
    await new Promise((r) => setTimeout(r, 20));
    const second = withNodeDbLock(async () => order.push('second'), { lockDir });
    await new Promise((r) => setTimeout(r, 50));
    expect(order).toEqual(['first in']);
    release();
    await Promise.all([first, second]);
    expect(order).toEqual(['first in', 'first out', 'second']);
  });

  it('gives up on a lock nobody lets go, saying which file holds it', async () => {
    await mkdir(lockDir, { recursive: true });
    await writeFile(join(lockDir, 'lock.write'), '');
    await expect(withNodeDbLock(async () => 1, { lockDir, lockTimeoutMs: 50 })).rejects.toMatchObject({ code: 'ISCSI_DB_LOCKED', message: expect.stringContaining('lock.write') });
  });
});

describe.each(FIXTURE_KERNELS)('the records iscsiadm wrote on guest kernel %s', (kernel) => {
  const FIXTURE = guestFixturePath('iscsi-node-record', kernel);
  const OTHER = guestFixturePath('iscsi-node-record-other', kernel);
  beforeEach(async () => {
    await mkdir(join(db, IQN), { recursive: true });
    await writeFile(join(db, IQN, '10.10.1.10,3260'), await readFile(FIXTURE, 'utf8'), { mode: 0o600 });
  });

  it("is the record of the guest's open-iscsi, which the other capture's differs from in three lines only", async () => {
    const text = await readFile(FIXTURE, 'utf8');
    const want = RECORD_OF[kernel];
    expect(text.split('\n')[0]).toBe(`# BEGIN RECORD ${want.version}`);
    expect(valueOf(text, 'node.session.xmit_thread_priority')).toEqual([want.xmitThreadPriority]);
    expect(valueOf(text, 'node.session.conn_reopen_log_freq')).toEqual(want.connReopenLogFreq);
    // Everything else is the same key = value in the same order, on both kernels.
    const differs = (l: string): boolean => l.startsWith('# BEGIN RECORD') || /^node\.session\.(xmit_thread_priority|conn_reopen_log_freq) =/.test(l);
    const rest = (t: string): string[] => t.split('\n').filter((l) => !differs(l));
    for (const k of FIXTURE_KERNELS) expect(rest(await readFile(guestFixturePath('iscsi-node-record', k), 'utf8'))).toEqual(rest(text));
  });

  describe('setRecordValues on the record iscsiadm --op new wrote', () => {
    it('replaces existing keys in place and keeps every other line', async () => {
      const text = await readFile(FIXTURE, 'utf8');
      expect(valueOf(text, 'node.session.scan')).toEqual(['auto']);
      expect(valueOf(text, 'node.startup')).toEqual(['manual']);
      const out = setRecordValues(text, [['node.session.scan', 'manual'], ['node.startup', 'automatic']]);
      expect(valueOf(out, 'node.session.scan')).toEqual(['manual']);
      expect(valueOf(out, 'node.startup')).toEqual(['automatic']);
      // node.conn[0].startup is another key: untouched.
      expect(valueOf(out, 'node.conn[0].startup')).toEqual(['manual']);
      expect(out.split('\n').length).toBe(text.split('\n').length);
      const changed = out.split('\n').filter((l, i) => l !== text.split('\n')[i]);
      expect(changed).toEqual(['node.startup = automatic', 'node.session.scan = manual']);
    });

    it('adds keys iscsiadm left out (empty CHAP credentials) before the end marker', async () => {
      const text = await readFile(FIXTURE, 'utf8');
      expect(valueOf(text, 'node.session.auth.username')).toEqual([]);
      const out = setRecordValues(text, [['node.session.auth.authmethod', 'CHAP'], ['node.session.auth.username', 'user'], ['node.session.auth.password', 'p = w']]);
      const lines = out.trimEnd().split('\n');
      expect(lines.at(-1)).toBe('# END RECORD');
      expect(lines.at(-3)).toBe('node.session.auth.username = user');
      expect(lines.at(-2)).toBe('node.session.auth.password = p = w');
      expect(valueOf(out, 'node.session.auth.authmethod')).toEqual(['CHAP']);
    });

    it('refuses a value with a line break, which would write another key', async () => {
      const text = await readFile(FIXTURE, 'utf8');
      expect(() => setRecordValues(text, [['node.session.auth.password', 'x\nnode.startup = onboot']])).toThrow(/line break/);
    });
  });

  describe('node records in a copy of the database', () => {
    it('updates a record that the inventory then reads back', async () => {
      const [rec] = await iscsiNodes(realHostFs, db);
      expect(rec).toMatchObject({ iqn: IQN, portal: '10.10.1.10:3260', tpgt: '-1' });
      expect(isRecordFile(rec!)).toBe(true);
      await updateNodeRecord(rec!, [['node.session.scan', 'manual']], { lockDir });
      expect(valueOf(await readFile(rec!.path, 'utf8'), 'node.session.scan')).toEqual(['manual']);
    });

    it('deletes a record and the target directory it leaves empty, as iscsiadm --op delete does', async () => {
      await writeFile(join(db, IQN, '10.10.2.10,3260'), await readFile(FIXTURE, 'utf8'));
      const recs = await iscsiNodes(realHostFs, db);
      expect(recs.map((r) => r.portal)).toEqual(['10.10.1.10:3260', '10.10.2.10:3260']);
      await deleteNodeRecord(recs[0]!, { lockDir });
      expect(await readdir(join(db, IQN))).toEqual(['10.10.2.10,3260']);
      await deleteNodeRecord(recs[1]!, { lockDir });
      expect(await readdir(db)).toEqual([]);
      // Deleting again is a no-op, as the record is already gone.
      await deleteNodeRecord(recs[1]!, { lockDir });
    });

    it('leaves a record made by discovery (IP,PORT,TPGT directory) to iscsiadm', async () => {
      await mkdir(join(db, IQN, '10.10.2.10,3260,1'));
      await writeFile(join(db, IQN, '10.10.2.10,3260,1', 'default'), await readFile(FIXTURE, 'utf8'));
      const rec = (await iscsiNodes(realHostFs, db)).find((r) => r.tpgt === '1')!;
      expect(isRecordFile(rec)).toBe(false);
      await expect(deleteNodeRecord(rec, { lockDir })).rejects.toMatchObject({ code: 'ISCSI_DISCOVERY_RECORD' });
      // An update goes into the iface file inside it.
      await updateNodeRecord(rec, [['node.startup', 'automatic']], { lockDir });
      expect(valueOf(await readFile(join(rec.path, 'default'), 'utf8'), 'node.startup')).toEqual(['automatic']);
    });

    it('says which record is missing when asked to update one that is not there', async () => {
      const [rec] = await iscsiNodes(realHostFs, db);
      await rm(rec!.path);
      await expect(updateNodeRecord(rec!, [['node.startup', 'automatic']], { lockDir })).rejects.toMatchObject({ code: 'ISCSI_NO_NODE' });
      expect(existsSync(join(lockDir, 'lock.write'))).toBe(false);
    });
  });

  describe('NodeRecordTemplate: the record iscsiadm --op new writes, learned and written again', () => {
    const conf = (): string => join(dir, 'iscsid.conf');
    beforeEach(async () => {
      await writeFile(conf(), 'node.startup = manual\n');
    });

    it('writes for another target what iscsiadm wrote for it (the captured pair), under the lock, with its modes', async () => {
      const t = new NodeRecordTemplate(db, conf());
      expect(await t.ready('10.10.2.10')).toBe(false);
      expect(await t.write(OTHER_IQN, '10.10.2.10', 3261, [], { lockDir })).toBe(false);
      expect(await t.learn(IQN, '10.10.1.10', 3260, await readFile(FIXTURE, 'utf8'))).toBe(true);
      expect(await t.write(OTHER_IQN, '10.10.2.10', 3261, [], { lockDir })).toBe(true);
      const file = staticRecordPath(db, OTHER_IQN, '10.10.2.10', 3261);
      expect(await readFile(file, 'utf8')).toBe(await readFile(OTHER, 'utf8'));
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect((await stat(join(db, OTHER_IQN))).mode & 0o777).toBe(0o700);
      expect(existsSync(join(lockDir, 'lock.write'))).toBe(false);
      // The inventory reads it as the record iscsiadm made.
      const rec = iscsiNodes(realHostFs, db).find((r) => r.iqn === OTHER_IQN)!;
      expect(rec).toMatchObject({ portal: '10.10.2.10:3261', tpgt: '-1', startup: 'manual', iface: 'default' });
    });

    it("writes os-brick's settings into it at once, as an update after iscsiadm would", async () => {
      const t = new NodeRecordTemplate(db, conf());
      await t.learn(IQN, '10.10.1.10', 3260, await readFile(FIXTURE, 'utf8'));
      const settings = [['node.session.scan', 'manual'], ['node.startup', 'automatic']] as const;
      await t.write(OTHER_IQN, '10.10.2.10', 3261, settings, { lockDir });
      expect(await readFile(staticRecordPath(db, OTHER_IQN, '10.10.2.10', 3261), 'utf8')).toBe(setRecordValues(await readFile(OTHER, 'utf8'), settings));
    });

    it('leaves a record that is already there as it is', async () => {
      const t = new NodeRecordTemplate(db, conf());
      await t.learn(IQN, '10.10.1.10', 3260, await readFile(FIXTURE, 'utf8'));
      const file = staticRecordPath(db, IQN, '10.10.1.10', 3260);
      await writeFile(file, 'changed by hand\n');
      expect(await t.write(IQN, '10.10.1.10', 3260, [['node.startup', 'automatic']], { lockDir })).toBe(true);
      expect(await readFile(file, 'utf8')).toBe('changed by hand\n');
    });

    it('asks iscsiadm again once iscsid.conf changed, for an IPv6 or named portal, and learns nothing from a record it cannot tell apart', async () => {
      const t = new NodeRecordTemplate(db, conf());
      const text = await readFile(FIXTURE, 'utf8');
      await t.learn(IQN, '10.10.1.10', 3260, text);
      expect(await t.ready('fd00::10')).toBe(false);
      expect(await t.ready('array.example.com')).toBe(false);
      expect(await t.ready('10.10.2.10')).toBe(true);
      await writeFile(conf(), 'node.startup = automatic\n');
      expect(await t.ready('10.10.2.10')).toBe(false);
      expect(await t.write(OTHER_IQN, '10.10.2.10', 3261, [], { lockDir })).toBe(false);
      expect(existsSync(join(db, OTHER_IQN))).toBe(false);
      // Learnt again: ready. A record naming the address on another line too is not learnt.
      expect(await t.learn(IQN, '10.10.1.10', 3260, text)).toBe(true);
      expect(await t.ready('10.10.2.10')).toBe(true);
      expect(await t.learn(IQN, '10.10.1.10', 3260, text.replace('node.discovery_port = 0', 'node.discovery_address = 10.10.1.10\nnode.discovery_port = 0'))).toBe(false);
      expect(await t.ready('10.10.2.10')).toBe(false);
      // Nor one that is not iscsiadm's record (no markers), nor one for another target.
      expect(await t.learn(IQN, '10.10.1.10', 3260, text.replace('# END RECORD', ''))).toBe(false);
      expect(await t.learn(OTHER_IQN, '10.10.1.10', 3260, text)).toBe(false);
    });
  });
});
