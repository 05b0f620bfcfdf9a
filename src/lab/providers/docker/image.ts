import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { BrickError } from '../../../system/errors.js';
import { exec } from '../../../system/exec.js';
import { withLock } from '../../../system/lock.js';
import { progress } from '../../../system/log.js';
import { cacheDir } from '../../../system/paths.js';
import { loadRecipe, type ImageRecipe } from '../../image/recipe.js';

/** The repository every node image is tagged in; the tag is the recipe hash. */
export const NODE_IMAGE_REPO = 'brick-lab/node';
export const IMAGE_LABEL = 'io.brick-lab.image';

/**
 * The packages of the node image: the guest recipe's user land (so that a target running on the
 * host's kernel has the same targetcli, nvme-cli and udev as a guest) without its kernel and boot
 * pieces, plus QEMU and its network helpers for nodes that boot the guest inside the container.
 * os-brick stays out: it runs only on compute nodes, which always boot their own kernel.
 */
export function nodeImagePackages(recipe: ImageRecipe): string[] {
  const skip = new Set(['tiny-initramfs', 'python3-os-brick', recipe.kernel.package]);
  const extra = ['qemu-system-x86', 'ipxe-qemu', 'bridge-utils', 'tini', 'iproute2', 'procps'];
  return [...new Set([...recipe.packages.filter((p) => !skip.has(p)), ...extra])].sort();
}

export interface NodeImageSpec {
  key: string;
  tag: string;
  packages: string[];
  release: string;
  variant: string;
}

/**
 * The node image's name and key: a hash of the guest recipe's key and the package list. The
 * entry script is not in the image (the lab share brings it), so editing it rebuilds nothing.
 */
export function nodeImageSpec(): NodeImageSpec {
  const { recipe, key: guestKey } = loadRecipe();
  const packages = nodeImagePackages(recipe);
  const h = createHash('sha256');
  h.update(`brick-lab-node-image:1\n${guestKey}\n${recipe.release}\n${recipe.variant}\n${packages.join(',')}\n`);
  const key = h.digest('hex').slice(0, 16);
  return { key, tag: `${NODE_IMAGE_REPO}:${key}`, packages, release: recipe.release, variant: recipe.variant };
}

export async function imageExists(docker: Docker, tag: string): Promise<boolean> {
  try {
    await docker.getImage(tag).inspect();
    return true;
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode === 404) return false;
    throw e;
  }
}

function tarballPath(spec: NodeImageSpec): string {
  return join(cacheDir(), 'docker', `node-${spec.key}.tar`);
}

/**
 * The node image for the current recipe, built from local files without any registry: mmdebstrap
 * writes a root file system tarball (kept in the cache, so a new Docker Engine only re-imports it),
 * and `docker import` turns it into an image tagged by the recipe hash. Reused while the recipe
 * is unchanged; older tags are removed.
 */
export async function ensureNodeImage(docker: Docker, opts: { signal?: AbortSignal } = {}): Promise<NodeImageSpec> {
  const spec = nodeImageSpec();
  if (await imageExists(docker, spec.tag)) return spec;
  const dir = join(cacheDir(), 'docker');
  await mkdir(dir, { recursive: true });
  return withLock(join(dir, `node-${spec.key}.lock`), `the node image build ${spec.key}`, async () => {
    if (await imageExists(docker, spec.tag)) return spec;
    const tar = tarballPath(spec);
    if (!existsSync(tar)) {
      const t = performance.now();
      progress('image', `building the node container image ${spec.tag}: mmdebstrap ${spec.release} with ${spec.packages.length} packages`);
      const partial = `${tar}.partial-${process.pid}`;
      try {
        await exec(
          ['mmdebstrap', `--variant=${spec.variant}`, '--mode=root', '--format=tar', `--include=${spec.packages.join(',')}`,
            '--customize-hook=rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*',
            spec.release, partial],
          { timeoutMs: 30 * 60_000, killGraceMs: 20_000, ...(opts.signal ? { signal: opts.signal } : {}) },
        );
        await rename(partial, tar);
      } catch (e) {
        await rm(partial, { force: true });
        throw new BrickError('DOCKER_IMAGE_BUILD_FAILED', `mmdebstrap could not build the node image root file system: ${(e as Error).message.split('\n').slice(-3).join(' | ')}`, {
          hint: 'check that this host reaches a Debian mirror (the guest image build needs the same), then run it again',
          cause: e,
        });
      }
      progress('image', `root file system tarball built in ${((performance.now() - t) / 1000).toFixed(1)} s (${Math.round((await stat(tar)).size / 2 ** 20)} MiB)`);
    }
    const t = performance.now();
    await importTarball(docker, tar, spec);
    progress('image', `imported ${spec.tag} into the Docker Engine in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    await pruneNodeImages(docker, spec.tag);
    return spec;
  });
}

async function importTarball(docker: Docker, tar: string, spec: NodeImageSpec): Promise<void> {
  const stream = await docker.importImage(createReadStream(tar), {
    repo: NODE_IMAGE_REPO,
    tag: spec.key,
    changes: [`LABEL ${IMAGE_LABEL}=node`, `LABEL io.brick-lab.recipe=${spec.key}`, 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
  } as unknown as Parameters<Docker['importImage']>[1]);
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, out: Array<{ error?: string }>) => {
      const failed = err?.message ?? out.find((o) => o.error)?.error;
      if (failed) reject(new BrickError('DOCKER_IMAGE_IMPORT_FAILED', `docker import of ${tar} failed: ${failed}`, { hint: `remove ${tar} so that it is built again` }));
      else resolve();
    });
  });
  if (!(await imageExists(docker, spec.tag))) {
    throw new BrickError('DOCKER_IMAGE_IMPORT_FAILED', `docker import of ${tar} finished but ${spec.tag} is not there`, { hint: `remove ${tar} so that it is built again` });
  }
}

/** Node images of older recipes (and their cached tarballs), so that the cache does not grow without end. */
async function pruneNodeImages(docker: Docker, keep: string): Promise<void> {
  const images = await docker.listImages({ filters: JSON.stringify({ label: [`${IMAGE_LABEL}=node`] }) });
  for (const img of images) {
    if ((img.RepoTags ?? []).includes(keep)) continue;
    await docker.getImage(img.Id).remove({ force: false }).catch(() => undefined); // in use by a running lab: keep
  }
  const keepKey = keep.split(':')[1];
  const dir = join(cacheDir(), 'docker');
  for (const name of existsSync(dir) ? await readdir(dir) : []) {
    const m = /^node-([0-9a-f]{16})\.tar$/.exec(name);
    if (m && m[1] !== keepKey) await rm(join(dir, name), { force: true });
  }
}
