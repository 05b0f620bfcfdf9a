import type { VolumeIdentity } from '../volume/identity.js';
import { findOrphans, type Orphan } from './orphans.js';
import type { HostSnapshot } from './model.js';
import type { ToolViews } from './tools.js';

/**
 * The orphan oracle: what sysfs shows is left of a detached volume (findOrphans), plus what the
 * tools (iscsiadm, nvme-cli, multipathd) still show that sysfs does not account for. Pure: the
 * snapshot and the tools' parsed output are given (readToolViews reads them on a node), so the
 * same answer comes from a captured fixture.
 */
export function orphansWithTools(snap: HostSnapshot, v: VolumeIdentity, stillAttached: VolumeIdentity[], tools: ToolViews): Orphan[] {
  const out = findOrphans(snap, v, stillAttached);
  if (v.iscsi) {
    const iv = v.iscsi;
    const shared = (portal: string): boolean => stillAttached.some((o) => o.iscsi?.iqn === iv.iqn && o.iscsi.portals.includes(portal));
    for (const s of tools.iscsiSessions) {
      if (s.iqn !== iv.iqn || !iv.portals.includes(s.portal) || shared(s.portal)) continue;
      if (!out.some((o) => o.kind === 'iscsi-session' && o.id === `session${s.sid}`)) out.push({ kind: 'iscsi-session', id: `session${s.sid}`, evidence: `iscsiadm -m session: ${s.line}` });
    }
  }
  if (v.nvme && !stillAttached.some((o) => o.nvme?.nqn === v.nvme!.nqn)) {
    for (const c of tools.nvmeControllers) {
      if (c.nqn !== v.nvme.nqn || out.some((o) => o.kind === 'nvme-controller' && o.id === c.name)) continue;
      out.push({ kind: 'nvme-controller', id: c.name, evidence: `nvme list-subsys: ${c.name} ${c.address} ${c.state}` });
    }
  }
  // multipathd's own view: a map it still holds, or a path device it still tracks, for this volume.
  const wwid = v.iscsi?.wwid ?? v.local?.wwid ?? null;
  const blocks = new Set(out.filter((o) => o.kind === 'block-device').map((o) => o.id));
  const claimed = new Set(stillAttached.map((o) => o.iscsi?.wwid ?? o.local?.wwid).filter((x): x is string => Boolean(x)));
  for (const m of tools.multipathMaps) {
    if (!wwid || m.wwid !== wwid || claimed.has(m.wwid)) continue;
    if (!out.some((o) => o.kind === 'multipath-map' && (o.id === m.name || o.id === m.dm))) out.push({ kind: 'multipath-map', id: m.name, evidence: `multipathd show maps: ${m.line}` });
  }
  for (const p of tools.multipathPaths) {
    if ((wwid && p.wwid === wwid && !claimed.has(p.wwid)) || blocks.has(p.dev)) out.push({ kind: 'multipathd-path', id: p.dev, evidence: `multipathd show paths: ${p.line}` });
  }
  return out;
}
