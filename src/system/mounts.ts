import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { exec } from './exec.js';

/** Mount points at or below dir, deepest first, from /proc/self/mountinfo. */
export async function mountsBelow(dir: string): Promise<string[]> {
  const root = resolve(dir);
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const points = text
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => Boolean(p))
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => p === root || p.startsWith(`${root}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/**
 * Unmount everything below dir before it is removed: an interrupted chroot build can leave /proc,
 * /sys or a bind of /dev mounted inside, and a recursive delete would walk into the host's.
 */
export async function unmountBelow(dir: string): Promise<string[]> {
  const done: string[] = [];
  for (const p of await mountsBelow(dir)) {
    await exec(['umount', '--lazy', p], { timeoutMs: 15_000, reject: false });
    done.push(p);
  }
  return done;
}
