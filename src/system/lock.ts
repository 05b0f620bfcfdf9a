import { open, readFile, rm } from 'node:fs/promises';
import { BrickError } from './errors.js';
import { waitFor } from './wait.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * An exclusive lock file made with O_EXCL. A lock whose owner process is gone (a crashed build)
 * is taken over. Waiting is a poll: builds take minutes, so a 500 ms poll costs nothing.
 */
export async function withLock<T>(
  path: string,
  what: string,
  fn: () => Promise<T>,
  opts: { timeoutMs?: number; onWait?: (ownerPid: number) => void } = {},
): Promise<T> {
  let told = false;
  let owner = Number.NaN;
  /** One try to take the lock; a lock whose owner is gone is removed and taken at once. */
  const take = async (): Promise<boolean> => {
    for (;;) {
      try {
        const fh = await open(path, 'wx', 0o644);
        await fh.writeFile(`${process.pid}\n`);
        await fh.close();
        return true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        owner = Number.parseInt((await readFile(path, 'utf8').catch(() => '')).trim(), 10);
        if (Number.isFinite(owner) && owner > 0 && !alive(owner)) {
          await rm(path, { force: true });
          continue;
        }
        if (!told) {
          opts.onWait?.(owner);
          told = true;
        }
        return false;
      }
    }
  };
  await waitFor(take, {
    timeoutMs: opts.timeoutMs ?? 30 * 60_000,
    intervalMs: 500,
    onTimeout: () =>
      new BrickError('LOCK_TIMEOUT', `gave up waiting for ${what} held by pid ${owner} (${path})`, {
        hint: `if no brick-lab process is running, remove ${path}`,
      }),
  });
  try {
    return await fn();
  } finally {
    await rm(path, { force: true });
  }
}
