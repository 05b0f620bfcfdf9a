#!/usr/bin/env node
/**
 * Captures test/fixtures/guest-6.1.0-56/inventory-fc.json from a real compute node, in the states
 * test/fixtures/README.md describes: FC volumes attached over the lab's FCoE fabrics, then one
 * left behind. Needs a running lab with a target node `target-1` (two data networks) and a
 * compute node `compute-1` holding no volumes:
 *
 *   npx brick-lab up --topology lab/default.yaml
 *   node scripts/capture-fc-fixtures.mjs [--name default] [--out test/fixtures/guest-6.1.0-56]
 *
 * Everything it makes is taken away again at the end (volumes, disks, maps); the FCoE ports stay,
 * as they do in the lab.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MULTIPATHD_SHOW_PATHS } from '../dist/src/inventory/tools.js';
import { labClient, requireLab } from '../dist/src/lab/lab.js';
import { fcoeWwpn } from '../dist/src/system/fcoe.js';
import { PROJECT_ROOT } from '../dist/src/system/paths.js';

const { values } = parseArgs({ options: { name: { type: 'string', default: 'default' }, out: { type: 'string', default: join(PROJECT_ROOT, 'test', 'fixtures', 'guest-6.1.0-56') } } });
const rec = await requireLab(values.name);
const t = (await labClient(rec, 'target-1')).target;
const cn = await labClient(rec, 'compute-1');
const c = cn.compute;
const say = (m) => process.stderr.write(`[capture] ${m}\n`);

const capture = async () => {
  await cn.run(['udevadm', 'settle', '--timeout=60'], { timeoutMs: 90_000 });
  const inv = await c.recordedInventory();
  return { ...inv, dmsetupTable: (await cn.exec(['dmsetup', 'table'])).stdout, multipathdPaths: (await cn.exec([...MULTIPATHD_SHOW_PATHS])).stdout, rports: (await cn.exec(['sh', '-c', 'grep -H . /sys/class/fc_remote_ports/*/port_name /sys/class/fc_remote_ports/*/roles /sys/class/fc_remote_ports/*/scsi_target_id'])).stdout };
};

const volumes = {};
const devices = {};
try {
  say('creating the volumes on target-1');
  volumes.m = await t.createFcVolume({ name: 'fcm', sizeMiB: 8, lun: 3 });
  volumes.s = await t.createFcVolume({ name: 'fcs', sizeMiB: 8, lun: 7, networks: [rec.nodes.find((n) => n.name === 'target-1').taps[0].network] });

  // A LUN is mapped only to the host ports that attach it (the target API's map, as a driver's
  // initialize_connection): compute-1's ports, which it makes at its first FC attach.
  say('mapping them to compute-1 and connecting them there');
  const wwpns = rec.nodes.find((n) => n.name === 'compute-1').taps.map((tap) => fcoeWwpn(tap.mac));
  for (const v of Object.values(volumes)) await t.map(v.name, wwpns);
  devices.dm = await c.connect('fc', volumes.m.connectionInfo, { multipath: true });
  devices.ds = await c.connect('fc', volumes.s.connectionInfo);
  const attached = await capture();
  say('detaching the multipath volume; the single-path one stays attached (the tests judge it as if its detach had been reported)');
  await c.disconnect('fc', volumes.m.connectionInfo, devices.dm);
  const leftover = await capture();
  await writeFile(join(values.out, 'inventory-fc.json'), `${JSON.stringify({ volumes, devices, attached, leftover }, null, 1)}\n`);
  say('inventory-fc.json written');
} finally {
  say('cleaning up');
  for (const k of ['m', 's']) {
    if (volumes[k]) await c.disconnect('fc', volumes[k].connectionInfo, null, { force: true, ignoreErrors: true }).catch((e) => say(`disconnect ${k}: ${e.message}`));
  }
  for (const v of Object.values(volumes)) await t.deleteVolume(v.name).catch((e) => say(`delete ${v.name}: ${e.message}`));
}
