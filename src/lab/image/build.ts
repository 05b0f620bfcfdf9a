import { constants, existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { BrickError } from '../../system/errors.js';
import { exec } from '../../system/exec.js';
import { withLock } from '../../system/lock.js';
import { mountsBelow, unmountBelow } from '../../system/mounts.js';
import { progress } from '../../system/log.js';
import { cacheDir, PROJECT_ROOT } from '../../system/paths.js';
import { buildCpio, type CpioEntry } from './cpio.js';
import { loadOrder, parseBuiltin, parseModulesDep } from './modules.js';
import { DEFAULT_GUEST, guestNames, loadRecipe, type ImageRecipe } from './recipe.js';

export interface GuestImage {
  /** The guest (images/guests/<guest>.json) this image is built from. */
  guest: string;
  key: string;
  dir: string;
  /** The guest's root file system: EROFS, attached read-only as a virtio disk. */
  rootImage: string;
  kernel: string;
  initramfs: string;
  kernelRelease: string;
  /** Directory holding the host's node binary, shared into guests at /opt/brick-lab/node. */
  nodeDir: string;
}

export interface ImageManifest {
  key: string;
  /** Absent in manifests written before guests: bookworm. */
  guest?: string;
  release: string;
  kernelPackage: string;
  kernelRelease: string;
  builtAt: string;
  stageSeconds: Record<string, number>;
}

export function imagesDir(): string {
  return join(cacheDir(), 'images');
}

function paths(guest: string, dir: string, key: string, recipe: ImageRecipe, nodeDir: string): GuestImage {
  return {
    guest,
    key,
    dir,
    rootImage: join(dir, 'root.erofs'),
    kernel: join(dir, 'vmlinux'),
    initramfs: join(dir, 'initramfs.img'),
    kernelRelease: recipe.kernel.release,
    nodeDir,
  };
}

/** The image of a guest's current recipe if it is already built, without building anything. */
export async function findImage(guest = DEFAULT_GUEST): Promise<GuestImage | null> {
  const { recipe, key } = loadRecipe(guest);
  const dir = join(imagesDir(), key);
  if (!existsSync(join(dir, 'manifest.json'))) return null;
  return paths(guest, dir, key, recipe, await nodeRuntime(false));
}

/**
 * The guest image for the current recipe: built once, reused until the recipe changes. Two
 * processes that both need it wait on one lock; the second one finds the image done.
 */
export async function ensureImage(opts: { signal?: AbortSignal; guest?: string } = {}): Promise<GuestImage> {
  const guest = opts.guest ?? DEFAULT_GUEST;
  const { recipe, key } = loadRecipe(guest);
  const root = imagesDir();
  await mkdir(root, { recursive: true });
  const dir = join(root, key);
  const nodeDir = await nodeRuntime(true);
  if (existsSync(join(dir, 'manifest.json'))) return paths(guest, dir, key, recipe, nodeDir);
  return withLock(
    join(root, `${key}.lock`),
    `the image build ${key}`,
    async () => {
      if (existsSync(join(dir, 'manifest.json'))) {
        progress('image', `image ${key} was built by another process meanwhile`);
        return paths(guest, dir, key, recipe, nodeDir);
      }
      await buildImage(guest, recipe, key, dir, opts.signal);
      await pruneImages();
      return paths(guest, dir, key, recipe, nodeDir);
    },
    { onWait: (pid) => progress('image', `waiting for image build ${key} by pid ${pid}`) },
  );
}

async function buildImage(guest: string, recipe: ImageRecipe, key: string, finalDir: string, signal?: AbortSignal): Promise<void> {
  const work = `${finalDir}.partial`;
  await safeRemove(work);
  await mkdir(work, { recursive: true });
  const rootfs = join(work, 'rootfs');
  const seconds: Record<string, number> = {};
  const stage = async (n: number, name: string, what: string, fn: () => Promise<void>): Promise<void> => {
    progress('image', `${n}/5 ${name}: ${what}`);
    const t = performance.now();
    await fn();
    seconds[name] = Math.round((performance.now() - t) / 100) / 10;
    progress('image', `${n}/5 ${name}: done in ${seconds[name]} s`);
  };
  try {
    await stage(1, 'rootfs', `mmdebstrap ${recipe.release} with ${recipe.packages.length} packages and ${recipe.kernel.package}`, async () => {
      await exec(
        [
          'mmdebstrap',
          `--variant=${recipe.variant}`,
          '--mode=root',
          `--include=${[...recipe.packages, recipe.kernel.package].join(',')}`,
          recipe.release,
          rootfs,
        ],
        { timeoutMs: 30 * 60_000, killGraceMs: 20_000, ...(signal ? { signal } : {}) },
      );
    });
    await stage(2, 'modules', `prune ${recipe.pruneModuleDirs.length} module trees, depmod ${recipe.kernel.release}`, async () => {
      const modRoot = join(rootfs, 'lib', 'modules', recipe.kernel.release);
      if (!existsSync(modRoot)) {
        throw new BrickError('IMAGE_KERNEL_MISSING', `${recipe.kernel.package} did not install modules under /lib/modules/${recipe.kernel.release}`, {
          hint: `fix kernel.release in images/guests/${guest}.json`,
        });
      }
      for (const d of recipe.pruneModuleDirs) await rm(join(modRoot, d), { recursive: true, force: true });
      await exec(['chroot', rootfs, 'depmod', '-a', recipe.kernel.release], { timeoutMs: 5 * 60_000 });
      // Nothing in the guest should try to manage the host-side view or reach a network.
      await rm(join(rootfs, 'var', 'cache', 'apt'), { recursive: true, force: true });
      await rm(join(rootfs, 'var', 'lib', 'apt', 'lists'), { recursive: true, force: true });
    });
    await stage(3, 'kernel', `vmlinux from vmlinuz-${recipe.kernel.release}`, async () => {
      await extractVmlinux(join(rootfs, 'boot', `vmlinuz-${recipe.kernel.release}`), join(work, 'vmlinux'));
    });
    await stage(4, 'initramfs', `busybox + ${recipe.initramfsModules.join(' ')}`, async () => {
      const img = await buildInitramfs(rootfs, recipe);
      await writeFile(join(work, 'initramfs.img'), img);
    });
    await stage(5, 'erofs', 'pack the root file system read-only (mkfs.erofs)', async () => {
      // --preserve-mtime: Python compares .pyc stamps with source mtimes; a changed mtime would make
      // every import recompile into the tmpfs overlay.
      await exec(['mkfs.erofs', '--quiet', '--preserve-mtime', join(work, 'root.erofs'), rootfs], { timeoutMs: 10 * 60_000 });
      await safeRemove(rootfs);
    });
    const manifest: ImageManifest = {
      key,
      guest,
      release: recipe.release,
      kernelPackage: recipe.kernel.package,
      kernelRelease: recipe.kernel.release,
      builtAt: new Date().toISOString(),
      stageSeconds: seconds,
    };
    await writeFile(join(work, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    await rm(finalDir, { recursive: true, force: true });
    await rename(work, finalDir);
    progress('image', `image ${key} ready in ${finalDir}`);
  } catch (e) {
    await safeRemove(work).catch(() => undefined);
    throw e;
  }
}

/** How a bzImage's payload (the compressed vmlinux) is decompressed, by its first bytes. */
const PAYLOADS: ReadonlyArray<{ name: string; magic: Buffer; decompress: (file: string) => string[] }> = [
  // --single-stream: one stream and nothing after it (the size the build appends is cut off).
  { name: 'xz', magic: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), decompress: (f) => ['xz', '--decompress', '--stdout', '--single-stream', f] },
  { name: 'zstd', magic: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), decompress: (f) => ['zstd', '--decompress', '--stdout', '--quiet', f] },
];
const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

/**
 * Where a bzImage's compressed kernel lies (boot protocol 2.08+: payload_offset and payload_length
 * in the setup header, from the start of the protected-mode code), without the 4-byte uncompressed
 * size the kernel's build appends to it. Null when the file is no such bzImage.
 */
export function bzImagePayload(image: Buffer): Buffer | null {
  if (image.length < 0x250 || image.toString('latin1', 0x202, 0x206) !== 'HdrS' || image.readUInt16LE(0x206) < 0x208) return null;
  const code = ((image[0x1f1] || 4) + 1) * 512;
  const at = code + image.readUInt32LE(0x248);
  const length = image.readUInt32LE(0x24c);
  if (length <= 4 || at + length > image.length) return null;
  return image.subarray(at, at + length - 4);
}

/**
 * The uncompressed kernel, booted through its PVH entry point: under TCG a bzImage spends more
 * than two seconds decompressing itself before the kernel even starts its clock (measured: probe
 * boot 4.6 s with vmlinuz, 2.0 s with vmlinux). Debian's kernels are built with CONFIG_PVH;
 * bookworm's payload is xz, trixie's zstd. Any other kernel falls back to the bzImage itself.
 */
export async function extractVmlinux(vmlinuz: string, out: string): Promise<'vmlinux' | 'bzImage'> {
  const image = await readFile(vmlinuz);
  const payload = bzImagePayload(image);
  const kind = payload && PAYLOADS.find((p) => payload.subarray(0, p.magic.length).equals(p.magic));
  let why = payload ? `its payload starts ${payload.subarray(0, 4).toString('hex')}, neither xz nor zstd` : 'it is no bzImage of boot protocol 2.08 or later';
  if (payload && kind) {
    const file = `${out}.${kind.name}`;
    await writeFile(file, payload);
    try {
      const r = await exec(kind.decompress(file), { timeoutMs: 5 * 60_000, stdoutFile: out, reject: false });
      const head = r.exitCode === 0 ? await readFile(out).then((b) => b.subarray(0, 4)) : Buffer.alloc(0);
      if (head.equals(ELF_MAGIC)) return 'vmlinux';
      why = r.exitCode === 0 ? `its ${kind.name} payload holds no ELF` : `${kind.name} exited ${r.exitCode ?? 'on a signal'}: ${r.stderr.trim().slice(-300)}`;
    } finally {
      await rm(file, { force: true });
    }
  }
  progress('image', `the kernel is not unpacked (${why}); booting the bzImage as it is, about 2 s slower under TCG`);
  await copyFile(vmlinuz, out, constants.COPYFILE_FICLONE);
  return 'bzImage';
}

async function safeRemove(dir: string): Promise<void> {
  const left = await unmountBelow(dir);
  if (left.length > 0) progress('image', `unmounted ${left.length} file systems left below ${dir}`);
  if ((await mountsBelow(dir)).length > 0) {
    throw new BrickError('IMAGE_CLEANUP_BLOCKED', `file systems are still mounted below ${dir}; not removing it`, {
      hint: `unmount them (findmnt -R ${dir}) and remove ${dir}`,
    });
  }
  await rm(dir, { recursive: true, force: true });
}

/** A module file's bytes, decompressed when it is .ko.xz or .ko.zst. */
async function moduleBytes(path: string): Promise<Buffer> {
  if (!/\.ko\.(xz|zst)$/.test(path)) return readFile(path);
  const out = `${path}.decompressed`;
  const tool = path.endsWith('.xz') ? ['xz', '--decompress', '--stdout', path] : ['zstd', '--decompress', '--stdout', '--quiet', path];
  try {
    await exec(tool, { timeoutMs: 60_000, stdoutFile: out });
    return await readFile(out);
  } finally {
    await rm(out, { force: true });
  }
}

/** Stage 1: static busybox, our init, and the modules needed to reach the 9p root. */
export async function buildInitramfs(rootfs: string, recipe: ImageRecipe): Promise<Buffer> {
  const modRoot = join(rootfs, 'lib', 'modules', recipe.kernel.release);
  const deps = parseModulesDep(await readFile(join(modRoot, 'modules.dep'), 'utf8'));
  const builtin = parseBuiltin(await readFile(join(modRoot, 'modules.builtin'), 'utf8').catch(() => ''));
  const order = loadOrder(deps, recipe.initramfsModules, builtin);
  const entries: CpioEntry[] = [
    { path: 'bin', kind: 'dir' },
    { path: 'dev', kind: 'dir' },
    { path: 'dev/console', kind: 'chardev', mode: 0o600, major: 5, minor: 1 },
    { path: 'modules', kind: 'dir' },
    { path: 'bin/busybox', kind: 'file', mode: 0o755, data: await readFile(join(rootfs, 'bin', 'busybox')) },
    { path: 'bin/sh', kind: 'symlink', target: 'busybox' },
    { path: 'init', kind: 'file', mode: 0o755, data: await readFile(join(PROJECT_ROOT, 'images', 'guest', 'initramfs-init')) },
  ];
  const names: string[] = [];
  for (const rel of order) {
    // Stage 1's busybox insmod takes plain .ko files: a compressed module (trixie's are .ko.xz)
    // goes in decompressed.
    const file = rel.split('/').pop()!.replace(/\.ko\.(xz|zst)$/, '.ko');
    if (!file.endsWith('.ko')) {
      throw new BrickError('IMAGE_MODULE_COMPRESSED', `module ${rel} is compressed in a way stage 1 cannot load (xz and zstd are decompressed)`);
    }
    names.push(file);
    entries.push({ path: `modules/${file}`, kind: 'file', data: await moduleBytes(join(modRoot, rel)) });
  }
  entries.push({ path: 'modules/order', kind: 'file', data: Buffer.from(`${names.join('\n')}\n`) });
  return gzipSync(buildCpio(entries), { level: 6 });
}

/**
 * The host's Node.js, copied once per version into the cache and shared read-only into every
 * guest, so the agent runs on the same runtime as the CLI without baking it into the image.
 */
export async function nodeRuntime(create: boolean): Promise<string> {
  const st = await stat(process.execPath);
  const id = `${process.version}-${st.size}-${Math.round(st.mtimeMs)}`;
  const dir = join(cacheDir(), 'node', id);
  if (existsSync(join(dir, 'node')) || !create) return dir;
  const tmp = `${dir}.partial-${process.pid}`;
  await mkdir(tmp, { recursive: true });
  await copyFile(process.execPath, join(tmp, 'node'));
  try {
    await rename(tmp, dir);
  } catch {
    await rm(tmp, { recursive: true, force: true }); // another process won the race
  }
  return dir;
}

/**
 * Images of older recipes are dead weight (about 600 MB each): remove them once a new one is built,
 * keeping every guest's current one. A VM still running from an old image keeps its open disk file
 * until it stops.
 */
async function pruneImages(): Promise<void> {
  // A guest whose recipe does not load keeps nothing here (its own build says what is wrong).
  const keep = new Set(guestNames().flatMap((g) => {
    try {
      return [loadRecipe(g).key];
    } catch {
      return [];
    }
  }));
  for (const old of await listImages()) {
    if (keep.has(old) || existsSync(join(imagesDir(), `${old}.lock`))) continue;
    await safeRemove(join(imagesDir(), old));
    progress('image', `removed the image of an older recipe: ${old}`);
  }
}

/** Images in the cache, for `doctor` and for pruning. */
export async function listImages(): Promise<string[]> {
  try {
    return (await readdir(imagesDir())).filter((d) => /^[0-9a-f]{16}$/.test(d));
  } catch {
    return [];
  }
}
