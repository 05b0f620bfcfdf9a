import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { BrickError } from '../../../system/errors.js';
import { exec, renderCommand } from '../../../system/exec.js';
import { progress } from '../../../system/log.js';
import { processAlive } from '../../../system/process.js';
import type { PreparedNodes, Provider, UpContext } from '../../provider.js';
import { throwIfAborted, waitReady } from '../../ready.js';
import type { LabRecord, NodeRecord } from '../../state.js';
import type { GuestImage } from '../../image/build.js';
import { qemuArgv, qemuSpec } from './argv.js';
import { createLabNetwork, destroyLabNetwork, listLinks, netnsExists, netnsName, plugTap, plugTapInto, tapPrefix } from './network.js';
import { findQemuProcesses, stopLabVms } from './processes.js';

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

/** Start one VM (QEMU daemonizes) and plug its taps into the lab's bridges. */
async function startVm(rec: LabRecord, node: NodeRecord, image: GuestImage): Promise<void> {
  // A port found free can be taken before QEMU binds it; retry with another.
  for (let attempt = 1; ; attempt++) {
    node.mgmtPort = await freePort();
    node.url = `http://127.0.0.1:${node.mgmtPort}`;
    const spec = qemuSpec(rec, node, image);
    const r = await exec(qemuArgv(spec), { timeoutMs: 60_000, reject: false });
    if (r.exitCode === 0) {
      node.pid = Number.parseInt((await readFile(spec.pidFile, 'utf8')).trim(), 10);
      node.startedAt = new Date().toISOString();
      break;
    }
    const err = r.stderr.trim();
    if (/host forwarding rule|Could not set up host forwarding/i.test(err) && attempt < 4) continue;
    throw new BrickError('QEMU_START_FAILED', `QEMU did not start node ${node.name}: ${err.split('\n').slice(-5).join(' | ')}`, {
      hint: 'run `brick-lab doctor`; `brick-lab up --dry-run` prints the exact QEMU command',
    });
  }
  for (const tap of node.taps) {
    // In a lab with containers, the data networks are Docker's bridges in the host namespace.
    const bridge = rec.docker?.networks[tap.network]?.bridge;
    if (bridge) await plugTapInto(tap.name, bridge);
    else await plugTap(rec.name, tap.name, tap.network);
  }
}

/** Nodes as QEMU VMs on the host: a network namespace with a bridge per data network, a tap per NIC. */
export const qemuProvider: Provider = {
  name: 'qemu',

  async prepare(ctx: UpContext): Promise<PreparedNodes> {
    const { rec, image, token, signal } = ctx;
    // With docker nodes in the lab, the data networks are Docker's (prepared first): no namespace.
    if (!rec.docker) {
      progress('network', `namespace ${rec.netns} with bridges for ${rec.topology.networks.map((n) => n.name).join(', ')}`);
      await createLabNetwork(rec.name, rec.topology.networks.map((n) => n.name));
      throwIfAborted(signal);
    }
    return {
      start: (node) => startVm(rec, node, image),
      ready: (node) => waitReady(node, token, node.bootTimeoutSeconds * 1000, signal),
    };
  },

  dryRun(rec, node, image) {
    return [renderCommand(qemuArgv(qemuSpec(rec, node, image)))];
  },

  alive(node) {
    return Boolean(node.pid && processAlive(node.pid));
  },

  async running(name) {
    return (await findQemuProcesses(name)).length > 0;
  },

  hasState(name) {
    return netnsExists(netnsName(name));
  },

  async remove({ name, rec }) {
    return [...(await stopLabVms(name, rec)), ...(await destroyLabNetwork(name))];
  },

  async leftovers(name) {
    const qemu = (await findQemuProcesses(name)).map((p) => p.pid);
    const taps = (await listLinks()).filter((l) => (name ? l.startsWith(tapPrefix(name)) : /^bk[0-9a-f]{6}-/.test(l)));
    let netns: string[] = [];
    try {
      netns = (await readdir('/run/netns')).filter((n) => (name ? n === netnsName(name) : n.startsWith('brick-')));
    } catch {
      netns = [];
    }
    return { qemu, taps, netns };
  },
};
