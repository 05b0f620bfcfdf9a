import { BrickError } from '../system/errors.js';
import { exec } from '../system/exec.js';
import { nvmeNamespacesOf } from '../inventory/orphans.js';
import type { HostSnapshot } from '../inventory/model.js';
import { heldBy, settle, waitForDevice } from './block.js';
import { ConnectorBase } from './base.js';
import type { NvmeProperties } from '../volume/properties.js';
import { nvmeIdentity } from '../volume/identity.js';
import type { AvailableVolume, DetachResult, DeviceInfo, DisconnectOptions, VolumePaths } from './types.js';

/** Seconds a controller keeps reconnecting after its path is lost; explicit, never os-brick's -1. */
export const CTRL_LOSS_TMO = 30;

/**
 * nvme-cli over TCP: one controller per portal (the kernel's native multipath joins them into
 * one namespace head), the namespace found by UUID, then NGUID, then NSID; on detach only
 * controllers that hold no other namespace in use are disconnected.
 */
export class NvmeConnector extends ConnectorBase<NvmeProperties> {
  readonly protocol = 'nvmeof' as const;

  getSearchPath(): string {
    return '/dev';
  }

  private controllerFor(s: HostSnapshot, p: NvmeProperties, address: string, port: number): string | null {
    return s.nvmeControllers.find((c) => c.subsysNqn === p.nqn && c.traddr === address && c.trsvcid === String(port))?.name ?? null;
  }

  connectVolume(props: NvmeProperties, opts: { multipath?: boolean } = {}): Promise<DeviceInfo> {
    return this.serially(() => this.connectNow(props, opts));
  }

  private async connectNow(props: NvmeProperties, opts: { multipath?: boolean }): Promise<DeviceInfo> {
    const errors: string[] = [];
    let connected = 0;
    const portals = opts.multipath === false ? props.portals.slice(0, 1) : props.portals;
    const before = await this.snapshot();
    for (const portal of portals) {
      if (this.controllerFor(before, props, portal.address, portal.port)) {
        connected++;
        continue;
      }
      const argv = ['nvme', 'connect', '-t', 'tcp', '-a', portal.address, '-s', String(portal.port), '-n', props.nqn, '-l', String(CTRL_LOSS_TMO)];
      if (props.hostNqn) argv.push('-q', props.hostNqn);
      const r = await exec(argv, { timeoutMs: 60_000, reject: false });
      if (r.exitCode === 0) connected++;
      else errors.push(`${portal.address}:${portal.port}: ${r.stderr.trim().split('\n').pop()}`);
    }
    if (connected === 0) throw new BrickError('CONNECT_FAILED', `no NVMe/TCP portal of ${props.nqn} accepted a connection: ${errors.join('; ')}`);
    const ns = await waitForDevice(`namespace ${props.uuid ?? props.nguid ?? props.nsid} of ${props.nqn}`, async () => nvmeNamespacesOf(await this.snapshot(), nvmeIdentity(props))[0] ?? null, 30_000);
    await settle();
    return { type: 'block', path: `/dev/${ns.name}`, devices: [ns.name, ...ns.paths], multipath: ns.paths.length > 1, identity: ns.uuid };
  }

  disconnectVolume(props: NvmeProperties, device: DeviceInfo | null, opts: DisconnectOptions = {}): Promise<DetachResult> {
    return this.serially(() => this.disconnectNow(props, device, opts));
  }

  private async disconnectNow(props: NvmeProperties, device: DeviceInfo | null, opts: DisconnectOptions): Promise<DetachResult> {
    const d = this.detach(opts);
    const snap = await this.snapshot();
    const mine = nvmeNamespacesOf(snap, nvmeIdentity(props));
    const heads = new Set(mine.map((n) => n.name));
    // The device the attach gave, unless that name is now another subsystem's namespace (the
    // controller was lost and the name given to another volume: a stale record, not this volume).
    const given = device?.path.startsWith('/dev/nvme') ? device.path.slice(5) : null;
    const now = given ? snap.nvmeNamespaces.find((n) => n.name === given) : undefined;
    if (given && (!now || now.subsysNqn === props.nqn)) heads.add(given);
    // A controller is shared when its subsystem shows a namespace that is not this volume's.
    const others = snap.nvmeNamespaces.filter((n) => n.subsysNqn === props.nqn && !heads.has(n.name));
    // Holders it did not make stop the detach when the namespaces go with their controllers;
    // when the controllers stay (shared), nothing goes from under them: they are only listed.
    const held = heldBy(snap, [...heads, ...mine.flatMap((n) => n.paths)]);
    if (others.length > 0) d.leave(held);
    else d.refuseHeld(held);
    const ctrls = snap.nvmeControllers.filter((x) => x.subsysNqn === props.nqn);
    if (ctrls.length > 0 && !ctrls.some((c) => c.state === 'live')) {
      // No live path (the target offline): a flush would wait in the head's queue until the
      // controllers give up. Without force that is a refusal now; with force nothing is flushed.
      const why = `no live path to ${props.nqn} (${ctrls.map((c) => `${c.name} ${c.state ?? '?'}`).join(', ')}): nothing can be flushed`;
      if (!opts.force && !opts.ignoreErrors) throw new BrickError('FLUSH_FAILED', why, { hint: 'bring a path back, or disconnect with force to drop what was not written' });
      d.errors.push(why);
    } else {
      for (const h of heads) if (await this.fs.exists(`/sys/block/${h}`)) await d.flush(`/dev/${h}`);
    }
    if (others.length > 0) return d.result();
    // What udev must take away once the namespaces are gone: their links, read before they go.
    const links = d.linksOf(mine.flatMap((n) => [n.name, ...n.paths]));
    for (const c of ctrls) {
      await d.step(`controller ${c.name} (${c.traddr}:${c.trsvcid})`, () => exec(['nvme', 'disconnect', '-d', c.name], { timeoutMs: 60_000 }));
    }
    await d.waitLinksGone(links);
    return d.result();
  }

  async getVolumePaths(props: NvmeProperties, snapshot?: HostSnapshot): Promise<VolumePaths> {
    const snap = snapshot ?? this.view();
    const mine = nvmeNamespacesOf(snap, nvmeIdentity(props));
    const paths: string[] = [];
    for (const n of mine) if (await this.fs.exists(`/dev/${n.name}`)) paths.push(`/dev/${n.name}`);
    return { paths, devices: mine.flatMap((n) => [n.name, ...n.paths]).sort() };
  }

  async getAllAvailableVolumes(props?: NvmeProperties): Promise<AvailableVolume[]> {
    const snap = this.view();
    const fabric = new Set(snap.nvmeControllers.filter((c) => c.transport === 'tcp').map((c) => c.subsysNqn));
    return snap.nvmeNamespaces
      .filter((n) => n.subsysNqn && fabric.has(n.subsysNqn) && (!props || n.subsysNqn === props.nqn))
      .map((n) => ({
        protocol: 'nvmeof' as const,
        identity: {
          uuid: n.uuid,
          nguid: n.nguid,
          nsid: n.nsid,
          target: n.subsysNqn,
          portals: snap.nvmeControllers.filter((c) => c.subsysNqn === n.subsysNqn).map((c) => `${c.traddr}:${c.trsvcid}`),
        },
        paths: [`/dev/${n.name}`],
        devices: [n.name, ...n.paths],
      }));
  }
}
