import { existsSync } from 'node:fs';
import { BrickError } from '../system/errors.js';
import { which } from '../system/exec.js';
import type { Topology } from './topology.js';

/** Host tools `up` needs, each with the Debian package that provides it. */
export const HOST_TOOLS: ReadonlyArray<{ program: string; pkg: string; for: string }> = [
  { program: 'qemu-system-x86_64', pkg: 'qemu-system-x86', for: 'running the nodes' },
  { program: 'mmdebstrap', pkg: 'mmdebstrap', for: 'building the guest image' },
  { program: 'mkfs.erofs', pkg: 'erofs-utils', for: 'packing the guest image' },
  { program: 'ip', pkg: 'iproute2', for: 'the lab network namespace, bridges and taps' },
  { program: 'chroot', pkg: 'coreutils', for: 'depmod inside the image' },
  { program: 'xz', pkg: 'xz-utils', for: 'unpacking the guest kernel' },
  { program: 'zstd', pkg: 'zstd', for: 'unpacking a zstd-compressed guest kernel (trixie\'s) and modules' },
  { program: 'umount', pkg: 'mount', for: 'cleaning up an interrupted image build' },
];

/** Missing host tools; QEMU is not needed on the host when every node runs in a container. */
export async function missingHostTools(topo?: Topology): Promise<Array<{ program: string; pkg: string; for: string }>> {
  const qemuOnHost = !topo || topo.nodes.some((n) => n.provider === 'qemu');
  const out = [];
  for (const t of HOST_TOOLS) {
    if (!qemuOnHost && t.program.startsWith('qemu-system')) continue;
    if (!(await which(t.program))) out.push(t);
  }
  return out;
}

/** What `up` refuses to start without: the host tools, root, /dev/net/tun. */
export async function preflight(topo: Topology): Promise<void> {
  const missing = await missingHostTools(topo);
  if (missing.length > 0) {
    throw new BrickError('HOST_TOOLS_MISSING', `missing on this host: ${missing.map((m) => `${m.program} (package ${m.pkg}, for ${m.for})`).join(', ')}`, {
      hint: `run scripts/bootstrap, or: apt-get install -y ${[...new Set(missing.map((m) => m.pkg))].join(' ')}`,
    });
  }
  if (process.getuid?.() !== 0) {
    throw new BrickError('NOT_ROOT', 'brick-lab needs root for network namespaces, bridges and taps', {
      hint: 'run it as root (sudo -E npx brick-lab ...)',
    });
  }
  if (!existsSync('/dev/net/tun')) {
    throw new BrickError('NO_TUN', '/dev/net/tun is missing: QEMU cannot create the data-network taps', {
      hint: 'modprobe tun, or in a container pass --device /dev/net/tun',
    });
  }
}
