import { fcConnectionInfo } from '../osbrick/index.js';
import { kernelRandomUUID } from '../system/random.js';
import { checkInt, checkSize, checkUuid, checkWwpn, refuse } from '../volume/fields.js';
import { lioWwid } from '../volume/ids.js';
import { makeBacking } from './iscsi-volume.js';
import type { FcInitiator, FcVolumeRequest, TargetVolume } from './model.js';
import type { VolumeWorkbench } from './workbench.js';

/**
 * Whether a host port reaches a target port on `network`: a port the lab placed on a fabric
 * reaches that fabric's target port only; one it did not place (named in a request), every one.
 */
export function reaches(known: FcInitiator[], host: string, network: string): boolean {
  const on = known.find((i) => i.wwpn === host)?.network;
  return !on || on === network;
}

/**
 * A Fibre Channel volume: a backstore exported by LIO's tcm_fc on the target's FCoE port of each
 * data network (one fabric each), at one LUN id on all of them, masked to the initiator ports
 * named (or to none, until POST /v1/targets/volumes/NAME/map gives it to a host). The answer carries os-brick's FC connection properties: the target's port names and
 * the LUN, and the map of which host port reaches which target port (both fabrics, both ways).
 */
export function createFcVolume(w: VolumeWorkbench, req: FcVolumeRequest): Promise<TargetVolume> {
  w.checkNew(req.name);
  const sizeMiB = checkSize(req.sizeMiB);
  const backstore = req.backstore ?? 'fileio';
  if (!['fileio', 'block', 'ramdisk'].includes(backstore)) refuse('backstore', `must be fileio, block or ramdisk (got ${JSON.stringify(backstore)})`);
  // tcm_fc maps LUNs into ACLs, and ACL-mapped LUNs are 0-255 in rtslib.
  const lun = req.lun === undefined ? null : checkInt(req.lun, 'lun', 0, 255);
  const initiators = req.initiators === undefined ? null : req.initiators.map((x, i) => checkWwpn(x, `initiators[${i}]`));
  const unitSerial = req.unitSerial === undefined ? kernelRandomUUID() : checkUuid(req.unitSerial, 'unitSerial');
  const nets = w.pickNetworks(req.networks);
  return w.serial(async () => {
    w.checkNew(req.name);
    const ports = await w.fcPorts(nets);
    // Masked to the ports named, or to none until a host is given it (POST .../map, Cinder's
    // initialize_connection): a host port that logs in scans every LUN mapped to it.
    const hosts = initiators ?? [];
    const wwpns = ports.map((p) => p.wwpn);
    // The ACLs of hosts not known when the ports were made (the lab's own are made before).
    if (hosts.length > 0) for (const wwpn of wwpns) await w.lioRequest('fc_port', { wwpn, initiators: hosts });
    const undo: Array<() => Promise<unknown>> = [];
    try {
      const { file, device } = await makeBacking(w, req.name, sizeMiB, backstore, undo);
      const made = await w.lioRequest<{ lun: number; wwn: string }>('fc_create', {
        name: req.name,
        wwpns,
        lun,
        backstore,
        path: device ?? file ?? null,
        sizeBytes: sizeMiB * 1024 * 1024,
        wwn: unitSerial,
        // Per target port, the host ports of its fabric (one the lab did not place: every port).
        initiators: Object.fromEntries(ports.map((p) => [p.wwpn, hosts.filter((h) => reaches(w.fcInitiators, h, p.network))])),
      });
      const id = kernelRandomUUID();
      // The zoning: which target ports each host port reaches.
      const map: Record<string, string[]> = {};
      for (const h of [...new Set([...w.fcInitiators.map((i) => i.wwpn), ...hosts])]) {
        const reach = ports.filter((p) => reaches(w.fcInitiators, h, p.network)).map((p) => p.wwpn);
        if (reach.length > 0) map[h] = reach;
      }
      const volume: TargetVolume = {
        name: req.name,
        protocol: 'fc',
        id,
        sizeMiB,
        backing: { kind: backstore, ...(file ? { file } : {}), ...(device ? { device } : {}) },
        portals: ports.map((p) => ({ network: p.network, address: p.wwpn, port: 0 })),
        fc: { wwpns, lun: made.lun, unitSerial: made.wwn, wwid: lioWwid(made.wwn), initiators: hosts },
        connectionInfo: fcConnectionInfo({ id, wwpns, lun: made.lun, initiatorTargetMap: map }),
        createdAt: new Date().toISOString(),
      };
      w.record(volume);
      return volume;
    } catch (e) {
      for (const u of undo.reverse()) await u().catch(() => undefined);
      throw e;
    }
  });
}
