import { rm } from 'node:fs/promises';
import { kernelRandomUUID } from '../system/random.js';
import { iscsiConnectionInfo } from '../osbrick/index.js';
import { checkInt, checkIqn, checkSize, checkUuid, refuse } from '../volume/fields.js';
import { lioWwid } from '../volume/ids.js';
import { ISCSI_PORT, type IscsiBackstore, type IscsiVolumeRequest, type TargetVolume } from './model.js';
import type { VolumeWorkbench } from './workbench.js';

/**
 * A LIO volume's backing: a sparse file (fileio), the same behind a loop device (block), or none
 * (ramdisk). What is made is undone by `undo` (in reverse) when a later step fails.
 */
export async function makeBacking(w: VolumeWorkbench, name: string, sizeMiB: number, backstore: IscsiBackstore, undo: Array<() => Promise<unknown>>): Promise<{ file?: string; device?: string }> {
  if (backstore === 'ramdisk') return {};
  const file = await w.makeFile(name, sizeMiB);
  undo.push(() => rm(file, { force: true }));
  if (backstore !== 'block') return { file };
  const device = await w.attachLoop(file);
  undo.push(() => w.detachLoop(device));
  return { file, device };
}

/** An iSCSI volume: backing file (or loop device, or ramdisk), an LIO LUN through the rtslib worker. */
export function createIscsiVolume(w: VolumeWorkbench, req: IscsiVolumeRequest): Promise<TargetVolume> {
  w.checkNew(req.name);
  const sizeMiB = checkSize(req.sizeMiB);
  const backstore = req.backstore ?? 'fileio';
  if (!['fileio', 'block', 'ramdisk'].includes(backstore)) refuse('backstore', `must be fileio, block or ramdisk (got ${JSON.stringify(backstore)})`);
  const iqn = checkIqn(req.iqn ?? `iqn.2026-11.io.brick-lab:${w.lab}.${req.name}`);
  const lun = req.lun === undefined ? null : checkInt(req.lun, 'lun', 0, 16383);
  const initiators = (req.initiators ?? []).map((x, i) => checkIqn(x, `initiators[${i}]`));
  const demoMode = req.demoMode ?? initiators.length === 0;
  if (lun !== null && lun > 255 && !demoMode) {
    // rtslib maps LUNs into an ACL as 0-255 only; above that an initiator sees a LUN through demo mode.
    refuse('lun', `LUN ${lun} can only be exported in demo mode (ACL-mapped LUNs are 0-255 in rtslib); pass demoMode: true or a LUN <= 255`);
  }
  if (req.chap && (!/^[\x21-\x7e]{1,255}$/.test(req.chap.username) || !/^[\x21-\x7e]{12,255}$/.test(req.chap.password))) {
    refuse('chap', 'username must be 1-255 printable characters and password 12-255 (no spaces)');
  }
  const unitSerial = req.unitSerial === undefined ? kernelRandomUUID() : checkUuid(req.unitSerial, 'unitSerial');
  const nets = w.pickNetworks(req.networks);
  return w.serial(async () => {
    // Again in turn: requests queued behind others passed the first check against fewer volumes.
    w.checkNew(req.name);
    const undo: Array<() => Promise<unknown>> = [];
    try {
      const { file, device } = await makeBacking(w, req.name, sizeMiB, backstore, undo);
      const portals = nets.map((n) => ({ network: n.name, address: n.address, port: ISCSI_PORT }));
      const made = await w.lioRequest<{ iqn: string; lun: number; wwn: string }>('create', {
        name: req.name,
        iqn,
        lun,
        backstore,
        path: device ?? file ?? null,
        sizeBytes: sizeMiB * 1024 * 1024,
        wwn: unitSerial,
        portals: portals.map((p) => `${p.address}:${p.port}`),
        initiators,
        demoMode,
        chap: req.chap ?? null,
      });
      const id = kernelRandomUUID();
      const volume: TargetVolume = {
        name: req.name,
        protocol: 'iscsi',
        id,
        sizeMiB,
        backing: { kind: backstore, ...(file ? { file } : {}), ...(device ? { device } : {}) },
        portals,
        iscsi: { iqn, lun: made.lun, unitSerial: made.wwn, wwid: lioWwid(made.wwn), initiators, demoMode, chap: Boolean(req.chap) },
        connectionInfo: iscsiConnectionInfo({ id, iqn, lun: made.lun, portals: portals.map((p) => `${p.address}:${p.port}`), chap: req.chap }),
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
