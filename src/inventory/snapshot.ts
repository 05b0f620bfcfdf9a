import type { HostFs } from '../system/hostfs.js';
import { realHostFs } from '../system/hostfs.js';

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
  scsiDevices: ScsiDevice[];
  iscsiSessions: IscsiSession[];
  iscsiNodes: IscsiNodeRecord[];
  nvmeControllers: NvmeController[];
  nvmeNamespaces: NvmeNamespace[];
  blockDevices: BlockDevice[];
  links: DevLink[];
  multipathMaps: MultipathMap[];
}

/** sysfs SCSI wwid ("naa.6001405...") in scsi_id's form ("36001405..."). */
export function scsiWwid(raw: string | null): string | null {
  if (!raw) return null;
  const m = /^(naa|eui|t10)\.(.+)$/.exec(raw.trim());
  if (!m) return raw.trim();
  const prefix = m[1] === 'naa' ? '3' : m[1] === 'eui' ? '2' : '1';
  return `${prefix}${m[1] === 't10' ? m[2]!.replace(/\s+/g, '_') : m[2]!.toLowerCase()}`;
}

export function normaliseNguid(raw: string | null): string | null {
  if (!raw) return null;
  const hex = raw.replace(/[-:]/g, '').toLowerCase();
  return /^[0-9a-f]{32}$/.test(hex) ? hex : null;
}

const base = (p: string | null): string | null => (p ? p.split('/').pop() ?? null : null);

async function scsiDevices(fs: HostFs): Promise<ScsiDevice[]> {
  const out: ScsiDevice[] = [];
  for (const hctl of await fs.list('/sys/class/scsi_device')) {
    const m = /^(\d+):(\d+):(\d+):(\d+)$/.exec(hctl);
    if (!m) continue;
    const dev = `/sys/class/scsi_device/${hctl}/device`;
    const real = (await fs.link(`/sys/class/scsi_device/${hctl}`)) ?? '';
    const session = /\/session(\d+)\//.exec(real);
    const block = (await fs.list(`${dev}/block`))[0] ?? null;
    out.push({
      hctl,
      host: Number(m[1]),
      lun: Number(m[4]),
      vendor: await fs.readText(`${dev}/vendor`),
      model: await fs.readText(`${dev}/model`),
      state: await fs.readText(`${dev}/state`),
      wwid: scsiWwid(await fs.readText(`${dev}/wwid`)),
      block,
      holders: block ? await fs.list(`/sys/block/${block}/holders`) : [],
      session: session ? Number(session[1]) : null,
      sysfs: `/sys/class/scsi_device/${hctl}`,
    });
  }
  return out;
}

export async function iscsiSessions(fs: HostFs): Promise<IscsiSession[]> {
  const out: IscsiSession[] = [];
  const connections = await fs.list('/sys/class/iscsi_connection');
  for (const name of await fs.list('/sys/class/iscsi_session')) {
    const m = /^session(\d+)$/.exec(name);
    if (!m) continue;
    const dir = `/sys/class/iscsi_session/${name}`;
    const conn = connections.find((c) => c.startsWith(`connection${m[1]}:`));
    let portal: string | null = null;
    if (conn) {
      const addr = await fs.readText(`/sys/class/iscsi_connection/${conn}/persistent_address`);
      const port = await fs.readText(`/sys/class/iscsi_connection/${conn}/persistent_port`);
      if (addr && port) portal = addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
    }
    const hostLink = (await fs.link(dir)) ?? "";
    const host = /host(\d+)/.exec(hostLink);
    out.push({
      sid: Number(m[1]),
      targetIqn: await fs.readText(`${dir}/targetname`),
      portal,
      state: await fs.readText(`${dir}/state`),
      host: host ? Number(host[1]) : null,
      sysfs: dir,
    });
  }
  return out;
}

async function iscsiNodes(fs: HostFs, root = '/etc/iscsi/nodes'): Promise<IscsiNodeRecord[]> {
  const out: IscsiNodeRecord[] = [];
  for (const iqn of await fs.list(root)) {
    for (const entry of await fs.list(`${root}/${iqn}`)) {
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

async function nvme(fs: HostFs): Promise<{ controllers: NvmeController[]; namespaces: NvmeNamespace[] }> {
  const controllers: NvmeController[] = [];
  for (const name of await fs.list('/sys/class/nvme')) {
    const dir = `/sys/class/nvme/${name}`;
    const addr = parseAddress(await fs.readText(`${dir}/address`));
    controllers.push({
      name,
      subsysNqn: await fs.readText(`${dir}/subsysnqn`),
      transport: await fs.readText(`${dir}/transport`),
      ...addr,
      state: await fs.readText(`${dir}/state`),
      sysfs: dir,
    });
  }
  const namespaces: NvmeNamespace[] = [];
  const blocks = await fs.list('/sys/block');
  for (const name of blocks.filter((b) => /^nvme\d+n\d+$/.test(b))) {
    const dir = `/sys/block/${name}`;
    const sub = /^nvme(\d+)n/.exec(name)![1];
    const subsysNqn = await fs.readText(`/sys/class/nvme-subsystem/nvme-subsys${sub}/subsysnqn`);
    const nsid = await fs.readText(`${dir}/nsid`);
    namespaces.push({
      name,
      nsid: nsid === null ? null : Number(nsid),
      uuid: await fs.readText(`${dir}/uuid`),
      nguid: normaliseNguid(await fs.readText(`${dir}/nguid`)),
      wwid: await fs.readText(`${dir}/wwid`),
      subsysNqn,
      paths: blocks.filter((b) => new RegExp(`^nvme${sub}c\\d+n${name.split('n').pop()}$`).test(b)),
      holders: await fs.list(`${dir}/holders`),
      sysfs: dir,
    });
  }
  return { controllers, namespaces };
}

async function blockDevices(fs: HostFs): Promise<BlockDevice[]> {
  const out: BlockDevice[] = [];
  for (const name of await fs.list('/sys/block')) {
    const dir = `/sys/block/${name}`;
    const size = await fs.readText(`${dir}/size`);
    const isDm = name.startsWith('dm-');
    out.push({
      name,
      sizeBytes: size === null ? null : Number(size) * 512,
      holders: await fs.list(`${dir}/holders`),
      slaves: await fs.list(`${dir}/slaves`),
      dm: isDm ? { name: await fs.readText(`${dir}/dm/name`), uuid: await fs.readText(`${dir}/dm/uuid`) } : null,
    });
  }
  return out;
}

async function links(fs: HostFs): Promise<DevLink[]> {
  const out: DevLink[] = [];
  for (const dir of ['by-path', 'by-id'] as const) {
    for (const name of await fs.list(`/dev/disk/${dir}`)) {
      const path = `/dev/disk/${dir}/${name}`;
      const target = base(await fs.link(path));
      const dangling = !target || !(await fs.exists(`/sys/class/block/${target}`));
      out.push({ dir, name, target: dangling ? null : target, dangling });
    }
  }
  return out;
}

export async function takeSnapshot(fs: HostFs = realHostFs): Promise<HostSnapshot> {
  const [scsi, sessions, nodes, nv, blocks, devLinks] = await Promise.all([scsiDevices(fs), iscsiSessions(fs), iscsiNodes(fs), nvme(fs), blockDevices(fs), links(fs)]);
  const multipathMaps = blocks
    .filter((b) => b.dm?.uuid?.startsWith('mpath-'))
    .map((b) => ({ dm: b.name, name: b.dm!.name, wwid: b.dm!.uuid!.slice('mpath-'.length), slaves: b.slaves }));
  return {
    takenAt: new Date().toISOString(),
    scsiDevices: scsi,
    iscsiSessions: sessions,
    iscsiNodes: nodes,
    nvmeControllers: nv.controllers,
    nvmeNamespaces: nv.namespaces,
    blockDevices: blocks,
    links: devLinks,
    multipathMaps,
  };
}
