import type { FastifyInstance } from 'fastify';
import type { HostSnapshot } from '../inventory/model.js';
import type { PathsView } from '../inventory/paths-view.js';
import { iscsiVolumeProperties, nvmeofVolumeProperties, TARGET_ENCODING, toConnectionInfo, type ConnectionInfo } from '../osbrick/index.js';
import { paths } from './api/paths.js';

/**
 * The compute agent's rehearsal (PathsView.rehearse): once the watch has read a new view of the
 * host after a change (an attach, a detach), the agent asks its own fetch-paths routes, through
 * `inject`, about every volume that view shows, in the shape Cinder hands volumes out
 * (TARGET_ENCODING, as brick-lab's target does), a few times over; its requests end like any
 * other, so the agent's idle scavenge (idle-gc.ts) empties V8's young generation after them. So
 * the first caller after a change finds:
 * - the answers for those volumes kept with the view (the same answers it would make: they are
 *   made from the view by the same code, and a caller's view is the kept one only while the
 *   kernel shows nothing changed, see PathsView);
 * - the routes' code optimised on this host's own objects rather than the template's training
 *   views, and, under TCG, run once from QEMU's translations of it (a node restored from a
 *   template has none: the first run of any code path translates it);
 * - no scavenge due in its request.
 * Measured on the connector bench (16 dm-multipath volumes, first batch call, agent's time): see
 * the README's bench figures. Nothing here attaches, writes or runs a program: the routes read.
 */

/** How many times each call is made per rehearsal: V8 optimises a function after some calls, and the optimised code must run once too. */
export const REHEARSAL_ROUNDS = 3;

/** The iSCSI and NVMe/TCP volumes a view shows, as connection_info. */
export function rehearsalVolumes(s: HostSnapshot): { iscsi: ConnectionInfo[]; nvmeof: ConnectionInfo[] } {
  const sessions = new Map(s.iscsiSessions.map((x) => [x.sid, x]));
  const luns = new Map<string, { iqn: string; lun: number; portals: string[] }>();
  for (const d of s.scsiDevices) {
    if (d.session === null || !d.block) continue;
    const x = sessions.get(d.session);
    if (!x?.targetIqn || !x.portal) continue;
    const key = `${x.targetIqn} ${d.lun}`;
    let v = luns.get(key);
    if (!v) luns.set(key, (v = { iqn: x.targetIqn, lun: d.lun, portals: [] }));
    if (!v.portals.includes(x.portal)) v.portals.push(x.portal);
  }
  const iscsi = [...luns.values()].map((v) => toConnectionInfo(iscsiVolumeProperties({ id: REHEARSAL_VOLUME_ID, ...v }), TARGET_ENCODING));
  const nvmeof: ConnectionInfo[] = [];
  for (const ns of s.nvmeNamespaces) {
    if (!ns.subsysNqn || ns.nsid === null || !ns.uuid || !ns.nguid) continue;
    const portals = s.nvmeControllers
      .filter((c) => c.subsysNqn === ns.subsysNqn && c.transport === 'tcp' && c.traddr && c.trsvcid)
      .map((c) => ({ address: c.traddr!, port: Number(c.trsvcid) }));
    if (portals.length === 0) continue;
    nvmeof.push(toConnectionInfo(nvmeofVolumeProperties({ nqn: ns.subsysNqn, nsid: ns.nsid, uuid: ns.uuid, nguid: ns.nguid, portals }), TARGET_ENCODING));
  }
  return { iscsi, nvmeof };
}

/** The volume id the rehearsal's volumes carry (a view does not know Cinder's ids; answers do not depend on it). */
const REHEARSAL_VOLUME_ID = '00000000-0000-4000-8000-000000000000';

/** Install the rehearsal on a view, asking `app`'s routes with the agent's token. */
export function rehearseOn(view: PathsView, app: FastifyInstance, token: string, rounds = REHEARSAL_ROUNDS): void {
  const headers = { authorization: `Bearer ${token}` };
  view.rehearse(async (s) => {
    const by = rehearsalVolumes(s);
    for (const [protocol, volumes] of [['iscsi', by.iscsi], ['nvmeof', by.nvmeof]] as const) {
      if (volumes.length === 0) continue;
      for (let i = 0; i < rounds; i++) {
        await app.inject({ method: 'POST', url: paths.volumePathsBatch(protocol), headers, payload: { volumes } });
        await app.inject({ method: 'POST', url: paths.volumePaths(protocol), headers, payload: volumes[i % volumes.length] });
        await app.inject({ method: 'POST', url: paths.availableVolumes(protocol), headers, payload: {} });
      }
    }
  });
}
