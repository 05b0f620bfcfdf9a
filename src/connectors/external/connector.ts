import { readdir, readFile, realpath } from 'node:fs/promises';
import { basename } from 'node:path';
import { normalise, osBrickData } from '../../osbrick/index.js';
import type { ConnectionProperties } from '../../volume/properties.js';
import { BrickError, isBrickError } from '../../system/errors.js';
import { isObject } from '../../system/text.js';
import { scsiWwid } from '../../volume/ids.js';
import type { AvailableVolume, Connector, DetachResult, DeviceInfo, DisconnectOptions, VolumePaths } from '../types.js';
import type { ConnectorRequest, OsBrickDeviceInfo, OsBrickProperties, ResultByOperation } from './protocol.js';
import type { Protocol } from '../../volume/protocol.js';
import { runConnectorProgram, type RunOptions } from './run.js';
import { buildRequest } from './validate.js';

type PropsOf<T extends Protocol> = Extract<ConnectionProperties, { protocol: T }>;

/** brick-lab's checked properties, plus the os-brick dict they came from (sent to the program as is). */
export type ExternalProperties<T extends Protocol = Protocol> = PropsOf<T> & { readonly osBrick: OsBrickProperties };

export interface ExternalConnectorOptions extends RunOptions {
  /** Prefix for the /dev and /sys reads that turn reply paths into kernel names (tests only). */
  root?: string;
}

const DM = /^dm-\d+$/;

/**
 * A vendor's connector program for one protocol, as a Connector. Properties are checked with
 * the built-in normalise (a malformed IQN, portal or LUN is refused before the program runs),
 * but the program gets the os-brick dict exactly as it was given.
 *
 * `await connector.init()` before use: getSearchPath() is synchronous in the Connector
 * interface, so init() asks the program once (get_search_path) and keeps the answer.
 */
export class ExternalConnector<T extends Protocol = Protocol> implements Connector<ExternalProperties<T>> {
  readonly protocol: ExternalProperties<T>['protocol'];
  private readonly root: string;
  private readonly runOpts: RunOptions;
  /** What the program returned from connect_volume, by DeviceInfo.path, to send back on disconnect. */
  private readonly deviceInfos = new Map<string, OsBrickDeviceInfo>();
  private searchPath: string | null = null;
  private initialised = false;

  constructor(
    readonly program: string,
    protocol: T,
    opts: ExternalConnectorOptions = {},
  ) {
    this.protocol = protocol as ExternalProperties<T>['protocol'];
    this.root = (opts.root ?? '').replace(/\/+$/, '');
    const { root: _root, ...run } = opts;
    this.runOpts = run;
  }

  /** Asks the program for its search path once; must be awaited before getSearchPath(). */
  async init(): Promise<this> {
    this.searchPath = await this.call(buildRequest('get_search_path', this.protocol, { connection_properties: null }));
    this.initialised = true;
    return this;
  }

  getSearchPath(): string | null {
    if (!this.initialised) {
      throw new BrickError('CONNECTOR_NOT_INITIALISED', `the external connector ${this.program} has no search path yet: call "await connector.init()" once before getSearchPath()`);
    }
    return this.searchPath;
  }

  normalise(payload: unknown): ExternalProperties<T> {
    // Throws the built-in refusals (BAD_IQN, BAD_PORTAL, BAD_LUN, ...) before any program runs.
    const props = normalise(this.protocol, payload) as PropsOf<T>;
    const data = isObject(payload) && Object.hasOwn(payload, 'driver_volume_type') ? payload.data : payload;
    return { ...props, osBrick: JSON.parse(JSON.stringify(data)) as OsBrickProperties };
  }

  async connectVolume(props: ExternalProperties<T>, opts: { multipath?: boolean } = {}): Promise<DeviceInfo> {
    const info = await this.call(buildRequest('connect_volume', this.protocol, { connection_properties: this.osBrickOf(props), multipath: opts.multipath === true }));
    const name = await this.kernelName(info.path);
    const multipath = name !== null && DM.test(name);
    let devices: string[] = name === null ? [] : [name];
    if (multipath) {
      const slaves = await this.slaves(name);
      if (slaves.length > 0) devices = slaves;
    }
    this.deviceInfos.set(info.path, info);
    // The identity as the host reads it (the WWID or UUID in sysfs of what the path leads to),
    // not as the program claims it: the lab checks that the connector attached the right volume.
    return { type: 'block', path: info.path, devices, multipath, identity: devices[0] ? await this.kernelIdentity(devices[0]) : null };
  }

  /** A SCSI disk's WWID (scsi_id form) or an NVMe namespace's UUID, from sysfs. */
  private async kernelIdentity(dev: string): Promise<string | null> {
    const read = (p: string): Promise<string | null> => readFile(`${this.root}${p}`, 'utf8').then((t) => t.trim() || null, () => null);
    if (/^nvme\d+(c\d+)?n\d+$/.test(dev)) return read(`/sys/block/${dev}/uuid`);
    return scsiWwid(await read(`/sys/block/${dev}/device/wwid`));
  }

  /**
   * Sends back the device_info the program returned for device.path (or a minimal one). An
   * ok:false reply with ignoreErrors is returned in `errors`; anything else wrong is thrown.
   */
  async disconnectVolume(props: ExternalProperties<T>, device: DeviceInfo | null, opts: DisconnectOptions = {}): Promise<DetachResult> {
    const deviceInfo: OsBrickDeviceInfo | null = device ? (this.deviceInfos.get(device.path) ?? { type: 'block', path: device.path }) : null;
    const request = buildRequest('disconnect_volume', this.protocol, {
      connection_properties: this.osBrickOf(props),
      device_info: deviceInfo,
      force: opts.force === true,
      ignore_errors: opts.ignoreErrors === true,
    });
    try {
      await this.call(request);
    } catch (e) {
      if (opts.ignoreErrors && isBrickError(e) && e.code === 'CONNECTOR_FAILED') return { removed: [], errors: [e.message] };
      throw e;
    }
    if (device) this.deviceInfos.delete(device.path);
    return { removed: [`${device ? device.path : 'the volume'} (disconnect_volume by ${basename(this.program)})`], errors: [] };
  }

  async getVolumePaths(props: ExternalProperties<T>): Promise<VolumePaths> {
    const paths = await this.call(buildRequest('get_volume_paths', this.protocol, { connection_properties: this.osBrickOf(props) }));
    const devices = new Set<string>();
    for (const p of paths) for (const d of await this.devicesOf(p)) devices.add(d);
    return { paths, devices: [...devices].sort() };
  }

  async getAllAvailableVolumes(props?: ExternalProperties<T>): Promise<AvailableVolume[]> {
    const paths = await this.call(buildRequest('get_all_available_volumes', this.protocol, { connection_properties: props ? this.osBrickOf(props) : null }));
    const out: AvailableVolume[] = [];
    for (const p of paths) out.push({ protocol: this.protocol, identity: {}, paths: [p], devices: await this.devicesOf(p) });
    return out;
  }

  private call<R extends ConnectorRequest>(request: R): Promise<ResultByOperation[R['operation']]> {
    return runConnectorProgram(this.program, request, this.runOpts);
  }

  private osBrickOf(props: ExternalProperties<T> | PropsOf<T>): OsBrickProperties {
    const raw = (props as { osBrick?: unknown }).osBrick;
    return isObject(raw) ? raw : (osBrickData(props) as OsBrickProperties);
  }

  /** The kernel name a path resolves to under /dev (sdb, dm-0, nvme0n1), or null. */
  private async kernelName(path: string): Promise<string | null> {
    if (!path.startsWith('/')) return null;
    let real: string;
    try {
      real = await realpath(this.root + path);
    } catch {
      return null;
    }
    if (this.root) {
      if (!real.startsWith(`${this.root}/`)) return null;
      real = real.slice(this.root.length);
    }
    return real.startsWith('/dev/') && real.length > '/dev/'.length ? basename(real) : null;
  }

  private async slaves(dm: string): Promise<string[]> {
    return (await readdir(`${this.root}/sys/block/${dm}/slaves`).catch(() => [] as string[])).sort();
  }

  /** The kernel name of a path and, for a dm device, the devices under it. */
  private async devicesOf(path: string): Promise<string[]> {
    const name = await this.kernelName(path);
    if (name === null) return [];
    return DM.test(name) ? [name, ...(await this.slaves(name))] : [name];
  }
}
