import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { failpoint } from '../system/failpoint.js';
import { BrickError } from '../system/errors.js';
import { progress, warn } from '../system/log.js';
import { labDir, PROJECT_ROOT } from '../system/paths.js';
import { chooseAccel, type Accel } from './accel.js';
import { ensureImage, findImage, type GuestImage } from './image/build.js';
import { DEFAULT_GUEST, loadRecipe } from './image/recipe.js';
import { checkLabName, down, isUp } from './lab.js';
import { draftRecord, nodeEnv } from './plan.js';
import { preflight } from './preflight.js';
import { imageOf, type PreparedNodes, type Provider, type UpContext } from './provider.js';
import { PROVIDER_ORDER, providerOf, providersOf } from './providers/registry.js';
import { throwIfAborted } from './ready.js';
import { nodeDiskDir, recordPath, writeRecord, type LabRecord } from './state.js';
import { guestsOf, type Topology } from './topology.js';

/** What `npm run build` leaves in dist/agent and every guest gets in its lab share. */
export const AGENT_FILES = ['agent.cjs', 'agent.cjs.cache', 'agent-loader.cjs', 'lio_helper.py', 'multipathd_relay.py', 'line_worker.py'] as const;

export interface UpOptions {
  /** Where the topology was read from: kept in the lab's record. */
  topologyFile: string;
  name?: string;
  dryRun?: boolean;
  signal?: AbortSignal;
  accel?: Accel;
}

/**
 * Like Promise.all, but waits for every promise to settle before it rejects with the first error:
 * cleanup after a failed node must not run while another node is still being made.
 */
async function settleAll(promises: Array<Promise<unknown>>): Promise<void> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * The image of every guest the nodes run, one after another (each build takes its own lock), and
 * the lab's own: the lab-wide guest's when a node runs it, else the first node's (the acceleration
 * probe's, `status`'s header).
 */
async function imagesOf(topology: Topology, get: (guest: string) => Promise<GuestImage>): Promise<{ images: Map<string, GuestImage>; image: GuestImage }> {
  const images = new Map<string, GuestImage>();
  for (const guest of guestsOf(topology)) images.set(guest, await get(guest));
  return { images, image: images.get(topology.guest ?? DEFAULT_GUEST) ?? [...images.values()][0]! };
}

function placeholderImage(guest: string): GuestImage {
  const { recipe, key } = loadRecipe(guest);
  const d = join('<cache>', 'images', key);
  return { guest, key, dir: d, rootImage: join(d, 'root.erofs'), kernel: join(d, 'vmlinux'), initramfs: join(d, 'initramfs.img'), kernelRelease: recipe.kernel.release, nodeDir: '<cache>/node' };
}

/** `up --dry-run`: what each node would run, through its provider; makes nothing. */
async function dryRun(name: string, topology: Topology, opts: UpOptions): Promise<LabRecord> {
  const { images, image } = await imagesOf(topology, async (guest) => (await findImage(guest)) ?? placeholderImage(guest));
  const rec = draftRecord(name, opts.topologyFile, topology, labDir(name), opts.accel ?? 'tcg', 'dry run', image, images);
  rec.nodes.forEach((n, i) => (n.mgmtPort = 40000 + i));
  for (const n of rec.nodes) for (const line of providerOf(n).dryRun(rec, n, imageOf({ image, images }, n))) process.stdout.write(`${line}\n`);
  return rec;
}

/** The guest's scripts every node runs: its boot (stage 2) and its reboot (the agent's reboot route). */
const GUEST_SCRIPTS = ['stage2.sh', 'reboot.sh'] as const;

/** The lab share: what every guest reads at boot (stage 2, the agent, its own config, the token). */
async function writeShare(rec: LabRecord, token: string): Promise<void> {
  await writeFile(rec.tokenFile, `${token}\n`, { mode: 0o600 });
  await mkdir(join(rec.shareDir, 'guest'), { recursive: true });
  for (const f of GUEST_SCRIPTS) await copyFile(join(PROJECT_ROOT, 'images', 'guest', f), join(rec.shareDir, 'guest', f));
  const agentDir = join(PROJECT_ROOT, 'dist', 'agent');
  for (const f of AGENT_FILES) {
    if (!existsSync(join(agentDir, f))) {
      throw new BrickError('AGENT_NOT_BUILT', `the node agent bundle ${join(agentDir, f)} is missing`, { hint: 'run `npm run build` (scripts/bootstrap does it)' });
    }
    await copyFile(join(agentDir, f), join(rec.shareDir, f));
  }
  await copyFile(rec.tokenFile, join(rec.shareDir, 'token'));
  for (const n of rec.nodes) {
    await mkdir(join(rec.shareDir, 'nodes', n.name), { recursive: true });
    await writeFile(join(rec.shareDir, 'nodes', n.name, 'node.env'), nodeEnv(rec, n));
    await mkdir(nodeDiskDir(rec, n.name), { recursive: true, mode: 0o700 });
  }
}

/** Whether lab `name` left state behind without running (a crashed run): its record, or any provider's. */
async function leftState(name: string): Promise<boolean> {
  if (existsSync(recordPath(name))) return true;
  for (const p of PROVIDER_ORDER) if (await p.hasState(name)) return true;
  return false;
}

/**
 * Bring a lab up from a loaded topology: image, acceleration, each provider's preparation (its
 * networks), the share, all nodes booted in parallel, all agents ready.
 */
export async function up(topology: Topology, opts: UpOptions): Promise<LabRecord> {
  const name = checkLabName(opts.name ?? topology.name);
  const dir = labDir(name);
  if (opts.dryRun) return dryRun(name, topology, opts);

  await preflight(topology);
  if (await isUp(name)) {
    throw new BrickError('LAB_EXISTS', `lab ${name} is already up`, {
      hint: `use it (brick-lab status --name ${name}), take it down first (brick-lab down --name ${name}), or pick another --name`,
    });
  }
  if (await leftState(name)) {
    warn(`lab ${name} left state behind (a crashed run?); cleaning it first`);
    await down(name, { quiet: true });
  }

  const signal = opts.signal;
  let rec: LabRecord | null = null;
  const t0 = performance.now();
  const since = (): string => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  try {
    // Every guest's image the nodes run, one after another (each build takes its own lock).
    const { images, image } = await imagesOf(topology, async (guest) => {
      progress('image', `checking the ${guest} guest image`);
      const built = await ensureImage({ guest, ...(signal ? { signal } : {}) });
      throwIfAborted(signal);
      return built;
    });
    const accel = opts.accel ? { accel: opts.accel, reason: 'asked for' } : await chooseAccel(image);
    progress('accel', `using ${accel.accel.toUpperCase()} (${accel.reason})`);
    throwIfAborted(signal);

    await rm(dir, { recursive: true, force: true });
    await mkdir(join(dir, 'logs'), { recursive: true });
    await mkdir(join(dir, 'run'), { recursive: true });
    const current = draftRecord(name, opts.topologyFile, topology, dir, accel.accel, accel.reason, image, images);
    rec = current;
    await writeRecord(current);
    await failpoint('up:record');

    const token = randomBytes(24).toString('base64url');
    const ctx: UpContext = { rec: current, image, images, token, ...(signal ? { signal } : {}) };
    const prepared = new Map<Provider, PreparedNodes>();
    for (const { provider, nodes } of providersOf(current.nodes)) prepared.set(provider, await provider.prepare(ctx, nodes));
    await writeShare(current, token);
    await failpoint('up:networks');
    const of = (n: LabRecord['nodes'][number]): PreparedNodes => prepared.get(providerOf(n))!;

    progress('boot', `starting ${current.nodes.length} nodes (${accel.accel.toUpperCase()}): ${current.nodes.map((n) => `${n.name}${n.container ? ` (container, ${n.container.mode === 'guest' ? 'own kernel' : 'host kernel'})` : ''}`).join(', ')}`);
    await settleAll(current.nodes.map((n) => of(n).start(n)));
    await writeRecord(current);
    throwIfAborted(signal);
    await failpoint('up:started');

    await settleAll(
      current.nodes.map(async (n) => {
        await of(n).ready(n);
        n.readyAt = new Date().toISOString();
        progress('boot', `${n.name} ready after ${since()}`);
      }),
    );
    await failpoint('up:ready');
    current.phase = 'up';
    await writeRecord(current);
    progress('up', `lab ${name} is up in ${since()}: ${current.nodes.map((n) => `${n.name} ${n.url}`).join(', ')}`);
    return current;
  } catch (e) {
    if (rec) {
      rec.phase = 'failed';
      await writeRecord(rec).catch(() => undefined);
    }
    progress('cleanup', `up failed; removing everything lab ${name} made`);
    await down(name, { quiet: true, keepLogs: true }).catch((err: unknown) => warn(`cleanup after a failed up: ${(err as Error).message}`));
    if (signal?.aborted && !(e instanceof BrickError && e.code === 'LAB_INTERRUPTED')) {
      throw new BrickError('LAB_INTERRUPTED', 'interrupted; everything made so far was removed', { cause: e });
    }
    throw e;
  }
}
