import { realHostFs, type HostFs } from '../system/hostfs.js';
import type { Protocol } from '../volume/protocol.js';
import { FcConnector } from './fc.js';
import { IscsiConnector } from './iscsi.js';
import { LocalConnector } from './local.js';
import { NvmeConnector } from './nvme.js';
import type { Connector } from './types.js';

/** brick-lab's own connectors, one per protocol, reading and writing the host through `fs`. */
export function builtinConnectors(fs: HostFs = realHostFs): Record<Protocol, Connector> {
  return { iscsi: new IscsiConnector(fs) as Connector, nvmeof: new NvmeConnector(fs) as Connector, fc: new FcConnector(fs) as Connector, local: new LocalConnector(fs) as Connector };
}

/** brick-lab's own connector for one protocol: what a connector of one's own can wrap or reuse. */
export function builtinConnector(protocol: Protocol, fs: HostFs = realHostFs): Connector {
  return builtinConnectors(fs)[protocol];
}

export type { AvailableVolume, Connector, DetachResult, DeviceInfo, DisconnectOptions, VolumePaths } from './types.js';
