import { existsSync } from 'node:fs';
import { mkdir, open, readdir, rm, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { BrickError } from '../system/errors.js';
import { exec, startLineWorker, type LineWorker } from '../system/exec.js';
import { serialQueue } from '../system/serial.js';
import { checkInt, checkIqn, checkVolumeName, checkWwpn, refuse } from '../volume/fields.js';
import { nguidHex } from '../volume/ids.js';
import type { AnaState } from '../volume/protocol.js';
import type { ConnectionInfoFor } from '../osbrick/index.js';
import { ensureFcoePorts } from '../system/fcoe.js';
import { createFcVolume, reaches } from './fc-volume.js';
import { createIscsiVolume } from './iscsi-volume.js';
import type { DataNetwork, FcInitiator, FcTargetPort, FcVolumeRequest, IscsiVolumeRequest, NvmeVolumeRequest, TargetVolume } from './model.js';
import { createNvmeVolume } from './nvme-volume.js';
import { Nvmet } from './nvmet.js';
import type { VolumeWorkbench } from './workbench.js';

const VOLUME_DIR = '/var/lib/brick-lab/volumes';

/** BRICK_FC_INITIATORS ("path-a=2000... path-b=2000..."): the lab's compute ports, each with its fabric (data network). */
export function fcInitiatorsOf(env: string): FcInitiator[] {
  return env
    .split(/\s+/)
    .filter(Boolean)
    .map((e) => {
      const at = e.indexOf('=');
      return at < 0 ? { network: null, wwpn: e } : { network: e.slice(0, at), wwpn: e.slice(at + 1) };
    });
}

/**
 * Volumes a target serves at once. Each is a sparse file in the target's memory, a LIO backstore
 * or an nvmet namespace on a loop device: far more than any scenario needs, far fewer than would
 * exhaust the node's loop devices or its memory with their metadata.
 */
export const MAX_TARGET_VOLUMES = 128;

/**
 * The target node's volumes: backing storage, LIO (through the rtslib worker) and nvmet (through
 * configfs), and the connection properties a connector needs. Each create either completes or
 * undoes every step it made.
 */
export class TargetVolumes implements VolumeWorkbench {
  private readonly byName = new Map<string, TargetVolume>();
  private lio: Promise<LineWorker> | null = null;
  readonly nvmet = new Nvmet();
  /** Serialises changes: configfs and LUN/NSID picking are not safe to interleave. */
  private readonly queue = serialQueue();

  constructor(
    readonly lab: string,
    readonly networks: DataNetwork[],
    private readonly lioHelper: string,
    readonly fcInitiators: FcInitiator[] = [],
  ) {}

  /**
   * The FCoE ports on these data networks, made (on every data network) at the first FC volume: its tcm_fc target,
   * with an ACL for every port the lab named, is configured before the port is enabled, so that
   * no host sees it log in without the target role.
   */
  async fcPorts(nets: DataNetwork[]): Promise<FcTargetPort[]> {
    // Every network's port at once: a port made later would leave the hosts waiting for its
    // discovery (seconds) at the first volume exported there.
    const ports = await ensureFcoePorts(
      this.networks.map((n) => n.name),
      async (wwpns) => {
        await exec(['modprobe', 'tcm_fc'], { timeoutMs: 60_000 });
        for (const p of wwpns) await this.lioRequest('fc_port', { wwpn: p.wwpn, initiators: this.fcInitiators.map((i) => i.wwpn) });
      },
    );
    return ports.filter((p) => nets.some((n) => n.name === p.netdev)).map((p) => ({ network: p.netdev, wwpn: p.wwpn }));
  }

  serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue(fn);
  }

  /** Start the LIO worker (python3 + rtslib import: seconds under TCG) once, ahead of need. */
  warmUp(): void {
    void this.worker().catch(() => undefined);
  }

  private worker(): Promise<LineWorker> {
    if (!this.lio) {
      this.lio = startLineWorker(['/usr/bin/python3', this.lioHelper], { startTimeoutMs: 120_000 });
      this.lio.catch(() => (this.lio = null));
    }
    return this.lio;
  }

  async lioRequest<T>(op: string, args: unknown): Promise<T> {
    return (await this.worker()).request<T>(op, args, 120_000);
  }

  volumes(): TargetVolume[] {
    return [...this.byName.values()];
  }

  exists(name: string): boolean {
    return this.byName.has(name);
  }

  record(v: TargetVolume): void {
    this.byName.set(v.name, v);
  }

  list(): TargetVolume[] {
    return [...this.byName.values()];
  }

  get(name: string): TargetVolume {
    const v = this.byName.get(name);
    if (!v) {
      throw new BrickError('VOLUME_UNKNOWN', `name: no volume named ${JSON.stringify(name)} on this target`, {
        details: { field: 'name' },
        hint: 'GET /v1/targets/volumes lists the volumes',
      });
    }
    return v;
  }

  pickNetworks(names: string[] | undefined): DataNetwork[] {
    if (!names) return this.networks;
    if (names.length === 0) refuse('networks', 'must name at least one data network');
    return names.map((n, i) => this.networks.find((x) => x.name === n) ?? refuse(`networks[${i}]`, `no data network ${JSON.stringify(n)} on this node (have ${this.networks.map((x) => x.name).join(', ')})`));
  }

  checkNew(name: string): void {
    checkVolumeName(name);
    if (this.byName.has(name)) refuse('name', `a volume named ${name} already exists`, 'VOLUME_EXISTS');
    if (this.byName.size >= MAX_TARGET_VOLUMES) {
      throw new BrickError('LIMIT_REACHED', `name: this target holds ${MAX_TARGET_VOLUMES} volumes already, the most it serves at once`, {
        details: { field: 'name' },
        hint: 'delete volumes no test uses any more (DELETE /v1/targets/volumes/NAME, or POST /v1/targets/cleanup)',
      });
    }
  }

  async makeFile(name: string, sizeMiB: number): Promise<string> {
    await mkdir(VOLUME_DIR, { recursive: true });
    const file = join(VOLUME_DIR, `${name}.img`);
    // Sparse, made with ftruncate: targetcli's own fileio path would fallocate the whole size.
    const fh = await open(file, 'wx');
    await fh.close();
    await truncate(file, sizeMiB * 1024 * 1024);
    return file;
  }

  async attachLoop(file: string): Promise<string> {
    return (await this.lioRequest<{ device: string }>('loop_attach', { file })).device;
  }

  async detachLoop(device: string): Promise<void> {
    await this.lioRequest('loop_detach', { device }).catch(() => undefined);
  }

  createIscsi(req: IscsiVolumeRequest): Promise<TargetVolume> {
    return createIscsiVolume(this, req);
  }

  createNvme(req: NvmeVolumeRequest): Promise<TargetVolume> {
    return createNvmeVolume(this, req);
  }

  createFc(req: FcVolumeRequest): Promise<TargetVolume> {
    return createFcVolume(this, req);
  }

  delete(name: string): Promise<{ deleted: string }> {
    const v = this.get(name);
    return this.serial(async () => {
      if (v.iscsi) {
        await this.lioRequest('delete', { name: v.name, iqn: v.iscsi.iqn, lun: v.iscsi.lun });
      } else if (v.fc) {
        await this.lioRequest('fc_delete', { name: v.name, lun: v.fc.lun });
      } else if (v.nvme) {
        await this.nvmet.removeNamespace(v.nvme.nqn, v.nvme.nsid);
        if (this.nvmet.subsystemExists(v.nvme.nqn) && (await this.nvmet.namespaceIds(v.nvme.nqn)).length === 0) {
          await this.nvmet.deleteSubsystem(v.nvme.nqn);
          await this.nvmet.pruneUnused();
        }
      }
      if (v.backing.device) await this.detachLoop(v.backing.device);
      if (v.backing.file) await rm(v.backing.file, { force: true });
      this.byName.delete(name);
      return { deleted: name };
    });
  }

  /**
   * Take the volume away from its hosts while they may still use it: iSCSI unmaps the LUN from
   * the initiator's ACL (or every ACL); NVMe removes the namespace from the subsystem. The
   * volume's record and backing stay, so the test can delete it afterwards.
   */
  unmap(name: string, initiator?: string): Promise<{ volume: string; removed: number }> {
    // An initiator is an IQN (iSCSI) or a WWPN (FC): one that is neither is refused before the volume is looked up.
    if (initiator !== undefined && !/^[0-9A-Fa-f]{16}$/.test(initiator)) checkIqn(initiator, 'initiator');
    const v = this.get(name);
    if (initiator !== undefined) initiator = v.fc ? checkWwpn(initiator, 'initiator') : checkIqn(initiator, 'initiator');
    return this.serial(async () => {
      if (v.fc) {
        const r = await this.lioRequest<{ unmapped: number }>('fc_unmap', { lun: v.fc.lun, initiator: initiator ?? null });
        return { volume: name, removed: r.unmapped };
      }
      if (v.iscsi) {
        if (v.iscsi.demoMode) {
          // Demo mode has no ACL to unmap from: take the LUN out of the target instead.
          await this.lioRequest('remove_lun', { iqn: v.iscsi.iqn, lun: v.iscsi.lun });
          return { volume: name, removed: 1 };
        }
        const r = await this.lioRequest<{ unmapped: number }>('unmap', { iqn: v.iscsi.iqn, lun: v.iscsi.lun, initiator: initiator ?? null });
        return { volume: name, removed: r.unmapped };
      }
      await this.nvmet.removeNamespace(v.nvme!.nqn, v.nvme!.nsid);
      return { volume: name, removed: 1 };
    });
  }

  /**
   * FC: map the volume's LUN to these host ports on every target port it is exported on (the
   * ACLs exist or are made), as Cinder's initialize_connection does before a host attaches: a
   * host that logs in scans every LUN mapped to it (the FC transport's scan of a new remote
   * port), so a LUN is mapped only to the hosts that attach it.
   */
  map(name: string, initiators: string[]): Promise<{ volume: string; mapped: number }> {
    const wwpns = initiators.map((x, i) => checkWwpn(x, `initiators[${i}]`));
    const v = this.get(name);
    if (!v.fc) refuse('name', `volume ${name} is ${v.protocol}: map is for FC volumes (iSCSI ACLs and NVMe hosts are given when the volume is made)`);
    return this.serial(async () => {
      let mapped = 0;
      for (const port of v.portals) {
        // On each target port, the host ports of its fabric (a port the lab did not place: on every one).
        const here = wwpns.filter((w) => reaches(this.fcInitiators, w, port.network));
        if (here.length > 0) mapped += (await this.lioRequest<{ mapped: number }>('fc_map', { wwpn: port.address, lun: v.fc!.lun, initiators: here })).mapped;
      }
      v.fc!.initiators = [...new Set([...v.fc!.initiators, ...wwpns])];
      // The zoning the volume's connection properties give, for a port the lab did not know of.
      const zones = ((v.connectionInfo as ConnectionInfoFor<'fc'>).data.initiator_target_map ??= {});
      for (const w of wwpns) {
        const reach = v.portals.filter((p) => reaches(this.fcInitiators, w, p.network)).map((p) => p.address);
        if (reach.length > 0) zones[w] = [...new Set([...(zones[w] ?? []), ...reach])];
      }
      return { volume: name, mapped };
    });
  }

  /** One data path down or up on this target: the interface itself, for every protocol. */
  async setNetwork(network: string, up: boolean): Promise<{ network: string; up: boolean }> {
    const net = this.networks.find((n) => n.name === network) ?? refuse('network', `no data network ${JSON.stringify(network)} on this node`);
    await exec(['ip', 'link', 'set', 'dev', net.name, up ? 'up' : 'down'], { timeoutMs: 10_000 });
    return { network, up };
  }

  async setAnaState(network: string, group: number, state: AnaState): Promise<{ network: string; group: number; state: AnaState }> {
    const idx = this.networks.findIndex((n) => n.name === network);
    if (idx < 0) refuse('network', `no data network ${JSON.stringify(network)} on this node`);
    checkInt(group, 'group', 1, 128);
    await this.serial(() => this.nvmet.setAnaState(idx + 1, group, state));
    return { network, group, state };
  }

  /**
   * What a restart of the target services does to initiators: every LIO and nvmet object goes
   * away (sessions and controllers drop) and comes back from the saved configuration.
   */
  restart(): Promise<{ lioErrors: unknown[]; nvmetSubsystems: number }> {
    return this.serial(async () => {
      const lioConfig = await this.lioRequest<unknown>('save', {});
      const subsystems = await this.nvmet.subsystems();
      const ports = await this.nvmet.ports();
      await this.lioRequest('clear', {});
      await this.nvmet.forceClean();
      const r = await this.lioRequest<{ errors: unknown[] }>('restore', { config: lioConfig });
      for (const p of ports) await this.nvmet.ensurePort(p.id, p.traddr, Number(p.trsvcid));
      for (const s of subsystems) {
        await this.nvmet.createSubsystem(s.nqn, s.allowAnyHost);
        for (const h of s.hosts) await this.nvmet.allowHost(s.nqn, h);
        for (const ns of s.namespaces) {
          await this.nvmet.addNamespace(s.nqn, { nsid: ns.nsid, devicePath: ns.devicePath, uuid: ns.uuid, nguid: nguidHex(ns.nguid) ?? ns.nguid, anaGroup: ns.anaGroup });
        }
      }
      for (const p of ports) for (const s of p.subsystems) await this.nvmet.linkPort(s, p.id);
      for (const p of ports) for (const g of p.anaGroups) await this.nvmet.setAnaState(p.id, g.group, g.state as AnaState).catch(() => undefined);
      return { lioErrors: r.errors, nvmetSubsystems: subsystems.length };
    });
  }

  /**
   * Everything LIO and nvmet hold right now, read from the kernel (the blktests check). Read in
   * the serial queue, between changes: a port or subsystem another request is taking away would
   * otherwise vanish under the walk of configfs (ENOENT on a port's addr_trtype).
   */
  leftovers(): Promise<{ lio: unknown; nvmet: { subsystems: unknown[]; ports: unknown[]; hosts: string[] }; loopDevices: string[]; files: string[] }> {
    return this.serial(() => this.leftoversNow());
  }

  private async leftoversNow(): Promise<{ lio: unknown; nvmet: { subsystems: unknown[]; ports: unknown[]; hosts: string[] }; loopDevices: string[]; files: string[] }> {
    const lio = await this.lioRequest('inventory', {});
    const loops = await exec(['losetup', '--list', '--noheadings', '--output', 'NAME,BACK-FILE'], { timeoutMs: 10_000, reject: false });
    const files = existsSync(VOLUME_DIR) ? await readdir(VOLUME_DIR) : [];
    return {
      lio,
      nvmet: this.nvmet.available()
        ? { subsystems: await this.nvmet.subsystems(), ports: await this.nvmet.ports(), hosts: await this.nvmet.hosts() }
        : { subsystems: [], ports: [], hosts: [] },
      loopDevices: loops.stdout.split('\n').map((l) => l.trim()).filter((l) => l.includes(VOLUME_DIR)),
      files,
    };
  }

  /** Force-clean in reverse order of making: nvmet, LIO, loop devices, backing files. */
  cleanup(): Promise<{ removed: string[] }> {
    return this.serial(async () => {
      const removed: string[] = [];
      if (this.nvmet.available()) removed.push(...(await this.nvmet.forceClean()));
      const before = await this.lioRequest<{ targets: Array<{ iqn: string }>; backstores: Array<{ name: string }> }>('inventory', {});
      if (before.targets.length || before.backstores.length) {
        await this.lioRequest('clear', {});
        removed.push(...before.targets.map((t) => `iscsi target ${t.iqn}`), ...before.backstores.map((b) => `backstore ${b.name}`));
      }
      const loops = await exec(['losetup', '--list', '--noheadings', '--output', 'NAME,BACK-FILE'], { timeoutMs: 10_000, reject: false });
      for (const line of loops.stdout.split('\n')) {
        const [dev, back] = line.trim().split(/\s+/);
        if (dev && back?.startsWith(VOLUME_DIR)) {
          await this.detachLoop(dev);
          removed.push(`loop ${dev}`);
        }
      }
      if (existsSync(VOLUME_DIR)) {
            for (const f of await readdir(VOLUME_DIR)) {
          await rm(join(VOLUME_DIR, f), { force: true });
          removed.push(`file ${f}`);
        }
      }
      this.byName.clear();
      return { removed };
    });
  }

  /** The first 4 KiB of a volume's backing store, where callers write their signature. */
  /**
   * Write the first block of a volume on the target side, through its backing file (what an
   * array's other user would have written): the stale-path scenario needs a second volume whose
   * data no host wrote.
   */
  async writeHead(name: string, data: Buffer): Promise<void> {
    const v = this.get(name);
    const path = v.backing.file;
    if (!path) refuse('name', `volume ${name} is a ramdisk: the target cannot write it`, 'NO_BACKING_FILE');
    const fh = await open(path, 'r+');
    try {
      await fh.write(data, 0, data.length, 0);
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  async readHead(name: string): Promise<Buffer> {
    const v = this.get(name);
    // The file, never the loop device: udev's probe leaves the loop device's page cache holding
    // what the volume read when it was made, and writes that arrive as bios through nvmet or LIO
    // do not refresh it. The loop driver writes through the file's own page cache, so the file
    // read is always current.
    const path = v.backing.file;
    if (!path) refuse('name', `volume ${name} is a ramdisk: the target cannot read it back`, 'NO_BACKING_FILE');
    const fh = await open(path, 'r');
    try {
      const buf = Buffer.alloc(4096);
      await fh.read(buf, 0, 4096, 0);
      return buf;
    } finally {
      await fh.close();
    }
  }
}
