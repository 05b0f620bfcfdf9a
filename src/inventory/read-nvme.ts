import type { HostFs } from '../system/hostfs.js';
import { nguidHex } from '../volume/ids.js';
import type { BlockIndex } from './read-block.js';
import type { NvmeController, NvmeNamespace } from './model.js';

/** NVMe controllers (/sys/class/nvme) and namespace heads with their path devices. */

function parseAddress(text: string | null): { traddr: string | null; trsvcid: string | null } {
  const get = (k: string): string | null => (text ? (new RegExp(`(?:^|,)${k}=([^,]+)`).exec(text)?.[1] ?? null) : null);
  return { traddr: get('traddr'), trsvcid: get('trsvcid') };
}

/**
 * "nvmeAnB" (a namespace head, or a namespace without native multipath) or "nvmeAcCnB" (a path
 * device): its numbers as written, or null for any other name.
 */
function nvmeName(name: string): { sub: string; ctrl: string | null; ns: string } | null {
  if (!name.startsWith('nvme')) return null;
  const a = digitsEnd(name, 4);
  if (a === 4) return null;
  let ctrl: string | null = null;
  let at = a;
  if (name.charCodeAt(at) === 99 /* c */) {
    const c = digitsEnd(name, at + 1);
    if (c === at + 1) return null;
    ctrl = name.slice(at + 1, c);
    at = c;
  }
  if (name.charCodeAt(at) !== 110 /* n */) return null;
  const b = digitsEnd(name, at + 1);
  if (b === at + 1 || b !== name.length) return null;
  return { sub: name.slice(4, a), ctrl, ns: name.slice(at + 1) };
}

/** Where the run of decimal digits from `from` ends. */
function digitsEnd(s: string, from: number): number {
  let i = from;
  while (i < s.length && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) i++;
  return i;
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
  // One pass over the disks, which are mostly not NVMe: the heads, and the path devices by
  // "SUBSYSnNS" (nvme0c1n1 is a path of namespace 1 of subsystem 0), in disk order.
  const heads: string[] = [];
  const pathsOf = new Map<string, string[]>();
  for (const b of blocks.disks) {
    const n = nvmeName(b);
    if (!n) continue;
    if (n.ctrl === null) heads.push(b);
    else {
      const key = `${n.sub}n${n.ns}`;
      const list = pathsOf.get(key);
      if (list) list.push(b);
      else pathsOf.set(key, [b]);
    }
  }
  for (const name of heads) {
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
      paths: pathsOf.get(`${sub}n${headNs}`) ?? [],
      holders: holders.get(name) ?? [],
      sysfs: dir,
    });
  }
  return { controllers, namespaces };
}
