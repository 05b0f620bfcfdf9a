/**
 * Target benchmark: seconds to create + export one volume and to delete it, for iSCSI (LIO through
 * the long-lived rtslib worker) and NVMe/TCP (nvmet through configfs), then 64 volumes in a row.
 * In the same run, on the same target, the same iSCSI volume made the usual way, one targetcli
 * process per command, shows what the worker saves.
 *
 *   node dist/bench/targets.js [--count 64] [--targetcli 2]
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { down, labClient } from '../src/lab/lab.js';
import { loadTopology, renderTopology } from '../src/lab/topology.js';
import { up } from '../src/lab/up.js';
import { setQuiet } from '../src/system/log.js';

const { values } = parseArgs({ options: { count: { type: 'string', default: '64' }, targetcli: { type: 'string', default: '2' } } });
const count = Number(values.count);
const tcCount = Number(values.targetcli);
setQuiet(true);

const dir = await mkdtemp(join(tmpdir(), 'brick-bench-'));
const topo = join(dir, 'target.yaml');
await writeFile(topo, renderTopology({ name: 'bench-targets', nodes: [{ name: 'target-1', role: 'target' }] }));
const rec = await up(await loadTopology(topo), { topologyFile: topo });
const say = (s: string): void => {
  process.stdout.write(`${s}\n`);
};
try {
  const t = (await labClient(rec, 'target-1')).target;
  say(`target benchmark: ${cpus().length} cores, ${rec.accel.toUpperCase()}, one target node (${rec.nodes[0]!.memoryMiB} MiB)`);
  // The worker starts once the node is ready; wait for it so the first figure is a volume's cost.
  const w0 = performance.now();
  await t.leftovers();
  say(`  LIO worker ready (python3 + rtslib import, paid once per boot): ${((performance.now() - w0) / 1000).toFixed(2)} s after up`);

  const timed = async (f: () => Promise<unknown>): Promise<number> => {
    const s = performance.now();
    await f();
    return (performance.now() - s) / 1000;
  };
  const create = (kind: 'iscsi' | 'nvmet', i: number): Promise<unknown> =>
    kind === 'iscsi' ? t.createIscsiVolume({ name: `b${i}`, sizeMiB: 8, initiators: ['iqn.2026-11.io.brick-lab:bench:compute-1'] }) : t.createNvmeVolume({ name: `b${i}`, sizeMiB: 8 });

  for (const kind of ['iscsi', 'nvmet'] as const) {
    const label = kind === 'iscsi' ? 'iSCSI (LIO via rtslib worker)' : 'NVMe/TCP (nvmet via configfs)';
    const one = await timed(() => create(kind, 0));
    const oneDel = await timed(() => t.deleteVolume('b0'));
    const many = await timed(async () => {
      for (let i = 1; i <= count; i++) await create(kind, i);
    });
    const manyDel = await timed(async () => {
      for (let i = 1; i <= count; i++) await t.deleteVolume(`b${i}`);
    });
    say(`  ${label}: one volume create+export ${one.toFixed(2)} s, delete ${oneDel.toFixed(2)} s; ${count} in a row ${many.toFixed(2)} s (${((many / count) * 1000).toFixed(0)} ms each), deleting them ${manyDel.toFixed(2)} s`);
  }

  // The same iSCSI volume the way a person does it with targetcli: one process per command.
  const tc = async (i: number): Promise<number> =>
    timed(async () => {
      const file = `/var/lib/brick-lab/tc${i}.img`;
      const iqn = `iqn.2026-11.io.brick-lab:bench.tc${i}`;
      await t.run(['truncate', '-s', '8M', file]);
      for (const argv of [
        ['targetcli', '/backstores/fileio', 'create', `name=tc${i}`, `file_or_dev=${file}`],
        ['targetcli', '/iscsi', 'create', iqn],
        ['targetcli', `/iscsi/${iqn}/tpg1/luns`, 'create', `/backstores/fileio/tc${i}`],
        ['targetcli', `/iscsi/${iqn}/tpg1/portals`, 'create', '10.10.1.10', '3260'],
        ['targetcli', `/iscsi/${iqn}/tpg1/portals`, 'create', '10.10.2.10', '3260'],
        ['targetcli', `/iscsi/${iqn}/tpg1/acls`, 'create', 'iqn.2026-11.io.brick-lab:bench:compute-1'],
      ]) {
        await t.run(argv, { timeoutMs: 120_000 });
      }
    });
  await t.run(['targetcli', 'set', 'global', 'auto_add_default_portal=false', 'auto_save_on_exit=false'], { timeoutMs: 120_000 });
  const tcTimes: number[] = [];
  for (let i = 0; i < tcCount; i++) tcTimes.push(await tc(i));
  const tcMean = tcTimes.reduce((a, b) => a + b, 0) / tcTimes.length;
  say(`  iSCSI with targetcli, one process per command (6 commands per volume, same run): ${tcMean.toFixed(2)} s per volume (mean of ${tcCount}), so ${count} would take about ${(tcMean * count).toFixed(0)} s`);
  await t.cleanup();
} finally {
  await down(rec.name, { quiet: true, keepLogs: false });
}
