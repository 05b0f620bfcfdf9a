import { byPathName } from '../volume/bypath.js';
import { nguidHex } from '../volume/ids.js';
import type { VolumeIdentity } from '../volume/identity.js';
import type { HostSnapshot, ScsiDevice, NvmeNamespace } from './model.js';


export type OrphanKind =
  | 'scsi-device'
  | 'block-device'
  | 'by-path-link'
  | 'by-id-link'
  | 'iscsi-session'
  | 'iscsi-node-record'
  | 'nvme-controller'
  | 'nvme-namespace'
  | 'multipath-map'
  | 'multipathd-path';

export interface Orphan {
  kind: OrphanKind;
  id: string;
  /** Where the kernel (or iscsid) shows it: a sysfs or /dev path with what it holds. */
  evidence: string;
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

/**
 * Everything on the host that still refers to a volume that was detached. A session or
 * controller that another still-attached volume uses is not an orphan: it is shared.
 */
export function findOrphans(s: HostSnapshot, v: VolumeIdentity, stillAttached: VolumeIdentity[] = []): Orphan[] {
  if (s.scope === 'paths') throw new Error("the orphan check needs a full snapshot, not a 'paths' one");
  const out: Orphan[] = [];
  const blocks = new Set<string>();
  const claimedBlocks = new Set<string>();
  for (const other of stillAttached) {
    if (other.iscsi) for (const d of iscsiDevicesOf(s, other.iscsi)) if (d.block) claimedBlocks.add(d.block);
    if (other.nvme) for (const n of nvmeNamespacesOf(s, other.nvme)) claimedBlocks.add(n.name);
  }

  if (v.iscsi) {
    const iv = v.iscsi;
    for (const d of iscsiDevicesOf(s, iv)) {
      if (d.block && claimedBlocks.has(d.block)) continue;
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
    const shared = (iqn: string, portal: string | null): boolean =>
      stillAttached.some((o) => o.iscsi && o.iscsi.iqn === iqn && (!portal || o.iscsi.portals.includes(portal)));
    for (const x of s.iscsiSessions) {
      if (x.targetIqn !== iv.iqn || (x.portal && !iv.portals.includes(x.portal)) || shared(iv.iqn, x.portal)) continue;
      out.push({ kind: 'iscsi-session', id: `session${x.sid}`, evidence: `${x.sysfs} (${x.targetIqn} via ${x.portal ?? '?'}, ${x.state ?? '?'})` });
    }
    for (const n of s.iscsiNodes) {
      if (n.iqn !== iv.iqn || !iv.portals.includes(n.portal) || shared(n.iqn, n.portal)) continue;
      out.push({ kind: 'iscsi-node-record', id: `${n.iqn} ${n.portal}`, evidence: n.path });
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
    for (const n of nvmeNamespacesOf(s, nv)) {
      if (claimedBlocks.has(n.name)) continue;
      blocks.add(n.name);
      out.push({ kind: 'nvme-namespace', id: n.name, evidence: `${n.sysfs} (nsid ${n.nsid ?? '?'}, uuid ${n.uuid ?? '?'})` });
    }
    const shared = stillAttached.some((o) => o.nvme?.nqn === nv.nqn);
    if (!shared) {
      for (const c of s.nvmeControllers) {
        if (c.subsysNqn !== nv.nqn) continue;
        if (nv.portals && c.traddr && !nv.portals.includes(`${c.traddr}:${c.trsvcid}`)) continue;
        out.push({ kind: 'nvme-controller', id: c.name, evidence: `${c.sysfs} (${c.subsysNqn} at ${c.traddr}:${c.trsvcid}, ${c.state ?? '?'})` });
      }
    }
  }

  if (v.local) {
    const dev = v.local.device?.replace(/^\/dev\//, '') ?? null;
    const d = s.scsiDevices.find((x) => (v.local!.wwid && x.wwid === v.local!.wwid) || (dev && x.block === dev));
    if (d?.block) blocks.add(d.block);
  }

  // Multipath maps built on the volume's devices, or carrying its WWID.
  const wwid = v.iscsi?.wwid ?? v.local?.wwid ?? null;
  for (const m of s.multipathMaps) {
    if (m.slaves.length > 0 && m.slaves.every((x) => claimedBlocks.has(x))) continue; // another attached volume's map
    if ((wwid && m.wwid === wwid) || m.slaves.some((x) => blocks.has(x))) {
      blocks.add(m.dm); // so the links udev made to the map are reported too
      out.push({ kind: 'multipath-map', id: m.name ?? m.dm, evidence: `/sys/block/${m.dm}/dm (name ${m.name ?? '?'}, uuid mpath-${m.wwid ?? '?'}, slaves ${m.slaves.join(' ') || '-'})` });
    }
  }
  // Links (by-path, by-id) that still resolve to one of the volume's devices.
  for (const l of s.links) {
    if (!l.target || !blocks.has(l.target) || claimedBlocks.has(l.target)) continue;
    if (out.some((o) => (o.kind === 'by-path-link' || o.kind === 'by-id-link') && o.id === l.name)) continue;
    out.push({ kind: l.dir === 'by-path' ? 'by-path-link' : 'by-id-link', id: l.name, evidence: `/dev/disk/${l.dir}/${l.name} -> ${l.target}` });
  }
  // A local disk is the host's own: only what was built on it (maps) can be left over.
  return v.protocol === 'local' ? out.filter((o) => o.kind === 'multipath-map') : out;
}
