import { byPathName } from '../volume/bypath.js';
import type { OrphanKind } from '../volume/orphan-kinds.js';
import { nguidHex } from '../volume/ids.js';
import type { VolumeIdentity } from '../volume/identity.js';
import type { HostSnapshot, ScsiDevice, NvmeNamespace } from './model.js';
import { describeStacked, stackedOn, stackIndex, staleReferences } from './stack.js';

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

/** The sessions to an iSCSI volume's target over its portals. */
function sessionsOf(s: HostSnapshot, v: NonNullable<VolumeIdentity['iscsi']>): Set<number> {
  return new Set(s.iscsiSessions.filter((x) => x.targetIqn === v.iqn && (!x.portal || v.portals.includes(x.portal))).map((x) => x.sid));
}

/** A snapshot's SCSI devices by session and LUN and by WWID, made once per snapshot. */
interface ScsiIndex {
  bySessionLun: Map<string, number[]>;
  byWwid: Map<string, number[]>;
}

const scsiIndexes = new WeakMap<ScsiDevice[], { length: number; index: ScsiIndex }>();

function scsiIndex(s: HostSnapshot): ScsiIndex {
  const known = scsiIndexes.get(s.scsiDevices);
  if (known && known.length === s.scsiDevices.length) return known.index;
  const index: ScsiIndex = { bySessionLun: new Map(), byWwid: new Map() };
  const add = (m: Map<string, number[]>, k: string, i: number): void => {
    const list = m.get(k);
    if (list) list.push(i);
    else m.set(k, [i]);
  };
  s.scsiDevices.forEach((d, i) => {
    if (d.session !== null) add(index.bySessionLun, `${d.session}:${d.lun}`, i);
    if (d.wwid) add(index.byWwid, d.wwid, i);
  });
  scsiIndexes.set(s.scsiDevices, { length: s.scsiDevices.length, index });
  return index;
}

/**
 * The devices of an iSCSI volume: by session + LUN, or by WWID wherever they hang. Same target
 * and LUN but another WWID is a later volume that reuses the LUN id, not this one. In snapshot
 * order; looked up in an index of the snapshot, so that asking for every volume of a host costs
 * no more than reading it.
 */
export function iscsiDevicesOf(s: HostSnapshot, v: NonNullable<VolumeIdentity['iscsi']>): ScsiDevice[] {
  const index = scsiIndex(s);
  const hits = new Set<number>(v.wwid ? index.byWwid.get(v.wwid) ?? [] : []);
  for (const sid of sessionsOf(s, v)) {
    for (const i of index.bySessionLun.get(`${sid}:${v.lun}`) ?? []) {
      const d = s.scsiDevices[i]!;
      if (!(v.wwid && d.wwid && d.wwid !== v.wwid)) hits.add(i);
    }
  }
  return [...hits].sort((a, b) => a - b).map((i) => s.scsiDevices[i]!);
}

export function nvmeNamespacesOf(s: HostSnapshot, v: NonNullable<VolumeIdentity['nvme']>): NvmeNamespace[] {
  return s.nvmeNamespaces.filter((n) => {
    if (v.uuid && n.uuid === v.uuid) return true;
    if (v.nguid && n.nguid === nguidHex(v.nguid)) return true;
    if (n.subsysNqn !== v.nqn || v.nsid === undefined || v.nsid === null || n.nsid !== v.nsid) return false;
    return !(v.uuid && n.uuid && n.uuid !== v.uuid);
  });
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
export function judgeVolume(s: HostSnapshot, v: VolumeIdentity, stillAttached: VolumeIdentity[] = [], known: AttachKnowledge = {}): VolumeVerdict {
  if (s.scope === 'paths') throw new Error("the orphan check needs a full snapshot, not a 'paths' one");
  const out: Orphan[] = [];
  const kept: Kept[] = [];
  const blocks = new Set<string>();
  const claimedBlocks = new Set<string>();
  for (const other of stillAttached) {
    if (other.iscsi) for (const d of iscsiDevicesOf(s, other.iscsi)) if (d.block) claimedBlocks.add(d.block);
    if (other.nvme) for (const n of nvmeNamespacesOf(s, other.nvme)) claimedBlocks.add(n.name);
  }
  const idx = stackIndex(s);

  if (v.iscsi) {
    const iv = v.iscsi;
    const mine = new Set<string>();
    for (const d of iscsiDevicesOf(s, iv)) {
      if (d.block && claimedBlocks.has(d.block)) continue;
      mine.add(d.hctl);
      out.push({ kind: 'scsi-device', id: d.hctl, evidence: `${d.sysfs} (wwid ${d.wwid ?? '?'}, state ${d.state ?? '?'}${d.session !== null ? `, session${d.session}` : ''})` });
      if (d.block) {
        blocks.add(d.block);
        out.push({ kind: 'block-device', id: d.block, evidence: `/sys/block/${d.block} (${d.hctl})` });
      }
    }
    // A device at this volume's target and LUN that reads another identity and that no attached
    // volume claims: the stale path of a reused LUN id. What it reads now is another volume's
    // data (CVE-2023-2088), so it is this volume's leftover, named as such.
    if (iv.wwid) {
      const sessions = sessionsOf(s, iv);
      for (const d of s.scsiDevices) {
        if (d.session === null || !sessions.has(d.session) || d.lun !== iv.lun || !d.wwid || d.wwid === iv.wwid) continue;
        if (d.block && claimedBlocks.has(d.block)) continue;
        mine.add(d.hctl);
        out.push({
          kind: 'scsi-device',
          id: d.hctl,
          evidence: `${d.sysfs}: identity mismatch: LUN ${iv.lun} of ${iv.iqn} now reads WWID ${d.wwid}, not the detached volume's ${iv.wwid}, and no attached volume claims it (a reused LUN id: this path reads another volume's data, CVE-2023-2088)`,
        });
        if (d.block) {
          blocks.add(d.block);
          out.push({ kind: 'block-device', id: d.block, evidence: `/sys/block/${d.block} (${d.hctl}, identity mismatch: WWID ${d.wwid})` });
        }
      }
    }
    // Whom a session (or the record of its portal) is kept for: the volumes declared attached on
    // that target and portal, else the LUNs the kernel shows under it that are not this volume's.
    const declared = (portal: string | null): VolumeIdentity[] =>
      stillAttached.filter((o) => o.iscsi && o.iscsi.iqn === iv.iqn && (!portal || o.iscsi.portals.includes(portal)));
    const keptFor = (portal: string | null): string | null => {
      const named = declared(portal);
      if (named.length > 0) return `kept: it carries LUN ${named.map((o) => o.iscsi!.lun).join(', ')} of ${iv.iqn}, declared attached`;
      const sids = s.iscsiSessions.filter((x) => x.targetIqn === iv.iqn && (!portal || !x.portal || x.portal === portal)).map((x) => x.sid);
      const others = s.scsiDevices.filter((d) => d.session !== null && sids.includes(d.session) && !mine.has(d.hctl));
      return others.length > 0 ? `kept: it carries ${lunList(others)}, which no volume named as attached` : null;
    };
    for (const x of s.iscsiSessions) {
      if (x.targetIqn !== iv.iqn || (x.portal && !iv.portals.includes(x.portal))) continue;
      const o: Orphan = { kind: 'iscsi-session', id: `session${x.sid}`, evidence: `${x.sysfs} (${x.targetIqn} via ${x.portal ?? '?'}, ${x.state ?? '?'})` };
      const why = keptFor(x.portal);
      if (why) kept.push({ ...o, evidence: `${o.evidence}: ${why}` });
      else out.push(o);
    }
    for (const n of s.iscsiNodes) {
      if (n.iqn !== iv.iqn || !iv.portals.includes(n.portal)) continue;
      const o: Orphan = { kind: 'iscsi-node-record', id: `${n.iqn} ${n.portal}`, evidence: recordEvidence(n) };
      const why = keptFor(n.portal);
      if (why) kept.push({ ...o, evidence: `${o.evidence}: ${why}` });
      else out.push(o);
    }
    // An iface the volume's leftover records log in through, that no other record uses.
    const leftRecords = new Set(out.filter((o) => o.kind === 'iscsi-node-record').map((o) => o.id));
    for (const i of s.iscsiIfaces ?? []) {
      const users = s.iscsiNodes.filter((n) => n.iface === i.name);
      if (users.length > 0 && users.every((n) => leftRecords.has(`${n.iqn} ${n.portal}`))) {
        out.push({ kind: 'iscsi-iface', id: i.name, evidence: `${i.path} (the iface of ${users.map((n) => n.path).join(', ')})` });
      }
    }
    // Discovery records made for the volume's portals, once no attached volume uses the portal.
    for (const r of s.iscsiDiscovery ?? []) {
      if (!iv.portals.includes(r.portal) || !(r.targets.length === 0 || r.targets.includes(iv.iqn))) continue;
      const o: Orphan = { kind: 'iscsi-discovery-record', id: `${r.type} ${r.portal}`, evidence: `${r.path} (${r.type} discovery of ${r.portal}; node records for ${r.targets.join(', ') || 'nothing'})` };
      const users = stillAttached.filter((a) => a.iscsi?.portals.includes(r.portal));
      if (users.length > 0) kept.push({ ...o, evidence: `${o.evidence}: kept: ${users.map((a) => `${a.iscsi!.iqn} LUN ${a.iscsi!.lun}`).join(', ')} declared attached through ${r.portal}` });
      else out.push(o);
    }
    const names = new Set(iv.portals.map((portal) => byPathName({ portal, iqn: iv.iqn, lun: iv.lun })));
    // A live link to a device an attached volume claims is that volume's (a later one at the LUN).
    for (const l of s.links) {
      if (l.dir === 'by-path' && names.has(l.name) && !(l.target && claimedBlocks.has(l.target))) {
        if (l.target) blocks.add(l.target);
        out.push({ kind: 'by-path-link', id: l.name, evidence: `/dev/disk/by-path/${l.name} -> ${l.target ?? '(nothing)'}` });
      }
    }
    if (iv.wwid) {
      for (const l of s.links) {
        if (l.dir === 'by-id' && l.dangling && (l.name.includes(iv.wwid) || l.name.includes(iv.wwid.slice(1)))) {
          out.push({ kind: 'by-id-link', id: l.name, evidence: `/dev/disk/by-id/${l.name} -> (nothing)` });
        }
      }
    }
  }

  if (v.nvme) {
    const nv = v.nvme;
    const mine = new Set<string>();
    for (const n of nvmeNamespacesOf(s, nv)) {
      if (claimedBlocks.has(n.name)) continue;
      blocks.add(n.name);
      mine.add(n.name);
      out.push({ kind: 'nvme-namespace', id: n.name, evidence: `${n.sysfs} (nsid ${n.nsid ?? '?'}, uuid ${n.uuid ?? '?'})` });
    }
    const declared = stillAttached.filter((o) => o.nvme?.nqn === nv.nqn);
    const others = s.nvmeNamespaces.filter((n) => n.subsysNqn === nv.nqn && !mine.has(n.name));
    const why =
      declared.length > 0
        ? `kept: it carries namespace ${declared.map((o) => o.nvme!.nsid ?? o.nvme!.uuid ?? '?').join(', ')} of ${nv.nqn}, declared attached`
        : others.length > 0
          ? `kept: it carries ${others.map((n) => `namespace ${n.nsid ?? '?'} (uuid ${n.uuid ?? '?'}, ${n.name})`).join(', ')}, which no volume named as attached`
          : null;
    for (const c of s.nvmeControllers) {
      if (c.subsysNqn !== nv.nqn) continue;
      if (nv.portals && c.traddr && !nv.portals.includes(`${c.traddr}:${c.trsvcid}`)) continue;
      const o: Orphan = { kind: 'nvme-controller', id: c.name, evidence: `${c.sysfs} (${c.subsysNqn} at ${c.traddr}:${c.trsvcid}, ${c.state ?? '?'})` };
      if (why) kept.push({ ...o, evidence: `${o.evidence}: ${why}` });
      else out.push(o);
    }
  }

  if (v.local) {
    const dev = v.local.device?.replace(/^\/dev\//, '') ?? null;
    const d = s.scsiDevices.find((x) => (v.local!.wwid && x.wwid === v.local!.wwid) || (dev && x.block === dev));
    if (d?.block) blocks.add(d.block);
  }

  // Multipath maps built on the volume's devices, or carrying its WWID.
  const wwid = v.iscsi?.wwid ?? v.local?.wwid ?? null;
  const maps = new Set<string>();
  for (const m of s.multipathMaps) {
    if (m.slaves.length > 0 && m.slaves.every((x) => claimedBlocks.has(x))) continue; // another attached volume's map
    if ((wwid && m.wwid === wwid) || m.slaves.some((x) => blocks.has(x))) {
      maps.add(m.dm);
      out.push({ kind: 'multipath-map', id: m.name ?? m.dm, evidence: `/sys/block/${m.dm}/dm (name ${m.name ?? '?'}, uuid mpath-${m.wwid ?? '?'}, slaves ${m.slaves.join(' ') || '-'}${mapState(s, m.dm, m.slaves)})` });
    }
  }
  // Whatever else is stacked on the volume's devices or maps (linear, crypt, LVM, kpartx or partx
  // partition maps, md), up to the top; for a local disk, only what is stacked on its maps.
  const holders = new Set<string>();
  const bases = v.protocol === 'local' ? [...maps] : [...blocks, ...maps];
  for (const b of bases) {
    for (const h of stackedOn(idx, b)) {
      if (maps.has(h.dev) || holders.has(h.dev) || claimedBlocks.has(h.dev)) continue;
      holders.add(h.dev);
      out.push({ kind: 'holder', id: idx.disks.get(h.dev)?.dm?.name ?? h.dev, evidence: describeStacked(idx, h) });
    }
  }
  // Maps and arrays that still name a device of the volume that is gone (the slave link names it),
  // and partition maps of the volume's multipath map left behind by name.
  const had = new Set([...(known.devices ?? []).map((d) => d.replace(/^\/dev\//, '')), ...blocks]);
  for (const r of staleReferences(s, idx)) {
    if (holders.has(r.dev) || maps.has(r.dev)) continue;
    const uuid = idx.disks.get(r.dev)?.dm?.uuid ?? '';
    if (r.slaves.some((x) => had.has(x)) || (wwid && uuid.endsWith(`mpath-${wwid}`))) {
      holders.add(r.dev);
      out.push({ kind: 'holder', id: idx.disks.get(r.dev)?.dm?.name ?? r.dev, evidence: `stale reference: ${r.evidence}` });
    }
  }
  for (const h of holders) blocks.add(h);
  for (const m of maps) blocks.add(m); // so the links udev made to the maps are reported too
  // Links (by-path, by-id) that still resolve to one of the volume's devices.
  for (const l of s.links) {
    if (!l.target || !blocks.has(l.target) || claimedBlocks.has(l.target)) continue;
    if (out.some((o) => (o.kind === 'by-path-link' || o.kind === 'by-id-link') && o.id === l.name)) continue;
    out.push({ kind: l.dir === 'by-path' ? 'by-path-link' : 'by-id-link', id: l.name, evidence: `/dev/disk/${l.dir}/${l.name} -> ${l.target}` });
  }
  // A local disk is the host's own: only what was built on it (its maps, what is stacked on them,
  // and their links) can be left over.
  if (v.protocol !== 'local') return { orphans: out, kept };
  const built = new Set([...maps, ...holders]);
  const onBuilt = (o: Orphan): boolean => (o.kind === 'by-id-link' || o.kind === 'by-path-link') && built.has(o.evidence.slice(o.evidence.lastIndexOf('-> ') + 3));
  return { orphans: out.filter((o) => o.kind === 'multipath-map' || o.kind === 'holder' || onBuilt(o)), kept };
}

/** What a snapshot shows of a map's state: suspended, or with no live path. */
export function mapState(s: HostSnapshot, dm: string, slaves: string[]): string {
  const b = s.blockDevices.find((x) => x.name === dm);
  const words: string[] = [];
  if (b?.dm?.suspended) words.push('SUSPENDED: every I/O to it waits');
  const live = slaves.filter((x) => !(b?.staleSlaves ?? []).includes(x));
  if (live.length === 0) words.push('no paths');
  return words.length > 0 ? `; ${words.join('; ')}` : '';
}

/** A node record as evidence: its file, and whether iscsid logs in again at boot. */
export function recordEvidence(n: HostSnapshot['iscsiNodes'][number]): string {
  const boot = n.startup === 'automatic' || n.startup === 'onboot' ? `, node.startup = ${n.startup}: iscsid logs in again at boot` : n.startup ? `, node.startup = ${n.startup}` : '';
  return `${n.path}${n.iface && n.iface !== 'default' ? ` (iface ${n.iface})` : ''}${boot}`;
}
