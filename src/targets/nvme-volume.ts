import { kernelRandomUUID } from '../system/random.js';
import { rm } from 'node:fs/promises';
import { nvmeofConnectionInfo } from '../osbrick/index.js';
import { checkInt, checkNqn, checkSize, checkUuid, refuse } from '../volume/fields.js';
import { nguidFromUuid } from '../volume/ids.js';
import { NVME_PORT, type NvmeVolumeRequest, type TargetVolume } from './model.js';
import type { VolumeWorkbench } from './workbench.js';

/** An NVMe/TCP volume: a loop device over a backing file, a namespace in an nvmet subsystem, linked to a port per network. */
export function createNvmeVolume(w: VolumeWorkbench, req: NvmeVolumeRequest): Promise<TargetVolume> {
  w.checkNew(req.name);
  const sizeMiB = checkSize(req.sizeMiB);
  const nqn = checkNqn(req.nqn ?? `nqn.2026-11.io.brick-lab:${w.lab}.${req.name}`);
  const nsidWanted = req.nsid === undefined ? null : checkInt(req.nsid, 'nsid', 1, 1024);
  const hosts = (req.hosts ?? []).map((h, i) => checkNqn(h, `hosts[${i}]`));
  const allowAnyHost = req.allowAnyHost ?? hosts.length === 0;
  const uuid = req.uuid === undefined ? kernelRandomUUID() : checkUuid(req.uuid, 'uuid');
  const nguid = req.nguid === undefined ? nguidFromUuid(uuid) : req.nguid;
  if (!/^[0-9a-f]{32}$/.test(nguid)) refuse('nguid', `must be 32 lowercase hex digits (got ${JSON.stringify(nguid)})`);
  const anaGroup = req.anaGroup === undefined ? 1 : checkInt(req.anaGroup, 'anaGroup', 1, 128);
  const nets = w.pickNetworks(req.networks);
  w.nvmet.requireAvailable();
  return w.serial(async () => {
    // Again in turn: requests queued behind others passed the first check against fewer volumes.
    w.checkNew(req.name);
    const undo: Array<() => Promise<unknown>> = [];
    try {
      const existing = w.nvmet.subsystemExists(nqn);
      const used = new Set(
        w.volumes().filter((v) => v.nvme?.nqn === nqn).map((v) => v.nvme!.nsid),
      );
      if (existing) for (const id of await w.nvmet.namespaceIds(nqn)) used.add(id);
      let nsid = nsidWanted;
      if (nsid === null) {
        nsid = 1;
        while (used.has(nsid)) nsid++;
      } else if (used.has(nsid)) {
        refuse('nsid', `namespace ${nsid} is already used in ${nqn}`, 'NSID_IN_USE');
      }
      const file = await w.makeFile(req.name, sizeMiB);
      undo.push(() => rm(file, { force: true }));
      // Always through a loop device: on 6.1 a namespace backed by a tmpfs file reports a
      // 1-byte block size (the host sees a 0-byte disk), buffered_io or not.
      const device = await w.attachLoop(file);
      undo.push(() => w.detachLoop(device));
      if (!existing) {
        await w.nvmet.createSubsystem(nqn, allowAnyHost);
        undo.push(() => w.nvmet.deleteSubsystem(nqn));
      }
      for (const h of hosts) await w.nvmet.allowHost(nqn, h);
      const n = nsid;
      await w.nvmet.addNamespace(nqn, { nsid: n, devicePath: device, uuid, nguid, anaGroup });
      undo.push(() => w.nvmet.removeNamespace(nqn, n));
      const portals = [];
      for (const net of nets) {
        const portId = w.networks.indexOf(net) + 1;
        await w.nvmet.ensurePort(portId, net.address, NVME_PORT);
        await w.nvmet.linkPort(nqn, portId);
        portals.push({ network: net.name, address: net.address, port: NVME_PORT });
      }
      const volume: TargetVolume = {
        name: req.name,
        protocol: 'nvmeof',
        id: uuid,
        sizeMiB,
        backing: { kind: 'block', file, device },
        portals,
        nvme: { nqn, nsid: n, uuid, nguid, hosts, allowAnyHost, anaGroup },
        connectionInfo: nvmeofConnectionInfo({ nqn, nsid: n, uuid, nguid, portals, hostNqn: hosts.length === 1 ? hosts[0] : undefined }),
        createdAt: new Date().toISOString(),
      };
      w.record(volume);
      return volume;
    } catch (e) {
      for (const u of undo.reverse()) await u().catch(() => undefined);
      await w.nvmet.pruneUnused().catch(() => undefined);
      throw e;
    }
  });
}
