import { byPathName, fcByPathSuffix } from '../volume/bypath.js';
import type { OrphanKind } from '../volume/orphan-kinds.js';
import { nguidHex } from '../volume/ids.js';
import { volumeWwid, type VolumeIdentity } from '../volume/identity.js';
import type { BlockDevice, DevLink, HostSnapshot, IscsiDiscoveryRecord, IscsiNodeRecord, IscsiSession, NvmeController, ScsiDevice, NvmeNamespace } from './model.js';
import { describeStacked, stackedOn, stackIndex, staleReferences, type StackIndex, type Stacked, type StaleReference } from './stack.js';
import { evidenceOf, recordId, discoveryId } from './things.js';

export interface Orphan {
  kind: OrphanKind;
  id: string;
  /** Where the kernel (or iscsid) shows it: a sysfs or /dev path with what it holds. */
  evidence: string;
}

/**
 * What a detach rightly left: a session, node record or controller that still carries another
 * volume. Reported, not counted; `evidence` says which LUN or namespace it carries, and whether
 * that volume was declared attached or carries a LUN nobody named.
 */
export type Kept = Orphan;

/** The volume-scoped verdict: what still refers to the volume, and what was kept for others. */
export interface VolumeVerdict {
  orphans: Orphan[];
  kept: Kept[];
}

/** What the caller knows of the volume from its attach, beyond its connection properties. */
export interface AttachKnowledge {
  /** Kernel names of the volume's devices when it was attached (a connect result's `devices`). */
  devices?: string[];
}

/**
 * A snapshot's lookups into its long lists (SCSI devices, links, the block stack), made once per
 * snapshot: the rules ask for one volume's things through
 * them, so judging every volume of a host costs about as much as reading it once.
 */
export interface SnapshotIndex {
  stack: StackIndex;
  bySessionLun: Map<string, ScsiDevice[]>;
  byWwid: Map<string, ScsiDevice[]>;
  bySession: Map<number, ScsiDevice[]>;
  scsiByBlock: Map<string, ScsiDevice>;
  /** Position of each SCSI device in the snapshot (findings keep snapshot order). */
  scsiOrder: Map<ScsiDevice, number>;
  /** by-path links by name, and every link by the device it resolves to. */
  byPathLink: Map<string, DevLink[]>;
  linksTo: Map<string, DevLink[]>;
  linkOrder: Map<DevLink, number>;
  danglingById: DevLink[];
  stale: StaleReference[];
}

const snapshotIndexes = new WeakMap<HostSnapshot, { lists: ReadonlyArray<unknown[]>; sizes: number[]; index: SnapshotIndex }>();

const push = <K, V>(m: Map<K, V[]>, k: K, v: V): void => {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
};

/** A snapshot's lists and their lengths: one edited in place (a test's), a list replaced or grown, is indexed again. */
const listsOf = (s: HostSnapshot): ReadonlyArray<unknown[]> => [s.scsiDevices, s.iscsiSessions, s.iscsiNodes, s.blockDevices, s.links, s.nvmeNamespaces];

/** Whether the index made for a snapshot still fits it: the same lists, of the same lengths (checked on every lookup, so without a new array). */
function fits(s: HostSnapshot, known: { lists: ReadonlyArray<unknown[]>; sizes: number[] }): boolean {
  const l = known.lists;
  const n = known.sizes;
  return (
    l[0] === s.scsiDevices && n[0] === s.scsiDevices.length &&
    l[1] === s.iscsiSessions && n[1] === s.iscsiSessions.length &&
    l[2] === s.iscsiNodes && n[2] === s.iscsiNodes.length &&
    l[3] === s.blockDevices && n[3] === s.blockDevices.length &&
    l[4] === s.links && n[4] === s.links.length &&
    l[5] === s.nvmeNamespaces && n[5] === s.nvmeNamespaces.length
  );
}

export function snapshotIndex(s: HostSnapshot): SnapshotIndex {
  const known = snapshotIndexes.get(s);
  if (known && fits(s, known)) return known.index;
  const lists = listsOf(s);
  const sizes = lists.map((l) => l.length);
  const stack = stackIndex(s);
  const x: SnapshotIndex = {
    stack,
    bySessionLun: new Map(),
    byWwid: new Map(),
    bySession: new Map(),
    scsiByBlock: new Map(),
    scsiOrder: new Map(),
    byPathLink: new Map(),
    linksTo: new Map(),
    linkOrder: new Map(),
    danglingById: [],
    stale: s.scope === 'full' ? staleReferences(s, stack) : [],
  };
  s.scsiDevices.forEach((d, i) => {
    x.scsiOrder.set(d, i);
    if (d.session !== null) {
      push(x.bySessionLun, `${d.session}:${d.lun}`, d);
      push(x.bySession, d.session, d);
    }
    if (d.wwid) push(x.byWwid, d.wwid, d);
    if (d.block) x.scsiByBlock.set(d.block, d);
  });
  s.links.forEach((l, i) => {
    x.linkOrder.set(l, i);
    if (l.dir === 'by-path') push(x.byPathLink, l.name, l);
    if (l.target) push(x.linksTo, l.target, l);
    else if (l.dir === 'by-id' && l.dangling) x.danglingById.push(l);
  });
  snapshotIndexes.set(s, { lists, sizes, index: x });
  return x;
}

/** The sessions to an iSCSI volume's target over its portals. */
function sessionsOf(s: HostSnapshot, v: NonNullable<VolumeIdentity['iscsi']>): IscsiSession[] {
  return s.iscsiSessions.filter((y) => y.targetIqn === v.iqn && (!y.portal || v.portals.includes(y.portal)));
}

/**
 * The devices of an iSCSI volume: by session + LUN, or by WWID wherever they hang. Same target
 * and LUN but another WWID is a later volume that reuses the LUN id, not this one. In snapshot
 * order.
 */
export function iscsiDevicesOf(s: HostSnapshot, v: NonNullable<VolumeIdentity['iscsi']>): ScsiDevice[] {
  const x = snapshotIndex(s);
  const hits = new Set<ScsiDevice>(v.wwid ? x.byWwid.get(v.wwid) ?? [] : []);
  for (const y of sessionsOf(s, v)) {
    for (const d of x.bySessionLun.get(`${y.sid}:${v.lun}`) ?? []) if (!(v.wwid && d.wwid && d.wwid !== v.wwid)) hits.add(d);
  }
  return inOrder([...hits], x.scsiOrder);
}

/** Per remote port (rport-H:B-R), the WWPN of the port it is. */
function rportNames(s: HostSnapshot): Map<string, string | null> {
  return new Map((s.fcRemotePorts ?? []).map((r) => [r.name, r.portName]));
}

/** The SCSI devices at an FC volume's (target port, LUN) pairs, whatever WWID they read, in snapshot order. */
function fcDevicesAt(s: HostSnapshot, v: NonNullable<VolumeIdentity['fc']>): ScsiDevice[] {
  const ports = rportNames(s);
  return s.scsiDevices.filter((d) => {
    if (!d.rport) return false;
    const wwpn = ports.get(d.rport);
    return v.targets.some((t) => t.wwpn === wwpn && t.lun === d.lun);
  });
}

/**
 * The devices of an FC volume: at its target ports and LUN, or by WWID wherever they hang. Same
 * target and LUN but another WWID is a later volume that reuses the LUN id, not this one.
 */
export function fcDevicesOf(s: HostSnapshot, v: NonNullable<VolumeIdentity['fc']>): ScsiDevice[] {
  const x = snapshotIndex(s);
  const hits = new Set<ScsiDevice>(v.wwid ? x.byWwid.get(v.wwid) ?? [] : []);
  for (const d of fcDevicesAt(s, v)) if (!(v.wwid && d.wwid && d.wwid !== v.wwid)) hits.add(d);
  return inOrder([...hits], x.scsiOrder);
}

/** The by-path links named for an FC volume's (target port, LUN) pairs, on any HBA. */
function fcLinksOf(s: HostSnapshot, v: NonNullable<VolumeIdentity['fc']>): DevLink[] {
  const ends = v.targets.map(fcByPathSuffix);
  return s.links.filter((l) => l.dir === 'by-path' && l.name.includes('-fc-0x') && ends.some((e) => l.name.endsWith(e)));
}

const inOrder = <T>(items: T[], order: Map<T, number>): T[] => (items.length < 2 ? items : items.sort((a, b) => order.get(a)! - order.get(b)!));

export function nvmeNamespacesOf(s: HostSnapshot, v: NonNullable<VolumeIdentity['nvme']>): NvmeNamespace[] {
  return s.nvmeNamespaces.filter((n) => {
    if (v.uuid && n.uuid === v.uuid) return true;
    if (v.nguid && n.nguid === nguidHex(v.nguid)) return true;
    if (n.subsysNqn !== v.nqn || v.nsid === undefined || v.nsid === null || n.nsid !== v.nsid) return false;
    return !(v.uuid && n.uuid && n.uuid !== v.uuid);
  });
}

/** An NVMe volume's controllers: to its subsystem, over its portals when it names them. */
function controllersOf(s: HostSnapshot, v: NonNullable<VolumeIdentity['nvme']>): NvmeController[] {
  return s.nvmeControllers.filter((c) => c.subsysNqn === v.nqn && !(v.portals && c.traddr && !v.portals.includes(`${c.traddr}:${c.trsvcid}`)));
}

/**
 * Everything on the host that refers to a volume, as the snapshot's own items: what the verdict
 * words as orphans or kept, and what the host-wide view counts as the volume's. No text is made
 * here: a host-wide view asks this of every attached volume.
 */
export interface VolumeRefs {
  /** Its SCSI devices; `mismatch` holds those at its target and LUN that read another WWID. */
  scsi: ScsiDevice[];
  mismatch: Set<ScsiDevice>;
  sessions: IscsiSession[];
  nodes: IscsiNodeRecord[];
  discovery: IscsiDiscoveryRecord[];
  namespaces: NvmeNamespace[];
  controllers: NvmeController[];
  /** Its by-path links by name, and the dangling by-id links named after its WWID. */
  namedLinks: DevLink[];
  /** Its multipath maps (dm devices). */
  maps: BlockDevice[];
  /** What else is stacked on its devices or maps, and maps or arrays that still name a device of it that is gone. */
  holders: Stacked[];
  stale: StaleReference[];
  /** Links that resolve to its devices, maps or holders (not already among namedLinks). */
  links: DevLink[];
  /** Its disks (the devices a still-attached volume claims are left out). */
  blocks: Set<string>;
}

/**
 * What refers to volume `v` in snapshot `s`, leaving out what a volume in `stillAttached` claims
 * (its devices, the maps built only on them, the links to them).
 */
export function volumeRefs(s: HostSnapshot, v: VolumeIdentity, stillAttached: VolumeIdentity[] = [], known: AttachKnowledge = {}): VolumeRefs {
  const x = snapshotIndex(s);
  const idx = x.stack;
  const r: VolumeRefs = { scsi: [], mismatch: new Set(), sessions: [], nodes: [], discovery: [], namespaces: [], controllers: [], namedLinks: [], maps: [], holders: [], stale: [], links: [], blocks: new Set() };
  const claimed = new Set<string>();
  for (const other of stillAttached) {
    if (other.iscsi) for (const d of iscsiDevicesOf(s, other.iscsi)) if (d.block) claimed.add(d.block);
    if (other.nvme) for (const n of nvmeNamespacesOf(s, other.nvme)) claimed.add(n.name);
    if (other.fc) for (const d of fcDevicesOf(s, other.fc)) if (d.block) claimed.add(d.block);
  }
  const free = (d: ScsiDevice): boolean => !(d.block && claimed.has(d.block));
  const blocks = r.blocks;

  if (v.iscsi) {
    const iv = v.iscsi;
    const sessions = sessionsOf(s, iv);
    const mine = new Set(iscsiDevicesOf(s, iv).filter(free));
    // A device at this volume's target and LUN that reads another identity and that no attached
    // volume claims: the stale path of a reused LUN id (CVE-2023-2088), this volume's leftover.
    if (iv.wwid) {
      for (const y of sessions) {
        for (const d of x.bySessionLun.get(`${y.sid}:${iv.lun}`) ?? []) {
          if (d.wwid && d.wwid !== iv.wwid && free(d) && !mine.has(d)) r.mismatch.add(d);
        }
      }
    }
    r.scsi = [...mine, ...inOrder([...r.mismatch], x.scsiOrder)];
    for (const d of r.scsi) if (d.block) blocks.add(d.block);
    r.sessions = sessions;
    r.nodes = s.iscsiNodes.filter((n) => n.iqn === iv.iqn && iv.portals.includes(n.portal));
    r.discovery = (s.iscsiDiscovery ?? []).filter((d) => iv.portals.includes(d.portal) && (d.targets.length === 0 || d.targets.includes(iv.iqn)));
    for (const portal of iv.portals) {
      for (const l of x.byPathLink.get(byPathName({ portal, iqn: iv.iqn, lun: iv.lun })) ?? []) {
        if (l.target && claimed.has(l.target)) continue; // a later volume's, at the same LUN
        if (l.target) blocks.add(l.target);
        r.namedLinks.push(l);
      }
    }
    r.namedLinks = inOrder(r.namedLinks, x.linkOrder);
    if (iv.wwid) {
      const bare = iv.wwid.slice(1);
      for (const l of x.danglingById) if (l.name.includes(iv.wwid) || l.name.includes(bare)) r.namedLinks.push(l);
    }
  }

  if (v.fc) {
    const fv = v.fc;
    const mine = new Set(fcDevicesOf(s, fv).filter(free));
    // As for iSCSI: a device at this volume's target port and LUN that reads another WWID and
    // that no attached volume claims is the stale path of a reused LUN id.
    if (fv.wwid) for (const d of fcDevicesAt(s, fv)) if (d.wwid && d.wwid !== fv.wwid && free(d) && !mine.has(d)) r.mismatch.add(d);
    r.scsi = [...mine, ...inOrder([...r.mismatch], x.scsiOrder)];
    for (const d of r.scsi) if (d.block) blocks.add(d.block);
    for (const l of fcLinksOf(s, fv)) {
      if (l.target && claimed.has(l.target)) continue; // a later volume's, at the same LUN
      if (l.target) blocks.add(l.target);
      r.namedLinks.push(l);
    }
    if (fv.wwid) {
      const bare = fv.wwid.slice(1);
      for (const l of x.danglingById) if (l.name.includes(fv.wwid) || l.name.includes(bare)) r.namedLinks.push(l);
    }
  }

  if (v.nvme) {
    r.namespaces = nvmeNamespacesOf(s, v.nvme).filter((n) => !claimed.has(n.name));
    for (const n of r.namespaces) blocks.add(n.name);
    r.controllers = controllersOf(s, v.nvme);
  }

  if (v.local) {
    const dev = v.local.device?.replace(/^\/dev\//, '') ?? null;
    const lw = v.local.wwid;
    const d = s.scsiDevices.find((y) => (lw && y.wwid === lw) || (dev && y.block === dev));
    if (d?.block) blocks.add(d.block);
  }

  // Multipath maps built on the volume's devices, or carrying its WWID.
  const wwid = volumeWwid(v);
  const maps = new Set<string>();
  for (const m of s.multipathMaps) {
    if (m.slaves.length > 0 && m.slaves.every((y) => claimed.has(y))) continue; // another attached volume's map
    if ((wwid && m.wwid === wwid) || m.slaves.some((y) => blocks.has(y))) {
      const b = idx.disks.get(m.dm);
      maps.add(m.dm);
      r.maps.push(b ?? { name: m.dm, devt: null, sizeBytes: null, holders: [], slaves: m.slaves, staleSlaves: [], partitions: [], dm: { name: m.name, uuid: `mpath-${m.wwid ?? '?'}`, suspended: null, table: null }, md: null });
    }
  }
  // Whatever else is stacked on the volume's devices or maps (linear, crypt, LVM, kpartx or partx
  // partition maps, md), up to the top; for a local disk, only what is stacked on its maps.
  const holders = new Set<string>();
  for (const b of v.protocol === 'local' ? [...maps] : [...blocks, ...maps]) {
    for (const h of stackedOn(idx, b)) {
      if (maps.has(h.dev) || holders.has(h.dev) || claimed.has(h.dev)) continue;
      holders.add(h.dev);
      r.holders.push(h);
    }
  }
  // Maps and arrays that still name a device of the volume that is gone (the slave link names it),
  // and partition maps of the volume's multipath map left behind by name.
  const had = new Set([...(known.devices ?? []).map((d) => d.replace(/^\/dev\//, '')), ...blocks]);
  for (const ref of x.stale) {
    if (holders.has(ref.dev) || maps.has(ref.dev)) continue;
    const uuid = idx.disks.get(ref.dev)?.dm?.uuid ?? '';
    if (ref.slaves.some((y) => had.has(y)) || (wwid && uuid.endsWith(`mpath-${wwid}`))) {
      holders.add(ref.dev);
      r.stale.push(ref);
    }
  }
  // Links (by-path, by-id) that still resolve to one of the volume's devices, maps or holders
  // (so the links udev made to the maps are found too).
  const named = new Set(r.namedLinks);
  const linked: DevLink[] = [];
  for (const b of [...blocks, ...holders, ...maps]) for (const l of x.linksTo.get(b) ?? []) if (!claimed.has(b) && !named.has(l)) linked.push(l);
  r.links = inOrder([...new Set(linked)], x.linkOrder);
  for (const h of holders) blocks.add(h);
  return r;
}

/** Everything on the host that still refers to a detached volume (judgeVolume's orphans). */
export function findOrphans(s: HostSnapshot, v: VolumeIdentity, stillAttached: VolumeIdentity[] = [], known: AttachKnowledge = {}): Orphan[] {
  return judgeVolume(s, v, stillAttached, known).orphans;
}

/** "LUN 1 (WWID 3600..., sdb)" for the devices a session carries. */
function lunList(ds: ScsiDevice[]): string {
  return ds.map((d) => `LUN ${d.lun} (WWID ${d.wwid ?? '?'}${d.block ? `, ${d.block}` : ''})`).join(', ');
}

/**
 * Everything on the host that still refers to a volume that was detached, and what was rightly
 * kept for other volumes. A session, node record or controller is never silently an orphan when
 * it carries another LUN or namespace: it is kept, for the volume declared attached, or for a
 * LUN or namespace the kernel shows under it that nobody named (the evidence gives its WWID).
 */
export function judgeVolume(s: HostSnapshot, v: VolumeIdentity, stillAttached: VolumeIdentity[] = [], known: AttachKnowledge = {}, refs?: VolumeRefs): VolumeVerdict {
  if (s.scope === 'paths') throw new Error("the orphan check needs a full snapshot, not a 'paths' one");
  // `refs`: volumeRefs of the same arguments, when the caller already has them (the agent reads
  // the devices they name before judging).
  const r = refs ?? volumeRefs(s, v, stillAttached, known);
  const x = snapshotIndex(s);
  const idx = x.stack;
  const out: Orphan[] = [];
  const kept: Kept[] = [];
  const keep = (o: Orphan, why: string | null): void => void (why ? kept.push({ ...o, evidence: `${o.evidence}: ${why}` }) : out.push(o));

  /** A SCSI device of the volume and its disk; `at` names where the volume was ("LUN 1 of iqn..."), `was` its WWID. */
  const scsiFindings = (at: (d: ScsiDevice) => string, was: string | null | undefined): void => {
    for (const d of r.scsi) {
      if (r.mismatch.has(d)) {
        out.push({
          kind: 'scsi-device',
          id: d.hctl,
          evidence: `${d.sysfs}: identity mismatch: ${at(d)} now reads WWID ${d.wwid}, not the detached volume's ${was}, and no attached volume claims it (a reused LUN id: this path reads another volume's data, CVE-2023-2088)`,
        });
      } else out.push({ kind: 'scsi-device', id: d.hctl, evidence: evidenceOf.scsi(d) });
      if (d.block) {
        const what = r.mismatch.has(d) ? `${d.hctl}, identity mismatch: WWID ${d.wwid}` : d.hctl;
        out.push({ kind: 'block-device', id: d.block, evidence: evidenceOf.disk({ name: d.block, devt: idx.disks.get(d.block)?.devt ?? null }, what) });
      }
    }
  };

  if (v.fc) {
    const ports = rportNames(s);
    scsiFindings((d) => `LUN ${d.lun} of target port 0x${(d.rport && ports.get(d.rport)) ?? '?'}`, v.fc.wwid);
    for (const l of r.namedLinks) out.push({ kind: l.dir === 'by-path' ? 'by-path-link' : 'by-id-link', id: l.name, evidence: evidenceOf.link(l) });
  }

  if (v.iscsi) {
    const iv = v.iscsi;
    scsiFindings(() => `LUN ${iv.lun} of ${iv.iqn}`, iv.wwid);
    // Whom a session (or the record of its portal) is kept for: the volumes declared attached on
    // that target and portal, else the LUNs the kernel shows under it that are not this volume's.
    const mine = new Set(r.scsi);
    const keptFor = (portal: string | null): string | null => {
      const named = stillAttached.filter((o) => o.iscsi && o.iscsi.iqn === iv.iqn && (!portal || o.iscsi.portals.includes(portal)));
      if (named.length > 0) return `kept: it carries LUN ${named.map((o) => o.iscsi!.lun).join(', ')} of ${iv.iqn}, declared attached`;
      const others: ScsiDevice[] = [];
      for (const y of s.iscsiSessions) {
        if (y.targetIqn !== iv.iqn || (portal && y.portal && y.portal !== portal)) continue;
        for (const d of x.bySession.get(y.sid) ?? []) if (!mine.has(d)) others.push(d);
      }
      return others.length > 0 ? `kept: it carries ${lunList(inOrder(others, x.scsiOrder))}, which no volume named as attached` : null;
    };
    for (const y of r.sessions) keep({ kind: 'iscsi-session', id: `session${y.sid}`, evidence: evidenceOf.session(y) }, keptFor(y.portal));
    for (const n of r.nodes) keep({ kind: 'iscsi-node-record', id: recordId(n), evidence: evidenceOf.record(n) }, keptFor(n.portal));
    // An iface the volume's leftover records log in through, that no other record uses.
    const leftRecords = new Set(out.filter((o) => o.kind === 'iscsi-node-record').map((o) => o.id));
    for (const i of s.iscsiIfaces ?? []) {
      const users = s.iscsiNodes.filter((n) => n.iface === i.name);
      if (users.length > 0 && users.every((n) => leftRecords.has(recordId(n)))) out.push({ kind: 'iscsi-iface', id: i.name, evidence: evidenceOf.iface(i, users) });
    }
    // Discovery records made for the volume's portals, once no attached volume uses the portal.
    for (const d of r.discovery) {
      const users = stillAttached.filter((a) => a.iscsi?.portals.includes(d.portal));
      const why = users.length > 0 ? `kept: ${users.map((a) => `${a.iscsi!.iqn} LUN ${a.iscsi!.lun}`).join(', ')} declared attached through ${d.portal}` : null;
      keep({ kind: 'iscsi-discovery-record', id: discoveryId(d), evidence: evidenceOf.discovery(d) }, why);
    }
    for (const l of r.namedLinks) out.push({ kind: l.dir === 'by-path' ? 'by-path-link' : 'by-id-link', id: l.name, evidence: evidenceOf.link(l) });
  }

  if (v.nvme) {
    const nv = v.nvme;
    const mine = new Set(r.namespaces.map((n) => n.name));
    for (const n of r.namespaces) out.push({ kind: 'nvme-namespace', id: n.name, evidence: evidenceOf.namespace(n) });
    const declared = stillAttached.filter((o) => o.nvme?.nqn === nv.nqn);
    const others = s.nvmeNamespaces.filter((n) => n.subsysNqn === nv.nqn && !mine.has(n.name));
    const why =
      declared.length > 0
        ? `kept: it carries namespace ${declared.map((o) => o.nvme!.nsid ?? o.nvme!.uuid ?? '?').join(', ')} of ${nv.nqn}, declared attached`
        : others.length > 0
          ? `kept: it carries ${others.map((n) => `namespace ${n.nsid ?? '?'} (uuid ${n.uuid ?? '?'}, ${n.name})`).join(', ')}, which no volume named as attached`
          : null;
    for (const c of r.controllers) keep({ kind: 'nvme-controller', id: c.name, evidence: evidenceOf.controller(c) }, why);
  }

  for (const b of r.maps) out.push({ kind: 'multipath-map', id: b.dm?.name ?? b.name, evidence: evidenceOf.map(b) });
  for (const h of r.holders) out.push({ kind: 'holder', id: idx.disks.get(h.dev)?.dm?.name ?? h.dev, evidence: describeStacked(idx, h) });
  for (const ref of r.stale) out.push({ kind: 'holder', id: idx.disks.get(ref.dev)?.dm?.name ?? ref.dev, evidence: `stale reference: ${ref.evidence}` });
  const named = new Set(out.filter((o) => o.kind === 'by-path-link' || o.kind === 'by-id-link').map((o) => o.id));
  for (const l of r.links) {
    if (named.has(l.name)) continue;
    named.add(l.name);
    out.push({ kind: l.dir === 'by-path' ? 'by-path-link' : 'by-id-link', id: l.name, evidence: evidenceOf.link(l) });
  }
  // A local disk is the host's own: only what was built on it (its maps, what is stacked on them,
  // and their links) can be left over.
  if (v.protocol !== 'local') return { orphans: out, kept };
  const built = new Set([...r.maps.map((b) => b.name), ...r.holders.map((h) => h.dev), ...r.stale.map((ref) => ref.dev)]);
  return { orphans: out.filter((o) => o.kind === 'multipath-map' || o.kind === 'holder' || ((o.kind === 'by-id-link' || o.kind === 'by-path-link') && r.links.some((l) => l.name === o.id && built.has(l.target!)))), kept };
}
