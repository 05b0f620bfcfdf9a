import type { HostFs } from '../system/hostfs.js';
import type { FcHost, FcRemotePort } from './model.js';

/**
 * The Fibre Channel transport's view (scsi_transport_fc): the host's FC ports (fc_host) and the
 * remote ports each has logged in to (fc_remote_ports). An FCoE port in the lab shows the same
 * classes as a real HBA. A disk of an FC target hangs under its remote port (ScsiDevice.rport).
 */

/** "0x20005254004c0102" (sysfs) -> "20005254004c0102" (os-brick, Cinder); null for anything else. */
export function wwnOf(raw: string | null): string | null {
  const m = raw ? /^0x([0-9a-f]{1,16})$/i.exec(raw.trim()) : null;
  return m ? m[1]!.toLowerCase().padStart(16, '0') : null;
}

export function fcHosts(fs: HostFs): FcHost[] {
  const out: FcHost[] = [];
  for (const name of fs.list('/sys/class/fc_host')) {
    const m = /^host(\d+)$/.exec(name);
    if (!m) continue;
    const dir = `/sys/class/fc_host/${name}`;
    out.push({ host: Number(m[1]), portName: wwnOf(fs.readText(`${dir}/port_name`)), nodeName: wwnOf(fs.readText(`${dir}/node_name`)), portState: fs.readText(`${dir}/port_state`), sysfs: dir });
  }
  return out.sort((a, b) => a.host - b.host);
}

export function fcRemotePorts(fs: HostFs): FcRemotePort[] {
  const out: FcRemotePort[] = [];
  for (const name of fs.list('/sys/class/fc_remote_ports')) {
    const m = /^rport-(\d+):\d+-\d+$/.exec(name);
    if (!m) continue;
    const dir = `/sys/class/fc_remote_ports/${name}`;
    const tid = fs.readText(`${dir}/scsi_target_id`);
    out.push({
      name,
      host: Number(m[1]),
      portName: wwnOf(fs.readText(`${dir}/port_name`)),
      nodeName: wwnOf(fs.readText(`${dir}/node_name`)),
      roles: fs.readText(`${dir}/roles`),
      portState: fs.readText(`${dir}/port_state`),
      scsiTargetId: tid !== null && /^-?\d+$/.test(tid) ? Number(tid) : null,
      sysfs: dir,
    });
  }
  return out;
}
