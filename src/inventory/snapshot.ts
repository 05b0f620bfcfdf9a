import { realHostFs, type HostFs } from '../system/hostfs.js';
import { blockDevices, blockIndex, links, stacking, type BlockIndex } from './read-block.js';
import { fcHosts, fcRemotePorts } from './read-fc.js';
import { nvme } from './read-nvme.js';
import { iscsiDiscovery, iscsiIfaces, iscsiNodes, iscsiSessions, scsiDevices } from './read-scsi.js';
import type { DmLine, HostSnapshot } from './model.js';

export interface SnapshotOptions {
  /**
   * 'full' (the default) reads everything. 'paths' reads what locating volumes needs (sessions,
   * devices with their WWIDs, by-path links, maps, NVMe namespaces) and leaves out vendor, model,
   * device state, sizes, by-id links and node records: never give it to the orphan check.
   */
  scope?: 'full' | 'paths';
  /**
   * `dmsetup table`, parsed (tools.ts parseDmsetup): each dm device of a full snapshot gets its
   * table lines. sysfs does not show tables; the agent runs dmsetup once per snapshot.
   */
  dmTables?: DmLine[];
  /**
   * false: SCSI devices' vendor, model and state are left unread (null), two reads per device
   * that only describe it; the oracle's routes read them for the devices a finding names
   * (fillScsiDetails). A full snapshot has them by default.
   */
  details?: boolean;
}

export async function takeSnapshot(fs: HostFs = realHostFs, opts: SnapshotOptions = {}): Promise<HostSnapshot> {
  return takeSnapshotSync(fs, opts);
}

/** The same, for callers that want no await per snapshot. */
export function takeSnapshotSync(fs: HostFs = realHostFs, opts: SnapshotOptions = {}): HostSnapshot {
  return readHost(fs, opts).snapshot;
}

/** A snapshot and the index of block devices it was made from (what links() checks /dev links against). */
export function readHost(fs: HostFs, opts: SnapshotOptions = {}): { snapshot: HostSnapshot; blocks: BlockIndex } {
  const full = (opts.scope ?? 'full') === 'full';
  const blocks = blockIndex(fs);
  const stack = stacking(fs, blocks);
  const scsi = scsiDevices(fs, blocks, stack.holders, full && opts.details !== false);
  const sessions = iscsiSessions(fs);
  const nodes = full ? iscsiNodes(fs) : [];
  const nv = nvme(fs, blocks, stack.holders);
  const blockList = blockDevices(fs, blocks, stack, full);
  if (full && opts.dmTables) {
    const tables = new Map<string, string[]>();
    for (const l of opts.dmTables) tables.set(l.name, [...(tables.get(l.name) ?? []), l.line.slice(l.name.length + 2)]);
    for (const b of blockList) if (b.dm?.name) b.dm.table = tables.get(b.dm.name) ?? null;
  }
  const devLinks = links(fs, blocks, full ? ['by-path', 'by-id'] : ['by-path']);
  const multipathMaps = blockList
    .filter((b) => b.dm?.uuid?.startsWith('mpath-'))
    .map((b) => ({ dm: b.name, name: b.dm!.name, wwid: b.dm!.uuid!.slice('mpath-'.length), slaves: b.slaves }));
  const snapshot: HostSnapshot = {
    takenAt: new Date().toISOString(),
    scope: full ? 'full' : 'paths',
    scsiDevices: scsi,
    iscsiSessions: sessions,
    iscsiNodes: nodes,
    iscsiDiscovery: full ? iscsiDiscovery(fs) : [],
    iscsiIfaces: full ? iscsiIfaces(fs) : [],
    nvmeControllers: nv.controllers,
    nvmeNamespaces: nv.namespaces,
    fcHosts: fcHosts(fs),
    fcRemotePorts: fcRemotePorts(fs),
    blockDevices: blockList,
    links: devLinks,
    multipathMaps,
  };
  return { snapshot, blocks };
}
