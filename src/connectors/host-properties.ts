import { hostname, machine } from 'node:os';
import { fcHosts } from '../inventory/read-fc.js';
import type { HostFs } from '../system/hostfs.js';

/**
 * What os-brick's `get_connector_properties` reports of a host, read from the host itself: what a
 * volume service needs to export a volume to it (Cinder's `initialize_connection(volume,
 * connector)`): the iSCSI initiator name, the NVMe host NQN and host ID, and the WWPNs and WWNNs
 * of its FC ports that are online. Keys are os-brick's; a key is left out when the host has
 * nothing for it, as os-brick leaves it out.
 */
export interface HostConnectorProperties {
  platform: string;
  os_type: 'linux';
  host: string;
  ip: string | null;
  multipath: boolean;
  enforce_multipath: boolean;
  do_local_attach: false;
  initiator?: string;
  nqn?: string;
  nvme_hostid?: string;
  wwpns?: string[];
  wwnns?: string[];
}

export interface HostPropertiesOptions {
  /** The address a volume service reaches the host at (os-brick's `my_ip`); null when not known. */
  ip: string | null;
  multipath?: boolean;
  enforceMultipath?: boolean;
  /** Defaults: this machine's host name and architecture. */
  host?: string;
  platform?: string;
}

/** The value of `InitiatorName=` in open-iscsi's initiatorname.iscsi (comments and blanks skipped). */
export function initiatorNameOf(text: string | null): string | null {
  for (const line of (text ?? '').split('\n')) {
    const m = /^\s*InitiatorName\s*=\s*(\S+)\s*$/.exec(line);
    if (m) return m[1]!;
  }
  return null;
}

const firstLine = (text: string | null): string | null => {
  const v = text?.split('\n')[0]?.trim();
  return v ? v : null;
};

export function hostConnectorProperties(fs: HostFs, o: HostPropertiesOptions): HostConnectorProperties {
  const out: HostConnectorProperties = {
    platform: o.platform ?? machine(),
    os_type: 'linux',
    host: o.host ?? hostname(),
    ip: o.ip,
    multipath: o.multipath === true,
    enforce_multipath: o.enforceMultipath === true,
    do_local_attach: false,
  };
  const initiator = initiatorNameOf(fs.readText('/etc/iscsi/initiatorname.iscsi'));
  if (initiator) out.initiator = initiator;
  const nqn = firstLine(fs.readText('/etc/nvme/hostnqn'));
  if (nqn) out.nqn = nqn;
  const hostId = firstLine(fs.readText('/etc/nvme/hostid'));
  if (hostId) out.nvme_hostid = hostId;
  // os-brick reports the ports that are online (linuxfc.get_fc_wwpns / get_fc_wwnns).
  const online = fcHosts(fs).filter((h) => h.portState === 'Online' && h.portName && h.nodeName);
  if (online.length > 0) {
    out.wwpns = online.map((h) => h.portName!);
    out.wwnns = online.map((h) => h.nodeName!);
  }
  return out;
}
