import type { HostFs } from '../system/hostfs.js';
import { scsiWwid } from '../volume/ids.js';
import { isHctl, scsiPathsOf, type BlockIndex } from './read-block.js';
import type { IscsiDiscoveryRecord, IscsiIface, IscsiNodeRecord, IscsiSession, ScsiDevice } from './model.js';

/** SCSI devices, iSCSI sessions (sysfs) and open-iscsi's node records. */

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

/**
 * The SCSI devices, each with its WWID, disk and session; `details` adds vendor, model and state
 * (two more reads per device), which only describe a device: the oracle leaves them out and reads
 * them for the devices it names (fillScsiDetails).
 */
export function scsiDevices(fs: HostFs, blocks: BlockIndex, holders: Map<string, string[]>, details: boolean): ScsiDevice[] {
  const out: ScsiDevice[] = [];
  for (const hctl of fs.list('/sys/class/scsi_device')) {
    if (!isHctl(hctl)) continue;
    const block = blocks.byHctl.get(hctl) ?? null;
    // The device's own directory: kept with its disk's place when it has one, else from its own link.
    const at = blocks.scsiPaths.get(hctl) ?? scsiPathsOf(ownDir(fs, hctl));
    out.push({
      hctl,
      host: Number(hctl.slice(0, hctl.indexOf(':'))),
      lun: Number(hctl.slice(hctl.lastIndexOf(':') + 1)),
      vendor: null,
      model: null,
      state: details ? fs.readText(at.state) : null,
      wwid: scsiWwid(fs.readText(at.wwid)),
      block,
      holders: block ? holders.get(block) ?? [] : [],
      session: at.session,
      rport: at.rport,
      sysfs: `/sys/class/scsi_device/${hctl}`,
    });
    if (details) Object.assign(out[out.length - 1]!, inquiryStrings(fs.readBinary(at.inquiry)));
  }
  return out;
}

/** A SCSI device's directory read from its class link (a device without a disk). */
function ownDir(fs: HostFs, hctl: string): string {
  const link = fs.link(`/sys/class/scsi_device/${hctl}`);
  return link ? `/sys/${link.replace(/^(\.\.\/)+/, '')}`.replace(/\/scsi_device\/[^/]+$/, '') : `/sys/class/scsi_device/${hctl}/device`;
}

/** Reads vendor, model and state of the devices named (by H:C:T:L) into a snapshot taken without details. */
export function fillScsiDetails(fs: HostFs, devices: ScsiDevice[], hctls: Iterable<string>): void {
  const want = new Set(hctls);
  for (const d of devices) {
    if (!want.has(d.hctl) || d.state !== null) continue;
    const dir = `/sys/class/scsi_device/${d.hctl}/device`;
    Object.assign(d, inquiryStrings(fs.readBinary(`${dir}/inquiry`)));
    d.state = fs.readText(`${dir}/state`);
  }
}

/** open-iscsi's configuration (iscsid.conf, initiatorname.iscsi), in every Debian release. */
export const ISCSI_CONF_DIR = '/etc/iscsi';

/**
 * Where open-iscsi keeps its database (node records, discovery records, ifaces): /etc/iscsi in
 * Debian bookworm's build (2.1.8), /var/lib/iscsi in trixie's (2.1.11). The readers read both,
 * so that no record is missed on a host that has both directories (one left from an older
 * install); iscsiDbRoot is where this host's iscsiadm writes.
 */
export const ISCSI_DB_ROOTS = [ISCSI_CONF_DIR, '/var/lib/iscsi'] as const;

/** Where iscsiadm writes here: the root that holds records, else trixie's when its package made it, else /etc/iscsi. */
export function iscsiDbRoot(fs: HostFs): string {
  if (fs.exists('/var/lib/iscsi/nodes') || fs.exists('/var/lib/iscsi/send_targets')) return '/var/lib/iscsi';
  if (fs.list(`${ISCSI_CONF_DIR}/nodes`).length > 0) return ISCSI_CONF_DIR;
  return fs.exists('/var/lib/iscsi') ? '/var/lib/iscsi' : ISCSI_CONF_DIR;
}

/** The node records' directory iscsiadm writes to (iscsiDbRoot). */
export function iscsiNodeDb(fs: HostFs): string {
  return `${iscsiDbRoot(fs)}/nodes`;
}

export function iscsiSessions(fs: HostFs): IscsiSession[] {
  const out: IscsiSession[] = [];
  // "connectionSID:CID": each session's first connection, looked up by its number below.
  const connections = new Map<string, string>();
  for (const c of fs.list('/sys/class/iscsi_connection')) {
    const colon = c.indexOf(':');
    if (c.startsWith('connection') && colon > 0 && !connections.has(c.slice(10, colon))) connections.set(c.slice(10, colon), c);
  }
  for (const name of fs.list('/sys/class/iscsi_session')) {
    const m = /^session(\d+)$/.exec(name);
    if (!m) continue;
    const dir = `/sys/class/iscsi_session/${name}`;
    const conn = connections.get(m[1]!);
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

/** `key = value` of an open-iscsi record file, or null when the record does not set it. */
function recordValue(text: string | null, key: string): string | null {
  if (!text) return null;
  const at = text.indexOf(`\n${key} = `);
  const from = at >= 0 ? at + 1 : text.startsWith(`${key} = `) ? 0 : -1;
  if (from < 0) return null;
  const end = text.indexOf('\n', from);
  return text.slice(from + key.length + 3, end < 0 ? undefined : end).trim();
}

/** "ip,port" as a session writes its portal: IPv6 addresses in brackets. */
function portalOfEntry(host: string, port: string): string {
  return `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
}

/**
 * Node records: DB/nodes/IQN/ENTRY (DB: iscsiDbRoot), where ENTRY is a record file ("ip,port", made with
 * `iscsiadm -m node --op new`) or a directory with one record file per iface ("ip,port,tpgt/IFACE",
 * made by discovery). Each record's startup mode and iface are read from its file.
 */
export function iscsiNodes(fs: HostFs, roots: string | readonly string[] = ISCSI_DB_ROOTS.map((r) => `${r}/nodes`)): IscsiNodeRecord[] {
  const out: IscsiNodeRecord[] = [];
  for (const root of typeof roots === 'string' ? [roots] : roots) for (const iqn of fs.list(root)) {
    for (const entry of fs.list(`${root}/${iqn}`)) {
      const m = /^([^,]+),(\d+)(?:,(-?\d+))?$/.exec(entry);
      if (!m) continue;
      const dir = `${root}/${iqn}/${entry}`;
      // A directory lists its iface files; a record file lists nothing.
      const ifaces = m[3] !== undefined ? fs.list(dir) : [];
      const text = fs.readText(ifaces.length > 0 ? `${dir}/${ifaces[0]}` : dir);
      out.push({
        iqn,
        portal: portalOfEntry(m[1]!, m[2]!),
        tpgt: m[3] ?? '-1',
        path: dir,
        startup: recordValue(text, 'node.startup'),
        iface: recordValue(text, 'iface.iscsi_ifacename') ?? (ifaces[0] ?? null),
      });
    }
  }
  return out;
}

/**
 * Discovery records: DB/send_targets/IP,PORT (and isns/IP,PORT), each holding its
 * st_config and one link per node record it made, named "IQN,IP,PORT,TPGT,IFACE".
 */
export function iscsiDiscovery(fs: HostFs, roots: readonly string[] = ISCSI_DB_ROOTS): IscsiDiscoveryRecord[] {
  const out: IscsiDiscoveryRecord[] = [];
  for (const root of roots) for (const [type, sub] of [['sendtargets', 'send_targets'], ['isns', 'isns']] as const) {
    for (const entry of fs.list(`${root}/${sub}`)) {
      const m = /^([^,]+),(\d+)$/.exec(entry);
      if (!m) continue;
      const path = `${root}/${sub}/${entry}`;
      const targets = new Set<string>();
      for (const l of fs.list(path)) if (l !== 'st_config' && l.includes(',')) targets.add(l.slice(0, l.indexOf(',')));
      out.push({ type, portal: portalOfEntry(m[1]!, m[2]!), targets: [...targets].sort(), path });
    }
  }
  return out;
}

/** Ifaces made with `iscsiadm -m iface -o new` (the built-in default and iser have no file). */
export function iscsiIfaces(fs: HostFs, roots: readonly string[] = ISCSI_DB_ROOTS): IscsiIface[] {
  return roots.flatMap((root) => fs.list(`${root}/ifaces`).map((name) => ({ name, path: `${root}/ifaces/${name}` })));
}
