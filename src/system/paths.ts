import { homedir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Root of the installed project (where images/, lab/ and dist/ live). */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

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
