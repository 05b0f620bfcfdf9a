import { isIP } from 'node:net';
import { link, mkdir, open, readdir, readFile, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BrickError } from '../system/errors.js';
import { waitFor } from '../system/wait.js';
import type { IscsiNodeRecord } from '../inventory/model.js';

/**
 * open-iscsi's node database, changed the way iscsiadm changes it. A node record is a text file of
 * "key = value" lines (`/etc/iscsi/nodes/IQN/IP,PORT`, or `IP,PORT,TPGT/IFACE` after discovery)
 * that iscsiadm reads over its built-in defaults, so a key's line order does not matter. iscsiadm
 * and iscsid serialise their writes with a lock (open-iscsi's usr/idbm.c, idbm_lock): whoever
 * manages to hard-link LOCK_DIR/lock to LOCK_DIR/lock.write holds it, and unlinks lock.write to
 * let go. Taking the same lock here makes an update or a delete safe against a concurrent
 * iscsiadm, without an iscsiadm process (90 to 200 ms each under TCG).
 */
export interface NodeDbOptions {
  /** Debian's open-iscsi 2.1.8 is built with /run/lock/iscsi (as upstream's default). */
  lockDir?: string;
  /** How long to wait for the lock; iscsiadm waits 30 s (3000 tries, 10 ms apart). */
  lockTimeoutMs?: number;
}

export const ISCSI_LOCK_DIR = '/run/lock/iscsi';

export async function withNodeDbLock<T>(fn: () => Promise<T>, opts: NodeDbOptions = {}): Promise<T> {
  const dir = opts.lockDir ?? ISCSI_LOCK_DIR;
  const lock = `${dir}/lock`;
  const held = `${dir}/lock.write`;
  await mkdir(dir, { recursive: true, mode: 0o770 });
  await (await open(lock, 'a', 0o666)).close();
  await waitFor(
    async () => {
      try {
        await link(lock, held);
        return true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        return false;
      }
    },
    {
      timeoutMs: opts.lockTimeoutMs ?? 30_000,
      intervalMs: 10,
      onTimeout: () =>
        new BrickError('ISCSI_DB_LOCKED', `open-iscsi's node database is locked: ${held} exists`, {
          hint: 'an iscsiadm or iscsid still holds it; if none runs, the lock is stale: remove the file',
        }),
    },
  );
  try {
    return await fn();
  } finally {
    await unlink(held).catch(() => undefined);
  }
}

/**
 * A record's text with `settings` set: an existing "key = value" line is replaced in place, a
 * missing key is added before "# END RECORD" (iscsiadm leaves out empty values, such as CHAP
 * credentials that were never set). A value may not hold a line break: it would write other keys.
 */
export function setRecordValues(text: string, settings: ReadonlyArray<readonly [string, string]>): string {
  const lines = text.split('\n');
  for (const [key, value] of settings) {
    if (/[\r\n]/.test(key) || /[\r\n]/.test(value)) throw new BrickError('BAD_NODE_SETTING', `node record setting ${JSON.stringify(key)} holds a line break`);
    const line = `${key} = ${value}`;
    const at = lines.findIndex((l) => l.split('=')[0]!.trim() === key);
    if (at >= 0) {
      lines[at] = line;
      continue;
    }
    const end = lines.findIndex((l) => l.trim() === '# END RECORD');
    lines.splice(end >= 0 ? end : lines.length, 0, line);
  }
  return lines.join('\n');
}

/** "IP,PORT" (what `--op new` writes) is the record file itself; "IP,PORT,TPGT" is a directory of one file per iface. */
export function isRecordFile(rec: IscsiNodeRecord): boolean {
  return !/,-?\d+,-?\d+$/.test(rec.path);
}

function recordFile(rec: IscsiNodeRecord, iface: string): string {
  return isRecordFile(rec) ? rec.path : `${rec.path}/${iface}`;
}

/** Set keys of one node record under open-iscsi's lock. */
export async function updateNodeRecord(rec: IscsiNodeRecord, settings: ReadonlyArray<readonly [string, string]>, opts: NodeDbOptions & { iface?: string } = {}): Promise<void> {
  const file = recordFile(rec, opts.iface ?? 'default');
  await withNodeDbLock(async () => {
    const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') throw new BrickError('ISCSI_NO_NODE', `no node record for ${rec.iqn} at ${rec.portal} (${file})`);
      throw e;
    });
    // In place, as iscsiadm writes it: readers take the same lock, and a temporary file beside
    // it would be read as another record by iscsiadm's scan of the directory.
    await writeFile(file, setRecordValues(text, settings));
  }, opts);
}

/**
 * Delete a static node record (the "IP,PORT" file `--op new` makes) as
 * `iscsiadm -m node -T IQN -p PORTAL --op delete` does (idbm_delete_node): the file, then the
 * target's directory when nothing else is left in it. A record made by discovery ("IP,PORT,TPGT"
 * directory) also has a link in the send_targets tree: that one is refused, for iscsiadm to delete.
 */
export async function deleteNodeRecord(rec: IscsiNodeRecord, opts: NodeDbOptions = {}): Promise<void> {
  if (!isRecordFile(rec)) throw new BrickError('ISCSI_DISCOVERY_RECORD', `${rec.path} was made by discovery: delete it with iscsiadm`);
  await withNodeDbLock(async () => {
    await unlink(rec.path).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
    const target = dirname(rec.path);
    if ((await readdir(target).catch(() => ['?'])).length === 0) await rmdir(target).catch(() => undefined);
  }, opts);
}

/** Where a static record (what `--op new` makes) lives: nodes/IQN/IP,PORT. */
export function staticRecordPath(root: string, iqn: string, address: string, port: number): string {
  return `${root}/${iqn}/${address},${port}`;
}

interface LearnedRecord {
  /** What iscsiadm's defaults came from when it was learned (iscsid.conf's stat). */
  source: string;
  lines: string[];
  name: number;
  address: number;
  port: number;
}

/**
 * The static node record `iscsiadm -m node -T IQN -p IP:PORT --op new` writes, learned from one it
 * wrote on this host, and written again for other targets without an iscsiadm process (about
 * 200 ms under TCG). Such a record is iscsid.conf's defaults and the default iface, with three
 * lines of its own: `node.name`, `node.conn[0].address` and `node.conn[0].port` (compare the two
 * records captured in test/fixtures). So a record learned after iscsid.conf last changed, with
 * those three lines replaced, is what iscsiadm would write; a changed iscsid.conf (its stat) makes
 * the connector ask iscsiadm again and learn anew. Only IPv4 portals are written this way: how a
 * host name or an IPv6 address is kept is iscsiadm's to say.
 */
export class NodeRecordTemplate {
  private learned: LearnedRecord | null = null;

  constructor(
    private readonly root: string,
    private readonly conf = `${dirname(root)}/iscsid.conf`,
  ) {}

  /**
   * Learn from the text of a record iscsiadm has just made for (iqn, address, port), before
   * anything else changed it. A record whose other lines name the target or the address too is
   * not learned (a later iscsiadm that wrote them elsewhere as well would be copied wrong).
   */
  async learn(iqn: string, address: string, port: number, text: string): Promise<boolean> {
    const source = await this.source();
    const lines = text.split('\n');
    const at = (line: string): number[] => lines.flatMap((l, i) => (l === line ? [i] : []));
    const name = at(`node.name = ${iqn}`);
    const addr = at(`node.conn[0].address = ${address}`);
    const prt = at(`node.conn[0].port = ${port}`);
    const mentions = lines.filter((l) => l.includes(iqn) || l.includes(address)).length;
    const framed = lines[0]?.startsWith('# BEGIN RECORD') === true && lines.includes('# END RECORD');
    if (source === null || !framed || name.length !== 1 || addr.length !== 1 || prt.length !== 1 || mentions !== 2) {
      this.learned = null;
      return false;
    }
    this.learned = { source, lines, name: name[0]!, address: addr[0]!, port: prt[0]! };
    return true;
  }

  /** Whether a record for this portal's address can be written from what was learned, iscsid.conf unchanged since. */
  async ready(address: string): Promise<boolean> {
    return this.learned !== null && isIP(address) === 4 && this.learned.source === (await this.source());
  }

  /**
   * The record for (iqn, address, port) with `settings` set, as iscsiadm would write it and then
   * change it: written under open-iscsi's lock, unless a record is already there (then left as
   * it is). Returns whether a record is there now; false when nothing was learned for this
   * iscsid.conf (ask iscsiadm).
   */
  async write(iqn: string, address: string, port: number, settings: ReadonlyArray<readonly [string, string]>, opts: NodeDbOptions = {}): Promise<boolean> {
    if (!(await this.ready(address))) return false;
    const t = this.learned!;
    const lines = [...t.lines];
    lines[t.name] = `node.name = ${iqn}`;
    lines[t.address] = `node.conn[0].address = ${address}`;
    lines[t.port] = `node.conn[0].port = ${port}`;
    const text = setRecordValues(lines.join('\n'), settings);
    const file = staticRecordPath(this.root, iqn, address, port);
    await withNodeDbLock(async () => {
      // iscsiadm's own modes: the target's directory 0700, the record 0600.
      await mkdir(dirname(file), { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e;
      });
      await writeFile(file, text, { mode: 0o600, flag: 'wx' }).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e;
      });
    }, opts);
    return true;
  }

  private async source(): Promise<string | null> {
    const st = await stat(this.conf).catch(() => null);
    return st ? `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}` : null;
  }
}
