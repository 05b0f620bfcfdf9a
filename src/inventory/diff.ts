import type { HostSnapshot } from './model.js';

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

const KEYS: { [K in keyof Omit<HostSnapshot, 'takenAt' | 'scope'>]: (x: HostSnapshot[K][number]) => string } = {
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

/** The key an item of a collection has in a diff: two items with the same key are the same thing, unchanged. */
export function diffKey<K extends keyof typeof KEYS>(kind: K, item: HostSnapshot[K][number]): string {
  return (KEYS[kind] as (x: unknown) => string)(item);
}

/** What appeared and what went between two snapshots, by stable keys per collection. */
export function diffSnapshots(before: HostSnapshot, after: HostSnapshot): SnapshotDiff {
  // A 'paths' snapshot leaves whole collections out: diffing it would invent changes.
  if (before.scope === 'paths' || after.scope === 'paths') throw new Error("a diff needs two full snapshots, not a 'paths' one");
  const added: DiffEntry[] = [];
  const removed: DiffEntry[] = [];
  for (const kind of Object.keys(KEYS) as Array<keyof typeof KEYS>) {
    const key = KEYS[kind] as (x: unknown) => string;
    // A list a snapshot lacks (one from an agent that did not read it yet) has nothing in it.
    const b = new Map(((before[kind] ?? []) as unknown[]).map((x) => [key(x), x]));
    const a = new Map(((after[kind] ?? []) as unknown[]).map((x) => [key(x), x]));
    for (const [k, x] of a) if (!b.has(k)) added.push({ kind, key: k, item: x });
    for (const [k, x] of b) if (!a.has(k)) removed.push({ kind, key: k, item: x });
  }
  return { added, removed };
}
