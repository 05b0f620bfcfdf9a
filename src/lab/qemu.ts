import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { accelArgs, type Accel } from './accel.js';
import type { GuestImage } from './image/build.js';
import { MGMT_GUEST_ADDRESS } from './topology.js';

export const AGENT_PORT = 8080;

export interface QemuNic {
  network: string;
  tap: string;
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
  consoleLog: string;
  pidFile: string;
  mgmtPort: number;
  mgmtMac: string;
  nics: QemuNic[];
  /** Where the management forward listens: the host's loopback, or a container's own address. */
  mgmtHost?: string;
  /** In a container QEMU is the main process: no -daemonize, no pid file. */
  foreground?: boolean;
}

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
    `brick.node=${s.node}`,
  ].join(' ');
  const argv = [
    'qemu-system-x86_64',
    '-name', qemuName(s.lab, s.node),
    '-machine', 'q35',
    ...accelArgs(s.accel),
    '-m', String(s.memoryMiB),
    '-smp', String(s.cpus),
    '-nodefaults', '-no-reboot', '-no-user-config',
    '-display', 'none',
    '-kernel', s.image.kernel,
    '-initrd', s.image.initramfs,
    '-append', cmdline,
    '-serial', `file:${s.consoleLog}`,
    // The image, read-only (an EROFS file system); the guest puts a tmpfs overlay on top.
    '-drive', `file=${s.image.rootImage},if=none,id=root,format=raw,readonly=on,cache=unsafe`,
    '-device', 'virtio-blk-pci,drive=root',
    '-fsdev', `local,id=lab,path=${s.shareDir},security_model=none,readonly=on`,
    '-device', 'virtio-9p-pci,fsdev=lab,mount_tag=lab',
    '-fsdev', `local,id=node,path=${s.image.nodeDir},security_model=none,readonly=on`,
    '-device', 'virtio-9p-pci,fsdev=node,mount_tag=node',
    // Management: user-mode networking, no way out (restrict=on), one forward from the host's
    // loopback to the agent.
    '-netdev', `user,id=mgmt,net=10.0.2.0/24,restrict=on,hostfwd=tcp:${s.mgmtHost ?? '127.0.0.1'}:${s.mgmtPort}-${MGMT_GUEST_ADDRESS}:${AGENT_PORT}`,
    '-device', `virtio-net-pci,netdev=mgmt,mac=${s.mgmtMac}`,
  ];
  s.nics.forEach((nic, i) => {
    argv.push('-netdev', `tap,id=net${i},ifname=${nic.tap},script=no,downscript=no`);
    argv.push('-device', `virtio-net-pci,netdev=net${i},mac=${nic.mac}`);
  });
  if (!s.foreground) argv.push('-daemonize', '-pidfile', s.pidFile);
  return argv;
}

export interface QemuProcess {
  pid: number;
  lab: string;
  node: string;
}

/** Every running lab VM on this host (any lab), read from /proc so it works after a crash. */
export async function findQemuProcesses(lab?: string): Promise<QemuProcess[]> {
  const out: QemuProcess[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0');
    } catch {
      continue;
    }
    if (!argv[0]?.includes('qemu-system')) continue;
    const i = argv.indexOf('-name');
    const m = i >= 0 ? /^brick-lab:([^:]+):(.+)$/.exec(argv[i + 1] ?? '') : null;
    if (!m) continue;
    if (lab && m[1] !== lab) continue;
    out.push({ pid: Number(entry), lab: m[1]!, node: m[2]! });
  }
  return out;
}

/** Alive and not a zombie (a zombie no longer holds taps or files; its parent just has not reaped it). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** SIGTERM, a grace period, then SIGKILL; resolves when every process is gone. */
export async function stopProcesses(pids: readonly number[], graceMs = 5000): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + graceMs;
  while (pids.some(processAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  for (const pid of pids.filter(processAlive)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  const hard = Date.now() + 5000;
  while (pids.some(processAlive) && Date.now() < hard) await new Promise((r) => setTimeout(r, 50));
}
