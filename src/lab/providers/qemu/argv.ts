import { join } from 'node:path';
import { accelArgs, type Accel } from '../../accel.js';
import type { GuestImage } from '../../image/build.js';
import { nodeDiskDir, type LabRecord, type NodeRecord } from '../../state.js';
import { MGMT_GUEST_ADDRESS, type NicModel } from '../../topology.js';

/**
 * QEMU's device for each data NIC model. vmxnet3 as a plain PCI device: as PCI Express it carries
 * a device serial number made from its MAC, and a node restored from a template (whose NICs have
 * the template's MACs) would not load the saved state ("Bad config data").
 */
const QEMU_NIC: Record<NicModel, string> = { virtio: 'virtio-net-pci', vmxnet3: 'vmxnet3,x-disable-pcie=on' };

export const AGENT_PORT = 8080;

export interface QemuNic {
  network: string;
  /** The tap it is plugged into; none in a template's machine (a NIC with no backend). */
  tap: string | null;
  mac: string;
}

export interface QemuNodeSpec {
  lab: string;
  node: string;
  memoryMiB: number;
  cpus: number;
  accel: Accel;
  image: GuestImage;
  shareDir: string;
  /** The node's own disk state (what a real host keeps across a reboot), read-write. */
  diskDir: string;
  consoleLog: string;
  pidFile: string;
  mgmtPort: number;
  mgmtMac: string;
  nics: QemuNic[];
  /** The data NICs' model (the management NIC is always virtio-net); virtio when absent. */
  nicModel?: NicModel;
  /** Where the management forward listens: the host's loopback, or a container's own address. */
  mgmtHost?: string;
  /** In a container QEMU is the main process: no -daemonize, no pid file. */
  foreground?: boolean;
  /**
   * A VM that is, or starts from, a template (template.ts): the control line (a socket on the
   * guest's ttyS1), QMP, the runtime disk, and a VM generation ID (new at every start, so a
   * restored guest's kernel reseeds its random numbers). A template and the nodes restored from
   * it must have the same devices, so every VM of the qemu provider gets them when templates are on.
   */
  templated?: { control: string; qmp: string; runtimeDisk: string };
  /** Boot as the template of this role (brick.template=ROLE) instead of as the node. */
  templateRole?: string;
  /** Start from this saved state (a template) instead of booting. */
  incoming?: string;
}

/** What QEMU's `exec:` migration hands to /bin/sh: a path of these characters only. */
export const SHELL_SAFE_PATH = /^[A-Za-z0-9._/+-]+$/;

/** The -name every lab VM carries; `down` finds a crashed lab's VMs by it. */
export function qemuName(lab: string, node: string): string {
  return `brick-lab:${lab}:${node}`;
}

/** The NIC's MAC: locally administered QEMU prefix, node and NIC index (0 = management). */
export function macFor(nodeIndex: number, nicIndex: number): string {
  const hex = (n: number): string => n.toString(16).padStart(2, '0');
  return `52:54:00:4c:${hex(nodeIndex)}:${hex(nicIndex)}`;
}

/** Pure: the full QEMU command line for one node (also what `up --dry-run` prints). */
export function qemuArgv(s: QemuNodeSpec): string[] {
  const cmdline = [
    'console=ttyS0',
    'quiet',
    'panic=-1',
    'mitigations=off',
    // No address space randomisation in the guest: under TCG, QEMU's translations are found by
    // the guest's virtual addresses, so every process mapping its libraries at new ones (each
    // iscsiadm, udev helper, python3) had all of its code translated again (1.3 MB of host code
    // per `true` run by the agent), which filled a 128 MiB translation cache every ~100 runs and
    // threw away every translation, the kernel's and the agent's too, each time. A lab guest is
    // a disposable test machine.
    'norandmaps',
    // Interfaces keep the kernel's names until stage 2 names them after their networks: a NIC
    // whose driver loads while udev runs (vmxnet3) is not renamed by udev under stage 2's feet.
    'net.ifnames=0',
    s.templateRole ? `brick.template=${s.templateRole}` : `brick.node=${s.node}`,
  ].join(' ');
  const t = s.templated;
  const argv = [
    'qemu-system-x86_64',
    '-name', qemuName(s.lab, s.node),
    '-machine', 'q35',
    ...accelArgs(s.accel),
    '-m', String(s.memoryMiB),
    '-smp', String(s.cpus),
    // No -no-reboot: a guest's reboot (`brick-lab reboot`) resets the machine in the same QEMU,
    // with its pid, taps and management forward. A kernel panic ends QEMU instead (pvpanic), so
    // a node that dies is seen dead at once rather than booting again.
    '-nodefaults', '-no-user-config',
    '-device', 'pvpanic-pci',
    '-action', 'panic=exit-failure',
    '-display', 'none',
    '-kernel', s.image.kernel,
    '-initrd', s.image.initramfs,
    '-append', cmdline,
    '-serial', `file:${s.consoleLog}`,
    ...(t ? ['-chardev', `socket,id=ctl,path=${t.control},server=on,wait=off`, '-serial', 'chardev:ctl', '-qmp', `unix:${t.qmp},server=on,wait=off`, '-device', 'vmgenid,guid=auto'] : []),
    // The image, read-only (an EROFS file system); the guest puts a tmpfs overlay on top.
    '-drive', `file=${s.image.rootImage},if=none,id=root,format=raw,readonly=on,cache=unsafe`,
    '-device', 'virtio-blk-pci,drive=root',
    // The runtime disk (Node.js and the agent, EROFS): /dev/vdb, where a template's agent runs from.
    ...(t ? ['-drive', `file=${t.runtimeDisk},if=none,id=runtime,format=raw,readonly=on,cache=unsafe`, '-device', 'virtio-blk-pci,drive=runtime'] : []),
    '-fsdev', `local,id=lab,path=${s.shareDir},security_model=none,readonly=on`,
    '-device', 'virtio-9p-pci,fsdev=lab,mount_tag=lab',
    '-fsdev', `local,id=node,path=${s.image.nodeDir},security_model=none,readonly=on`,
    '-device', 'virtio-9p-pci,fsdev=node,mount_tag=node',
    // The node's disk: the few directories a host keeps on disk that decide what comes back after
    // a reboot (images/guest/stage2.sh binds them over /etc).
    '-fsdev', `local,id=disk,path=${s.diskDir},security_model=passthrough`,
    '-device', 'virtio-9p-pci,fsdev=disk,mount_tag=disk',
    // Management: user-mode networking, no way out (restrict=on), one forward from the host's
    // loopback to the agent.
    '-netdev', `user,id=mgmt,net=10.0.2.0/24,restrict=on${s.templateRole ? '' : `,hostfwd=tcp:${s.mgmtHost ?? '127.0.0.1'}:${s.mgmtPort}-${MGMT_GUEST_ADDRESS}:${AGENT_PORT}`}`,
    '-device', `virtio-net-pci,netdev=mgmt,mac=${s.mgmtMac}`,
  ];
  const dataNic = QEMU_NIC[s.nicModel ?? 'virtio'];
  s.nics.forEach((nic, i) => {
    if (nic.tap === null) {
      argv.push('-device', `${dataNic},mac=${nic.mac}`);
      return;
    }
    argv.push('-netdev', `tap,id=net${i},ifname=${nic.tap},script=no,downscript=no`);
    argv.push('-device', `${dataNic},netdev=net${i},mac=${nic.mac}`);
  });
  if (s.incoming) {
    if (!SHELL_SAFE_PATH.test(s.incoming)) throw new Error(`a saved state's path must match ${SHELL_SAFE_PATH} (QEMU hands it to /bin/sh): ${s.incoming}`);
    argv.push('-incoming', `exec:cat ${s.incoming}`);
  }
  if (!s.foreground) argv.push('-daemonize', '-pidfile', s.pidFile);
  return argv;
}

/** Pure: a node's QEMU spec, all from its record (the same for a VM on the host and one in a container). */
export function qemuSpec(rec: LabRecord, node: NodeRecord, image: GuestImage): QemuNodeSpec {
  return {
    lab: rec.name,
    node: node.name,
    memoryMiB: node.memoryMiB,
    cpus: node.cpus,
    accel: rec.accel,
    image,
    shareDir: rec.shareDir,
    diskDir: nodeDiskDir(rec, node.name),
    consoleLog: node.consoleLog,
    pidFile: join(rec.dir, 'run', `${node.name}.pid`),
    mgmtPort: node.mgmtPort,
    mgmtMac: macFor(node.index, 0),
    nics: node.taps.map((t) => ({ network: t.network, tap: t.name, mac: t.mac })),
    nicModel: node.nicModel ?? 'virtio',
  };
}
