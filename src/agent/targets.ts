import type { FastifyInstance } from 'fastify';
import { ANA_STATES, type AnaState } from '../targets/nvmet.js';
import { parseSignature, signatureText, type Signature } from '../volume/signature.js';
import type { IscsiVolumeRequest, NvmeVolumeRequest, TargetVolumes } from '../targets/volumes.js';
import { addLocalDisk, listLocalDisks, removeLocalDisk } from '../targets/scsi-debug.js';

const names = { type: 'array', items: { type: 'string' }, maxItems: 64 } as const;

/** A volume request body: what both protocols share, plus the protocol's own fields. */
function volumeBody(own: Record<string, unknown>): Record<string, unknown> {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['name', 'sizeMiB'],
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 100 },
      sizeMiB: { type: 'number' },
      networks: { type: 'array', items: { type: 'string' }, maxItems: 16 },
      ...own,
    },
  };
}

/** The target role's routes: volumes over iSCSI (LIO) and NVMe/TCP (nvmet), and the fault knobs. */
export async function targetRoutes(app: FastifyInstance, volumes: TargetVolumes): Promise<void> {
  app.post<{ Body: IscsiVolumeRequest }>('/v1/targets/iscsi/volumes', {
    schema: {
      body: volumeBody({
        backstore: { type: 'string' },
        iqn: { type: 'string' },
        lun: { type: 'number' },
        initiators: names,
        demoMode: { type: 'boolean' },
        chap: { type: 'object', additionalProperties: false, required: ['username', 'password'], properties: { username: { type: 'string' }, password: { type: 'string' } } },
        unitSerial: { type: 'string' },
      }),
    },
  }, async (req, reply) => reply.code(201).send(await volumes.createIscsi(req.body)));

  app.post<{ Body: NvmeVolumeRequest }>('/v1/targets/nvmet/volumes', {
    schema: {
      body: volumeBody({
        nqn: { type: 'string' },
        nsid: { type: 'number' },
        hosts: names,
        allowAnyHost: { type: 'boolean' },
        uuid: { type: 'string' },
        nguid: { type: 'string' },
        anaGroup: { type: 'number' },
      }),
    },
  }, async (req, reply) => reply.code(201).send(await volumes.createNvme(req.body)));

  app.get('/v1/targets/volumes', async () => ({ volumes: volumes.list() }));

  app.get<{ Params: { name: string } }>('/v1/targets/volumes/:name', async (req) => volumes.get(req.params.name));

  app.delete<{ Params: { name: string } }>('/v1/targets/volumes/:name', async (req) => volumes.delete(req.params.name));

  app.post<{ Params: { name: string }; Body: { initiator?: string } }>('/v1/targets/volumes/:name/unmap', {
    schema: { body: { type: 'object', additionalProperties: false, properties: { initiator: { type: 'string' } } } },
  }, async (req) => volumes.unmap(req.params.name, req.body?.initiator));

  app.get<{ Params: { name: string } }>('/v1/targets/volumes/:name/signature', async (req) => {
    const head = await volumes.readHead(req.params.name);
    return { volume: req.params.name, signature: parseSignature(head) };
  });

  app.put<{ Params: { name: string }; Body: Signature }>('/v1/targets/volumes/:name/signature', {
    schema: {
      body: { type: 'object', additionalProperties: false, required: ['volume', 'id'], properties: { volume: { type: 'string', pattern: '^[a-z0-9-]+$', maxLength: 128 }, id: { type: 'string', pattern: '^[0-9a-f-]+$', maxLength: 64 } } },
    },
  }, async (req) => {
    await volumes.writeHead(req.params.name, Buffer.from(signatureText(req.body), 'latin1'));
    return { volume: req.params.name, signature: parseSignature(await volumes.readHead(req.params.name)) };
  });

  app.post<{ Params: { network: string }; Body: { up: boolean } }>('/v1/targets/networks/:network', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['up'], properties: { up: { type: 'boolean' } } } },
  }, async (req) => volumes.setNetwork(req.params.network, req.body.up));

  app.post<{ Body: { network: string; group: number; state: AnaState } }>('/v1/targets/nvmet/ana', {
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['network', 'group', 'state'],
        properties: { network: { type: 'string' }, group: { type: 'number' }, state: { type: 'string', enum: [...ANA_STATES] } },
      },
    },
  }, async (req) => volumes.setAnaState(req.body.network, req.body.group, req.body.state));

  app.post('/v1/targets/restart', async () => volumes.restart());

  app.get('/v1/targets/leftovers', async () => volumes.leftovers());

  app.post('/v1/targets/cleanup', async () => volumes.cleanup());
}

/** The compute role's local SCSI disks (scsi_debug). */
export async function localDiskRoutes(app: FastifyInstance): Promise<void> {
  app.get('/v1/local-disks', async () => ({ disks: await listLocalDisks() }));
  app.post('/v1/local-disks', async (_req, reply) => reply.code(201).send(await addLocalDisk()));
  app.delete<{ Params: { host: string } }>('/v1/local-disks/:host', {
    schema: { params: { type: 'object', properties: { host: { type: 'integer', minimum: 0 } } } },
  }, async (req) => removeLocalDisk(Number(req.params.host)));
}
