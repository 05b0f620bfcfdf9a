import type { HostFs } from '../system/hostfs.js';
import { realHostFs } from '../system/hostfs.js';
import { nguidHex, scsiWwid } from '../volume/ids.js';

/**
 * A snapshot of everything storage-related a host holds, read from the kernel's own files: SCSI
 * devices, block devices and holders, /dev/disk links, iSCSI sessions and node records, NVMe
 * controllers and namespaces, dm-multipath maps. It reads sysfs, not udev's links alone: a device
 * udev made no link for is still found (and a link with no device is found as dangling).
 */
export interface ScsiDevice {
  hctl: string;
  host: number;
  lun: number;
  vendor: string | null;
  model: string | null;
  state: string | null;
  /** As udev's scsi_id prints it ("3" + NAA hex for naa. designators). */
  wwid: string | null;
  block: string | null;
  holders: string[];
  /** iSCSI session number when the device hangs under one. */
  session: number | null;
  sysfs: string;
}

export interface IscsiSession {
  sid: number;
  targetIqn: string | null;
  portal: string | null;
  state: string | null;
  host: number | null;
  sysfs: string;
}

export interface IscsiNodeRecord {
  iqn: string;
  portal: string;
  tpgt: string;
  path: string;
}

export interface NvmeController {
  name: string;
  subsysNqn: string | null;
  transport: string | null;
  traddr: string | null;
  trsvcid: string | null;
  state: string | null;
  sysfs: string;
}

export interface NvmeNamespace {
  /** The head device (nvme0n1) users open. */
  name: string;
  nsid: number | null;
  uuid: string | null;
  /** 32 lowercase hex digits. */
  nguid: string | null;
  wwid: string | null;
  subsysNqn: string | null;
  /** Per-controller path devices (nvme0c1n1) under native multipath. */
  paths: string[];
  holders: string[];
  sysfs: string;
}

export interface BlockDevice {
  name: string;
  /** To the KiB (from /proc/partitions) for disks listed there, exact from sysfs for the rest. */
  sizeBytes: number | null;
  holders: string[];
  slaves: string[];
  dm: { name: string | null; uuid: string | null } | null;
}

export interface DevLink {
  dir: 'by-path' | 'by-id';
  name: string;
  /** Kernel name the link resolves to (sda, nvme0n1, dm-0), or null when it points nowhere. */
  target: string | null;
  dangling: boolean;
}

export interface MultipathMap {
  dm: string;
  name: string | null;
  wwid: string | null;
  slaves: string[];
}

export interface HostSnapshot {
  takenAt: string;
  /** What was read: see SnapshotOptions. Only a 'full' snapshot can show what is left over. */
  scope: 'full' | 'paths';
  scsiDevices: ScsiDevice[];
  iscsiSessions: IscsiSession[];
  iscsiNodes: IscsiNodeRecord[];
  nvmeControllers: NvmeController[];
  nvmeNamespaces: NvmeNamespace[];
  blockDevices: BlockDevice[];
  links: DevLink[];
  multipathMaps: MultipathMap[];
}

const base = (p: string | null): string | null => (p ? p.slice(p.lastIndexOf('/') + 1) : null);

/** Whole disks and partitions, with where each sits in the device tree. */
interface BlockIndex {
  /** Every name under /sys/class/block (disks and partitions): what a /dev link may point at. */
  all: Set<string>;
  /** Whole disks, in /sys/block order. */
  disks: string[];
  /** Each disk's device directory under /sys, from its /sys/class/block link. */
  real: Map<string, string>;
  /** HCTL -> disk, for SCSI disks. */
  byHctl: Map<string, string>;
}

/**
 * /sys/block lists the whole disks; /sys/class/block also the partitions. Each entry links to
 * where the device sits: ../../devices/.../H:C:T:L/block/sdX for a SCSI disk,
 * .../nvme-subsystem/nvme-subsysN/nvmeXnY for an NVMe head.
 */
function blockIndex(fs: HostFs): BlockIndex {
  const idx: BlockIndex = { all: new Set(fs.list('/sys/class/block')), disks: fs.list('/sys/block'), real: new Map(), byHctl: new Map() };
  for (const name of idx.disks) {
    const link = fs.link(`/sys/class/block/${name}`);
    if (!link) continue;
    // "../../devices/.../H:C:T:L/block/sdX": string operations, not regular expressions, as this
    // runs for every disk of the host.
    const at = link.indexOf('devices/');
    const real = `/sys/${at >= 0 ? link.slice(at) : link.replace(/^(\.\.\/)+/, '')}`;
    idx.real.set(name, real);
    const blockAt = real.lastIndexOf('/block/');
    if (blockAt > 0) {
      const hctl = real.slice(real.lastIndexOf('/', blockAt - 1) + 1, blockAt);
      if (isHctl(hctl)) idx.byHctl.set(hctl, name);
    }
  }
  return idx;
}

/** "H:C:T:L": four runs of digits joined by colons. */
function isHctl(s: string): boolean {
  let colons = 0;
  let digits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 58) {
      if (digits === 0) return false;
      colons++;
      digits = 0;
    } else if (c >= 48 && c <= 57) digits++;
    else return false;
  }
  return colons === 3 && digits > 0;
}

/** Vendor and model from the standard INQUIRY data the kernel keeps (bytes 8-15 and 16-31). */
function inquiryStrings(raw: Uint8Array | null): { vendor: string | null; model: string | null } {
  if (!raw || raw.length < 32) return { vendor: null, model: null };
  const bytes = Buffer.from(raw.buffer, raw.byteOffset, 32);
  const ascii = (a: number, b: number): string => {
    const t = bytes.toString('latin1', a, b);
    return (t.includes('\0') ? t.replace(/\0/g, ' ') : t).trim();
  };
  return { vendor: ascii(8, 16), model: ascii(16, 32) };
}

function scsiDevices(fs: HostFs, blocks: BlockIndex, holders: Map<string, string[]>, full: boolean): ScsiDevice[] {
  const out: ScsiDevice[] = [];
  for (const hctl of fs.list('/sys/class/scsi_device')) {
    if (!isHctl(hctl)) continue;
    const parts = hctl.split(':');
    const block = blocks.byHctl.get(hctl) ?? null;
    // The device's own directory: from its disk's link when it has one, else from its own link.
    let dir: string | null = null;
    if (block) {
      const real = blocks.real.get(block)!;
      dir = real.slice(0, real.lastIndexOf('/block/'));
    } else {
      const link = fs.link(`/sys/class/scsi_device/${hctl}`);
      if (link) dir = `/sys/${link.replace(/^(\.\.\/)+/, '').replace(/\/scsi_device\/[^/]+$/, '')}`;
    }
    dir ??= `/sys/class/scsi_device/${hctl}/device`;
    const sessionAt = dir.indexOf('/session');
    const session = sessionAt >= 0 ? Number.parseInt(dir.slice(sessionAt + 8), 10) : Number.NaN;
    const { vendor, model } = full ? inquiryStrings(fs.readBinary(`${dir}/inquiry`)) : { vendor: null, model: null };
    out.push({
      hctl,
      host: Number(parts[0]),
      lun: Number(parts[3]),
      vendor,
      model,
      state: full ? fs.readText(`${dir}/state`) : null,
      wwid: scsiWwid(fs.readText(`${dir}/wwid`)),
      block,
      holders: block ? holders.get(block) ?? [] : [],
      session: Number.isNaN(session) ? null : session,
      sysfs: `/sys/class/scsi_device/${hctl}`,
    });
  }
  return out;
}

/** Where open-iscsi keeps its node records (Debian's build: /etc/iscsi/nodes). */
export const ISCSI_NODE_DB = '/etc/iscsi/nodes';

export function iscsiSessions(fs: HostFs): IscsiSession[] {
  const out: IscsiSession[] = [];
  const connections = fs.list('/sys/class/iscsi_connection');
  for (const name of fs.list('/sys/class/iscsi_session')) {
    const m = /^session(\d+)$/.exec(name);
    if (!m) continue;
    const dir = `/sys/class/iscsi_session/${name}`;
    const conn = connections.find((c) => c.startsWith(`connection${m[1]}:`));
    let portal: string | null = null;
    if (conn) {
      const addr = fs.readText(`/sys/class/iscsi_connection/${conn}/persistent_address`);
      const port = fs.readText(`/sys/class/iscsi_connection/${conn}/persistent_port`);
      if (addr && port) portal = addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
    }
    const hostLink = fs.link(dir) ?? '';
    const host = /host(\d+)/.exec(hostLink);
    out.push({
      sid: Number(m[1]),
      targetIqn: fs.readText(`${dir}/targetname`),
      portal,
      state: fs.readText(`${dir}/state`),
      host: host ? Number(host[1]) : null,
      sysfs: dir,
    });
  }
  return out;
}

export function iscsiNodes(fs: HostFs, root = ISCSI_NODE_DB): IscsiNodeRecord[] {
  const out: IscsiNodeRecord[] = [];
  for (const iqn of fs.list(root)) {
    for (const entry of fs.list(`${root}/${iqn}`)) {
      // "ip,port,tpgt" from discovery; "ip,port" (or tpgt -1) from `iscsiadm -m node --op new`.
      const m = /^([^,]+),(\d+)(?:,(-?\d+))?$/.exec(entry);
      if (!m) continue;
      const host = m[1]!.includes(':') && !m[1]!.startsWith('[') ? `[${m[1]}]` : m[1]!; // IPv6 written as sessions are
      out.push({ iqn, portal: `${host}:${m[2]}`, tpgt: m[3] ?? '-1', path: `${root}/${iqn}/${entry}` });
    }
  }
  return out;
}

function parseAddress(text: string | null): { traddr: string | null; trsvcid: string | null } {
  const get = (k: string): string | null => (text ? (new RegExp(`(?:^|,)${k}=([^,]+)`).exec(text)?.[1] ?? null) : null);
  return { traddr: get('traddr'), trsvcid: get('trsvcid') };
}

function nvme(fs: HostFs, blocks: BlockIndex, holders: Map<string, string[]>): { controllers: NvmeController[]; namespaces: NvmeNamespace[] } {
  const controllers: NvmeController[] = [];
  for (const name of fs.list('/sys/class/nvme')) {
    const dir = `/sys/class/nvme/${name}`;
    const addr = parseAddress(fs.readText(`${dir}/address`));
    controllers.push({
      name,
      subsysNqn: fs.readText(`${dir}/subsysnqn`),
      transport: fs.readText(`${dir}/transport`),
      ...addr,
      state: fs.readText(`${dir}/state`),
      sysfs: dir,
    });
  }
  const namespaces: NvmeNamespace[] = [];
  const nqnOf = new Map<string, string | null>();
  for (const name of blocks.disks.filter((b) => /^nvme\d+n\d+$/.test(b))) {
    const dir = `/sys/block/${name}`;
    // A head hangs under its subsystem (.../nvme-subsystem/nvme-subsysN/nvmeXnY); without native
    // multipath the namespace hangs under its controller (.../nvmeC/nvmeXnY), which names its own.
    const real = blocks.real.get(name) ?? '';
    const ctrl = /\/(nvme\d+)\/nvme\d+n\d+$/.exec(real)?.[1];
    const sub = /\/nvme-subsys(\d+)\//.exec(real)?.[1] ?? /^nvme(\d+)n/.exec(name)![1]!;
    const key = ctrl && !real.includes('/nvme-subsys') ? `ctrl:${ctrl}` : sub;
    if (!nqnOf.has(key)) nqnOf.set(key, fs.readText(key.startsWith('ctrl:') ? `/sys/class/nvme/${ctrl}/subsysnqn` : `/sys/class/nvme-subsystem/nvme-subsys${sub}/subsysnqn`));
    const nsid = fs.readText(`${dir}/nsid`);
    const headNs = /n(\d+)$/.exec(name)![1];
    namespaces.push({
      name,
      nsid: nsid === null ? null : Number(nsid),
      uuid: fs.readText(`${dir}/uuid`),
      nguid: nguidHex(fs.readText(`${dir}/nguid`)),
      wwid: fs.readText(`${dir}/wwid`),
      subsysNqn: nqnOf.get(key) ?? null,
      paths: blocks.disks.filter((b) => new RegExp(`^nvme${sub}c\\d+n${headNs}$`).test(b)),
      holders: holders.get(name) ?? [],
      sysfs: dir,
    });
  }
  return { controllers, namespaces };
}

/**
 * Holder links are made by bd_link_disk_holder, which device-mapper and md call on their member
 * disks (the only users in 6.1): listing the slaves of dm-* and md* disks and turning them around
 * gives every disk's holders without listing a holders directory per disk.
 */
function stacking(fs: HostFs, blocks: BlockIndex): { slaves: Map<string, string[]>; holders: Map<string, string[]> } {
  const slaves = new Map<string, string[]>();
  const holders = new Map<string, string[]>();
  for (const name of blocks.disks) {
    if (!/^(dm-|md)/.test(name)) continue;
    const list = fs.list(`/sys/block/${name}/slaves`);
    slaves.set(name, list);
    for (const s of list) holders.set(s, [...(holders.get(s) ?? []), name].sort());
  }
  return { slaves, holders };
}

/** Disk sizes in one read: /proc/partitions gives 1 KiB blocks (the kernel's sectors >> 1). */
function partitionSizes(fs: HostFs): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of ((fs.readText('/proc/partitions')) ?? '').split('\n')) {
    const m = /^\s*\d+\s+\d+\s+(\d+)\s+(\S+)$/.exec(line);
    if (m) out.set(m[2]!, Number(m[1]) * 1024);
  }
  return out;
}

/** Every disk with size, holders, slaves and dm names; only the dm disks (no sizes) when not full. */
function blockDevices(fs: HostFs, blocks: BlockIndex, stack: { slaves: Map<string, string[]>; holders: Map<string, string[]> }, full: boolean): BlockDevice[] {
  const out: BlockDevice[] = [];
  const sizes = full ? partitionSizes(fs) : new Map<string, number>();
  for (const name of blocks.disks) {
    const dir = `/sys/block/${name}`;
    const isDm = name.startsWith('dm-');
    if (!full && !isDm) continue;
    // /proc/partitions leaves out hidden disks (NVMe path devices) and empty ones: read those.
    let size = sizes.get(name) ?? null;
    if (full && size === null) {
      const sectors = fs.readText(`${dir}/size`);
      size = sectors === null ? null : Number(sectors) * 512;
    }
    out.push({
      name,
      sizeBytes: size,
      holders: stack.holders.get(name) ?? [],
      slaves: stack.slaves.get(name) ?? [],
      dm: isDm ? { name: fs.readText(`${dir}/dm/name`), uuid: fs.readText(`${dir}/dm/uuid`) } : null,
    });
  }
  return out;
}

function links(fs: HostFs, blocks: BlockIndex, dirs: ReadonlyArray<DevLink['dir']>): DevLink[] {
  const out: DevLink[] = [];
  for (const dir of dirs) {
    for (const name of fs.list(`/dev/disk/${dir}`)) {
      const target = base(fs.link(`/dev/disk/${dir}/${name}`));
      // Dangling when what it points at is no block device the kernel has (disk or partition).
      const dangling = !target || !blocks.all.has(target);
      out.push({ dir, name, target: dangling ? null : target, dangling });
    }
  }
  return out;
}

export interface SnapshotOptions {
  /**
   * 'full' (the default) reads everything. 'paths' reads what locating volumes needs (sessions,
   * devices with their WWIDs, by-path links, maps, NVMe namespaces) and leaves out vendor, model,
   * device state, sizes, by-id links and node records: never give it to the orphan check.
   */
  scope?: 'full' | 'paths';
}

export async function takeSnapshot(fs: HostFs = realHostFs, opts: SnapshotOptions = {}): Promise<HostSnapshot> {
  return takeSnapshotSync(fs, opts);
}

/** The same, for callers that want no await per snapshot. */
export function takeSnapshotSync(fs: HostFs = realHostFs, opts: SnapshotOptions = {}): HostSnapshot {
  const full = (opts.scope ?? 'full') === 'full';
  const blocks = blockIndex(fs);
  const stack = stacking(fs, blocks);
  const scsi = scsiDevices(fs, blocks, stack.holders, full);
  const sessions = iscsiSessions(fs);
  const nodes = full ? iscsiNodes(fs) : [];
  const nv = nvme(fs, blocks, stack.holders);
  const blockList = blockDevices(fs, blocks, stack, full);
  const devLinks = links(fs, blocks, full ? ['by-path', 'by-id'] : ['by-path']);
  const multipathMaps = blockList
    .filter((b) => b.dm?.uuid?.startsWith('mpath-'))
    .map((b) => ({ dm: b.name, name: b.dm!.name, wwid: b.dm!.uuid!.slice('mpath-'.length), slaves: b.slaves }));
  return {
    takenAt: new Date().toISOString(),
    scope: full ? 'full' : 'paths',
    scsiDevices: scsi,
    iscsiSessions: sessions,
    iscsiNodes: nodes,
    nvmeControllers: nv.controllers,
    nvmeNamespaces: nv.namespaces,
    blockDevices: blockList,
    links: devLinks,
    multipathMaps,
  };
}
