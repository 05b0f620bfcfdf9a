import { BrickError } from '../system/errors.js';
import type { LocalProperties } from '../volume/properties.js';
import { ConnectorBase } from './base.js';
import { heldBy } from './block.js';
import type { AvailableVolume, DetachResult, DeviceInfo, DisconnectOptions, VolumePaths } from './types.js';

/** A device that is already on the host (a scsi_debug disk, any device_path): nothing to log in to. */
export class LocalConnector extends ConnectorBase<LocalProperties> {
  readonly protocol = 'local' as const;

  getSearchPath(): null {
    return null;
  }

  async connectVolume(props: LocalProperties): Promise<DeviceInfo> {
    if (!(await this.fs.exists(props.devicePath))) {
      throw new BrickError('DEVICE_MISSING', `device_path: ${props.devicePath} does not exist on this node`, { details: { field: 'device_path' } });
    }
    const name = props.devicePath.split('/').pop()!;
    const wwid = (await this.snapshot()).scsiDevices.find((d) => d.block === name)?.wwid ?? null;
    return { type: 'block', path: props.devicePath, devices: [name], multipath: false, identity: wwid };
  }

  async disconnectVolume(props: LocalProperties, device: DeviceInfo | null, opts: DisconnectOptions = {}): Promise<DetachResult> {
    const d = this.detach(opts);
    // The disk is the host's own: a detach only flushes it. It makes no map over it and removes
    // nothing from under a holder, so holders are listed, never refused.
    d.leave(heldBy(await this.snapshot(), device?.devices ?? [props.devicePath.split('/').pop()!]));
    if (await this.fs.exists(props.devicePath)) await d.flush(props.devicePath);
    return d.result();
  }

  async getVolumePaths(props: LocalProperties): Promise<VolumePaths> {
    const there = await this.fs.exists(props.devicePath);
    return { paths: there ? [props.devicePath] : [], devices: there ? [props.devicePath.split('/').pop()!] : [] };
  }

  /** Local SCSI disks: SCSI devices with a block device that hang under no iSCSI session and no FC remote port. */
  async getAllAvailableVolumes(): Promise<AvailableVolume[]> {
    const snap = this.view({ wwids: true });
    return snap.scsiDevices
      .filter((d) => d.session === null && !d.rport && d.block)
      .map((d) => ({ protocol: 'local' as const, identity: { wwid: d.wwid }, paths: [`/dev/${d.block}`], devices: [d.block!] }));
  }
}
