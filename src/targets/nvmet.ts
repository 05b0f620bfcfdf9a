import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, readlink, rmdir, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BrickError } from '../system/errors.js';
import type { AnaState } from '../volume/protocol.js';

/**
 * nvmet through configfs, the way blktests and nvmetcli drive it: ports, subsystems, namespaces,
 * hosts and the links between them are directories, attribute files and symlinks. Each call
 * writes the kernel's own tree; nothing is cached here, so a read is always the kernel's truth.
 */
export const NVMET_ROOT = '/sys/kernel/config/nvmet';


export interface NvmetNamespace {
  nsid: number;
  devicePath: string;
  uuid: string;
  nguid: string;
  enabled: boolean;
  anaGroup: number;
}

export interface NvmetSubsystem {
  nqn: string;
  allowAnyHost: boolean;
  hosts: string[];
  namespaces: NvmetNamespace[];
}

export interface NvmetPort {
  id: number;
  trtype: string;
  traddr: string;
  trsvcid: string;
  subsystems: string[];
  anaGroups: Array<{ group: number; state: string }>;
}

async function read(path: string): Promise<string> {
  return (await readFile(path, 'utf8')).trim();
}

async function list(path: string): Promise<string[]> {
  try {
    return (await readdir(path)).sort();
  } catch {
    return [];
  }
}

export class Nvmet {
  constructor(readonly root = NVMET_ROOT) {}

  private p(...parts: string[]): string {
    return join(this.root, ...parts);
  }

  available(): boolean {
    return existsSync(this.root);
  }

  requireAvailable(): void {
    if (!this.available()) {
      throw new BrickError('NVMET_MISSING', `${this.root} does not exist: nvmet is not loaded or configfs is not mounted`, {
        hint: 'this must run on a target node (modprobe nvmet nvmet_tcp; mount -t configfs none /sys/kernel/config)',
      });
    }
  }

  /** A TCP port on one address; made once, shared by every subsystem on that data network. */
  async ensurePort(id: number, traddr: string, trsvcid = 4420): Promise<void> {
    const dir = this.p('ports', String(id));
    if (existsSync(dir)) return;
    await mkdir(dir);
    try {
      await writeFile(join(dir, 'addr_trtype'), 'tcp');
      await writeFile(join(dir, 'addr_adrfam'), 'ipv4');
      await writeFile(join(dir, 'addr_traddr'), traddr);
      await writeFile(join(dir, 'addr_trsvcid'), String(trsvcid));
    } catch (e) {
      await rmdir(dir).catch(() => undefined);
      throw e;
    }
  }

  async createSubsystem(nqn: string, allowAnyHost: boolean): Promise<void> {
    const dir = this.p('subsystems', nqn);
    await mkdir(dir);
    await writeFile(join(dir, 'attr_allow_any_host'), allowAnyHost ? '1' : '0');
  }

  subsystemExists(nqn: string): boolean {
    return existsSync(this.p('subsystems', nqn));
  }

  async allowHost(nqn: string, hostNqn: string): Promise<void> {
    const host = this.p('hosts', hostNqn);
    if (!existsSync(host)) await mkdir(host);
    const link = this.p('subsystems', nqn, 'allowed_hosts', hostNqn);
    if (!existsSync(link)) await symlink(host, link);
  }

  async addNamespace(nqn: string, ns: { nsid: number; devicePath: string; uuid: string; nguid: string; anaGroup?: number }): Promise<void> {
    const dir = this.p('subsystems', nqn, 'namespaces', String(ns.nsid));
    await mkdir(dir);
    try {
      await writeFile(join(dir, 'device_path'), ns.devicePath);
      await writeFile(join(dir, 'device_uuid'), ns.uuid);
      await writeFile(join(dir, 'device_nguid'), ns.nguid);
      if (ns.anaGroup && ns.anaGroup !== 1) await writeFile(join(dir, 'ana_grpid'), String(ns.anaGroup));
      await writeFile(join(dir, 'enable'), '1');
    } catch (e) {
      await rmdir(dir).catch(() => undefined);
      throw e;
    }
  }

  /** The NSIDs a subsystem holds: one readdir, for hot paths that need no attributes. */
  async namespaceIds(nqn: string): Promise<number[]> {
    return (await list(this.p('subsystems', nqn, 'namespaces'))).map(Number);
  }

  async removeNamespace(nqn: string, nsid: number): Promise<void> {
    const dir = this.p('subsystems', nqn, 'namespaces', String(nsid));
    if (!existsSync(dir)) return;
    await writeFile(join(dir, 'enable'), '0').catch(() => undefined);
    await rmdir(dir);
  }

  async linkPort(nqn: string, portId: number): Promise<void> {
    const link = this.p('ports', String(portId), 'subsystems', nqn);
    if (!existsSync(link)) await symlink(this.p('subsystems', nqn), link);
  }

  async unlinkPort(nqn: string, portId: number): Promise<void> {
    const link = this.p('ports', String(portId), 'subsystems', nqn);
    if (existsSync(link)) await unlink(link);
  }

  /** Tear a subsystem down in reverse order of making: port links, host links, namespaces, itself. */
  async deleteSubsystem(nqn: string): Promise<void> {
    for (const port of await list(this.p('ports'))) await this.unlinkPort(nqn, Number(port));
    const dir = this.p('subsystems', nqn);
    for (const h of await list(join(dir, 'allowed_hosts'))) await unlink(join(dir, 'allowed_hosts', h));
    for (const ns of await list(join(dir, 'namespaces'))) await this.removeNamespace(nqn, Number(ns));
    if (existsSync(dir)) await rmdir(dir);
  }

  /** Ports no subsystem uses any more, and hosts no subsystem allows, go too. */
  async pruneUnused(): Promise<string[]> {
    const removed: string[] = [];
    for (const port of await list(this.p('ports'))) {
      if ((await list(this.p('ports', port, 'subsystems'))).length === 0) {
        for (const g of await list(this.p('ports', port, 'ana_groups'))) if (g !== '1') await rmdir(this.p('ports', port, 'ana_groups', g)).catch(() => undefined);
        await rmdir(this.p('ports', port));
        removed.push(`port ${port}`);
      }
    }
    const allowed = new Set<string>();
    for (const s of await list(this.p('subsystems'))) for (const h of await list(this.p('subsystems', s, 'allowed_hosts'))) allowed.add(h);
    for (const h of await list(this.p('hosts'))) {
      if (!allowed.has(h)) {
        await rmdir(this.p('hosts', h));
        removed.push(`host ${h}`);
      }
    }
    return removed;
  }

  async setAnaState(portId: number, group: number, state: AnaState): Promise<void> {
    const dir = this.p('ports', String(portId), 'ana_groups', String(group));
    if (!existsSync(dir)) await mkdir(dir);
    await writeFile(join(dir, 'ana_state'), state);
  }

  async subsystems(): Promise<NvmetSubsystem[]> {
    const out: NvmetSubsystem[] = [];
    for (const nqn of await list(this.p('subsystems'))) {
      const dir = this.p('subsystems', nqn);
      const namespaces: NvmetNamespace[] = [];
      for (const ns of await list(join(dir, 'namespaces'))) {
        const nd = join(dir, 'namespaces', ns);
        namespaces.push({
          nsid: Number(ns),
          devicePath: await read(join(nd, 'device_path')),
          uuid: await read(join(nd, 'device_uuid')),
          nguid: await read(join(nd, 'device_nguid')),
          enabled: (await read(join(nd, 'enable'))) === '1',
          anaGroup: Number(await read(join(nd, 'ana_grpid')).catch(() => '1')),
        });
      }
      out.push({
        nqn,
        allowAnyHost: (await read(join(dir, 'attr_allow_any_host'))) === '1',
        hosts: await list(join(dir, 'allowed_hosts')),
        namespaces,
      });
    }
    return out;
  }

  async ports(): Promise<NvmetPort[]> {
    const out: NvmetPort[] = [];
    for (const id of await list(this.p('ports'))) {
      const dir = this.p('ports', id);
      const anaGroups = [];
      for (const g of await list(join(dir, 'ana_groups'))) {
        anaGroups.push({ group: Number(g), state: await read(join(dir, 'ana_groups', g, 'ana_state')).catch(() => 'unknown') });
      }
      const subsystems = [];
      for (const s of await list(join(dir, 'subsystems'))) subsystems.push((await readlink(join(dir, 'subsystems', s))).split('/').pop()!);
      out.push({
        id: Number(id),
        trtype: await read(join(dir, 'addr_trtype')),
        traddr: await read(join(dir, 'addr_traddr')),
        trsvcid: await read(join(dir, 'addr_trsvcid')),
        subsystems,
        anaGroups,
      });
    }
    return out;
  }

  async hosts(): Promise<string[]> {
    return list(this.p('hosts'));
  }

  /** Everything, in reverse order of making (blktests' force clean). */
  async forceClean(): Promise<string[]> {
    const removed: string[] = [];
    for (const s of await list(this.p('subsystems'))) {
      await this.deleteSubsystem(s);
      removed.push(`subsystem ${s}`);
    }
    removed.push(...(await this.pruneUnused()));
    return removed;
  }
}
