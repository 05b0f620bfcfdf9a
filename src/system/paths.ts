import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root (images/, lab/, dist/): the nearest directory up with brick-lab's package.json. */
function findProjectRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'brick-lab') return dir;
      } catch {
        // not ours
      }
    }
    if (dirname(dir) === dir) return resolve(start, '..', '..');
  }
}

/** Root of the installed project; the same whether this runs from src/ (tests) or dist/. */
export const PROJECT_ROOT = findProjectRoot(dirname(fileURLToPath(import.meta.url)));

/** Guest images and probe results; survive labs. BRICK_LAB_CACHE overrides. */
export function cacheDir(): string {
  if (process.env.BRICK_LAB_CACHE) return resolve(process.env.BRICK_LAB_CACHE);
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'brick-lab');
}

/** One directory per lab: its record, token, console logs. BRICK_LAB_STATE overrides. */
export function stateDir(): string {
  if (process.env.BRICK_LAB_STATE) return resolve(process.env.BRICK_LAB_STATE);
  const base = process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(base, 'brick-lab');
}

export function labDir(name: string): string {
  return join(stateDir(), 'labs', name);
}
