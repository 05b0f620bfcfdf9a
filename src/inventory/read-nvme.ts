import type { HostFs } from '../system/hostfs.js';
import { nguidHex } from '../volume/ids.js';
import type { BlockIndex } from './read-block.js';
import type { NvmeController, NvmeNamespace } from './model.js';

/** NVMe controllers (/sys/class/nvme) and namespace heads with their path devices. */

function parseAddress(text: string | null): { traddr: string | null; trsvcid: string | null } {
  const get = (k: string): string | null => (text ? (new RegExp(`(?:^|,)${k}=([^,]+)`).exec(text)?.[1] ?? null) : null);
  return { traddr: get('traddr'), trsvcid: get('trsvcid') };
}

export function nvme(fs: HostFs, blocks: BlockIndex, holders: Map<string, string[]>): { controllers: NvmeController[]; namespaces: NvmeNamespace[] } {
  const controllers: NvmeController[] = [];
  for (const name of fs.list('/sys/class/nvme')) {
    const dir = `/sys/class/nvme/${name}`;
    const addr = parseAddress(fs.readText(`${dir}/address`));
    controllers.push({
      name,
      subsysNqn: fs.readText(`${dir}/subsysnqn`),
      transport: fs.readText(`${dir}/transport`),
      ...addr,
      state: fs.readText(`${dir}/state`),
      sysfs: dir,
    });
  }
  const namespaces: NvmeNamespace[] = [];
  const nqnOf = new Map<string, string | null>();
  for (const name of blocks.disks.filter((b) => /^nvme\d+n\d+$/.test(b))) {
    const dir = `/sys/block/${name}`;
    // A head hangs under its subsystem (.../nvme-subsystem/nvme-subsysN/nvmeXnY); without native
    // multipath the namespace hangs under its controller (.../nvmeC/nvmeXnY), which names its own.
    const real = blocks.real.get(name) ?? '';
    const ctrl = /\/(nvme\d+)\/nvme\d+n\d+$/.exec(real)?.[1];
    const sub = /\/nvme-subsys(\d+)\//.exec(real)?.[1] ?? /^nvme(\d+)n/.exec(name)![1]!;
    const key = ctrl && !real.includes('/nvme-subsys') ? `ctrl:${ctrl}` : sub;
    if (!nqnOf.has(key)) nqnOf.set(key, fs.readText(key.startsWith('ctrl:') ? `/sys/class/nvme/${ctrl}/subsysnqn` : `/sys/class/nvme-subsystem/nvme-subsys${sub}/subsysnqn`));
    const nsid = fs.readText(`${dir}/nsid`);
    const headNs = /n(\d+)$/.exec(name)![1];
    namespaces.push({
      name,
      nsid: nsid === null ? null : Number(nsid),
      uuid: fs.readText(`${dir}/uuid`),
      nguid: nguidHex(fs.readText(`${dir}/nguid`)),
      wwid: fs.readText(`${dir}/wwid`),
      subsysNqn: nqnOf.get(key) ?? null,
      paths: blocks.disks.filter((b) => new RegExp(`^nvme${sub}c\\d+n${headNs}$`).test(b)),
      holders: holders.get(name) ?? [],
      sysfs: dir,
    });
  }
  return { controllers, namespaces };
}
