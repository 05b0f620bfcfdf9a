import type { HostSnapshot } from '../inventory/model.js';
import type { ConnectionProperties } from '../volume/properties.js';
import type { Protocol } from '../volume/protocol.js';

/** What connect returns and disconnect takes back: os-brick's device_info, with what we found. */
export interface DeviceInfo {
  type: 'block';
  /** The device a user opens: /dev/sdX, /dev/dm-N (multipath) or /dev/nvmeXnY. */
  path: string;
  /** Kernel names of every path device behind it. */
  devices: string[];
  multipath: boolean;
  /** SCSI WWID (scsi_id form) or NVMe UUID, as the host read it. */
  identity: string | null;
}

export interface DisconnectOptions {
  /** Go on when a flush fails (data loss accepted), as os-brick's force. */
  force?: boolean;
  /** Swallow errors and report them instead of stopping. */
  ignoreErrors?: boolean;
}

/** What a detach did: the steps that were done, and the errors it went on after. */
export interface DetachResult {
  removed: string[];
  errors: string[];
  /**
   * Holders the connector did not make that the detach left in place, as `holder dm-1 (name
   * mylinear) on sda`: with force or ignoreErrors, where their tables now name a device that is
   * gone, or where the detach removed nothing from under them. Present only when there are any.
   */
  left?: string[];
}

export interface VolumePaths {
  /** Paths under the connector's search path that exist now (by-path links, device nodes). */
  paths: string[];
  /** Kernel device names found in sysfs for the volume, with or without a udev link. */
  devices: string[];
}

export interface AvailableVolume {
  protocol: Protocol;
  identity: {
    wwid?: string | null;
    uuid?: string | null;
    nguid?: string | null;
    nsid?: number | null;
    target?: string | null;
    lun?: number | null;
    portals?: string[];
  };
  paths: string[];
  devices: string[];
}

export interface Connector<P extends ConnectionProperties = ConnectionProperties> {
  readonly protocol: P['protocol'];
  normalise(payload: unknown): P;
  connectVolume(props: P, opts?: { multipath?: boolean }): Promise<DeviceInfo>;
  disconnectVolume(props: P, device: DeviceInfo | null, opts?: DisconnectOptions): Promise<DetachResult>;
  /** A snapshot may be passed in so that many volumes are answered from one read of sysfs. */
  getVolumePaths(props: P, snapshot?: HostSnapshot): Promise<VolumePaths>;
  getAllAvailableVolumes(props?: P): Promise<AvailableVolume[]>;
  /** Where the connector looks for volume paths (os-brick's get_search_path), or null. */
  getSearchPath(): string | null;
}
