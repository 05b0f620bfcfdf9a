import type { TargetVolume } from '../agent/api/types.js';
import { lunForPath } from '../volume/bypath.js';
import type { ComputeHandle } from './context.js';

/**
 * A second opinion on every verdict: what the guest's own tools show of a volume, read with the
 * commands an operator would type (iscsiadm, nvme-cli, dmsetup, a listing of /dev/disk/by-path),
 * not through brick-lab's snapshot. The oracle's "clean" must meet nothing here, and its
 * leftovers must meet something.
 *
 * One fixed script per protocol (iSCSI, FC, NVMe), no argument: the volume is matched in its output here, so
 * nothing taken from a request reaches a shell. A protocol's script runs only the tools that can
 * show its volumes (under TCG each program started costs tens of milliseconds), and attributes
 * and the by-path listing are read with the shell's own read and glob, not a program each.
 */
const ISCSI_SCRIPT = [
  'echo "## iscsiadm -m session"; iscsiadm -m session 2>/dev/null',
  'echo "## iscsiadm -m node"; iscsiadm -m node 2>/dev/null',
  'echo "## dmsetup info"; dmsetup info -c --noheadings -o name,uuid 2>/dev/null',
  // What ls would list (dangling links too, no dot names); an empty directory lists nothing.
  'echo "## ls /dev/disk/by-path"; for l in /dev/disk/by-path/*; do { [ -L "$l" ] || [ -e "$l" ]; } && echo "${l##*/}"; done 2>/dev/null',
  'echo "## scsi_device wwid"; for d in /sys/class/scsi_device/*; do w=; [ -e "$d/device" ] && { read -r w < "$d/device/wwid"; echo "${d##*/} $w"; }; done 2>/dev/null',
  'true',
].join('\n');

/** FC: the disks under an FC target port (the transport's own port_name), the links, the WWIDs, dm. */
const FC_SCRIPT = [
  'echo "## dmsetup info"; dmsetup info -c --noheadings -o name,uuid 2>/dev/null',
  'echo "## ls /dev/disk/by-path"; for l in /dev/disk/by-path/*; do { [ -L "$l" ] || [ -e "$l" ]; } && echo "${l##*/}"; done 2>/dev/null',
  'echo "## scsi_device wwid"; for d in /sys/class/scsi_device/*; do w=; [ -e "$d/device" ] && { read -r w < "$d/device/wwid"; echo "${d##*/} $w"; }; done 2>/dev/null',
  'echo "## fc_transport port_name"; for d in /sys/class/scsi_device/*; do h=${d##*/}; t=/sys/class/fc_transport/target${h%:*}; [ -e "$t/port_name" ] && { read -r w < "$t/port_name"; echo "$h $w"; }; done 2>/dev/null',
  'true',
].join('\n');

const NVME_SCRIPT = [
  'echo "## nvme list-subsys -o json"; nvme list-subsys -o json 2>/dev/null',
  'echo "## nvme namespace uuid"; for b in /sys/block/nvme*; do u=; [ -e "$b/uuid" ] && { read -r u < "$b/uuid"; echo "${b##*/} $u"; }; done 2>/dev/null',
  'true',
].join('\n');

/** The script's output, by section ("iscsiadm -m session" -> its lines). */
export function sections(out: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  let cur: string[] | null = null;
  for (const line of out.split('\n')) {
    const h = /^## (.+)$/.exec(line);
    if (h) m.set(h[1]!, (cur = []));
    else if (cur && line.trim()) cur.push(line.trim());
  }
  return m;
}

/**
 * What the tools' output shows of `v`, as "tool: line"; the session, record and subsystem lines of
 * a target that a still-attached volume shares are not the volume's.
 */
export function volumeInTools(out: string, v: TargetVolume, stillAttached: TargetVolume[]): string[] {
  const s = sections(out);
  const lines = (name: string, keep: (l: string) => boolean): string[] => (s.get(name) ?? []).filter(keep).map((l) => `${name}: ${l}`);
  const words = (l: string): string[] => l.split(/[\s,]+/);
  if (v.iscsi) {
    const { iqn, lun, wwid } = v.iscsi;
    const shared = stillAttached.some((o) => o.iscsi?.iqn === iqn);
    return [
      ...(shared ? [] : lines('iscsiadm -m session', (l) => words(l).includes(iqn))),
      ...(shared ? [] : lines('iscsiadm -m node', (l) => words(l).includes(iqn))),
      ...lines('ls /dev/disk/by-path', (l) => l.endsWith(`-iscsi-${iqn}-lun-${lunForPath(lun)}`) || l.includes(`-iscsi-${iqn}-lun-${lunForPath(lun)}-part`)),
      ...lines('scsi_device wwid', (l) => words(l)[1] === `naa.${wwid.slice(1)}`),
      ...lines('dmsetup info', (l) => l.endsWith(`:mpath-${wwid}`)),
    ];
  }
  if (v.fc) {
    const { wwpns, lun, wwid } = v.fc;
    // A still-attached volume at the same port and LUN (a reused LUN id) owns what is there by name.
    const shared = stillAttached.some((o) => o.fc && o.fc.lun === lun && o.fc.wwpns.some((w) => wwpns.includes(w)));
    const ends = shared ? [] : wwpns.map((w) => `-fc-0x${w}-lun-${lunForPath(lun)}`);
    // The kernel prints port names as 0x%llx: compared as numbers.
    const ports = new Set(wwpns.map((w) => BigInt(`0x${w}`)));
    return [
      ...lines('ls /dev/disk/by-path', (l) => ends.some((e) => l.endsWith(e) || l.includes(`${e}-part`))),
      ...lines('scsi_device wwid', (l) => words(l)[1] === `naa.${wwid.slice(1)}`),
      ...lines('fc_transport port_name', (l) => {
        if (shared) return false;
        const [hctl, port] = words(l);
        return /^0x[0-9a-f]+$/i.test(port ?? '') && ports.has(BigInt(port!)) && Number(hctl!.slice(hctl!.lastIndexOf(':') + 1)) === lun;
      }),
      ...lines('dmsetup info', (l) => l.endsWith(`:mpath-${wwid}`)),
    ];
  }
  if (v.nvme) {
    const { nqn, uuid } = v.nvme;
    const shared = stillAttached.some((o) => o.nvme?.nqn === nqn);
    return [...(shared ? [] : subsystemControllers((s.get('nvme list-subsys -o json') ?? []).join('\n'), nqn)), ...lines('nvme namespace uuid', (l) => words(l)[1] === uuid)];
  }
  return [];
}

/**
 * The controllers `nvme list-subsys -o json` lists under the subsystem `nqn` (nvme-cli 2.x: an
 * array of hosts, each with Subsystems, each with NQN and Paths); nothing for no or empty output.
 */
export function subsystemControllers(json: string, nqn: string): string[] {
  let doc: unknown;
  try {
    doc = json.trim() ? JSON.parse(json) : [];
  } catch {
    return [`nvme list-subsys -o json: unreadable output: ${json.slice(0, 200)}`];
  }
  type Path = { Name?: string; Transport?: string; Address?: string; State?: string };
  type Subsystem = { NQN?: string; Paths?: Path[] };
  const hosts = (Array.isArray(doc) ? doc : [doc]) as Array<{ Subsystems?: Subsystem[] }>;
  return hosts
    .flatMap((h) => h?.Subsystems ?? [])
    .filter((x) => x.NQN === nqn)
    .flatMap((x) => x.Paths ?? [])
    .map((p) => `nvme list-subsys: ${p.Name} ${p.Transport} ${p.Address} ${p.State}`);
}

/** Run the tools on the node and say what they show of `v`. */
export async function inspectVolume(node: ComputeHandle, v: TargetVolume, stillAttached: TargetVolume[]): Promise<string[]> {
  const script = v.iscsi ? ISCSI_SCRIPT : v.fc ? FC_SCRIPT : v.nvme ? NVME_SCRIPT : null;
  // A local disk: no tool of its own to ask (its device is the oracle's to judge).
  if (script === null) return [];
  const r = await node.client.exec(['sh', '-c', script], { timeoutMs: 60_000 });
  return volumeInTools(r.stdout, v, stillAttached);
}
