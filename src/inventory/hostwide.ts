import { volumeWwid, type VolumeIdentity } from '../volume/identity.js';
import { diffSnapshots, type DiffEntry, type SnapshotDiff } from './diff.js';
import type { BlockDevice, DevLink, HostSnapshot, ScsiDevice } from './model.js';
import type { OrphanKind } from '../volume/orphan-kinds.js';
import { snapshotIndex, volumeRefs, type AttachKnowledge, type Orphan, type SnapshotIndex, type VolumeRefs } from './orphans.js';
import { describeDevice } from './stack.js';
import { discoveryId, evidenceOf, isMultipathMap, recordId, SUSPENDED, thingOf, type Thing } from './things.js';
import type { ToolViews } from './tools.js';

/**
 * The host-wide view: the host now against a baseline snapshot taken before (a scenario, a
 * check, a detach). Two lists, both of them failures:
 *
 * - orphans: what appeared since the baseline and no still-attached volume accounts for, whoever
 *   it belongs to (a login to a target nobody asked for counts), plus what went wrong in place:
 *   a map that now names a removed device, a map that is now suspended, a path multipathd still
 *   monitors after its device went;
 * - collateral: what existed at the baseline, was not a detached volume's and is gone: a detach
 *   that took another volume's device, link, session, record or map.
 */
export interface HostWideView {
  baselineTakenAt: string;
  orphans: Orphan[];
  collateral: Orphan[];
}

export interface HostWideInput {
  baseline: HostSnapshot;
  now: HostSnapshot;
  /** The tools' view now (multipathd's paths); optional, for callers without one. */
  tools?: Pick<ToolViews, 'multipathPaths'>;
  /** Volumes attached now: what they account for is neither new nor missing. */
  stillAttached?: VolumeIdentity[];
  /** Volumes detached since the baseline: what was theirs may go. */
  detached?: Array<{ volume: VolumeIdentity; known?: AttachKnowledge }>;
  /** diffSnapshots(baseline, now), when the caller already has it. */
  diff?: SnapshotDiff;
}

/** The things a volume's references name; holders (and stale references) only when asked. */
function thingsOfRefs(s: HostSnapshot, r: VolumeRefs, out: Set<Thing>, withHolders: boolean): void {
  for (const d of r.scsi) {
    out.add(thingOf.scsi(d.hctl));
    if (d.block) out.add(thingOf.block(d.block));
  }
  for (const y of r.sessions) out.add(thingOf.session(y.sid));
  for (const n of r.nodes) out.add(thingOf.node(n));
  for (const d of r.discovery) out.add(thingOf.discovery(d));
  for (const c of r.controllers) out.add(thingOf.controller(c.name));
  for (const n of r.namespaces) namespaceThings(s, n.name, out);
  for (const l of [...r.namedLinks, ...r.links]) out.add(thingOf.link(l));
  for (const b of r.maps) out.add(thingOf.block(b.name));
  if (withHolders) {
    for (const h of r.holders) out.add(thingOf.block(h.dev));
    for (const ref of r.stale) out.add(thingOf.block(ref.dev));
  }
}

/** A namespace head and its path devices. */
function namespaceThings(s: HostSnapshot, name: string, out: Set<Thing>): void {
  out.add(thingOf.namespace(name));
  out.add(thingOf.block(name));
  for (const p of s.nvmeNamespaces.find((n) => n.name === name)?.paths ?? []) out.add(thingOf.block(p));
}

/**
 * What one still-attached volume accounts for in a snapshot: its devices (and the kernel's
 * partitions of them), sessions, records and their ifaces, controllers, maps and links; never a
 * holder on them.
 */
export function accountedBy(s: HostSnapshot, a: VolumeIdentity, opts: AccountingOptions = { subsystemNamespaces: true }): Set<Thing> {
  const out = new Set<Thing>();
  const x = snapshotIndex(s);
  const r = volumeRefs(s, a, []);
  thingsOfRefs(s, r, out, false);
  if (opts.sessionsInUse) {
    // A session to the volume's target that carried none of its LUNs was not its (yet): a detach
    // of the target's last LUN then that logs out is the detached volume's doing, even when the
    // volume's own attach, made meanwhile, logged in again. Its node record likewise.
    const used = new Set(r.scsi.map((d) => d.session));
    for (const y of r.sessions) if (!used.has(y.sid)) out.delete(thingOf.session(y.sid));
    for (const n of r.nodes) if (!r.sessions.some((y) => used.has(y.sid) && y.portal === n.portal)) out.delete(thingOf.node(n));
  }
  // A partition of the volume's disk is the volume's, and so are the links udev made to it.
  for (const b of r.blocks) for (const p of x.stack.disks.get(b)?.partitions ?? []) for (const l of x.linksTo.get(p.name) ?? []) out.add(thingOf.link(l));
  // NVMe shows every namespace of a connected subsystem: those appear with the controller.
  if (a.nvme && opts.subsystemNamespaces) for (const n of s.nvmeNamespaces) if (n.subsysNqn === a.nvme.nqn) namespaceThings(s, n.name, out);
  // An iface its node records log in through.
  for (const n of r.nodes) if (n.iface) out.add(thingOf.iface(n.iface));
  return out;
}

/**
 * Whether a still-attached volume accounts for a thing, asked only of the things that appeared
 * or went. Each thing is put to the volumes that share a key with it (its WWID, its target and
 * LUN, its target, its portal; every NVMe or local volume), and each of those answers with
 * accountedBy, made once: a host with hundreds of attached volumes and a few changes judges a
 * few volumes, not all. The keys are wide on purpose (a target's every volume for a session):
 * a volume left out would make a false orphan, one too many costs only time.
 */
export interface AccountingOptions {
  /** Every namespace of a subsystem the volume uses is its (they appear with the controller). */
  subsystemNamespaces: boolean;
  /** Only the sessions that carry one of the volume's LUNs are its (and their node records). */
  sessionsInUse?: boolean;
}

export class Accounting {
  private index: Map<string, VolumeIdentity[]> | null = null;
  private readonly things = new Map<VolumeIdentity, Set<Thing>>();
  private readonly x: SnapshotIndex;

  constructor(
    private readonly s: HostSnapshot,
    private readonly attached: VolumeIdentity[],
    private readonly opts: AccountingOptions,
  ) {
    this.x = snapshotIndex(s);
  }

  /** Whether an item of a diff's collection, named `thing`, is accounted for. */
  item(e: DiffEntry, thing: Thing): boolean {
    return this.attached.length > 0 && this.has(thing, this.keysOf(e.kind, e.item));
  }

  block(name: string): boolean {
    return this.attached.length > 0 && this.has(thingOf.block(name), this.blockKeys(name));
  }

  private has(thing: Thing, keys: Iterable<string>): boolean {
    const asked = new Set<VolumeIdentity>();
    for (const k of keys) {
      for (const a of this.volumes(k)) {
        if (asked.has(a)) continue;
        asked.add(a);
        let mine = this.things.get(a);
        if (!mine) this.things.set(a, (mine = accountedBy(this.s, a, this.opts)));
        if (mine.has(thing)) return true;
      }
    }
    return false;
  }

  private volumes(key: string): VolumeIdentity[] {
    if (!this.index) {
      const m = new Map<string, VolumeIdentity[]>();
      const add = (k: string, a: VolumeIdentity): void => void (m.get(k) ?? m.set(k, []).get(k)!).push(a);
      for (const a of this.attached) {
        if (a.iscsi) {
          add(`iqn ${a.iscsi.iqn}`, a);
          add(`lun ${a.iscsi.iqn} ${a.iscsi.lun}`, a);
          if (a.iscsi.wwid) add(`wwid ${a.iscsi.wwid}`, a);
          for (const p of a.iscsi.portals) add(`portal ${p}`, a);
        }
        if (a.nvme) add('nvme', a);
        // Every FC volume shares the key 'fc' (a host has few): its devices and links are then checked one by one.
        if (a.fc) add('fc', a);
        if (a.local) add('local', a);
      }
      this.index = m;
    }
    if (key.startsWith('name ')) {
      // A dangling by-id link is a volume's when its name carries the volume's WWID.
      const name = key.slice(5);
      return this.attached.filter((a) => {
        const wwid = a.local ? null : volumeWwid(a);
        return wwid && (name.includes(wwid) || name.includes(wwid.slice(1)));
      });
    }
    return this.index.get(key) ?? [];
  }

  private scsiKeys(d: ScsiDevice): string[] {
    const keys = ['local'];
    if (d.wwid) keys.push(`wwid ${d.wwid}`);
    if (d.rport) keys.push('fc');
    const iqn = d.session === null ? null : this.s.iscsiSessions.find((y) => y.sid === d.session)?.targetIqn;
    if (iqn) keys.push(`lun ${iqn} ${d.lun}`);
    return keys;
  }

  /** A disk's keys: its SCSI device's, the targets and LUNs by-path links to it name, a map's WWID and slaves, a partition's disk. */
  private blockKeys(name: string, depth = 0): string[] {
    const keys = ['local', 'nvme'];
    const d = this.x.scsiByBlock.get(name);
    if (d) keys.push(...this.scsiKeys(d));
    for (const l of this.x.linksTo.get(name) ?? []) keys.push(...this.linkNameKeys(l));
    const b = this.x.stack.disks.get(name);
    if (b?.dm?.uuid?.startsWith('mpath-')) keys.push(`wwid ${b.dm.uuid.slice(6)}`);
    if (depth < 3) {
      for (const sl of b?.slaves ?? []) keys.push(...this.blockKeys(sl, depth + 1));
      const disk = this.x.stack.diskOf.get(name);
      if (disk) keys.push(...this.blockKeys(disk, depth + 1));
    }
    return keys;
  }

  /** "ip-P-iscsi-IQN-lun-L": the target and LUN a by-path name is for (every LUN of the target when L is not decimal). */
  private linkNameKeys(l: DevLink): string[] {
    if (l.dir !== 'by-path') return [`name ${l.name}`];
    if (l.name.includes('-fc-0x')) return ['fc'];
    const at = l.name.indexOf('-iscsi-');
    const lunAt = l.name.lastIndexOf('-lun-');
    if (at < 0 || lunAt < at) return [];
    const iqn = l.name.slice(at + 7, lunAt);
    const lun = l.name.slice(lunAt + 5);
    return [/^\d+$/.test(lun) ? `lun ${iqn} ${Number(lun)}` : `iqn ${iqn}`];
  }

  private keysOf(kind: string, item: unknown): string[] {
    switch (kind) {
      case 'scsiDevices':
        return this.scsiKeys(item as ScsiDevice);
      case 'blockDevices':
        return this.blockKeys((item as BlockDevice).name);
      case 'links': {
        const l = item as DevLink;
        return [...this.linkNameKeys(l), ...(l.target ? this.blockKeys(l.target) : []), 'local'];
      }
      case 'iscsiSessions':
        return [`iqn ${(item as HostSnapshot['iscsiSessions'][number]).targetIqn}`];
      case 'iscsiNodes':
        return [`iqn ${(item as HostSnapshot['iscsiNodes'][number]).iqn}`];
      case 'iscsiDiscovery':
        return [`portal ${(item as HostSnapshot['iscsiDiscovery'][number]).portal}`];
      case 'iscsiIfaces': {
        const name = (item as HostSnapshot['iscsiIfaces'][number]).name;
        return this.s.iscsiNodes.filter((n) => n.iface === name).map((n) => `iqn ${n.iqn}`);
      }
      default:
        return ['nvme'];
    }
  }
}

/** A finding named by its thing. */
export interface Found {
  thing: Thing;
  orphan: Orphan;
}

const found = (thing: Thing, kind: OrphanKind, id: string, evidence: string): Found => ({ thing, orphan: { kind, id, evidence } });

/** A diff entry as a thing and a finding, with the same evidence the volume-scoped verdict gives; null for what another entry says. */
export function asFinding(s: HostSnapshot, e: DiffEntry): Found | null {
  const idx = snapshotIndex(s).stack;
  switch (e.kind) {
    case 'scsiDevices': {
      const d = e.item as HostSnapshot['scsiDevices'][number];
      return found(thingOf.scsi(d.hctl), 'scsi-device', d.hctl, evidenceOf.scsi(d));
    }
    case 'blockDevices': {
      const b = e.item as BlockDevice;
      if (/^nvme\d+(c\d+)?n\d+$/.test(b.name) && s.nvmeNamespaces.some((n) => n.name === b.name)) return null; // the namespace's entry says it
      if (isMultipathMap(b)) return found(thingOf.block(b.name), 'multipath-map', b.dm!.name ?? b.name, evidenceOf.map(b));
      if (b.dm || b.md) return found(thingOf.block(b.name), 'holder', b.dm?.name ?? b.name, `${describeDevice(idx, b.name)}; on ${b.slaves.join(', ') || 'nothing'}`);
      return found(thingOf.block(b.name), 'block-device', b.name, evidenceOf.disk(b));
    }
    case 'links': {
      const l = e.item as DevLink;
      return found(thingOf.link(l), l.dir === 'by-path' ? 'by-path-link' : 'by-id-link', l.name, evidenceOf.link(l));
    }
    case 'iscsiSessions': {
      const y = e.item as HostSnapshot['iscsiSessions'][number];
      return found(thingOf.session(y.sid), 'iscsi-session', `session${y.sid}`, evidenceOf.session(y));
    }
    case 'iscsiNodes': {
      const n = e.item as HostSnapshot['iscsiNodes'][number];
      return found(thingOf.node(n), 'iscsi-node-record', recordId(n), evidenceOf.record(n));
    }
    case 'iscsiDiscovery': {
      const r = e.item as HostSnapshot['iscsiDiscovery'][number];
      return found(thingOf.discovery(r), 'iscsi-discovery-record', discoveryId(r), evidenceOf.discovery(r));
    }
    case 'iscsiIfaces': {
      const i = e.item as HostSnapshot['iscsiIfaces'][number];
      return found(thingOf.iface(i.name), 'iscsi-iface', i.name, evidenceOf.iface(i, (s.iscsiNodes ?? []).filter((n) => n.iface === i.name)));
    }
    case 'nvmeControllers': {
      const c = e.item as HostSnapshot['nvmeControllers'][number];
      return found(thingOf.controller(c.name), 'nvme-controller', c.name, evidenceOf.controller(c));
    }
    case 'nvmeNamespaces': {
      const n = e.item as HostSnapshot['nvmeNamespaces'][number];
      return found(thingOf.namespace(n.name), 'nvme-namespace', n.name, evidenceOf.namespace(n));
    }
    default:
      return null; // multipathMaps: the map's block device entry says it
  }
}

export function hostWideView(input: HostWideInput): HostWideView {
  const { baseline, now } = input;
  const attached = input.stillAttached ?? [];
  const diff = input.diff ?? diffSnapshots(baseline, now);
  const accounted = new Accounting(now, attached, { subsystemNamespaces: true });
  const nowIdx = snapshotIndex(now);
  const since = `since the baseline of ${baseline.takenAt}`;
  const orphans: Orphan[] = [];
  const seen = new Set<string>();
  const add = (list: Orphan[], thing: Thing, o: Orphan): void => {
    const key = `${list === orphans ? '+' : '-'}${thing}`;
    if (seen.has(key)) return;
    seen.add(key);
    list.push(o);
  };
  // In place: maps that name a removed device, maps suspended since the baseline. Said on the
  // map's own finding when it appeared too.
  const inPlace = new Map<string, string[]>();
  const note = (dev: string, text: string): void => void inPlace.set(dev, [...(inPlace.get(dev) ?? []), text]);
  const before = new Map(snapshotIndex(baseline).stale.map((r) => [r.dev, r.evidence]));
  for (const r of nowIdx.stale) if (before.get(r.dev) !== r.evidence) note(r.dev, `stale reference: ${r.evidence}`);
  const suspendedBefore = new Set(baseline.blockDevices.filter((b) => b.dm?.suspended).map((b) => b.name));
  for (const b of now.blockDevices) if (b.dm?.suspended && !suspendedBefore.has(b.name)) note(b.name, `${SUSPENDED} (/sys/block/${b.name}/dm/suspended is 1)`);
  const baselineByUuid = new Map(baseline.blockDevices.filter((b) => b.dm?.uuid).map((b) => [b.dm!.uuid!, b.name]));
  for (const e of diff.added) {
    const f = asFinding(now, e);
    if (!f || accounted.item(e, f.thing)) continue;
    // A link udev re-pointed to a device that is accounted for is that device's.
    if (e.kind === 'links' && (e.item as DevLink).target && accounted.block((e.item as DevLink).target!)) continue;
    const notes: string[] = [];
    if (e.kind === 'blockDevices') {
      const b = e.item as BlockDevice;
      notes.push(...(inPlace.get(b.name) ?? []));
      // A map that appeared with the uuid of one the baseline had under another name: made again
      // (multipathd re-adds a flushed map whose paths are still there).
      const was = b.dm?.uuid ? baselineByUuid.get(b.dm.uuid) : undefined;
      if (was && was !== b.name) notes.push(`back after a flush: the baseline had this map as ${was}, and it was made again as ${b.name}`);
    }
    add(orphans, f.thing, { ...f.orphan, evidence: [`appeared ${since}, and no attached volume accounts for it: ${f.orphan.evidence}`, ...notes].join('; ') });
  }
  for (const [dev, notes] of inPlace) {
    const b = nowIdx.stack.disks.get(dev)!;
    add(orphans, thingOf.block(dev), { kind: isMultipathMap(b) ? 'multipath-map' : 'holder', id: b.dm?.name ?? dev, evidence: `${notes.join('; ')} (${since})` });
  }
  for (const p of input.tools?.multipathPaths ?? []) {
    if (!nowIdx.stack.disks.has(p.dev)) add(orphans, thingOf.mpathdPath(p.dev), { kind: 'multipathd-path', id: p.dev, evidence: `multipathd show paths: ${p.line}; /sys/block/${p.dev} is gone: multipathd monitors a removed device` });
  }

  // What went: fine when it was a detached volume's (judged on the baseline, where it was
  // attached), including a session or controller the detached volumes shared among themselves;
  // not when a volume still attached accounts for it (a session kept for its LUN).
  const theirs = new Set<Thing>();
  for (const d of input.detached ?? []) thingsOfRefs(baseline, volumeRefs(baseline, d.volume, attached, d.known ?? {}), theirs, true);
  // (Another namespace of a subsystem an attached volume uses is not that volume's to keep.)
  const stays = new Accounting(baseline, attached, { subsystemNamespaces: false, sessionsInUse: true });
  const collateral: Orphan[] = [];
  const linksNow = new Set(diff.removed.some((e) => e.kind === 'links') ? now.links.map((l) => thingOf.link(l)) : []);
  for (const e of diff.removed) {
    const f = asFinding(baseline, e);
    if (!f || (theirs.has(f.thing) && !stays.item(e, f.thing))) continue;
    if (e.kind === 'links') {
      const l = e.item as DevLink;
      // Links that pointed at a detached volume's devices went with them; a link that is still
      // there, pointing elsewhere now, is not gone (udev re-pointed it).
      if ((l.target && theirs.has(thingOf.block(l.target)) && !stays.block(l.target)) || linksNow.has(thingOf.link(l))) continue;
    }
    add(collateral, f.thing, { ...f.orphan, evidence: `existed at the baseline of ${baseline.takenAt}, was no detached volume's, and is gone: ${f.orphan.evidence}` });
  }
  return { baselineTakenAt: baseline.takenAt, orphans, collateral };
}
