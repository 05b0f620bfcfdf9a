import type { LoginGuard } from './login-guard.js';
import { failpoint } from '../system/failpoint.js';
import type { AvailableVolume, ConnectorChoice, DeviceInfo, DisconnectOptions, DisconnectReply, FcVolumeRequest, HostSnapshot, IscsiVolumeRequest, NvmeVolumeRequest, Orphan, OrphansReply, TargetVolume, VolumePaths } from '../agent/api/types.js';
import type { AgentClient } from '../agent/api/client.js';
import type { ComputeClient } from '../agent/api/compute-client.js';
import type { TargetClient } from '../agent/api/target-client.js';
import { rebootNode } from '../lab/reboot.js';
import type { LabRecord } from '../lab/state.js';
import type { Topology } from '../lab/topology.js';
import { parseSignature, readSignatureArgv, signatureText, writeSignatureArgv, type Signature } from '../volume/signature.js';
import { waitFor } from '../system/wait.js';
import type { Protocol } from '../volume/protocol.js';
import { ORPHAN_KINDS, type OrphanKind } from '../volume/orphan-kinds.js';


/** A node of the lab as a scenario sees it: its name and its agent. */
export interface NodeHandle {
  name: string;
  client: AgentClient;
}

export interface TargetHandle extends NodeHandle {
  client: TargetClient;
}

export interface ComputeHandle extends NodeHandle {
  client: ComputeClient;
  initiatorIqn: string;
  /** Its FC ports' names (its FCoE ports, named after its data NICs' MACs). */
  fcWwpns?: string[];
}

/** One line of the report: what a scenario attached on a node, what it found, what was left. */
export interface ReportRow {
  node: string;
  volume: string;
  protocol: Protocol;
  /** 'faulty' or 'correct' for the two halves of an orphan pair; 'run' otherwise. */
  phase: string;
  device: string | null;
  paths: string[];
  left: Orphan[];
  /** Sessions, records and controllers the oracle saw rightly kept for another LUN or namespace. */
  kept: Orphan[];
  /** The host-wide view against the node's snapshot from just before the detach, when there is one. */
  hostWide: { baselineTakenAt: string; orphans: Orphan[]; collateral: Orphan[] } | null;
  /** What the oracle was expected to say: 'clean', or the orphan kinds a faulty sequence leaves. */
  expected: string;
  /** What the guest's own tools showed of the volume at the verdict (scenarios/inspect.ts), when asked. */
  inspected?: string[];
}

/** What the guest's own tools show of a volume (scenarios/inspect.ts): the verdicts' second opinion. */
export type Inspector = (node: ComputeHandle, v: TargetVolume, stillAttached: TargetVolume[]) => Promise<string[]>;

/**
 * What a verdict expects: 'clean', or exactly the orphan kinds a faulty sequence leaves (never
 * none: a faulty sequence that leaves nothing is no faulty half).
 */
export type Expected = 'clean' | readonly [OrphanKind, ...OrphanKind[]];

/** A check a scenario makes; a false one fails the scenario with this message. */
export class ScenarioFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScenarioFailure';
  }
}

export function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new ScenarioFailure(message);
}

export const protocolOf = (v: TargetVolume): Protocol => v.protocol;

/** The SCSI WWID the target gave a volume (iSCSI, FC), which the oracle matches devices by. */
export const wwidOf = (v: TargetVolume): string | null => v.iscsi?.wwid ?? v.fc?.wwid ?? null;

/**
 * The data networks the (first) target and the first `computes` compute nodes all sit on, in
 * topology order: where a scenario's volumes are exported. checkNeeds counts the same list.
 */
export function sharedNetworks(topo: Topology, computes: number): string[] {
  const target = topo.nodes.find((n) => n.role === 'target');
  const users = topo.nodes.filter((n) => n.role === 'compute').slice(0, computes);
  if (!target) return [];
  return topo.networks.map((n) => n.name).filter((net) => target.networks.includes(net) && users.every((c) => c.networks.includes(net)));
}

/** Target volume names are 1-40 characters: long scenario names are shortened word by word. */
export function volumeName(scenario: string, suffix: string): string {
  const full = `${scenario}-${suffix}`;
  if (full.length <= 40) return full;
  const short = `${scenario.split('-').map((w) => w.slice(0, 3)).join('-')}-${suffix}`;
  return short.slice(0, 40).replace(/-+$/, '');
}

/**
 * What a scenario works with: the target and compute nodes' agents, and helpers that keep track
 * of what was made so that the runner can take it all away afterwards, whatever happened.
 */
export class ScenarioContext {
  readonly rows: ReportRow[] = [];
  readonly steps: string[] = [];
  /** Volumes made on the target, to delete afterwards. */
  readonly volumes = new Map<string, TargetVolume>();
  /**
   * The name of every volume the scenario made on the target, deleted since or not: what of the
   * target is this scenario's when others run beside it (their objects are named after them).
   */
  readonly made = new Set<string>();
  /** Set by the runner when scenarios run side by side: iSCSI logins and target changes kept apart. */
  guard: LoginGuard | null = null;
  /** What is attached where, to detach afterwards (with force) when the scenario did not. */
  readonly attached: Array<{ node: ComputeHandle; volume: TargetVolume; device: DeviceInfo | null }> = [];
  /**
   * Per node, its snapshot from just before the first of the detaches through the context since
   * the last attach there, and the volumes detached since: the baseline of the host-wide view of
   * the verdicts that follow (what those volumes had may go), until the next attach on that node.
   */
  readonly baselines = new Map<string, { snapshot: HostSnapshot; detached: TargetVolume[] }>();
  /** Per volume and node, the devices its attach gave (what a map left behind may still name). */
  readonly attachedDevices = new Map<string, string[]>();
  /** Things to undo on a node afterwards (a stopped udev, a link made by hand), last first. */
  readonly undo: Array<{ what: string; fn: () => Promise<unknown> }> = [];
  /** The second opinion each verdict asks for, if any: the guest's own tools must agree with the oracle. */
  inspect: Inspector | null = null;

  constructor(
    readonly lab: LabRecord,
    readonly target: TargetHandle,
    readonly computes: ComputeHandle[],
    readonly scenario: string,
    /** How many of the lab's compute nodes the scenario uses (the first ones). */
    readonly usesComputes: number,
    private readonly onStep: (text: string) => void = () => {},
    /**
     * The connector under test, installed on the computes (brick-lab validate): connect and
     * disconnect go through it. null: brick-lab's own. Paths, available volumes and the oracle are
     * always brick-lab's own reading of the kernel; connectorPaths asks the connector.
     */
    readonly connector: string | null = null,
  ) {}

  /** Which connector a connector call goes through: the one under test when there is one, or brick-lab's own. */
  via(builtin = false): ConnectorChoice {
    return !builtin && this.connector ? { connector: this.connector } : {};
  }

  /** The first `count` data networks the target and the used computes share (checked beforehand). */
  networks(count: number): string[] {
    const nets = sharedNetworks(this.lab.topology, this.usesComputes);
    check(nets.length >= count, `the lab shares ${nets.length} data networks between the target and the computes; this scenario needs ${count}`);
    return nets.slice(0, count);
  }

  get compute(): ComputeHandle {
    return this.computes[0]!;
  }

  step(text: string): void {
    this.steps.push(text);
    this.onStep(text);
  }

  /** A volume name unique to this scenario (target volume names are global to the target). */
  name(suffix: string): string {
    return volumeName(this.scenario, suffix);
  }

  /** An iSCSI login this scenario makes itself (an iscsiadm login in its steps), kept from target changes beside it. */
  loggingIn<T>(fn: () => Promise<T>): Promise<T> {
    return this.guard ? this.guard.login(fn) : fn();
  }

  /** A change of LIO's targets (made, deleted), kept from logins beside it. */
  private targetChange<T>(fn: () => Promise<T>): Promise<T> {
    return this.guard ? this.guard.change(fn) : fn();
  }

  async createIscsi(body: Omit<IscsiVolumeRequest, 'name' | 'sizeMiB'> & { name: string; sizeMiB?: number }): Promise<TargetVolume> {
    const initiators = body.initiators ?? (body.demoMode ? undefined : this.computes.map((c) => c.initiatorIqn));
    const v = await this.targetChange(() => this.target.client.createIscsiVolume({ sizeMiB: 8, ...body, name: this.name(body.name), ...(initiators ? { initiators } : {}) }));
    this.volumes.set(v.name, v);
    this.made.add(v.name);
    this.step(`target: iSCSI volume ${v.name} = ${v.iscsi!.iqn} LUN ${v.iscsi!.lun} (wwid ${v.iscsi!.wwid})`);
    return v;
  }

  /** An FC volume on the target's FCoE ports, mapped to the `initiators` given, else to none until a compute attaches it (connect maps it). */
  async createFc(body: Omit<FcVolumeRequest, 'name' | 'sizeMiB'> & { name: string; sizeMiB?: number }): Promise<TargetVolume> {
    const v = await this.targetChange(() => this.target.client.createFcVolume({ sizeMiB: 8, ...body, name: this.name(body.name) }));
    this.volumes.set(v.name, v);
    this.made.add(v.name);
    this.step(`target: FC volume ${v.name} = LUN ${v.fc!.lun} on ports ${v.fc!.wwpns.join(', ')} (wwid ${v.fc!.wwid})`);
    return v;
  }

  async createNvme(body: Omit<NvmeVolumeRequest, 'name' | 'sizeMiB'> & { name: string; sizeMiB?: number }): Promise<TargetVolume> {
    const v = await this.target.client.createNvmeVolume({ sizeMiB: 8, ...body, name: this.name(body.name) });
    this.volumes.set(v.name, v);
    this.made.add(v.name);
    this.step(`target: NVMe/TCP volume ${v.name} = ${v.nvme!.nqn} nsid ${v.nvme!.nsid} (uuid ${v.nvme!.uuid})`);
    return v;
  }

  async deleteVolume(v: TargetVolume): Promise<void> {
    await this.deleteOnTarget(v.name);
    this.volumes.delete(v.name);
    this.step(`target: deleted ${v.name}`);
  }

  /** Attach through the connector under test (or brick-lab's own with `builtin`). */
  async connect(node: ComputeHandle, v: TargetVolume, multipath = false, opts: { builtin?: boolean } = {}): Promise<DeviceInfo> {
    // An attach starts a new round of detaches on the node (dropped first, so that a detach run at
    // the same time, see together(), keeps the baseline it takes).
    this.baselines.delete(node.name);
    if (v.fc && node.fcWwpns && node.fcWwpns.length > 0) {
      // Cinder's initialize_connection: the LUN is mapped to the host's ports before it attaches.
      const r = await this.target.client.map(v.name, node.fcWwpns);
      if (r.mapped > 0) this.step(`target: LUN ${v.fc.lun} of ${v.name} mapped to ${node.name}'s ports ${node.fcWwpns.join(', ')}`);
    }
    const attach = (): Promise<DeviceInfo> => node.client.connect(protocolOf(v), v.connectionInfo, { ...this.via(opts.builtin), multipath, timeoutMs: 300_000 });
    const d = protocolOf(v) === 'iscsi' ? await this.loggingIn(attach) : await attach();
    // The links are udev's and come after connect returns: wait until udev has recorded each of
    // the volume's devices (its database entry is written once the rules made the links), then
    // settle. A settle alone can return before udevd has read the device's event (seen on
    // trixie's udev 257: a by-path link missing right after). Nothing to wait for without udevd
    // (its control socket stays when it is stopped: the process is what tells).
    await node.client.exec(
      [
        'sh', '-c',
        'pgrep -x systemd-udevd >/dev/null || exit 0; for d in "$@"; do n=$(cat "/sys/block/$d/dev" 2>/dev/null) || continue; ' +
          'i=0; while [ ! -e "/run/udev/data/b$n" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; done; udevadm settle --timeout=60',
        'udev-done', ...d.devices,
      ],
      { timeoutMs: 120_000 },
    );
    this.attached.push({ node, volume: v, device: d });
    this.attachedDevices.set(`${node.name} ${v.name}`, d.devices);
    this.step(`${node.name}: attached ${v.name} as ${d.path} (${d.devices.join(', ')})`);
    return d;
  }

  /** Delete a volume on the target by name (an iSCSI one as a target change: see LoginGuard). */
  deleteOnTarget(name: string): Promise<unknown> {
    const v = this.volumes.get(name);
    return v && protocolOf(v) !== 'iscsi' ? this.target.client.deleteVolume(name) : this.targetChange(() => this.target.client.deleteVolume(name));
  }

  forget(node: ComputeHandle, v: TargetVolume): void {
    const i = this.attached.findIndex((a) => a.node === node && a.volume === v);
    if (i >= 0) this.attached.splice(i, 1);
  }

  /** The connector's disconnect; on success the volume is no longer tracked as attached. */
  async disconnect(node: ComputeHandle, v: TargetVolume, d: DeviceInfo | null, opts: DisconnectOptions & { builtin?: boolean } = {}): Promise<DisconnectReply> {
    const { builtin, ...flags } = opts;
    await this.beforeDetach(node, v);
    const r = await node.client.disconnect(protocolOf(v), v.connectionInfo, d, { ...this.via(builtin), ...flags, timeoutMs: 300_000 });
    this.forget(node, v);
    this.step(`${node.name}: detached ${v.name}${opts.force ? ' (force)' : ''}: ${r.removed.join(', ') || 'nothing to remove'}${r.errors.length ? `; errors: ${r.errors.join('; ')}` : ''}${r.left?.length ? `; left: ${r.left.join('; ')}` : ''}`);
    return r;
  }

  /**
   * A faulty detach the lab performs itself, as a connector in the field did (`steps`, run in the
   * node): the same baseline for the host-wide view as a detach through a connector. `fault` names
   * the step that makes it faulty. The volume stays tracked as attached: the faulty half sweeps it.
   */
  async faultyDetach(node: ComputeHandle, v: TargetVolume, fault: string, steps: () => Promise<unknown>): Promise<void> {
    await this.beforeDetach(node, v);
    await steps();
    this.step(`${node.name}: ${v.name} detached the faulty way; the fault: ${fault}`);
  }

  /** The node's snapshot before the first detach since its last attach: the host-wide view's baseline. */
  private async beforeDetach(node: ComputeHandle, v: TargetVolume): Promise<void> {
    const since = this.baselines.get(node.name) ?? { snapshot: await node.client.inventory(), detached: [] };
    since.detached.push(v);
    this.baselines.set(node.name, since);
  }

  /**
   * Two connector calls at once on one host (two attaches, or an attach and a detach): both are
   * started before either is waited for, and both are waited for; then the first failure, if any,
   * is thrown.
   */
  async together<A, B>(what: string, a: () => Promise<A>, b: () => Promise<B>): Promise<[A, B]> {
    this.step(`${what}: both started at once`);
    const [ra, rb] = await Promise.allSettled([a(), b()]);
    if (ra.status === 'rejected') throw ra.reason;
    if (rb.status === 'rejected') throw rb.reason;
    return [ra.value, rb.value];
  }

  /**
   * A node's data networks (all unless named) down for `seconds`: a compute's own link, or every
   * port of the target (offline). The node's agent brings them back when the time is up; the
   * scenario's end brings them back in any case.
   */
  async outage(node: NodeHandle, seconds: number, networks?: string[]): Promise<void> {
    this.undo.push({ what: `${node.name}: data networks back up`, fn: () => node.client.endOutage() });
    const r = await node.client.startOutage(seconds, networks);
    this.step(`${node.name}: ${r.down.map((d) => d.network).join(', ')} down for ${seconds} s`);
    await failpoint('scenario:outage');
  }

  /** End a node's outage now: every data network it has down comes back up. */
  async endOutage(node: NodeHandle): Promise<void> {
    await node.client.endOutage();
    this.step(`${node.name}: data networks back up`);
  }

  /**
   * The connector's process restarts (the node's agent, which runs brick-lab's connectors and
   * calls an installed one): what it kept in memory is gone; the host is as it was.
   */
  async restartAgent(node: ComputeHandle): Promise<void> {
    const h = await node.client.restartAgent();
    this.step(`${node.name}: the agent restarted (now pid ${h.agent.pid}): what it kept in memory is gone`);
  }

  /**
   * The node reboots (clean, or with hard a reset at once) and the step waits until it is ready
   * again; whileDown runs while it is down (the array acting meanwhile). What the node keeps on
   * its disk (records, wwids, NVMe host files) decides what comes back.
   */
  async reboot(node: NodeHandle, opts: { hard?: boolean; whileDown?: () => Promise<void> } = {}): Promise<void> {
    const r = await rebootNode(this.lab, node.name, opts);
    this.step(`${node.name}: ${r.hard ? 'hard reset (nothing synced or logged out)' : 'clean reboot (sessions logged out first)'}; ready again after ${r.seconds.toFixed(1)} s`);
  }

  /** brick-lab's own lookup of a volume's paths and devices in sysfs. */
  paths(node: ComputeHandle, v: TargetVolume): Promise<VolumePaths> {
    return node.client.volumePaths(protocolOf(v), v.connectionInfo);
  }

  /** What the connector under test (or brick-lab's own) answers for get_volume_paths. */
  connectorPaths(node: ComputeHandle, protocol: Protocol, connectionInfo: Record<string, unknown>): Promise<VolumePaths> {
    return node.client.volumePaths(protocol, connectionInfo, this.via());
  }

  /** What the connector under test (or brick-lab's own) answers for get_all_available_volumes. */
  async connectorAvailable(node: ComputeHandle, protocol: Protocol): Promise<AvailableVolume[]> {
    return (await node.client.availableVolumes(protocol, {}, this.via())).volumes;
  }

  /** The oracle: what still refers to v on the node, sessions shared with stillAttached excepted. */
  async orphans(node: ComputeHandle, v: TargetVolume, stillAttached: TargetVolume[] = []): Promise<Orphan[]> {
    return (await this.oracle(node, v, stillAttached)).orphans;
  }

  /**
   * The oracle's whole answer: the volume-scoped verdict (with what was kept for others) and,
   * when the node has a baseline from before the last detach, the host-wide view against it.
   */
  oracle(node: ComputeHandle, v: TargetVolume, stillAttached: TargetVolume[] = []): Promise<OrphansReply> {
    const since = this.baselines.get(node.name);
    const others = (since?.detached ?? []).filter((o) => o !== v);
    return node.client.orphans({
      protocol: protocolOf(v),
      properties: v.connectionInfo,
      ...(wwidOf(v) ? { wwid: wwidOf(v)! } : {}),
      stillAttached: stillAttached.map((o) => ({ protocol: protocolOf(o), properties: o.connectionInfo })),
      devices: this.attachedDevices.get(`${node.name} ${v.name}`) ?? [],
      ...(since
        ? {
            baseline: since.snapshot,
            detachedSince: others.map((o) => ({ protocol: protocolOf(o), properties: o.connectionInfo, ...(wwidOf(o) ? { wwid: wwidOf(o)! } : {}), devices: this.attachedDevices.get(`${node.name} ${o.name}`) ?? [] })),
          }
        : {}),
    });
  }

  /**
   * Wait (up to `timeoutMs`) until the node no longer shows an NVMe volume's namespace, then until
   * udev is done with its removal (its links go a moment after the kernel's namespace); a timeout
   * fails the step with the namespaces that lingered.
   */
  async waitGone(node: ComputeHandle, v: TargetVolume, timeoutMs = 10_000): Promise<void> {
    let lingering: string[] = [];
    await waitFor(
      async () => {
        lingering = (await this.snapshot(node)).nvmeNamespaces.filter((n) => n.uuid === v.nvme!.uuid).map((n) => `${n.name} (nsid ${n.nsid})`);
        return lingering.length === 0;
      },
      {
        timeoutMs,
        intervalMs: 200,
        onTimeout: (r) => new ScenarioFailure(`${node.name}: namespace ${v.nvme!.nsid} of ${v.nvme!.nqn} still shown ${Math.round(r.elapsedMs / 1000)} s after the target removed it: ${lingering.join(', ')}`),
      },
    );
    const settle = await node.client.exec(['udevadm', 'settle', `--timeout=${Math.ceil(timeoutMs / 1000)}`], { timeoutMs: timeoutMs + 5000 });
    if (settle.exitCode !== 0) throw new ScenarioFailure(`${node.name}: udev did not finish with the removal of namespace ${v.nvme!.nsid} of ${v.nvme!.nqn} within ${Math.round(timeoutMs / 1000)} s`);
  }

  snapshot(node: ComputeHandle): Promise<HostSnapshot> {
    return node.client.inventory();
  }

  async sh(node: NodeHandle, script: string, timeoutMs = 120_000): Promise<string> {
    return (await node.client.run(['bash', '-c', script], { timeoutMs })).stdout;
  }

  async writeSignature(node: ComputeHandle, device: string, v: TargetVolume | Signature): Promise<Signature> {
    const s = 'name' in v ? { volume: v.name, id: v.id } : v;
    await node.client.run(writeSignatureArgv(device), { input: signatureText(s) });
    return s;
  }

  async readSignature(node: ComputeHandle, device: string): Promise<Signature | null> {
    const r = await node.client.exec(readSignatureArgv(device));
    return r.exitCode === 0 ? parseSignature(r.stdout) : null;
  }

  /** Record what the oracle said for the report, and check it against what was expected. */
  async verdict(node: ComputeHandle, v: TargetVolume, o: { phase?: string; device?: DeviceInfo | null; paths?: string[]; stillAttached?: TargetVolume[]; expect: Expected }): Promise<Orphan[]> {
    // The oracle and the guest's own tools read the same moment's state, asked at once.
    const [r, seen] = await Promise.all([this.oracle(node, v, o.stillAttached ?? []), this.inspect ? this.inspect(node, v, o.stillAttached ?? []) : null]);
    const left = r.orphans;
    const wide = r.hostWide ? [...r.hostWide.orphans, ...r.hostWide.collateral] : [];
    // A faulty sequence that only took what was not its own leaves nothing of the volume for the
    // guest's tools to show: their second opinion is then that the volumes still attached are gone.
    const collateralOnly = o.expect !== 'clean' && left.length === 0 && (r.hostWide?.orphans.length ?? 0) === 0 && (r.hostWide?.collateral.length ?? 0) > 0;
    if (seen && collateralOnly) {
      for (const other of o.stillAttached ?? []) if ((await this.inspect!(node, other, [])).length === 0) seen.push(`${other.name} (still attached): nothing of it shown`);
    }
    this.rows.push({
      node: node.name,
      volume: v.name,
      protocol: protocolOf(v),
      phase: o.phase ?? 'run',
      device: o.device?.path ?? null,
      paths: o.paths ?? [],
      left,
      kept: r.kept,
      hostWide: r.hostWide ?? null,
      expected: o.expect === 'clean' ? 'clean' : o.expect.join(', '),
      ...(seen ? { inspected: seen } : {}),
    });
    const say = (xs: Orphan[]): string => xs.map((x) => `${x.kind} ${x.id} (${x.evidence})`).join('; ');
    if (o.expect === 'clean') {
      check(left.length === 0, `${node.name}: ${v.name} left ${say(left)}`);
      check((r.hostWide?.orphans.length ?? 0) === 0, `${node.name}: after ${v.name}'s detach, host-wide: ${say(r.hostWide?.orphans ?? [])}`);
      check((r.hostWide?.collateral.length ?? 0) === 0, `${node.name}: ${v.name}'s detach took what was not its own (collateral): ${say(r.hostWide?.collateral ?? [])}`);
      check(!seen || seen.length === 0, `${node.name}: the oracle calls ${v.name} clean, but the guest's own tools show: ${seen?.join('; ')}`);
    } else {
      const diff = kindsDiff(o.expect, [...left, ...wide]);
      check(
        diff.missing.length === 0 && diff.extra.length === 0,
        `${node.name}: for ${v.name} the oracle found ${diff.found.join(', ') || 'nothing'}, the sequence leaves ${o.expect.join(', ')}` +
          `${diff.missing.length ? `; missed: ${diff.missing.join(', ')}` : ''}${diff.extra.length ? `; not expected: ${diff.extra.join(', ')}` : ''}`,
      );
      check(!seen || seen.length > 0, `${node.name}: the oracle names leftovers of ${v.name}, but the guest's own tools show nothing of it`);
    }
    return left;
  }
}

/**
 * The orphan kinds expected against those found, both ways: a faulty sequence leaves exactly its
 * kinds, so a kind the oracle missed and a kind it found beyond them both fail the verdict.
 */
export function kindsDiff(expected: readonly OrphanKind[], found: readonly Orphan[]): { found: OrphanKind[]; missing: OrphanKind[]; extra: OrphanKind[] } {
  const kinds = ORPHAN_KINDS.filter((k) => found.some((x) => x.kind === k));
  return { found: kinds, missing: expected.filter((k) => !kinds.includes(k)), extra: kinds.filter((k) => !expected.includes(k)) };
}
