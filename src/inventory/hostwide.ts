import type { VolumeIdentity } from '../volume/identity.js';
import { diffSnapshots, type DiffEntry } from './diff.js';
import type { BlockDevice, DevLink, HostSnapshot, IscsiDiscoveryRecord, IscsiIface, IscsiNodeRecord, IscsiSession, NvmeController, NvmeNamespace, ScsiDevice } from './model.js';
import type { OrphanKind } from '../volume/orphan-kinds.js';
import { judgeVolume, recordEvidence, type AttachKnowledge, type Orphan } from './orphans.js';
import { staleReferences } from './stack.js';
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
}

/** A stable name for one thing on the host, the same whichever list it is found through. */
type Thing = string;

/** The things a volume's findings name, resolved against the snapshot they came from. */
function thingsOf(s: HostSnapshot, found: Orphan[]): Set<Thing> {
  const out = new Set<Thing>();
  const byDmName = new Map(s.blockDevices.filter((b) => b.dm?.name).map((b) => [b.dm!.name!, b.name]));
  for (const o of found) {
    switch (o.kind) {
      case 'scsi-device':
        out.add(`scsi ${o.id}`);
        break;
      case 'block-device':
        out.add(`block ${o.id}`);
        break;
      case 'by-path-link':
      case 'by-id-link':
        out.add(`link ${o.kind === 'by-path-link' ? 'by-path' : 'by-id'}/${o.id}`);
        break;
      case 'multipath-map':
      case 'holder':
        out.add(`block ${byDmName.get(o.id) ?? o.id}`);
        break;
      case 'iscsi-session':
        out.add(`session ${o.id.slice('session'.length)}`);
        break;
      case 'iscsi-node-record':
        out.add(`node ${o.id}`);
        break;
      case 'iscsi-discovery-record':
        out.add(`discovery ${o.id}`);
        break;
      case 'nvme-controller':
        out.add(`nvme ${o.id}`);
        break;
      case 'nvme-namespace': {
        out.add(`ns ${o.id}`);
        out.add(`block ${o.id}`);
        for (const p of s.nvmeNamespaces.find((n) => n.name === o.id)?.paths ?? []) out.add(`block ${p}`);
        break;
      }
      default:
        break;
    }
  }
  return out;
}

/** What the still-attached volumes account for in a snapshot: their devices, sessions, records, controllers, maps and links; never a holder on them. */
function accountedFor(s: HostSnapshot, attached: VolumeIdentity[], opts: { subsystemNamespaces: boolean } = { subsystemNamespaces: true }): Set<Thing> {
  const out = new Set<Thing>();
  for (const a of attached) {
    // Judged alone: everything that refers to it, kept or not (and one pass per volume, not per pair).
    const v = judgeVolume(s, a, []);
    for (const t of thingsOf(s, [...v.orphans.filter((o) => o.kind !== 'holder'), ...v.kept])) out.add(t);
    // NVMe shows every namespace of a connected subsystem: those appear with the controller.
    if (a.nvme && opts.subsystemNamespaces) for (const n of s.nvmeNamespaces.filter((x) => x.subsysNqn === a.nvme!.nqn)) for (const t of thingsOf(s, [{ kind: 'nvme-namespace', id: n.name, evidence: '' }])) out.add(t);
  }
  // An iface an accounted node record logs in through is accounted too.
  for (const n of s.iscsiNodes) if (out.has(`node ${n.iqn} ${n.portal}`) && n.iface) out.add(`iface ${n.iface}`);
  return out;
}

/** A diff entry as a thing and a finding (kind, id, evidence); null for what another entry covers. */
function asFinding(s: HostSnapshot, e: DiffEntry): { thing: Thing; orphan: Orphan } | null {
  const f = (thing: Thing, kind: OrphanKind, id: string, evidence: string): { thing: Thing; orphan: Orphan } => ({ thing, orphan: { kind, id, evidence } });
  switch (e.kind) {
    case 'scsiDevices': {
      const d = e.item as ScsiDevice;
      return f(`scsi ${d.hctl}`, 'scsi-device', d.hctl, `${d.sysfs} (wwid ${d.wwid ?? '?'}${d.block ? `, ${d.block}` : ''}${d.session !== null ? `, session${d.session}` : ''})`);
    }
    case 'blockDevices': {
      const b = e.item as BlockDevice;
      if (/^nvme\d+(c\d+)?n\d+$/.test(b.name) && s.nvmeNamespaces.some((n) => n.name === b.name)) return null; // the namespace's entry says it
      if (b.dm?.uuid?.startsWith('mpath-')) return f(`block ${b.name}`, 'multipath-map', b.dm.name ?? b.name, `/sys/block/${b.name}/dm (name ${b.dm.name ?? '?'}, uuid ${b.dm.uuid}, slaves ${b.slaves.join(' ') || '-'})`);
      if (b.dm || b.md) {
        const what = b.dm ? `dm name ${b.dm.name ?? '?'}, uuid ${b.dm.uuid || '-'}${b.dm.table?.length ? `, table "${b.dm.table.join(' | ')}"` : ''}` : `md ${b.md!.level ?? '?'}`;
        return f(`block ${b.name}`, 'holder', b.dm?.name ?? b.name, `/sys/block/${b.name} (${what}; on ${b.slaves.join(', ') || 'nothing'})`);
      }
      return f(`block ${b.name}`, 'block-device', b.name, `/sys/block/${b.name}${b.devt ? ` (${b.devt})` : ''}`);
    }
    case 'links': {
      const l = e.item as DevLink;
      return f(`link ${l.dir}/${l.name}`, l.dir === 'by-path' ? 'by-path-link' : 'by-id-link', l.name, `/dev/disk/${l.dir}/${l.name} -> ${l.target ?? '(nothing)'}`);
    }
    case 'iscsiSessions': {
      const x = e.item as IscsiSession;
      return f(`session ${x.sid}`, 'iscsi-session', `session${x.sid}`, `${x.sysfs} (${x.targetIqn ?? '?'} via ${x.portal ?? '?'})`);
    }
    case 'iscsiNodes': {
      const n = e.item as IscsiNodeRecord;
      return f(`node ${n.iqn} ${n.portal}`, 'iscsi-node-record', `${n.iqn} ${n.portal}`, recordEvidence(n));
    }
    case 'iscsiDiscovery': {
      const r = e.item as IscsiDiscoveryRecord;
      return f(`discovery ${r.type} ${r.portal}`, 'iscsi-discovery-record', `${r.type} ${r.portal}`, `${r.path} (node records for ${r.targets.join(', ') || 'nothing'})`);
    }
    case 'iscsiIfaces': {
      const i = e.item as IscsiIface;
      return f(`iface ${i.name}`, 'iscsi-iface', i.name, i.path);
    }
    case 'nvmeControllers': {
      const c = e.item as NvmeController;
      return f(`nvme ${c.name}`, 'nvme-controller', c.name, `${c.sysfs} (${c.subsysNqn ?? '?'} at ${c.traddr ?? '?'}:${c.trsvcid ?? '?'})`);
    }
    case 'nvmeNamespaces': {
      const n = e.item as NvmeNamespace;
      return f(`ns ${n.name}`, 'nvme-namespace', n.name, `${n.sysfs} (${n.subsysNqn ?? '?'} nsid ${n.nsid ?? '?'}, uuid ${n.uuid ?? '?'})`);
    }
    default:
      return null; // multipathMaps: the map's block device entry says it
  }
}

export function hostWideView(input: HostWideInput): HostWideView {
  const { baseline, now } = input;
  const attached = input.stillAttached ?? [];
  const diff = diffSnapshots(baseline, now);
  const accounted = accountedFor(now, attached);
  const since = `since the baseline of ${baseline.takenAt}`;
  const orphans: Orphan[] = [];
  const seen = new Set<Thing>();
  const add = (list: Orphan[], thing: Thing, o: Orphan): void => {
    if (seen.has(`${list === orphans ? '+' : '-'}${thing}`)) return;
    seen.add(`${list === orphans ? '+' : '-'}${thing}`);
    list.push(o);
  };
  // In place: maps that name a removed device, maps suspended since the baseline. Said on the
  // map's own finding when it appeared too.
  const inPlace = new Map<string, string[]>();
  const note = (dev: string, text: string): void => void inPlace.set(dev, [...(inPlace.get(dev) ?? []), text]);
  const before = new Map(staleReferences(baseline).map((r) => [r.dev, r.evidence]));
  for (const r of staleReferences(now)) if (before.get(r.dev) !== r.evidence) note(r.dev, `stale reference: ${r.evidence}`);
  const suspendedBefore = new Set(baseline.blockDevices.filter((b) => b.dm?.suspended).map((b) => b.name));
  for (const b of now.blockDevices) if (b.dm?.suspended && !suspendedBefore.has(b.name)) note(b.name, `SUSPENDED (/sys/block/${b.name}/dm/suspended is 1): every I/O to it waits`);
  for (const e of diff.added) {
    const x = asFinding(now, e);
    if (!x || accounted.has(x.thing)) continue;
    // A link udev re-pointed to a device that is accounted for is that device's.
    if (e.kind === 'links' && (e.item as DevLink).target && accounted.has(`block ${(e.item as DevLink).target}`)) continue;
    const notes = e.kind === 'blockDevices' ? [...(inPlace.get((e.item as BlockDevice).name) ?? []), ...madeAgain(baseline, e.item as BlockDevice)] : [];
    add(orphans, x.thing, { ...x.orphan, evidence: [`appeared ${since}, and no attached volume accounts for it: ${x.orphan.evidence}`, ...notes].join('; ') });
  }
  for (const [dev, notes] of inPlace) {
    const b = now.blockDevices.find((x) => x.name === dev)!;
    add(orphans, `block ${dev}`, { kind: b.dm?.uuid?.startsWith('mpath-') ? 'multipath-map' : 'holder', id: b.dm?.name ?? dev, evidence: `${notes.join('; ')} (${since})` });
  }
  const devices = new Set(now.blockDevices.map((b) => b.name));
  for (const p of input.tools?.multipathPaths ?? []) {
    if (!devices.has(p.dev)) add(orphans, `mpathd ${p.dev}`, { kind: 'multipathd-path', id: p.dev, evidence: `multipathd show paths: ${p.line}; /sys/block/${p.dev} is gone: multipathd monitors a removed device` });
  }

  // What went: fine when it was a detached volume's (judged on the baseline, where it was
  // attached), including a session or controller the detached volumes shared among themselves;
  // not when a volume still attached accounts for it (a session kept for its LUN).
  const theirs = new Set<Thing>();
  // (Another namespace of a subsystem an attached volume uses is not that volume's to keep.)
  const stays = accountedFor(baseline, attached, { subsystemNamespaces: false });
  for (const d of input.detached ?? []) {
    const v = judgeVolume(baseline, d.volume, attached, d.known ?? {});
    for (const t of thingsOf(baseline, [...v.orphans, ...v.kept])) if (!stays.has(t)) theirs.add(t);
  }
  // Links that pointed at a detached volume's devices went with them.
  const collateral: Orphan[] = [];
  for (const e of diff.removed) {
    const x = asFinding(baseline, e);
    if (!x || theirs.has(x.thing)) continue;
    if (e.kind === 'links' && (e.item as DevLink).target && theirs.has(`block ${(e.item as DevLink).target}`)) continue;
    // A link that is still there, pointing elsewhere now, is not gone (udev re-pointed it).
    if (e.kind === 'links' && now.links.some((l) => l.dir === (e.item as DevLink).dir && l.name === (e.item as DevLink).name)) continue;
    add(collateral, x.thing, { ...x.orphan, evidence: `existed at the baseline of ${baseline.takenAt}, was no detached volume's, and is gone: ${x.orphan.evidence}` });
  }
  return { baselineTakenAt: baseline.takenAt, orphans, collateral };
}

/** A map that appeared with the uuid of one the baseline had under another name: made again (multipathd re-adds a flushed map whose paths are still there). */
function madeAgain(baseline: HostSnapshot, b: BlockDevice): string[] {
  if (!b.dm?.uuid) return [];
  const was = baseline.blockDevices.find((x) => x.dm?.uuid === b.dm!.uuid && x.name !== b.name);
  return was ? [`back after a flush: the baseline had this map as ${was.name}, and it was made again as ${b.name}`] : [];
}
