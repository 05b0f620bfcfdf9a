import type { Protocol } from '../../volume/protocol.js';
import { AgentClient } from './client.js';
import { DEFAULT_TIMEOUT_MS } from './http.js';
import { paths, ROUTES } from './paths.js';
import type {
  AvailableVolumesReply, BaselineReply, ConnectionPayload, ConnectorChoice, ConnectorPropertiesReply, ConnectorsReply, ConnectReply, DeviceInfo, DiffReply, DisconnectReply, DisconnectRequest,
  HostSnapshot, InstallConnectorRequest, InstalledConnectorReply, InstalledConnectorsReply, LocalDisk, LocalDisksReply, OrphansReply,
  HostCheckRequest,
  HostCheckReply, OrphansRequest,
  RecordedInventoryReply, RemoveLocalDiskReply, SearchPathReply, VolumePathsBatchReply, VolumePathsReply,
} from './types.js';

export interface CallOptions {
  timeoutMs?: number;
}

type ConnectorCall = ConnectorChoice & CallOptions;

/** A compute node's agent: the connectors' fetch-paths API, installed connectors, the inventory, local disks. */
export class ComputeClient extends AgentClient {
  connectors(): Promise<ConnectorsReply> {
    return this.http.request('GET', ROUTES.connectors);
  }

  /** os-brick's connector properties of the host (initiator name, host NQN, online FC ports' WWPNs and WWNNs). */
  connectorProperties(opts: { multipath?: boolean } = {}): Promise<ConnectorPropertiesReply> {
    return this.http.request('GET', opts.multipath ? `${ROUTES.connectorProperties}?multipath=true` : ROUTES.connectorProperties);
  }

  searchPath(protocol: Protocol, opts: ConnectorCall = {}): Promise<SearchPathReply> {
    return this.http.request('GET', paths.searchPath(protocol, opts.connector), undefined, opts.timeoutMs);
  }

  volumePaths(protocol: Protocol, props: ConnectionPayload, opts: ConnectorCall = {}): Promise<VolumePathsReply> {
    return this.http.request('POST', paths.volumePaths(protocol, opts.connector), props, opts.timeoutMs);
  }

  /** Many volumes answered from one read of sysfs. */
  volumePathsBatch(protocol: Protocol, volumes: ConnectionPayload[], opts: CallOptions = {}): Promise<VolumePathsBatchReply> {
    return this.http.request('POST', paths.volumePathsBatch(protocol), { volumes }, opts.timeoutMs);
  }

  /** Every volume the connector sees, or with props the one they name. */
  availableVolumes(protocol: Protocol, props: ConnectionPayload = {}, opts: ConnectorCall = {}): Promise<AvailableVolumesReply> {
    return this.http.request('POST', paths.availableVolumes(protocol, opts.connector), props, opts.timeoutMs);
  }

  connect(protocol: Protocol, props: ConnectionPayload, opts: ConnectorCall & { multipath?: boolean } = {}): Promise<ConnectReply> {
    const body = { properties: props, ...(opts.multipath !== undefined ? { multipath: opts.multipath } : {}) };
    return this.http.request('POST', paths.connect(protocol, opts.connector), body, opts.timeoutMs);
  }

  disconnect(protocol: Protocol, props: ConnectionPayload, deviceInfo?: DeviceInfo | null, opts: ConnectorCall & Pick<DisconnectRequest, 'force' | 'ignoreErrors'> = {}): Promise<DisconnectReply> {
    const body: DisconnectRequest = {
      properties: props,
      ...(deviceInfo !== undefined ? { deviceInfo } : {}),
      ...(opts.force !== undefined ? { force: opts.force } : {}),
      ...(opts.ignoreErrors !== undefined ? { ignoreErrors: opts.ignoreErrors } : {}),
    };
    return this.http.request('POST', paths.disconnect(protocol, opts.connector), body, opts.timeoutMs);
  }

  installConnector(name: string, req: InstallConnectorRequest): Promise<InstalledConnectorReply> {
    return this.http.request('PUT', paths.connectorProgram(name), req);
  }

  installedConnectors(): Promise<InstalledConnectorsReply> {
    return this.http.request('GET', ROUTES.connectorPrograms);
  }

  async removeConnector(name: string): Promise<void> {
    await this.http.request('DELETE', paths.connectorProgram(name));
  }

  /** A snapshot of what the host holds: devices, sessions, controllers, links, maps. */
  inventory(opts: CallOptions = {}): Promise<HostSnapshot> {
    return this.http.request('GET', paths.inventory(), undefined, opts.timeoutMs);
  }

  /** A snapshot with every read behind it: a unit-test fixture. */
  recordedInventory(opts: CallOptions = {}): Promise<RecordedInventoryReply> {
    return this.http.request('GET', paths.inventory(true), undefined, opts.timeoutMs);
  }

  /** What appeared and went since `before`. */
  diff(before: HostSnapshot, opts: CallOptions = {}): Promise<DiffReply> {
    return this.http.request('POST', ROUTES.inventoryDiff, { before }, opts.timeoutMs);
  }

  /** What the host still holds of a detached volume (the orphan oracle). */
  orphans(req: OrphansRequest, opts: CallOptions = {}): Promise<OrphansReply> {
    return this.http.request('POST', ROUTES.orphans, req, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  }

  /** A full snapshot the agent keeps as a baseline, with the id to name it by in hostCheck and orphans. */
  takeBaseline(opts: CallOptions = {}): Promise<BaselineReply> {
    return this.http.request('POST', ROUTES.baselines, undefined, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  }

  /** The host-wide view against a baseline taken before (GET /v1/inventory, or one kept by takeBaseline): what appeared, what went. */
  hostCheck(req: HostCheckRequest, opts: CallOptions = {}): Promise<HostCheckReply> {
    return this.http.request('POST', ROUTES.hostCheck, req, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  }

  localDisks(): Promise<LocalDisksReply> {
    return this.http.request('GET', ROUTES.localDisks);
  }

  /** A new scsi_debug disk. */
  addLocalDisk(): Promise<LocalDisk> {
    return this.http.request('POST', ROUTES.localDisks, {});
  }

  removeLocalDisk(host: number): Promise<RemoveLocalDiskReply> {
    return this.http.request('DELETE', paths.localDisk(host));
  }
}
