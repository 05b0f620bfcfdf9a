import type { HostFs } from '../system/hostfs.js';
import { volumeWwid, type VolumeIdentity } from '../volume/identity.js';
import { appeared, diffSnapshots } from './diff.js';
import { hostWideView, type HostWideView } from './hostwide.js';
import { judgeVolume, snapshotIndex, volumeRefs, type AttachKnowledge, type Kept, type Orphan, type VolumeRefs, type VolumeVerdict } from './orphans.js';
import type { HostSnapshot } from './model.js';
import { fillScsiDetails } from './read-scsi.js';
import { multipathPathStates, type ToolViews } from './tools.js';

/** What the oracle is asked after a detach: the host as it is now, and what is known of the volumes. */
export interface OracleQuestion {
  now: HostSnapshot;
  tools: ToolViews;
  volume: VolumeIdentity;
  known: AttachKnowledge;
  /** Volumes still attached: what they share with the volume is rightly kept. */
  stillAttached: VolumeIdentity[];
  /** The host before the detach, for the host-wide view; null for the volume-scoped verdict alone. */
  baseline: HostSnapshot | null;
  /** Other volumes detached since the baseline: what they had may go too. */
  alsoDetached: Array<{ volume: VolumeIdentity; known: AttachKnowledge }>;
  /** Where the devices a finding names get their vendor, model and state read. */
  fs: HostFs;
}

export interface OracleAnswer {
  /** No orphan, and with a baseline, nothing host-wide either. */
  clean: boolean;
  orphans: Orphan[];
  kept: Kept[];
  volume: VolumeIdentity;
  hostWide?: HostWideView;
}

/** Runs one named step of the answer (the agent times each); by default just runs it. */
export type OracleStep = <T>(name: string, fn: () => T) => Promise<T>;

/**
 * The oracle's whole answer: the volume-scoped verdict and, with a baseline, the host-wide view.
 * What a route serves and what a unit test asks of a captured host are the same function.
 */
export async function oracleAnswer(q: OracleQuestion, step: OracleStep = async (_name, fn) => fn()): Promise<OracleAnswer> {
  const { orphans, kept, diff } = await step('judge', () => {
    const refs = volumeRefs(q.now, q.volume, q.stillAttached, q.known);
    const diff = q.baseline ? diffSnapshots(q.baseline, q.now) : null;
    // The devices a finding may name get their description (vendor, model, state) read now.
    fillScsiDetails(q.fs, q.now.scsiDevices, [...refs.scsi.map((d) => d.hctl), ...(diff ? appeared(diff) : [])]);
    return { ...verdictWithTools(q.now, q.volume, q.stillAttached, q.tools, q.known, refs), diff };
  });
  const { baseline } = q;
  if (!baseline || !diff) return { clean: orphans.length === 0, orphans, kept, volume: q.volume };
  const hostWide = await step('hostwide', () =>
    hostWideView({ baseline, now: q.now, diff, tools: q.tools, stillAttached: q.stillAttached, detached: [{ volume: q.volume, known: q.known }, ...q.alsoDetached] }),
  );
  return { clean: orphans.length === 0 && hostWide.orphans.length === 0 && hostWide.collateral.length === 0, orphans, kept, volume: q.volume, hostWide };
}

/**
 * The orphan oracle: what sysfs shows is left of a detached volume (judgeVolume), plus what the
 * tools that keep state of their own (multipathd, device-mapper through dmsetup) still show.
 * Pure: the snapshot and the tools' parsed output are given (readToolViews reads them on a node),
 * so the same answer comes from a captured fixture.
 */
export function verdictWithTools(snap: HostSnapshot, v: VolumeIdentity, stillAttached: VolumeIdentity[], tools: ToolViews, known: AttachKnowledge = {}, refs?: VolumeRefs): VolumeVerdict {
  const { orphans: out, kept } = judgeVolume(snap, v, stillAttached, known, refs);
  // multipathd's own view: a map it still holds, or a path device it still tracks, for this volume.
  const wwid = volumeWwid(v);
  const blocks = new Set(out.filter((o) => o.kind === 'block-device').map((o) => o.id));
  const claimed = new Set(stillAttached.map(volumeWwid).filter((x): x is string => Boolean(x)));
  for (const m of tools.multipathMaps) {
    if (!wwid || m.wwid !== wwid || claimed.has(m.wwid)) continue;
    if (!out.some((o) => o.kind === 'multipath-map' && (o.id === m.name || o.id === m.dm))) out.push({ kind: 'multipath-map', id: m.name, evidence: `multipathd show maps: ${m.line}` });
  }
  for (const p of tools.multipathPaths) {
    if ((wwid && p.wwid === wwid && !claimed.has(p.wwid)) || blocks.has(p.dev)) out.push({ kind: 'multipathd-path', id: p.dev, evidence: `multipathd show paths: ${p.line}${goneNote(snap, p.dev)}` });
  }
  // A map's own status: every path failed (dmsetup status), said on the map's finding.
  for (const o of out) {
    if (o.kind !== 'multipath-map') continue;
    const failed = allPathsFailed(tools, o.id);
    if (failed) o.evidence += `; ${failed}`;
  }
  return { orphans: out, kept };
}

/** The oracle's orphans alone (verdictWithTools without what was kept). */
export function orphansWithTools(snap: HostSnapshot, v: VolumeIdentity, stillAttached: VolumeIdentity[], tools: ToolViews, known: AttachKnowledge = {}): Orphan[] {
  return verdictWithTools(snap, v, stillAttached, tools, known).orphans;
}

/** ", device gone" when multipathd tracks a path whose device the kernel no longer has. */
function goneNote(snap: HostSnapshot, dev: string): string {
  return snapshotIndex(snap).stack.disks.has(dev) ? '' : `; /sys/block/${dev} is gone: multipathd monitors a removed device`;
}

/** "all paths failed (dmsetup status: 8:0 F, 8:16 F)" for a multipath map whose paths all failed. */
export function allPathsFailed(tools: ToolViews, name: string): string | null {
  const states = tools.dmStatus.filter((l) => l.name === name && l.target === 'multipath').flatMap((l) => multipathPathStates(l.args));
  if (states.length === 0 || states.some((p) => p.state !== 'F')) return null;
  return `all paths failed (dmsetup status: ${states.map((p) => `${p.devt} ${p.state}`).join(', ')})`;
}
