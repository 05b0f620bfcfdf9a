import type { OrphanKind } from '../volume/orphan-kinds.js';
import type { BlockDevice, DevLink, IscsiDiscoveryRecord, IscsiIface, IscsiNodeRecord, IscsiSession, NvmeController, NvmeNamespace, ScsiDevice } from './model.js';

/**
 * One name per thing on a host, and one way to show each as evidence: the volume-scoped verdict,
 * the host-wide view and the snapshot diff all name things with these, so that a device found
 * through a volume's rules and the same device found in a diff are one thing.
 */
export type Thing = string;

export const thingOf = {
  scsi: (hctl: string): Thing => `scsi ${hctl}`,
  /** A disk or a dm or md device (maps and holders are named by their kernel name). */
  block: (name: string): Thing => `block ${name}`,
  link: (l: Pick<DevLink, 'dir' | 'name'>): Thing => `link ${l.dir}/${l.name}`,
  session: (sid: number): Thing => `session ${sid}`,
  node: (n: Pick<IscsiNodeRecord, 'iqn' | 'portal'>): Thing => `node ${recordId(n)}`,
  discovery: (r: Pick<IscsiDiscoveryRecord, 'type' | 'portal'>): Thing => `discovery ${discoveryId(r)}`,
  iface: (name: string): Thing => `iface ${name}`,
  controller: (name: string): Thing => `nvme ${name}`,
  namespace: (name: string): Thing => `ns ${name}`,
  /** A path multipathd monitors. */
  mpathdPath: (dev: string): Thing => `mpathd ${dev}`,
};

/** The id an orphan of a record or a discovery record carries. */
export const recordId = (n: Pick<IscsiNodeRecord, 'iqn' | 'portal'>): string => `${n.iqn} ${n.portal}`;
export const discoveryId = (r: Pick<IscsiDiscoveryRecord, 'type' | 'portal'>): string => `${r.type} ${r.portal}`;

/** Whether a dm device is a multipath map (multipathd names its uuid "mpath-WWID"). */
export const isMultipathMap = (b: Pick<BlockDevice, 'dm'>): boolean => Boolean(b.dm?.uuid?.startsWith('mpath-'));

/** What a suspended map does to its users, said the same way wherever a map is shown. */
export const SUSPENDED = 'SUSPENDED: every I/O to it waits';

/** Each model item as evidence: where the kernel (or iscsid) shows it, and what it holds. */
export const evidenceOf = {
  scsi: (d: ScsiDevice): string => `${d.sysfs} (wwid ${d.wwid ?? '?'}, state ${d.state ?? '?'}${d.session !== null ? `, session${d.session}` : ''})`,
  disk: (b: Pick<BlockDevice, 'name' | 'devt'>, what?: string): string => `/sys/block/${b.name} (${[what, b.devt].filter(Boolean).join(', ') || 'disk'})`,
  link: (l: DevLink): string => `/dev/disk/${l.dir}/${l.name} -> ${l.target ?? '(nothing)'}`,
  session: (x: IscsiSession): string => `${x.sysfs} (${x.targetIqn ?? '?'} via ${x.portal ?? '?'}, ${x.state ?? '?'})`,
  /** A node record: its file, and whether iscsid logs in again at boot. */
  record: (n: IscsiNodeRecord): string => {
    const boot = n.startup === 'automatic' || n.startup === 'onboot' ? `, node.startup = ${n.startup}: iscsid logs in again at boot` : n.startup ? `, node.startup = ${n.startup}` : '';
    return `${n.path}${n.iface && n.iface !== 'default' ? ` (iface ${n.iface})` : ''}${boot}`;
  },
  discovery: (r: IscsiDiscoveryRecord): string => `${r.path} (${r.type} discovery of ${r.portal}; node records for ${r.targets.join(', ') || 'nothing'})`,
  iface: (i: IscsiIface, users: IscsiNodeRecord[]): string => `${i.path}${users.length > 0 ? ` (the iface of ${users.map((n) => n.path).join(', ')})` : ''}`,
  controller: (c: NvmeController): string => `${c.sysfs} (${c.subsysNqn ?? '?'} at ${c.traddr ?? '?'}:${c.trsvcid ?? '?'}, ${c.state ?? '?'})`,
  namespace: (n: NvmeNamespace): string => `${n.sysfs} (nsid ${n.nsid ?? '?'}, uuid ${n.uuid ?? '?'})`,
  /** A multipath map: its dm directory, name, uuid and slaves, and what is wrong with it. */
  map: (b: Pick<BlockDevice, 'name' | 'dm' | 'slaves' | 'staleSlaves'>): string =>
    `/sys/block/${b.name}/dm (name ${b.dm?.name ?? '?'}, uuid ${b.dm?.uuid ?? '?'}, slaves ${b.slaves.join(' ') || '-'}${mapState(b)})`,
};

/** What a map's own state says is wrong: suspended, or no live path. */
export function mapState(b: Pick<BlockDevice, 'dm' | 'slaves' | 'staleSlaves'>): string {
  const words: string[] = [];
  if (b.dm?.suspended) words.push(SUSPENDED);
  // A forced remove of a map still held open leaves it with an error table until its last close.
  if (b.dm?.table?.length && b.dm.table.every((l) => l.split(/\s+/)[2] === 'error')) words.push('its table fails every I/O (a forced remove waiting for its last close)');
  const stale = b.staleSlaves ?? [];
  if (b.slaves.every((x) => stale.includes(x))) words.push('no paths');
  return words.length > 0 ? `; ${words.join('; ')}` : '';
}

/** A finding of the kind a collection's item is reported as. */
export interface ItemFinding {
  thing: Thing;
  kind: OrphanKind;
  id: string;
  evidence: string;
}
