import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { BrickError } from '../../../system/errors.js';
import { exec, renderCommand } from '../../../system/exec.js';
import { progress, warn } from '../../../system/log.js';
import { processAlive, stopProcesses } from '../../../system/process.js';
import { imageOf, type PreparedNodes, type Provider, type UpContext } from '../../provider.js';
import { throwIfAborted, waitReady } from '../../ready.js';
import type { LabRecord, NodeRecord } from '../../state.js';
import type { GuestImage } from '../../image/build.js';
import { qemuArgv, qemuSpec, type QemuNodeSpec } from './argv.js';
import { buildTemplate, ensureRuntimeDisk, pruneTemplateBuilds, seedNodeDisk, shapeName, shapeOf, templateContext, templateFor, templatesEnabled, wakeRestoredNode } from './template.js';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
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

/** What a node of the lab starts from when templates are on: the devices they need, and its template's saved state (if any). */
interface Templated {
  runtimeDisk: string;
  /** Saved state per shape name; absent: no template of that shape (the node boots). */
  states: Map<string, string>;
}

function templatedSpec(rec: LabRecord, node: NodeRecord, image: GuestImage, t: Templated | null): QemuNodeSpec {
  const spec = qemuSpec(rec, node, image);
  if (!t) return spec;
  return { ...spec, templated: { control: join(rec.dir, 'run', `${node.name}.ctl`), qmp: join(rec.dir, 'run', `${node.name}.qmp`), runtimeDisk: t.runtimeDisk } };
}

/** Start one VM (QEMU daemonizes), from its template's state when it has one, and plug its taps into the lab's bridges. */
async function startVm(rec: LabRecord, node: NodeRecord, image: GuestImage, t: Templated | null): Promise<void> {
  let from = t?.states.get(shapeName(shapeOf(node)));
  // A port found free can be taken before QEMU binds it; retry with another.
  for (let attempt = 1; ; attempt++) {
    node.mgmtPort = await freePort();
    node.url = `http://127.0.0.1:${node.mgmtPort}`;
    const spec = { ...templatedSpec(rec, node, image, t), ...(from ? { incoming: from } : {}) };
    if (spec.templated) for (const f of [spec.templated.control, spec.templated.qmp]) await rm(f, { force: true });
    if (from) await seedNodeDisk(from, spec.diskDir);
    const r = await exec(qemuArgv(spec), { timeoutMs: 60_000, reject: false });
    if (r.exitCode === 0) {
      // No pid file after QEMU said it started: it ended at once (a state file another node's
      // failed restore just removed, say). From a template: boot instead; else say so.
      const pidText = await readFile(spec.pidFile, 'utf8').catch(() => null);
      node.pid = pidText === null ? null : Number.parseInt(pidText.trim(), 10);
      node.startedAt = new Date().toISOString();
      if (node.pid === null && !from) {
        throw new BrickError('QEMU_START_FAILED', `QEMU did not start node ${node.name}: it exited at once and wrote no pid file (${spec.pidFile})${r.stderr.trim() ? `: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`, {
          hint: 'run `brick-lab doctor`; `brick-lab up --dry-run` prints the exact QEMU command',
        });
      }
      if (from) {
        try {
          if (node.pid === null) throw new Error('QEMU exited at once and wrote no pid file');
          await wakeRestoredNode(spec, node.pid);
        } catch (e) {
          // A state QEMU cannot load (or a guest that does not take its name) is not kept: the node boots.
          warn(`${node.name}: starting from template ${from} failed (${(e as Error).message}); removing that template and booting the node`);
          if (node.pid !== null && processAlive(node.pid)) await stopProcesses([node.pid], 3000);
          for (const f of [from, `${from}.json`, `${from}.seed`]) await rm(f, { recursive: true, force: true });
          t?.states.delete(shapeName(shapeOf(node)));
          from = undefined;
          attempt = 0;
          continue;
        }
      }
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

/**
 * The templates this lab's VMs start from: the runtime disk, and a template per role and shape
 * among `nodes`, made (side by side) where the cache has none. A template that cannot be made is
 * said and its nodes boot; nothing of it is left.
 */
async function prepareTemplates(ctx: UpContext, nodes: NodeRecord[]): Promise<Templated | null> {
  if (!templatesEnabled() || nodes.length === 0) return null;
  const { rec, image, signal } = ctx;
  // The runtime disk is the same for every guest (Node.js and the agent); each guest's templates
  // are keyed by its own image.
  // A unix socket's path has room for 107 bytes: with a long BRICK_LAB_STATE the control and QMP sockets would not fit.
  const long = nodes.map((n) => join(rec.dir, 'run', `${n.name}.ctl`)).find((p) => Buffer.byteLength(p) > 100);
  if (long) {
    warn(`nodes boot without templates: the control socket ${long} is too long a path for a unix socket (set BRICK_LAB_STATE to a shorter directory)`);
    return null;
  }
  await pruneTemplateBuilds();
  const runtime = await ensureRuntimeDisk(image.nodeDir);
  const bootTimeoutMs = Math.max(...nodes.map((n) => n.bootTimeoutSeconds)) * 1000;
  const contexts = new Map<string, Awaited<ReturnType<typeof templateContext>>>();
  const shapes = new Map(nodes.map((n) => [shapeName(shapeOf(n)), { shape: shapeOf(n), node: n }]));
  const states = new Map<string, string>();
  const missing: Array<{ name: string; shape: ReturnType<typeof shapeOf>; state: string; tctx: Awaited<ReturnType<typeof templateContext>> }> = [];
  for (const [name, { shape, node }] of shapes) {
    let tctx = contexts.get(shape.guest);
    if (!tctx) contexts.set(shape.guest, (tctx = await templateContext({ lab: rec.name, image: imageOf(ctx, node), accel: rec.accel, runtime, bootTimeoutMs })));
    const t = templateFor(tctx, shape);
    if (t.exists) states.set(name, t.state);
    else missing.push({ name, shape, state: t.state, tctx });
  }
  if (missing.length > 0) {
    progress('template', `booting ${missing.map((m) => m.name).join(', ')} once to save ${missing.length === 1 ? 'its state' : 'their states'} (nodes start from them; kept in the cache)`);
    const t0 = performance.now();
    const made = await Promise.allSettled(missing.map((m) => buildTemplate(m.tctx, m.shape, m.state, signal)));
    throwIfAborted(signal);
    made.forEach((r, i) => {
      const m = missing[i]!;
      if (r.status === 'fulfilled') states.set(m.name, m.state);
      else warn(`template ${m.name} could not be made (${(r.reason as Error).message}); its nodes boot instead`);
    });
    progress('template', `made in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  return { runtimeDisk: runtime.path, states };
}

/** Nodes as QEMU VMs on the host: a network namespace with a bridge per data network, a tap per NIC. */
export const qemuProvider: Provider = {
  name: 'qemu',

  async prepare(ctx: UpContext, nodes: NodeRecord[]): Promise<PreparedNodes> {
    const { rec, token, signal } = ctx;
    // With docker nodes in the lab, the data networks are Docker's (prepared first): no namespace.
    if (!rec.docker) {
      progress('network', `namespace ${rec.netns} with bridges for ${rec.topology.networks.map((n) => n.name).join(', ')}`);
      await createLabNetwork(rec.name, rec.topology.networks.map((n) => n.name));
      throwIfAborted(signal);
    }
    const templated = await prepareTemplates(ctx, nodes);
    throwIfAborted(signal);
    return {
      start: (node) => startVm(rec, node, imageOf(ctx, node), templated),
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
    return [...(await stopLabVms(name, rec)), ...(await destroyLabNetwork(name)), ...(await pruneTemplateBuilds())];
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
