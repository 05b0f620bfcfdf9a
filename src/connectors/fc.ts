import { BrickError } from '../system/errors.js';
import { poll } from '../system/wait.js';
import { fcDevicesOf } from '../inventory/orphans.js';
import { fcHosts, fcRemotePorts } from '../inventory/read-fc.js';
import type { FcHost, FcRemotePort, HostSnapshot } from '../inventory/model.js';
import { fcByPathSuffix } from '../volume/bypath.js';
import { fcIdentity } from '../volume/identity.js';
import { scsiWwid } from '../volume/ids.js';
import type { FcProperties, FcTargetPath } from '../volume/properties.js';
import { ConnectorBase } from './base.js';
import { removeScsiVolume } from './scsi-detach.js';
import { waitForDevice } from './block.js';
import { multipathMapFor } from './multipath.js';
import type { AvailableVolume, DetachResult, DeviceInfo, DisconnectOptions, VolumePaths } from './types.js';

/** One way to the volume: an HBA port of this host, a remote port it sees, and the LUN behind it. */
interface FcPath {
  hba: FcHost;
  rport: FcRemotePort;
  target: FcTargetPath;
}

/** "rport-2:0-1" -> the SCSI channel (0) it hangs on. */
const channelOf = (rport: string): number => Number(/^rport-\d+:(\d+)-\d+$/.exec(rport)?.[1] ?? 0);

/**
 * Fibre Channel the way os-brick drives it, through the FC transport's sysfs (a real HBA or the
 * lab's FCoE ports alike): a targeted scan of the one LUN on each remote port that is the
 * volume's target (channel and SCSI target id from the remote port, never a wildcard scan of the
 * whole fabric), and on detach the removal of exactly this volume's devices and map. Logins
 * belong to the fabric: remote ports are never touched.
 */
export class FcConnector extends ConnectorBase<FcProperties> {
  readonly protocol = 'fc' as const;

  getSearchPath(): string {
    return '/dev/disk/by-path';
  }

  /**
   * The ways to each (target, LUN): per HBA port (of those initiator_target_map names, when
   * given), the remote ports with the target's WWPN. What stands in the way is said per target.
   */
  private async pathsTo(props: FcProperties): Promise<{ paths: FcPath[]; problems: string[] }> {
    const hbas = fcHosts(this.fs);
    if (hbas.length === 0) {
      throw new BrickError('CONNECT_FAILED', 'this host has no Fibre Channel port (/sys/class/fc_host is empty)', { hint: 'an FC volume needs an HBA port: in the lab, the compute agent brings up its FCoE ports at its first FC attach' });
    }
    const rports = fcRemotePorts(this.fs);
    const paths: FcPath[] = [];
    const problems: string[] = [];
    for (const hba of hbas) {
      const zoned = props.initiatorTargetMap && hba.portName ? props.initiatorTargetMap[hba.portName] : undefined;
      if (props.initiatorTargetMap && !zoned) continue; // the map leaves this port out
      for (const t of props.targets) {
        if (zoned && !zoned.includes(t.wwpn)) continue;
        const r = rports.find((x) => x.host === hba.host && x.portName === t.wwpn);
        if (!r) problems.push(`host${hba.host} (0x${hba.portName ?? '?'}, ${hba.portState ?? '?'}) sees no port 0x${t.wwpn}`);
        else if (r.scsiTargetId === null || r.scsiTargetId < 0) problems.push(`${r.name} (0x${t.wwpn}) has no SCSI target id (roles: ${r.roles ?? '?'}, state ${r.portState ?? '?'}): it logged in without the FCP target role, so no scan reaches it`);
        else paths.push({ hba, rport: r, target: t });
      }
    }
    return { paths, problems };
  }

  /** The disk of one LUN under one remote port, straight from sysfs. */
  private deviceUnder(rport: string, lun: number): string | null {
    const dir = `/sys/class/fc_remote_ports/${rport}/device`;
    for (const t of this.fs.list(dir)) {
      if (!t.startsWith('target')) continue;
      for (const d of this.fs.list(`${dir}/${t}`)) {
        if (!/^\d+:\d+:\d+:\d+$/.test(d) || Number(d.slice(d.lastIndexOf(':') + 1)) !== lun) continue;
        const blocks = this.fs.list(`${dir}/${t}/${d}/block`);
        if (blocks[0]) return blocks[0];
      }
    }
    return null;
  }

  private async attachPath(p: FcPath): Promise<string> {
    const existing = this.deviceUnder(p.rport.name, p.target.lun);
    if (existing) return existing;
    // The targeted scan: this remote port's channel and SCSI target id, this LUN.
    await this.fs.write(`/sys/class/scsi_host/host${p.hba.host}/scan`, `${channelOf(p.rport.name)} ${p.rport.scsiTargetId} ${p.target.lun}`);
    return waitForDevice(`device for LUN ${p.target.lun} of 0x${p.target.wwpn} through host${p.hba.host}`, () => this.deviceUnder(p.rport.name, p.target.lun), 30_000, 20);
  }

  connectVolume(props: FcProperties, opts: { multipath?: boolean } = {}): Promise<DeviceInfo> {
    return this.serially(() => this.connectNow(props, opts));
  }

  /**
   * The ways to the volume once the fabric shows them: a port that just came online discovers
   * the others in seconds (VN2VN beacons), so up to 20 s for a first way, and with multipath up to
   * 5 s more for every zoned port to see its target.
   */
  private async waitPaths(props: FcProperties, multipath: boolean): Promise<{ paths: FcPath[]; problems: string[] }> {
    let last = await this.pathsTo(props);
    const wait = async (ms: number, enough: (r: typeof last) => boolean): Promise<void> => {
      await poll(async () => enough((last = await this.pathsTo(props))), { timeoutMs: ms, intervalMs: 200 });
    };
    if (last.paths.length === 0) await wait(20_000, (r) => r.paths.length > 0);
    if (multipath && last.problems.length > 0 && last.paths.length > 0) await wait(5_000, (r) => r.problems.length === 0);
    return last;
  }

  private async connectNow(props: FcProperties, opts: { multipath?: boolean }): Promise<DeviceInfo> {
    const { paths, problems } = await this.waitPaths(props, opts.multipath === true);
    const devices: string[] = [];
    const errors = [...problems];
    for (const p of paths) {
      try {
        const dev = await this.attachPath(p);
        if (!devices.includes(dev)) devices.push(dev);
        if (!opts.multipath) break; // single path: the first way that works
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    if (devices.length === 0) {
      throw new BrickError('CONNECT_FAILED', `no path to the volume worked: ${errors.join('; ') || 'no HBA port is zoned to its targets'}`, {
        hint: 'brick-lab inventory --node NODE lists the host\'s FC ports (fcHosts) and the remote ports they see (fcRemotePorts)',
      });
    }
    const first = devices[0]!;
    const wwid = await waitForDevice(`WWID of ${first}`, () => scsiWwid(this.fs.readText(`/sys/block/${first}/device/wwid`)), 10_000, 20).catch(() => null);
    if (opts.multipath && wwid) {
      const map = await multipathMapFor(this.fs, wwid, devices);
      return { type: 'block', path: `/dev/${map}`, devices, multipath: true, identity: wwid };
    }
    return { type: 'block', path: `/dev/${first}`, devices, multipath: false, identity: wwid };
  }

  disconnectVolume(props: FcProperties, device: DeviceInfo | null, opts: DisconnectOptions = {}): Promise<DetachResult> {
    return this.serially(() => this.disconnectNow(props, device, opts));
  }

  private async disconnectNow(props: FcProperties, device: DeviceInfo | null, opts: DisconnectOptions): Promise<DetachResult> {
    const d = this.detach(opts);
    const snap = await this.snapshot();
    const blocks = new Set<string>(device?.devices ?? []);
    for (const x of fcDevicesOf(snap, fcIdentity(props, device?.identity))) if (x.block) blocks.add(x.block);
    const wwid = device?.identity ?? props.deviceWwid ?? snap.scsiDevices.find((x) => x.block && blocks.has(x.block))?.wwid ?? null;
    // Logins are the fabric's, never a volume's: the SCSI half is the whole detach.
    const links = await removeScsiVolume(this.fs, d, snap, blocks, wwid, opts.force === true);
    await d.waitLinksGone(links);
    return d.result();
  }

  async getVolumePaths(props: FcProperties, snapshot?: HostSnapshot): Promise<VolumePaths> {
    const snap = snapshot ?? this.view({ wwids: Boolean(props.deviceWwid) });
    return this.fromView(snap, `${props.deviceWwid ?? ''}\n${props.targets.map((t) => `${t.wwpn} ${t.lun}`).join('\n')}`, () => pathsOn(snap, props));
  }

  async getAllAvailableVolumes(props?: FcProperties): Promise<AvailableVolume[]> {
    const snap = this.view({ wwids: true });
    return props ? availableOn(snap, props) : this.fromView(snap, 'available', () => availableOn(snap));
  }
}

/** The FC volumes a snapshot shows (at the properties' targets and LUNs, when given), one per WWID. */
function availableOn(snap: HostSnapshot, props?: FcProperties): AvailableVolume[] {
  const ports = new Map((snap.fcRemotePorts ?? []).map((r) => [r.name, r.portName]));
  const linksTo = new Map<string, string[]>();
  for (const l of snap.links) if (l.dir === 'by-path' && l.target && l.name.includes('-fc-0x')) linksTo.set(l.target, [...(linksTo.get(l.target) ?? []), `/dev/disk/by-path/${l.name}`]);
  const byWwid = new Map<string, AvailableVolume>();
  for (const d of snap.scsiDevices) {
    if (!d.rport || !d.block) continue;
    const wwpn = ports.get(d.rport) ?? null;
    if (props && !props.targets.some((t) => t.wwpn === wwpn && t.lun === d.lun)) continue;
    const key = d.wwid ?? d.hctl;
    const v = byWwid.get(key) ?? { protocol: 'fc' as const, identity: { wwid: d.wwid, target: wwpn, lun: d.lun, portals: [] as string[] }, paths: [] as string[], devices: [] as string[] };
    // For FC the "portals" are the target ports the volume is seen through.
    if (wwpn && !v.identity.portals!.includes(wwpn)) v.identity.portals!.push(wwpn);
    v.devices.push(d.block);
    v.paths.push(...(linksTo.get(d.block) ?? []));
    byWwid.set(key, v);
  }
  return [...byWwid.values()];
}

/** The paths and devices of an FC volume in a snapshot (FibreChannelConnector.get_volume_paths). */
function pathsOn(snap: HostSnapshot, props: FcProperties): VolumePaths {
  const disks = new Set<string>();
  for (const d of fcDevicesOf(snap, fcIdentity(props))) if (d.block) disks.add(d.block);
  const ends = props.targets.map(fcByPathSuffix);
  const paths = new Set<string>();
  for (const l of snap.links) {
    if (l.dir !== 'by-path' || l.dangling || !l.name.includes('-fc-0x') || !ends.some((e) => l.name.endsWith(e))) continue;
    // A link names a (target port, LUN), not a volume: with the WWID known, only links to its devices.
    if (!props.deviceWwid || disks.has(l.target!)) paths.add(`/dev/disk/by-path/${l.name}`);
  }
  const devices = new Set(disks);
  for (const m of snap.multipathMaps) if (m.slaves.some((s) => disks.has(s))) devices.add(m.dm);
  return { paths: [...paths].sort(), devices: [...devices].sort() };
}
