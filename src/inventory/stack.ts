import { SUSPENDED } from './things.js';
import { devtsIn } from './tools.js';
import type { BlockDevice, HostSnapshot } from './model.js';

/**
 * The block device stack of a snapshot: what is stacked on what (dm of any target type, md,
 * partitions), and the references of a map to devices the kernel no longer has. The rules of
 * the oracle walk it; it is made once per snapshot.
 */
export interface StackIndex {
  /** Disks by kernel name. */
  disks: Map<string, BlockDevice>;
  /** Every device (disk or partition) by major:minor. */
  byDevt: Map<string, string>;
  /** Holders of a disk or partition, from every list of the snapshot that shows them. */
  holders: Map<string, string[]>;
  /** Partition -> its disk. */
  diskOf: Map<string, string>;
}

const indexes = new WeakMap<BlockDevice[], StackIndex>();

export function stackIndex(s: HostSnapshot): StackIndex {
  const known = indexes.get(s.blockDevices);
  if (known) return known;
  const idx: StackIndex = { disks: new Map(), byDevt: new Map(), holders: new Map(), diskOf: new Map() };
  const holders = new Map<string, Set<string>>();
  const add = (dev: string | null, list: Iterable<string>): void => {
    if (!dev) return;
    const set = holders.get(dev) ?? new Set<string>();
    for (const h of list) set.add(h);
    holders.set(dev, set);
  };
  for (const b of s.blockDevices) {
    idx.disks.set(b.name, b);
    if (b.devt) idx.byDevt.set(b.devt, b.name);
    add(b.name, b.holders);
    // Turned around, a map's live slaves name their holder: also partitions and disks a 'paths'
    // snapshot lists no block device for.
    for (const x of b.slaves) if (!(b.staleSlaves ?? []).includes(x)) add(x, [b.name]);
    for (const p of b.partitions ?? []) {
      if (p.devt) idx.byDevt.set(p.devt, p.name);
      add(p.name, p.holders);
      idx.diskOf.set(p.name, b.name);
    }
  }
  for (const d of s.scsiDevices) add(d.block, d.holders);
  for (const n of s.nvmeNamespaces) add(n.name, n.holders);
  for (const [dev, set] of holders) idx.holders.set(dev, [...set].sort());
  indexes.set(s.blockDevices, idx);
  return idx;
}

/** One device stacked, directly or not, on a base device, with the chain from the base up to it. */
export interface Stacked {
  dev: string;
  /** Base first: ['sda', 'sda1', 'dm-2'] or ['sda', 'dm-0', 'dm-1']. */
  chain: string[];
}

/**
 * Everything stacked on `base` (on the disk or on any of its partitions), followed up to the
 * top, breadth first; each device once, with the first chain that reached it.
 */
export function stackedOn(idx: StackIndex, base: string): Stacked[] {
  const out: Stacked[] = [];
  const seen = new Set<string>([base]);
  const queue: Stacked[] = [];
  const push = (from: string[], dev: string): void => {
    if (seen.has(dev)) return;
    seen.add(dev);
    queue.push({ dev, chain: [...from, dev] });
  };
  const above = (dev: string, chain: string[]): void => {
    for (const h of idx.holders.get(dev) ?? []) push(chain, h);
    for (const p of idx.disks.get(dev)?.partitions ?? []) for (const h of p.holders) push([...chain, p.name], h);
  };
  above(base, [base]);
  while (queue.length > 0) {
    const next = queue.shift()!;
    out.push(next);
    above(next.dev, next.chain);
  }
  return out;
}

/** "dm-1 (name x, uuid y)", or the kernel name alone for what is not a dm device. */
export function nameOf(idx: StackIndex, dev: string): string {
  const dm = idx.disks.get(dev)?.dm;
  if (!dm) return dev;
  return `${dev} (${[dm.name ? `name ${dm.name}` : null, dm.uuid ? `uuid ${dm.uuid}` : null].filter(Boolean).join(', ') || 'dm'})`;
}

/** The table of a dm device as evidence: `table "0 16384 linear 8:0 0"`, or nothing when unread. */
export function tableOf(idx: StackIndex, dev: string): string {
  const t = idx.disks.get(dev)?.dm?.table;
  return t && t.length > 0 ? `table "${t.join(' | ')}"` : '';
}

/** A dm or md device as evidence: its name and uuid and its table line, or its md level. */
export function describeDevice(idx: StackIndex, dev: string): string {
  const md = idx.disks.get(dev)?.md;
  return [nameOf(idx, dev), tableOf(idx, dev), md ? `md ${md.level ?? '?'}` : ''].filter(Boolean).join('; ');
}

/** A holder as evidence: its name and uuid, its table line, the chain from the base, and whether it is suspended. */
export function describeStacked(idx: StackIndex, s: Stacked): string {
  return [describeDevice(idx, s.dev), `chain ${s.chain.join(' <- ')}`, idx.disks.get(s.dev)?.dm?.suspended ? SUSPENDED : ''].filter(Boolean).join('; ');
}

/** A dm map or md array that still refers to a device the kernel removed. */
export interface StaleReference {
  dev: string;
  /** The names of the slave links that point at a removed device. */
  slaves: string[];
  /** The major:minor numbers its table names that no live slave has. */
  devts: string[];
  evidence: string;
}

/**
 * Maps and arrays that name a removed device: a slave link that no longer resolves, or a table
 * entry (major:minor) that no live slave carries. When another device has that number now, a
 * reload of the table (an LVM refresh, a `dmsetup reload` of the same table) would open it: the
 * evidence says which.
 */
export function staleReferences(s: HostSnapshot, idx: StackIndex = stackIndex(s)): StaleReference[] {
  const out: StaleReference[] = [];
  for (const b of s.blockDevices) {
    if (!b.dm && !b.md && (b.staleSlaves ?? []).length === 0) continue;
    const stale = b.staleSlaves ?? [];
    const live = new Set(b.slaves.filter((x) => !stale.includes(x)));
    const named = (b.dm?.table ?? []).flatMap((l) => devtsIn(l));
    const devts = named.filter((d) => {
      const now = idx.byDevt.get(d);
      return now === undefined || !live.has(now);
    });
    if (stale.length === 0 && devts.length === 0) continue;
    const now = [...new Set(devts)].map((d) => {
      const dev = idx.byDevt.get(d);
      if (dev === undefined) return `no device has ${d} now`;
      const wwid = s.scsiDevices.find((x) => x.block === (idx.diskOf.get(dev) ?? dev))?.wwid;
      return `${d} is now ${dev}${wwid ? ` (WWID ${wwid})` : ''}: a reload of this table would open that device`;
    });
    const parts = [
      nameOf(idx, b.name),
      tableOf(idx, b.name),
      stale.length > 0 ? `slaves/${stale.join(', slaves/')} point${stale.length === 1 ? 's' : ''} at a removed device` : '',
      devts.length > 0 ? `its table names ${[...new Set(devts)].join(', ')}, which no live slave has` : '',
      ...now,
    ];
    out.push({ dev: b.name, slaves: stale, devts: [...new Set(devts)], evidence: parts.filter(Boolean).join('; ') });
  }
  return out;
}
