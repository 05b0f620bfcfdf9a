#!/usr/bin/env node
/**
 * Re-captures test/fixtures/guest-6.1.0-56/inventory-{attached,leftovers}.json from a real
 * compute node, in the states test/fixtures/README.md describes. Needs a running lab with a
 * target node `target-1` and a compute node `compute-1` holding no volumes:
 *
 *   npx brick-lab up --topology lab/default.yaml
 *   node scripts/capture-inventory-fixtures.mjs [--name default] [--out test/fixtures/guest-6.1.0-56]
 *
 * Everything it makes is taken away again at the end (volumes, sessions, controllers, disks).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MULTIPATHD_SHOW_MAPS, MULTIPATHD_SHOW_PATHS } from '../dist/src/inventory/tools.js';
import { labClient, requireLab } from '../dist/src/lab/lab.js';
import { PROJECT_ROOT } from '../dist/src/system/paths.js';
import { poll } from '../dist/src/system/wait.js';

const { values } = parseArgs({ options: { name: { type: 'string', default: 'default' }, out: { type: 'string', default: join(PROJECT_ROOT, 'test', 'fixtures', 'guest-6.1.0-56') } } });
const rec = await requireLab(values.name);
const tn = await labClient(rec, 'target-1');
const cn = await labClient(rec, 'compute-1');
const t = tn.target;
const c = cn.compute;
const iqn = rec.nodes.find((n) => n.name === 'compute-1').initiatorIqn;
const say = (m) => process.stderr.write(`[capture] ${m}\n`);

const tools = async () => ({
  iscsiadmSession: (await cn.exec(['iscsiadm', '-m', 'session'])).stdout,
  nvmeListSubsys: (await cn.exec(['nvme', 'list-subsys', '-o', 'json'])).stdout,
  dmsetupTable: (await cn.exec(['dmsetup', 'table'])).stdout,
  dmsetupStatus: (await cn.exec(['dmsetup', 'status'])).stdout,
  multipathdPaths: (await cn.exec([...MULTIPATHD_SHOW_PATHS])).stdout,
  multipathdMaps: (await cn.exec([...MULTIPATHD_SHOW_MAPS])).stdout,
});
const sh = (script) => cn.run(['bash', '-c', script], { timeoutMs: 120_000 });
const capture = async () => {
  await cn.run(['udevadm', 'settle', '--timeout=60'], { timeoutMs: 90_000 });
  return c.recordedInventory();
};

const volumes = {};
const devices = {};
let disk = null;
try {
  say('creating the volumes on target-1');
  volumes.a = await t.createIscsiVolume({ name: 'fa', sizeMiB: 8, iqn: 'iqn.2026-11.io.brick-lab:fixture.shared', lun: 0, initiators: [iqn] });
  volumes.b = await t.createIscsiVolume({ name: 'fb', sizeMiB: 8, iqn: 'iqn.2026-11.io.brick-lab:fixture.shared', lun: 1, initiators: [iqn] });
  volumes.m = await t.createIscsiVolume({ name: 'fm', sizeMiB: 8, initiators: [iqn] });
  volumes.big = await t.createIscsiVolume({ name: 'fbig', sizeMiB: 8, iqn: 'iqn.2026-11.io.brick-lab:fixture.big', lun: 300, demoMode: true });
  volumes.n = await t.createNvmeVolume({ name: 'fn', sizeMiB: 8 });

  say('connecting them on compute-1');
  // Without multipath the connector logs in on the first portal only, as os-brick does.
  const single = (v) => v.connectionInfo;
  devices.da = await c.connect('iscsi', single(volumes.a));
  devices.db = await c.connect('iscsi', single(volumes.b));
  devices.dm = await c.connect('iscsi', volumes.m.connectionInfo, { multipath: true });
  devices.dbig = await c.connect('iscsi', single(volumes.big));
  devices.dn = await c.connect('nvmeof', volumes.n.connectionInfo, { multipath: true });
  disk = await c.addLocalDisk();
  devices.disk = disk;

  const attached = await capture();
  await writeFile(join(values.out, 'inventory-attached.json'), `${JSON.stringify({ volumes, devices, ...attached, tools: await tools() }, null, 1)}\n`);
  say('inventory-attached.json written');

  say('leaving things behind on purpose');
  const fa = devices.da.devices[0];
  await cn.run(['sh', '-c', 'echo 1 > "$1"', 'sh', `/sys/block/${fa}/device/delete`]);
  await c.disconnect('iscsi', single(volumes.b), devices.db);
  await t.unmap('fn');
  await cn.run(['ln', '-sfn', '../../sdz', '/dev/disk/by-path/ip-10.10.1.10:3260-iscsi-iqn.2026-11.io.brick-lab:fixture.gone-lun-4']);
  // The namespace goes away on the host once the controllers notice (an AEN, then a rescan).
  await poll(async () => !(await c.inventory()).nvmeNamespaces.some((n) => n.uuid === volumes.n.nvme.uuid), { timeoutMs: 20_000, intervalMs: 200 });
  const leftovers = await capture();
  await writeFile(join(values.out, 'inventory-leftovers.json'), `${JSON.stringify({ volumes, ...leftovers, tools: await tools() }, null, 1)}\n`);
  say('inventory-leftovers.json written');

  say('stacking holders, a stale map, a suspended map, failed paths, discovery records and an iface');
  const mp = devices.dm.path; // /dev/dm-N, fm's multipath map
  const big = devices.dbig.devices[0];
  const local = disk.device;
  // A DOS partition table on fm's map (one partition from sector 2048, 8192 sectors long), then
  // kpartx's partition map over the map.
  await sh(`python3 -c 'import struct,sys; m=bytearray(512); m[446:462]=struct.pack("<B3sB3sII",0,bytes(3),0x83,bytes(3),2048,8192); m[510:512]=bytes([0x55,0xaa]); f=open(sys.argv[1],"r+b"); f.write(m); f.close()' ${mp} && kpartx -a ${mp}`);
  // fm's paths all failed, I/O erroring rather than queueing while they are.
  await sh(`dmsetup message ${mp} 0 fail_if_no_path; for p in ${devices.dm.devices.join(' ')}; do multipathd fail path $p; done`);
  // A linear map over fbig's disk, then the disk deleted from under it: the map names a removed device.
  const sectors = (await cn.exec(['cat', `/sys/block/${big}/size`])).stdout.trim();
  await sh(`dmsetup create brick-lin --table "0 ${sectors} linear /dev/${big} 0" && echo 1 > /sys/block/${big}/device/delete`);
  // A map over the local disk, suspended.
  const localSectors = (await cn.exec(['cat', `/sys/block/${local.slice(5)}/size`])).stdout.trim();
  await sh(`dmsetup create brick-susp --table "0 ${localSectors} linear ${local} 0" && dmsetup suspend brick-susp`);
  await sh('iscsiadm -m discovery -t sendtargets -p 10.10.1.10:3260 >/dev/null && iscsiadm -m iface -I brick0 -o new >/dev/null');
  const stacked = await capture();
  await writeFile(join(values.out, 'inventory-stacked.json'), `${JSON.stringify({ volumes, devices, ...stacked, tools: await tools() }, null, 1)}\n`);
  say('inventory-stacked.json written');
} finally {
  say('cleaning up');
  await sh('dmsetup resume brick-susp; dmsetup remove brick-susp; dmsetup remove --force brick-lin; for m in $(dmsetup ls --target multipath | cut -f1); do kpartx -d /dev/mapper/$m; done; iscsiadm -m discoverydb -t sendtargets -p 10.10.1.10:3260 -o delete; iscsiadm -m iface -I brick0 -o delete; true').catch((e) => say(`holders: ${e.message}`));
  await cn.exec(['rm', '-f', '/dev/disk/by-path/ip-10.10.1.10:3260-iscsi-iqn.2026-11.io.brick-lab:fixture.gone-lun-4']).catch(() => {});
  for (const [k, p] of [['m', 'iscsi'], ['big', 'iscsi'], ['a', 'iscsi'], ['b', 'iscsi'], ['n', 'nvmeof']]) {
    if (volumes[k]) await c.disconnect(p, volumes[k].connectionInfo, null, { force: true, ignoreErrors: true }).catch((e) => say(`disconnect ${k}: ${e.message}`));
  }
  if (disk) await c.removeLocalDisk(disk.host).catch((e) => say(`local disk: ${e.message}`));
  for (const v of Object.values(volumes)) await t.deleteVolume(v.name).catch((e) => say(`delete ${v.name}: ${e.message}`));
}
