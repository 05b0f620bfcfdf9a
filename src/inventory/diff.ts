import type { HostSnapshot, ScsiDevice } from './model.js';

/** One line of a diff: which collection, a stable key, and the item. */
export interface DiffEntry {
  kind: string;
  key: string;
  item: unknown;
}

export interface SnapshotDiff {
  added: DiffEntry[];
  removed: DiffEntry[];
}

/**
 * The FC transport's ports are left out: they are the fabric's (the lab's FCoE ports and the logins
 * between them), which no attach or detach makes or takes away.
 */
const KEYS: { [K in keyof Omit<HostSnapshot, 'takenAt' | 'scope' | 'fcHosts' | 'fcRemotePorts'>]: (x: HostSnapshot[K][number]) => string } = {
  scsiDevices: (d) => `${d.hctl} ${d.wwid ?? ''} ${d.block ?? ''}`,
  iscsiSessions: (x) => `session${x.sid} ${x.targetIqn ?? ''} ${x.portal ?? ''}`,
  iscsiNodes: (n) => `${n.iqn} ${n.portal}`,
  iscsiDiscovery: (d) => `${d.type} ${d.portal}`,
  iscsiIfaces: (i) => i.name,
  nvmeControllers: (c) => `${c.name} ${c.subsysNqn ?? ''} ${c.traddr ?? ''}:${c.trsvcid ?? ''}`,
  nvmeNamespaces: (n) => `${n.name} ${n.uuid ?? ''}`,
  blockDevices: (b) => b.name,
  links: (l) => `${l.dir}/${l.name} -> ${l.target ?? '(nothing)'}`,
  multipathMaps: (m) => `${m.dm} ${m.wwid ?? ''}`,
};

/**
 * The fields each key is made of: two items of a collection have the same key exactly when these
 * fields are equal, which is how the diff compares the long runs that did not change without
 * making a key for each item (test/unit/inventory-diff.test.ts holds the two together).
 */
export const KEY_FIELDS: { [K in keyof typeof KEYS]: ReadonlyArray<keyof HostSnapshot[K][number]> } = {
  scsiDevices: ['hctl', 'wwid', 'block'],
  iscsiSessions: ['sid', 'targetIqn', 'portal'],
  iscsiNodes: ['iqn', 'portal'],
  iscsiDiscovery: ['type', 'portal'],
  iscsiIfaces: ['name'],
  nvmeControllers: ['name', 'subsysNqn', 'traddr', 'trsvcid'],
  nvmeNamespaces: ['name', 'uuid'],
  blockDevices: ['name'],
  links: ['dir', 'name', 'target'],
  multipathMaps: ['dm', 'wwid'],
};

/** Whether two items of a collection have the same key. */
export function sameKey(kind: keyof typeof KEYS, a: unknown, b: unknown): boolean {
  for (const f of KEY_FIELDS[kind] as readonly string[]) if (((a as Record<string, unknown>)[f] ?? null) !== ((b as Record<string, unknown>)[f] ?? null)) return false;
  return true;
}

/** The key an item of a collection has in a diff: two items with the same key are the same thing, unchanged. */
export function diffKey<K extends keyof typeof KEYS>(kind: K, item: HostSnapshot[K][number]): string {
  return (KEYS[kind] as (x: unknown) => string)(item);
}

/**
 * What appeared and what went between two snapshots, by stable keys per collection. Snapshots list
 * each collection in a stable order, so a host that changed little has long runs at the start and
 * the end that pair up item by item: those are compared field by field, and only what lies between
 * is keyed (a host of a thousand links and one detach keys a handful).
 */
export function diffSnapshots(before: HostSnapshot, after: HostSnapshot): SnapshotDiff {
  // A 'paths' snapshot leaves whole collections out: diffing it would invent changes.
  if (before.scope === 'paths' || after.scope === 'paths') throw new Error("a diff needs two full snapshots, not a 'paths' one");
  const added: DiffEntry[] = [];
  const removed: DiffEntry[] = [];
  for (const kind of Object.keys(KEYS) as Array<keyof typeof KEYS>) {
    const key = KEYS[kind] as (x: unknown) => string;
    // A list a snapshot lacks (one from an agent that did not read it yet) has nothing in it.
    const was = (before[kind] ?? []) as unknown[];
    const is = (after[kind] ?? []) as unknown[];
    let head = 0;
    while (head < was.length && head < is.length && sameKey(kind, was[head], is[head])) head++;
    let tail = 0;
    while (tail < was.length - head && tail < is.length - head && sameKey(kind, was[was.length - 1 - tail], is[is.length - 1 - tail])) tail++;
    if (head + tail === was.length && head + tail === is.length) continue;
    // A short stretch between the runs is keyed alone, and what it finds is checked against the
    // whole other list (a list may hold a key twice); a long one is keyed whole.
    const short = was.length + is.length - 2 * (head + tail) <= 32;
    const b = new Map((short ? was.slice(head, was.length - tail) : was).map((x) => [key(x), x]));
    const a = new Map((short ? is.slice(head, is.length - tail) : is).map((x) => [key(x), x]));
    for (const [k, x] of a) if (!b.has(k) && !(short && was.some((y) => sameKey(kind, x, y)))) added.push({ kind, key: k, item: x });
    for (const [k, x] of b) if (!a.has(k) && !(short && is.some((y) => sameKey(kind, x, y)))) removed.push({ kind, key: k, item: x });
  }
  return { added, removed };
}

/** The SCSI devices (H:C:T:L) a diff says appeared: what a host-wide finding may name. */
export function appeared(diff: SnapshotDiff): string[] {
  return diff.added.filter((e) => e.kind === 'scsiDevices').map((e) => (e.item as ScsiDevice).hctl);
}
