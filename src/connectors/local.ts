import { BrickError } from '../system/errors.js';
import { realHostFs, type HostFs } from '../system/hostfs.js';
import { takeSnapshot } from '../inventory/snapshot.js';
import { flushDevice } from './block.js';
import { normalise, type LocalProperties } from '../osbrick/index.js';
import type { AvailableVolume, Connector, DeviceInfo, DisconnectOptions, VolumePaths } from './types.js';

/** A device that is already on the host (a scsi_debug disk, any device_path): nothing to log in to. */
export class LocalConnector implements Connector<LocalProperties> {
  readonly protocol = 'local' as const;

  constructor(private readonly fs: HostFs = realHostFs) {}

  normalise(payload: unknown): LocalProperties {
    // Either Cinder's connection_info {driver_volume_type, data} or the bare data.
    return normalise('local', payload) as LocalProperties;
  }

  getSearchPath(): null {
    return null;
  }

  async connectVolume(props: LocalProperties): Promise<DeviceInfo> {
    if (!(await this.fs.exists(props.devicePath))) {
      throw new BrickError('DEVICE_MISSING', `device_path: ${props.devicePath} does not exist on this node`, { details: { field: 'device_path' } });
    }
    const name = props.devicePath.split('/').pop()!;
    const wwid = (await takeSnapshot(this.fs, { scope: 'paths' })).scsiDevices.find((d) => d.block === name)?.wwid ?? null;
    return { type: 'block', path: props.devicePath, devices: [name], multipath: false, identity: wwid };
  }

  async disconnectVolume(props: LocalProperties, _device: DeviceInfo | null, opts: DisconnectOptions = {}): Promise<{ removed: string[]; errors: string[] }> {
    if (!(await this.fs.exists(props.devicePath))) return { removed: [], errors: [] };
    try {
      await flushDevice(props.devicePath);
    } catch (e) {
      if (!opts.force && !opts.ignoreErrors) throw e;
      return { removed: [], errors: [(e as Error).message] };
    }
    return { removed: [], errors: [] };
  }

  async getVolumePaths(props: LocalProperties): Promise<VolumePaths> {
    const there = await this.fs.exists(props.devicePath);
    return { paths: there ? [props.devicePath] : [], devices: there ? [props.devicePath.split('/').pop()!] : [] };
  }

  /** Local SCSI disks: SCSI devices with a block device that hang under no iSCSI session. */
  async getAllAvailableVolumes(): Promise<AvailableVolume[]> {
    const snap = await takeSnapshot(this.fs, { scope: 'paths' });
    return snap.scsiDevices
      .filter((d) => d.session === null && d.block)
      .map((d) => ({ protocol: 'local' as const, identity: { wwid: d.wwid }, paths: [`/dev/${d.block}`], devices: [d.block!] }));
  }
}
