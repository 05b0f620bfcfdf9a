import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BrickError } from '../../system/errors.js';
import { PROJECT_ROOT } from '../../system/paths.js';

export interface ImageRecipe {
  release: string;
  variant: string;
  kernel: { package: string; release: string };
  packages: string[];
  initramfsModules: string[];
  pruneModuleDirs: string[];
}

/** Bumped when the build code changes what it produces from the same recipe. */
export const IMAGE_FORMAT = 5;

/**
 * Guests: one recipe per Debian release the lab can boot, `images/guests/<name>.json` (a third is
 * a file more). Every node runs one; bookworm unless the topology or --guest says otherwise.
 */
export const GUESTS_DIR = 'images/guests';
export const DEFAULT_GUEST = 'bookworm';
const GUEST_NAME = /^[a-z][a-z0-9-]{0,19}$/;

/** The guests there are recipes for, sorted. */
export function guestNames(root = PROJECT_ROOT): string[] {
  try {
    return readdirSync(join(root, GUESTS_DIR))
      .filter((f) => f.endsWith('.json') && GUEST_NAME.test(f.slice(0, -5)))
      .map((f) => f.slice(0, -5))
      .sort();
  } catch {
    return [];
  }
}

/** Refuse a guest there is no recipe for, naming the ones there are (before anything is built or booted). */
export function checkGuest(guest: string, where = '--guest', root = PROJECT_ROOT): string {
  const known = guestNames(root);
  if (!known.includes(guest)) {
    throw new BrickError('UNKNOWN_GUEST', `${where}: no guest called ${JSON.stringify(guest)}; the guests are ${known.join(', ')}`, {
      hint: `pick one of ${known.join(', ')} (a guest is a recipe in ${GUESTS_DIR}/)`,
    });
  }
  return guest;
}

/** The files whose content makes a guest's image (its cache key). */
export function recipeFiles(guest = DEFAULT_GUEST): [string, string] {
  return [`${GUESTS_DIR}/${guest}.json`, 'images/guest/initramfs-init'];
}

/** The default guest's files (kept for what reads one recipe). */
export const RECIPE_FILES = recipeFiles(DEFAULT_GUEST);

const DEB_NAME = /^[a-z0-9][a-z0-9+.-]+$/;

export function parseRecipe(text: string, source = `${GUESTS_DIR}/${DEFAULT_GUEST}.json`): ImageRecipe {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new BrickError('RECIPE_INVALID', `${source} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new BrickError('RECIPE_INVALID', `${source} must be a JSON object with release, kernel, packages and the other fields`);
  }
  const r = raw as Partial<ImageRecipe>;
  const bad = (field: string, why: string): never => {
    throw new BrickError('RECIPE_INVALID', `${source}: field ${field} ${why}`);
  };
  if (typeof r.release !== 'string' || !/^[a-z]+$/.test(r.release)) bad('release', 'must be a Debian code name such as bookworm');
  if (typeof r.variant !== 'string') bad('variant', 'must be an mmdebstrap variant');
  if (!r.kernel || typeof r.kernel.package !== 'string' || !DEB_NAME.test(r.kernel.package)) bad('kernel.package', 'must name a linux-image package');
  if (typeof r.kernel?.release !== 'string' || !r.kernel.package.endsWith(r.kernel.release)) {
    bad('kernel.release', `must be the release the package installs (the part after linux-image-)`);
  }
  if (!Array.isArray(r.packages) || r.packages.some((p) => typeof p !== 'string' || !DEB_NAME.test(p))) bad('packages', 'must be a list of Debian package names');
  if (!Array.isArray(r.initramfsModules) || r.initramfsModules.length === 0 || r.initramfsModules.some((m) => typeof m !== 'string' || !m)) bad('initramfsModules', 'must list the modules stage 1 needs');
  if (!Array.isArray(r.pruneModuleDirs) || r.pruneModuleDirs.some((d) => typeof d !== 'string' || d.includes('..') || d.startsWith('/'))) {
    bad('pruneModuleDirs', 'must be relative paths under the kernel module tree');
  }
  return r as ImageRecipe;
}

/**
 * The cache key: a hash of every file that shapes the image plus the build format. Whitespace or
 * comment edits in the recipe do change it, which is the safe direction.
 */
export function recipeKey(files: ReadonlyArray<{ path: string; content: string | Buffer }>, format = IMAGE_FORMAT): string {
  const h = createHash('sha256');
  h.update(`brick-lab-image-format:${format}\n`);
  for (const f of [...files].sort((a, b) => a.path.localeCompare(b.path))) {
    h.update(`${f.path}\n`);
    h.update(f.content);
    h.update('\n\0');
  }
  return h.digest('hex').slice(0, 16);
}

export function loadRecipe(guest = DEFAULT_GUEST, root = PROJECT_ROOT): { recipe: ImageRecipe; key: string } {
  const files = recipeFiles(guest).map((path) => {
    try {
      return { path, content: readFileSync(join(root, path)) };
    } catch (e) {
      throw new BrickError('RECIPE_MISSING', `cannot read ${path}: ${(e as Error).message}`, {
        hint: 'run brick-lab from a complete checkout of the project',
      });
    }
  });
  const recipe = parseRecipe(files[0]!.content.toString('utf8'), files[0]!.path);
  return { recipe, key: recipeKey(files) };
}
