import type { FastifyInstance } from 'fastify';
import { parseSignature, signatureText } from '../volume/signature.js';
import type { TargetVolumes } from '../targets/volumes.js';
import type { FcVolumeRequest, IscsiVolumeRequest, NvmeVolumeRequest } from '../targets/model.js';
import { addLocalDisk, listLocalDisks, removeLocalDisk } from '../targets/scsi-debug.js';
import { ROUTES } from './api/paths.js';
import { systemSchemas } from './api/schemas/system.js';
import { targetSchemas } from './api/schemas/targets.js';
import type { AnaRequest, NetworkRequest, SignatureRequest, UnmapRequest } from './api/types.js';

/** The target role's routes: volumes over iSCSI (LIO), NVMe/TCP (nvmet) and FC (LIO tcm_fc on FCoE), and the fault knobs. */
export async function targetRoutes(app: FastifyInstance, volumes: TargetVolumes): Promise<void> {
  app.post<{ Body: IscsiVolumeRequest }>(ROUTES.iscsiVolumes, { schema: targetSchemas.createIscsiVolume }, async (req, reply) => reply.code(201).send(await volumes.createIscsi(req.body)));

  app.post<{ Body: NvmeVolumeRequest }>(ROUTES.nvmeVolumes, { schema: targetSchemas.createNvmeVolume }, async (req, reply) => reply.code(201).send(await volumes.createNvme(req.body)));

  app.post<{ Body: FcVolumeRequest }>(ROUTES.fcVolumes, { schema: targetSchemas.createFcVolume }, async (req, reply) => reply.code(201).send(await volumes.createFc(req.body)));

  app.get(ROUTES.volumes, { schema: targetSchemas.listVolumes }, async () => ({ volumes: volumes.list() }));

  app.get<{ Params: { name: string } }>(ROUTES.volume, { schema: targetSchemas.getVolume }, async (req) => volumes.get(req.params.name));

  app.delete<{ Params: { name: string } }>(ROUTES.volume, { schema: targetSchemas.deleteVolume }, async (req) => volumes.delete(req.params.name));

  app.post<{ Params: { name: string }; Body: UnmapRequest }>(ROUTES.unmap, { schema: targetSchemas.unmap }, async (req) => volumes.unmap(req.params.name, req.body?.initiator));

  app.post<{ Params: { name: string }; Body: { initiators: string[] } }>(ROUTES.map, { schema: targetSchemas.map }, async (req) => volumes.map(req.params.name, req.body.initiators));

  app.get<{ Params: { name: string } }>(ROUTES.signature, { schema: targetSchemas.getSignature }, async (req) => {
    const head = await volumes.readHead(req.params.name);
    return { volume: req.params.name, signature: parseSignature(head) };
  });

  app.put<{ Params: { name: string }; Body: SignatureRequest }>(ROUTES.signature, { schema: targetSchemas.putSignature }, async (req) => {
    await volumes.writeHead(req.params.name, Buffer.from(signatureText(req.body), 'latin1'));
    return { volume: req.params.name, signature: parseSignature(await volumes.readHead(req.params.name)) };
  });

  app.post<{ Params: { network: string }; Body: NetworkRequest }>(ROUTES.network, { schema: targetSchemas.setNetwork }, async (req) => volumes.setNetwork(req.params.network, req.body.up));

  app.post<{ Body: AnaRequest }>(ROUTES.ana, { schema: targetSchemas.setAna }, async (req) => volumes.setAnaState(req.body.network, req.body.group, req.body.state));

  app.post(ROUTES.restart, { schema: targetSchemas.restart }, async () => volumes.restart());

  app.get(ROUTES.leftovers, { schema: targetSchemas.leftovers }, async () => volumes.leftovers());

  app.post(ROUTES.cleanup, { schema: targetSchemas.cleanup }, async () => volumes.cleanup());
}

/** The compute role's local SCSI disks (scsi_debug). */
export async function localDiskRoutes(app: FastifyInstance): Promise<void> {
  app.get(ROUTES.localDisks, { schema: systemSchemas.localDisks }, async () => ({ disks: await listLocalDisks() }));
  app.post(ROUTES.localDisks, { schema: systemSchemas.addLocalDisk }, async (_req, reply) => reply.code(201).send(await addLocalDisk()));
  app.delete<{ Params: { host: string } }>(ROUTES.localDisk, { schema: systemSchemas.removeLocalDisk }, async (req) => removeLocalDisk(Number(req.params.host)));
}
