import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, cp, link, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { basename, join } from 'node:path';
import { exec, which } from '../../../system/exec.js';
import { cacheDir, PROJECT_ROOT } from '../../../system/paths.js';
import { processAlive, stopProcesses } from '../../../system/process.js';
import { sleep } from '../../../system/wait.js';
import { failpoint } from '../../../system/failpoint.js';
import type { Accel } from '../../accel.js';
import type { GuestImage } from '../../image/build.js';
import { consoleTail } from '../../ready.js';
import type { NodeRecord } from '../../state.js';
import type { NicModel } from '../../topology.js';
import { DEFAULT_GUEST } from '../../image/recipe.js';
import { macFor, qemuArgv, SHELL_SAFE_PATH, type QemuNodeSpec } from './argv.js';

/**
 * Templates: a booted guest's saved state, one per role and machine shape, that nodes start from
 * instead of booting.
 *
 * Under TCG a boot is mostly the guest translating code it runs once (the kernel's init, udev's
 * coldplug, the role's modules, Node.js and the agent's start), on a vCPU shared with the other
 * nodes. A template boot does all that is the same on every node of a role (stage 2's template
 * branch), its agent started from the runtime disk and waiting; then QEMU saves the machine
 * (`migrate` to a file). A node's QEMU starts with `-incoming` from that file: the same kernel,
 * modules and agent, already running, in its own QEMU process with its own devices, taps and
 * disk. Stage 2 carries on from the read of the control line, where the host gives it its name:
 * it mounts the shares again, takes its MACs, addresses and hostname, wakes the agent as this
 * node, mounts its disk and starts the role's daemons. A reboot of such a node is a real boot
 * (the kernel command line is the node's own).
 *
 * Kept under the cache, keyed by everything that shapes the saved machine (the image, stage 2, the
 * runtime disk, QEMU's binary, the accelerator and the machine's shape); a new key's template
 * replaces the older one of its shape. BRICK_LAB_TEMPLATES=0 boots every node instead.
 */

/** Bumped when what a template holds changes with the same inputs. */
export const TEMPLATE_FORMAT = 2;

/** A template's MACs carry this node index; stage 2 gives a restored node's NIC of the same index its own MAC. */
export const TEMPLATE_NODE_INDEX = 255;

/** Files of dist/agent a template's agent runs from (the runtime disk). */
const RUNTIME_AGENT_FILES = ['agent.cjs', 'agent.cjs.cache', 'agent-loader.cjs', 'agent-training.json'] as const;

export interface TemplateShape {
  role: string;
  memoryMiB: number;
  cpus: number;
  nics: number;
  nicModel: NicModel;
  /** The guest (its image is part of the key too; the name keeps two guests' templates apart). */
  guest: string;
}

export function templatesEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.BRICK_LAB_TEMPLATES !== '0';
}

export function shapeOf(node: Pick<NodeRecord, 'role' | 'memoryMiB' | 'cpus' | 'taps' | 'nicModel' | 'guest'>): TemplateShape {
  return { role: node.role, memoryMiB: node.memoryMiB, cpus: node.cpus, nics: node.taps.length, nicModel: node.nicModel ?? 'virtio', guest: node.guest ?? DEFAULT_GUEST };
}

/**
 * A shape as a file name: `compute-384m-1c-2n`; `-vmxnet3` with other NICs than virtio's, and the
 * guest's name after it when it is not the default (`compute-384m-1c-2n-trixie`).
 */
export function shapeName(s: TemplateShape): string {
  return `${s.role}-${s.memoryMiB}m-${s.cpus}c-${s.nics}n${s.nicModel === 'virtio' ? '' : `-${s.nicModel}`}${s.guest === DEFAULT_GUEST ? '' : `-${s.guest}`}`;
}

function templatesDir(): string {
  return join(cacheDir(), 'templates');
}

function sha(parts: ReadonlyArray<string | Buffer>): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 16);
}

/** Pure: the key of a template from what shapes it. */
export function templateKey(k: { image: string; stage2: string; runtime: string; qemu: string; accel: Accel; shape: TemplateShape }): string {
  return sha([String(TEMPLATE_FORMAT), k.image, k.stage2, k.runtime, k.qemu, k.accel, shapeName(k.shape)]);
}

/** QEMU's binary as a template depends on it: its path, size and modification time. */
async function qemuIdentity(): Promise<string> {
  const bin = await which('qemu-system-x86_64');
  if (!bin) return 'none';
  const st = await stat(bin);
  return `${bin}:${st.size}:${Math.round(st.mtimeMs)}`;
}

/**
 * The runtime disk: Node.js and the agent bundle as a read-only EROFS disk (/dev/vdb), which a
 * template's agent runs from. A mounted 9p share blocks QEMU's migration, and the agent of a
 * template must be running when its state is saved.
 */
export async function ensureRuntimeDisk(nodeDir: string, agentDir = join(PROJECT_ROOT, 'dist', 'agent')): Promise<{ path: string; key: string }> {
  // Keyed by the bundle and its loader, not by the code cache made from them (its bytes differ
  // from one build to the next, and any of them serves the same bundle).
  const parts: Array<string | Buffer> = [nodeDir];
  for (const f of RUNTIME_AGENT_FILES) if (!f.endsWith('.cache')) parts.push(f, await readFile(join(agentDir, f)));
  const key = sha(parts);
  const dir = join(cacheDir(), 'runtime');
  const path = join(dir, `${key}.erofs`);
  if (existsSync(path)) return { path, key };
  await mkdir(dir, { recursive: true });
  const tree = join(dir, `${key}.tree-${process.pid}`);
  await rm(tree, { recursive: true, force: true });
  await mkdir(tree);
  try {
    await link(join(nodeDir, 'node'), join(tree, 'node')).catch(() => copyFile(join(nodeDir, 'node'), join(tree, 'node')));
    for (const f of RUNTIME_AGENT_FILES) await copyFile(join(agentDir, f), join(tree, f));
    const tmp = `${path}.partial-${process.pid}`;
    await exec(['mkfs.erofs', '--quiet', '--all-root', tmp, tree], { timeoutMs: 120_000 });
    await rename(tmp, path);
  } finally {
    await rm(tree, { recursive: true, force: true });
  }
  // Older runtime disks go (a VM still using one keeps its open file until it stops).
  for (const f of await readdir(dir)) {
    if (f !== `${key}.erofs` && f.endsWith('.erofs')) await rm(join(dir, f), { force: true });
  }
  return { path, key };
}

/** A minimal QMP client: one command at a time, events skipped. */
export class Qmp {
  private buf = '';
  private waiting: Array<{ resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }> = [];
  private replies: Array<Record<string, unknown>> = [];
  private closed = false;
  private constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      for (let i = this.buf.indexOf('\n'); i >= 0; i = this.buf.indexOf('\n')) {
        const line = this.buf.slice(0, i).trim();
        this.buf = this.buf.slice(i + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as Record<string, unknown>;
        if ('event' in msg) continue;
        const w = this.waiting.shift();
        if (w) w.resolve(msg);
        else this.replies.push(msg);
      }
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      this.closed = true;
      for (const w of this.waiting.splice(0)) w.reject(new Error('QMP: QEMU closed its monitor'));
    });
  }

  static async open(path: string, timeoutMs: number): Promise<Qmp> {
    const q = new Qmp(await connectUnix(path, timeoutMs));
    await q.next(timeoutMs); // the greeting
    await q.command('qmp_capabilities', undefined, timeoutMs);
    return q;
  }

  private next(timeoutMs: number): Promise<Record<string, unknown>> {
    const r = this.replies.shift();
    if (r) return Promise.resolve(r);
    if (this.closed) return Promise.reject(new Error('QMP: QEMU closed its monitor'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`QMP: no answer within ${timeoutMs} ms`)), timeoutMs);
      this.waiting.push({
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  async command(execute: string, args?: Record<string, unknown>, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    this.sock.write(`${JSON.stringify(args ? { execute, arguments: args } : { execute })}\n`);
    const r = await this.next(timeoutMs);
    if (r.error) throw new Error(`QMP ${execute}: ${JSON.stringify(r.error)}`);
    return (r.return ?? {}) as Record<string, unknown>;
  }

  close(): void {
    this.sock.destroy();
  }
}

async function connectUnix(path: string, timeoutMs: number): Promise<Socket> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const s = connect(path);
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      });
    } catch (e) {
      if (Date.now() > until) throw new Error(`cannot connect to ${path}: ${(e as Error).message}`);
      await sleep(50);
    }
  }
}

/** Wait for a line on the control socket; `alive` is asked between reads so a dead QEMU ends the wait. */
function awaitLine(sock: Socket, want: (line: string) => boolean, timeoutMs: number, alive: () => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const done = (f: () => void): void => {
      clearTimeout(timer);
      clearInterval(watch);
      sock.off('data', onData);
      f();
    };
    const onData = (d: Buffer): void => {
      buf += d.toString('utf8');
      for (const line of buf.split(/\r?\n/)) {
        if (want(line.trim())) return done(() => resolve(line.trim()));
      }
    };
    const timer = setTimeout(() => done(() => reject(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`))), timeoutMs);
    const watch = setInterval(() => {
      if (!alive()) done(() => reject(new Error('QEMU exited')));
    }, 250);
    sock.on('data', onData);
  });
}

/** Wait for QEMU's incoming migration (the saved state's load) to end; throws if it failed. */
async function awaitIncoming(qmp: Qmp, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await qmp.command('query-migrate');
    if (r.status === 'completed') return;
    if (r.status === 'failed' || r.status === 'cancelled') throw new Error(`loading the saved state ${String(r.status)}${r['error-desc'] ? `: ${String(r['error-desc'])}` : ''}`);
    if (Date.now() > until) throw new Error(`the saved state was not loaded within ${timeoutMs / 1000} s (status ${String(r.status)})`);
    await sleep(50);
  }
}

export interface TemplateContext {
  lab: string;
  image: GuestImage;
  accel: Accel;
  runtime: { path: string; key: string };
  bootTimeoutMs: number;
  /** Stage 2 as read once: what the key is made of is what a template boot runs. */
  stage2: Buffer;
  qemu: string;
}

/** A lab's template context: stage 2 and QEMU's identity read once for all its shapes. */
export async function templateContext(c: Omit<TemplateContext, 'stage2' | 'qemu'>): Promise<TemplateContext> {
  return { ...c, stage2: await readFile(join(PROJECT_ROOT, 'images', 'guest', 'stage2.sh')), qemu: await qemuIdentity() };
}

/** Where a shape's template is kept, and its key. */
export function templateFor(ctx: TemplateContext, shape: TemplateShape): { key: string; state: string; exists: boolean } {
  const key = templateKey({ image: ctx.image.key, stage2: sha([ctx.stage2]), runtime: ctx.runtime.key, qemu: ctx.qemu, accel: ctx.accel, shape });
  const state = join(templatesDir(), shapeName(shape), `${key}.state`);
  return { key, state, exists: existsSync(state) };
}

/**
 * Boot a template of `shape` and save its state. The VM carries the lab's -name (template-SHAPE)
 * so `down` stops it if `up` dies meanwhile; its share and sockets are in a build directory
 * removed at the end, whatever happens.
 */
export async function buildTemplate(ctx: TemplateContext, shape: TemplateShape, state: string, signal?: AbortSignal): Promise<void> {
  if (!SHELL_SAFE_PATH.test(state)) {
    throw new Error(`it would be kept at ${state}, a path QEMU cannot take (it hands it to /bin/sh): point BRICK_LAB_CACHE at a path of letters, digits and ._/+- only, or set BRICK_LAB_TEMPLATES=0`);
  }
  const dir = join(templatesDir(), `build-${shapeName(shape)}-${process.pid}`);
  if (Buffer.byteLength(join(dir, 'qmp')) > 100) throw new Error(`its build directory ${dir} is too long a path for QEMU's sockets (set BRICK_LAB_CACHE to a shorter directory)`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'share', 'guest'), { recursive: true });
  await mkdir(join(dir, 'disk'), { recursive: true });
  await writeFile(join(dir, 'share', 'guest', 'stage2.sh'), ctx.stage2);
  const spec: QemuNodeSpec = {
    lab: ctx.lab,
    node: `template-${shapeName(shape)}`,
    memoryMiB: shape.memoryMiB,
    cpus: shape.cpus,
    accel: ctx.accel,
    image: ctx.image,
    shareDir: join(dir, 'share'),
    diskDir: join(dir, 'disk'),
    consoleLog: join(dir, 'console.log'),
    pidFile: join(dir, 'qemu.pid'),
    mgmtPort: 0,
    mgmtMac: macFor(TEMPLATE_NODE_INDEX, 0),
    nics: Array.from({ length: shape.nics }, (_, i) => ({ network: `nic${i + 1}`, tap: null, mac: macFor(TEMPLATE_NODE_INDEX, i + 1) })),
    nicModel: shape.nicModel,
    templated: { control: join(dir, 'ctl'), qmp: join(dir, 'qmp'), runtimeDisk: ctx.runtime.path },
    templateRole: shape.role,
  };
  let pid = 0;
  let ctl: Socket | null = null;
  let qmp: Qmp | null = null;
  const partial = `${state}.partial-${process.pid}`;
  try {
    const r = await exec(qemuArgv(spec), { timeoutMs: 60_000, reject: false, ...(signal ? { signal } : {}) });
    if (r.exitCode !== 0) throw new Error(`QEMU did not start: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    pid = Number.parseInt((await readFile(spec.pidFile, 'utf8')).trim(), 10);
    await failpoint('up:template');
    const alive = (): boolean => processAlive(pid) && !signal?.aborted;
    ctl = await connectUnix(spec.templated!.control, 10_000);
    const said = await awaitLine(ctl, (l) => l === 'brick-template-ready' || l.startsWith('brick-template-failed'), ctx.bootTimeoutMs, alive).catch(async (e: Error) => {
      throw new Error(`the template boot did not get ready (${e.message}); last console lines:\n${await consoleTail(spec.consoleLog)}`);
    });
    if (said !== 'brick-template-ready') {
      throw new Error(`the template boot had a step fail (${said.slice('brick-template-failed'.length).trim()}), and is not kept; last console lines:\n${await consoleTail(spec.consoleLog)}`);
    }
    qmp = await Qmp.open(spec.templated!.qmp, 10_000);
    await qmp.command('stop');
    await mkdir(join(templatesDir(), shapeName(shape)), { recursive: true });
    await qmp.command('migrate', { uri: `exec:cat > ${partial}` });
    const until = Date.now() + 120_000;
    for (;;) {
      const m = await qmp.command('query-migrate');
      if (m.status === 'completed') break;
      if (m.status === 'failed' || m.status === 'cancelled' || Date.now() > until) throw new Error(`saving the template's state: ${String(m.status)} ${String(m['error-desc'] ?? '')}`);
      await sleep(50);
    }
    await rename(partial, state);
    // The node disk's first-boot contents, as the template's stage 2 copied them from the image.
    await rm(`${state}.seed`, { recursive: true, force: true });
    await rename(join(dir, 'disk'), `${state}.seed`);
    await writeFile(`${state}.json`, `${JSON.stringify({ shape, image: ctx.image.key, runtime: ctx.runtime.key, accel: ctx.accel, savedAt: new Date().toISOString() }, null, 2)}\n`);
  } finally {
    ctl?.destroy();
    if (qmp) {
      await qmp.command('quit', undefined, 3000).catch(() => undefined);
      qmp.close();
    }
    if (pid && processAlive(pid)) await stopProcesses([pid], 3000);
    await rm(partial, { force: true });
    await rm(dir, { recursive: true, force: true });
  }
  // The older templates of this shape are dead weight (~90 MB each).
  for (const f of await readdir(join(templatesDir(), shapeName(shape)))) {
    if (!f.startsWith(basename(state, '.state'))) await rm(join(templatesDir(), shapeName(shape), f), { recursive: true, force: true });
  }
}

/**
 * After a node's QEMU started with `-incoming` from a template: wait for the state to load, run
 * the machine, and give stage 2 the node's name and the host's clock over the control line. Throws
 * when the state did not load (the caller boots the node instead).
 */
export async function wakeRestoredNode(spec: QemuNodeSpec, pid: number, timeoutMs = 60_000): Promise<void> {
  const t = spec.templated!;
  const alive = (): boolean => processAlive(pid);
  const qmp = await Qmp.open(t.qmp, 10_000);
  try {
    await awaitIncoming(qmp, timeoutMs);
    await qmp.command('cont');
  } finally {
    qmp.close();
  }
  const ctl = await connectUnix(t.control, 10_000);
  try {
    ctl.write(`brick-node ${spec.node} ${Math.floor(Date.now() / 1000)}\n`);
    await awaitLine(ctl, (l) => l === `brick-node-ok ${spec.node}`, timeoutMs, alive);
  } finally {
    ctl.destroy();
  }
}

/**
 * A new node's disk (still empty) gets what its first boot would copy there from the image, as the
 * template's boot copied it: the host's copy is quicker than the restored guest's.
 */
export async function seedNodeDisk(state: string, diskDir: string): Promise<void> {
  const seed = `${state}.seed`;
  if (!existsSync(seed)) return;
  const have = await readdir(diskDir).catch(() => ['?']);
  if (have.length > 0) return;
  // Copied beside the disk, then moved into place: a seed removed meanwhile (another node's
  // failed restore drops the template) leaves the disk empty, for the boot to fill, never half made.
  const part = `${diskDir}.seeding-${process.pid}`;
  await rm(part, { recursive: true, force: true });
  try {
    await cp(seed, part, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
    await rm(diskDir, { recursive: true, force: true });
    await rename(part, diskDir);
  } catch (e) {
    await rm(part, { recursive: true, force: true });
    await mkdir(diskDir, { recursive: true });
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/**
 * What a template build killed midway left in the cache (its build directory, a partial state):
 * removed once the process that made it is gone. `up` and `down` call it.
 */
export async function pruneTemplateBuilds(): Promise<string[]> {
  const removed: string[] = [];
  const dead = (name: string): boolean => {
    const m = /-(\d+)$/.exec(name);
    return m !== null && !processAlive(Number(m[1]));
  };
  const top = await readdir(templatesDir()).catch(() => [] as string[]);
  for (const f of top) {
    if (f.startsWith('build-') && dead(f)) {
      await rm(join(templatesDir(), f), { recursive: true, force: true });
      removed.push(`template build ${f}`);
      continue;
    }
    for (const g of await readdir(join(templatesDir(), f)).catch(() => [] as string[])) {
      if (g.includes('.partial-') && dead(g)) {
        await rm(join(templatesDir(), f, g), { force: true });
        removed.push(`partial template ${f}/${g}`);
      }
    }
  }
  return removed;
}
