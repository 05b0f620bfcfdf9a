import { serialQueue, type Serial } from '../system/serial.js';
import { takeSnapshot } from '../inventory/snapshot.js';
import { pathsView } from '../inventory/paths-view.js';
import type { HostSnapshot } from '../inventory/model.js';
import { realHostFs, type HostFs } from '../system/hostfs.js';
import { normalise } from '../osbrick/index.js';
import type { ConnectionProperties } from '../volume/properties.js';
import { flushDevice, heldError, leftText, udevLinksOf, waitLinksGone, type HeldStack } from './block.js';
import type { AvailableVolume, Connector, DetachResult, DeviceInfo, DisconnectOptions, VolumePaths } from './types.js';

/**
 * The record of one detach and the steps every connector takes the same way: holders it did not
 * make, which stop the detach before anything is touched unless it is forced; a step that is
 * recorded as removed or, with ignoreErrors, as an error; a flush that stops the detach unless
 * it is forced; and, at the end, the wait for udev to take the links of the removed devices.
 */
export class Detach implements DetachResult {
  readonly removed: string[] = [];
  readonly errors: string[] = [];
  readonly left: string[] = [];

  constructor(
    private readonly fs: HostFs,
    private readonly opts: DisconnectOptions,
  ) {}

  /**
   * Run a step: done, it is recorded in `removed` as `what`; failed, it throws, or with
   * ignoreErrors is recorded in `errors` as "what: message" and false is returned.
   */
  async step(what: string, fn: () => Promise<unknown>): Promise<boolean> {
    try {
      await fn();
      this.removed.push(what);
      return true;
    } catch (e) {
      if (!this.opts.ignoreErrors) throw e;
      this.errors.push(`${what}: ${(e as Error).message}`);
      return false;
    }
  }

  /**
   * Run first, before anything is flushed or removed, with the stacks of holders the connector did
   * not make on the devices it is about to remove (heldBy): a device deleted from under a dm map
   * leaves the map's table naming a device that is gone. Without force or ignoreErrors they stop
   * the detach (DEVICE_HELD, naming each stack); with either, they are left in place and listed
   * in `left`.
   */
  refuseHeld(stacks: HeldStack[]): void {
    if (stacks.length > 0 && !this.opts.force && !this.opts.ignoreErrors) throw heldError(stacks);
    this.leave(stacks);
  }

  /** List stacks of holders in `left`, refusing nothing: for a detach that removes nothing from under them. */
  leave(stacks: HeldStack[]): void {
    for (const s of stacks) this.left.push(leftText(s));
  }

  /**
   * Flush a device before it goes. A failed flush stops the detach (os-brick keeps the data safe)
   * unless force or ignoreErrors is set: then it is recorded as an error and the detach goes on.
   * Returns whether the flush worked.
   */
  async flush(dev: string): Promise<boolean> {
    try {
      await flushDevice(dev);
      return true;
    } catch (e) {
      if (!this.opts.force && !this.opts.ignoreErrors) throw e;
      this.errors.push((e as Error).message);
      return false;
    }
  }

  /** The links udev made for these devices, read now, before they go (see waitLinksGone). */
  linksOf(blocks: Iterable<string>): Map<string, string> {
    return udevLinksOf(this.fs, blocks);
  }

  /** Wait until udev has taken away `links` of the removed devices; what is left is an error. */
  async waitLinksGone(links: Map<string, string>): Promise<void> {
    const stale = await waitLinksGone(this.fs, links);
    if (stale.left.length > 0) this.errors.push(`${stale.why}: ${stale.left.join(', ')}`);
  }

  /** What was done; `left` only when holders were left in place. */
  result(): DetachResult {
    return { removed: this.removed, errors: this.errors, ...(this.left.length > 0 ? { left: this.left } : {}) };
  }
}

/** Answers kept with the view they were made from (ConnectorBase.fromView). */
const answersOfViews = new WeakMap<HostSnapshot, Map<string, unknown>>();

/** Per protocol, the chain of attaches and detaches on this host (see ConnectorBase.serially). */
const chains = new Map<string, Serial>();

/**
 * What the built-in connectors share: the host reached through one HostFs (sysfs reads and
 * writes; a replayed recording in tests), a 'paths' snapshot of it, the answers kept with it, and
 * the detach record.
 */
export abstract class ConnectorBase<P extends ConnectionProperties> implements Connector<P> {
  abstract readonly protocol: P['protocol'];

  constructor(protected readonly fs: HostFs = realHostFs) {}

  /** Either Cinder's connection_info {driver_volume_type, data} or the bare data, checked (osbrick/). */
  normalise(payload: unknown): P {
    return normalise(this.protocol, payload) as P;
  }

  abstract connectVolume(props: P, opts?: { multipath?: boolean }): Promise<DeviceInfo>;
  abstract disconnectVolume(props: P, device: DeviceInfo | null, opts?: DisconnectOptions): Promise<DetachResult>;
  abstract getVolumePaths(props: P, snapshot?: HostSnapshot): Promise<VolumePaths>;
  abstract getAllAvailableVolumes(props?: P): Promise<AvailableVolume[]>;
  abstract getSearchPath(): string | null;

  /** What locating volumes needs, read once (see SnapshotOptions' 'paths'): for an attach or a detach, always afresh. */
  protected snapshot(): Promise<HostSnapshot> {
    return takeSnapshot(this.fs, { scope: 'paths' });
  }

  /**
   * The same for a read-only answer (volume paths, available volumes): the host's kept view while
   * the kernel shows nothing changed (PathsView); `wwids` when the answer matches or names
   * devices by WWID.
   */
  view(opts: { wwids?: boolean } = {}): HostSnapshot {
    return pathsView(this.fs).take(opts).snapshot;
  }

  /**
   * An answer made from a view alone, kept with that view object: a view is never changed once
   * made, and PathsView hands out another object whenever anything it holds differs from the
   * kernel's state (a uevent, a by-path link, a WWID read again), so an answer kept with the one
   * it gets is the answer it would make again. The answer is shared: never change it. Keys are
   * the connector's own: every connector of the host answers from the same view (iSCSI's and
   * FC's available volumes are both 'available').
   */
  protected fromView<T>(snap: HostSnapshot, key: string, make: () => T): T {
    let kept = answersOfViews.get(snap);
    if (!kept) answersOfViews.set(snap, (kept = new Map()));
    const own = `${this.protocol}\0${key}`;
    if (kept.has(own)) return kept.get(own) as T;
    const out = make();
    kept.set(own, out);
    return out;
  }

  /** How many answers are kept with a view (the rehearsal's tests; a diagnosis). */
  static keptAnswers(snap: HostSnapshot): number {
    return answersOfViews.get(snap)?.size ?? 0;
  }

  /**
   * Run an attach or a detach after every one before it on this host has ended, whatever its
   * outcome: a detach that decides a session is unused while an attach scans its LUN under that
   * session would log out from under it (cinder bug 1947370). One chain per protocol, shared by
   * every instance in the process, as os-brick shares one external lock per host.
   */
  protected serially<T>(fn: () => Promise<T>): Promise<T> {
    let chain = chains.get(this.protocol);
    if (!chain) chains.set(this.protocol, (chain = serialQueue()));
    return chain(fn);
  }

  protected detach(opts: DisconnectOptions): Detach {
    return new Detach(this.fs, opts);
  }
}
