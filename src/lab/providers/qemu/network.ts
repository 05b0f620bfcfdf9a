import { readdir } from 'node:fs/promises';
import { exec } from '../../../system/exec.js';
import { labTag } from '../../topology.js';

/**
 * A lab's data networks: one network namespace per lab holding one Linux bridge per data network.
 * Each VM NIC is a tap that QEMU creates in the host namespace (so its management port forward
 * can listen on the host's 127.0.0.1) and that we then move into the lab's namespace and onto its
 * bridge. QEMU's taps are not persistent: they vanish with the QEMU process.
 */
export function netnsName(lab: string): string {
  return `brick-${lab}`;
}

export function bridgeName(network: string): string {
  return `br-${network}`;
}

/** Host-side names must fit IFNAMSIZ (15 chars) and be unique across labs: bk<tag6>-<node2><net1>. */
export function tapName(lab: string, nodeIndex: number, netIndex: number): string {
  return `bk${labTag(lab)}-${String(nodeIndex).padStart(2, '0')}${netIndex}`;
}

export function tapPrefix(lab: string): string {
  return `bk${labTag(lab)}-`;
}

const IP_TIMEOUT = 15_000;

export async function netnsExists(ns: string): Promise<boolean> {
  try {
    return (await readdir('/run/netns')).includes(ns);
  } catch {
    return false;
  }
}

export async function createLabNetwork(lab: string, networks: readonly string[]): Promise<void> {
  const ns = netnsName(lab);
  await exec(['ip', 'netns', 'add', ns], { timeoutMs: IP_TIMEOUT });
  await exec(['ip', '-n', ns, 'link', 'set', 'lo', 'up'], { timeoutMs: IP_TIMEOUT });
  for (const net of networks) {
    const br = bridgeName(net);
    await exec(['ip', '-n', ns, 'link', 'add', br, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0'], { timeoutMs: IP_TIMEOUT });
    await exec(['ip', '-n', ns, 'link', 'set', br, 'up'], { timeoutMs: IP_TIMEOUT });
  }
}

/** Move a tap QEMU has opened into the lab's namespace and plug it into its network's bridge. */
export async function plugTap(lab: string, tap: string, network: string): Promise<void> {
  const ns = netnsName(lab);
  await exec(['ip', 'link', 'set', tap, 'netns', ns], { timeoutMs: IP_TIMEOUT });
  await exec(['ip', '-n', ns, 'link', 'set', tap, 'master', bridgeName(network), 'up'], { timeoutMs: IP_TIMEOUT });
}

/** Plug a tap QEMU has opened into a bridge of the host namespace (a Docker network's bridge). */
export async function plugTapInto(tap: string, bridge: string): Promise<void> {
  await exec(['ip', 'link', 'set', tap, 'master', bridge, 'up'], { timeoutMs: IP_TIMEOUT });
}

/** Interfaces of a given kind in a namespace (host when ns is undefined), by name. */
export async function listLinks(ns?: string, kind?: string): Promise<string[]> {
  const argv = ['ip', ...(ns ? ['-n', ns] : []), '-o', 'link', 'show', ...(kind ? ['type', kind] : [])];
  const r = await exec(argv, { timeoutMs: IP_TIMEOUT, reject: false }).catch(() => null); // no ip(8): no links to list
  if (!r || r.exitCode !== 0) return [];
  return r.stdout
    .split('\n')
    .map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1])
    .filter((x): x is string => Boolean(x));
}

/** Remove what a lab's network left: taps still in the host namespace, then the namespace. */
export async function destroyLabNetwork(lab: string): Promise<string[]> {
  const removed: string[] = [];
  const prefix = tapPrefix(lab);
  for (const link of await listLinks()) {
    if (link.startsWith(prefix)) {
      await exec(['ip', 'link', 'del', link], { timeoutMs: IP_TIMEOUT, reject: false });
      removed.push(`tap ${link}`);
    }
  }
  const ns = netnsName(lab);
  if (await netnsExists(ns)) {
    await exec(['ip', 'netns', 'del', ns], { timeoutMs: IP_TIMEOUT });
    removed.push(`netns ${ns}`);
  }
  return removed;
}
