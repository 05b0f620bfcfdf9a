import { BrickError } from './errors.js';
import { exec } from './exec.js';
import { realHostFs, type HostFs } from './hostfs.js';
import { serialQueue } from './serial.js';
import { waitFor } from './wait.js';

/**
 * The lab's Fibre Channel fabric: an FCoE port in VN2VN mode on each data network, made through
 * the kernel's fcoe sysfs interface (no fcoe-utils, no FC forwarder). Each data network is one
 * fabric: a host with ports on both has two paths to a target with ports on both. A port's names
 * come from its interface's MAC (fcoe_wwn_from_mac: WWNN 0x1000<mac>, WWPN 0x2000<mac>), so they
 * are known before it exists, as a real HBA's are.
 */

export interface FcoePort {
  /** The data network's interface. */
  netdev: string;
  /** ctlr_N under /sys/bus/fcoe/devices. */
  ctlr: string;
  /** The SCSI host of its fc_host. */
  host: number;
  /** 16 lowercase hex digits. */
  wwpn: string;
  wwnn: string;
}

/** The WWPN an FCoE port on an interface of this MAC gets ("52:54:00:4c:00:02" -> "20005254004c0002"). */
export function fcoeWwpn(mac: string): string {
  return `2000${macHex(mac)}`;
}

export function fcoeWwnn(mac: string): string {
  return `1000${macHex(mac)}`;
}

function macHex(mac: string): string {
  const hex = mac.toLowerCase().replace(/:/g, '');
  if (!/^[0-9a-f]{12}$/.test(hex)) throw new BrickError('BAD_REQUEST', `${JSON.stringify(mac)} is not a MAC address`);
  return hex;
}

const FCOE = '/sys/bus/fcoe';

/** Up to this long for a port to claim its address and come online (VN2VN probes, then beacons). */
const ONLINE_TIMEOUT_MS = 60_000;

/** The FCoE controller made on an interface, if any: ctlr_N sits in the interface's device directory. */
function ctlrOf(fs: HostFs, netdev: string): string | null {
  return fs.list(`/sys/class/net/${netdev}/`).find((e) => /^ctlr_\d+$/.test(e)) ?? null;
}

/** The SCSI host of a controller's fc_host (ctlr_N/hostM), once libfc made it. */
function hostOf(fs: HostFs, netdev: string, ctlr: string): number | null {
  const h = fs.list(`/sys/class/net/${netdev}/${ctlr}`).find((e) => /^host\d+$/.test(e));
  return h ? Number(h.slice(4)) : null;
}

const queue = serialQueue();

/** What a container runtime leaves in a container's root (Docker, Podman). */
const CONTAINER_MARKS = ['/.dockerenv', '/run/.containerenv'];

/**
 * An FCoE VN2VN port on each of these interfaces, online; made where missing, the ones there kept.
 * `before` runs with the WWPNs before any port is enabled (a target configures its tcm_fc port
 * there, so that no host ever sees it log in without the target role). Returns the ports.
 */
export function ensureFcoePorts(netdevs: string[], before?: (wwpns: Array<{ netdev: string; wwpn: string }>) => Promise<void>, fs: HostFs = realHostFs): Promise<FcoePort[]> {
  return queue(async () => {
    // A container on the host's kernel (a host-kernel target): fcoe makes ports on the initial
    // network namespace's interfaces only, and loading it would change the host's kernel.
    if (CONTAINER_MARKS.some((m) => fs.exists(m))) {
      throw new BrickError('FCOE_MISSING', 'this node is a container on the host\'s kernel: it cannot make FCoE ports (fcoe takes only the host\'s own interfaces)', {
        hint: 'Fibre Channel needs nodes with a kernel of their own: QEMU nodes, or docker nodes running their guest inside the container',
      });
    }
    if (!fs.exists(`${FCOE}/ctlr_create`)) {
      const r = await exec(['modprobe', 'fcoe'], { timeoutMs: 60_000, reject: false });
      if (r.exitCode !== 0 || !fs.exists(`${FCOE}/ctlr_create`)) {
        throw new BrickError('FCOE_MISSING', `the fcoe module did not load (${r.stderr.trim() || `modprobe exit ${r.exitCode}`})`, { hint: 'Fibre Channel in the lab needs the guest kernel\'s fcoe module (Debian\'s linux-image has it); a container node on the host\'s kernel may not' });
      }
    }
    const names = netdevs.map((netdev) => {
      const mac = fs.readText(`/sys/class/net/${netdev}/address`);
      if (!mac) throw new BrickError('FCOE_MISSING', `no network interface ${netdev} on this node`);
      return { netdev, wwpn: fcoeWwpn(mac), wwnn: fcoeWwnn(mac) };
    });
    if (before) await before(names.map(({ netdev, wwpn }) => ({ netdev, wwpn })));
    // Every controller made and enabled first, then waited for together: each port's address
    // claim and discovery take a few seconds, which then pass once, not once per port.
    const made: Array<{ n: (typeof names)[number]; ctlr: string }> = [];
    for (const n of names) {
      let ctlr = ctlrOf(fs, n.netdev);
      if (!ctlr) {
        await fs.write(`${FCOE}/ctlr_create`, n.netdev);
        ctlr = await waitFor(() => ctlrOf(fs, n.netdev), { timeoutMs: 10_000, intervalMs: 20, onTimeout: () => new BrickError('FCOE_MISSING', `no FCoE controller appeared on ${n.netdev} after ctlr_create`) });
      }
      const dir = `${FCOE}/devices/${ctlr}`;
      if (fs.readText(`${dir}/mode`) !== 'VN2VN') {
        // The mode can change only while the controller is disabled (as it is when just made).
        if (fs.readText(`${dir}/enabled`) === '1') await fs.write(`${dir}/enabled`, '0');
        // As the kernel names the mode (newer kernels match the name exactly); lower case for one that wants it so.
        await fs.write(`${dir}/mode`, 'VN2VN').catch(() => fs.write(`${dir}/mode`, 'vn2vn'));
      }
      if (fs.readText(`${dir}/enabled`) !== '1') await fs.write(`${dir}/enabled`, '1');
      made.push({ n, ctlr });
    }
    const out: FcoePort[] = [];
    for (const { n, ctlr } of made) {
      const host = await waitFor(
        () => {
          const h = hostOf(fs, n.netdev, ctlr);
          return h !== null && fs.readText(`/sys/class/fc_host/host${h}/port_state`) === 'Online' ? h : null;
        },
        { timeoutMs: ONLINE_TIMEOUT_MS, intervalMs: 100, onTimeout: () => new BrickError('FCOE_MISSING', `the FCoE port on ${n.netdev} (${ctlr}) did not come online within ${ONLINE_TIMEOUT_MS / 1000} s`, { hint: 'is the interface up, and does the other side of the network answer?' }) },
      );
      out.push({ netdev: n.netdev, ctlr, host, wwpn: n.wwpn, wwnn: n.wwnn });
    }
    return out;
  });
}
