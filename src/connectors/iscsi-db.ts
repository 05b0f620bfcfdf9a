import { link, mkdir, open, readdir, readFile, rmdir, unlink, writeFile } from 'node:fs/promises';
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
