import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrickError } from '../../src/system/errors.js';
import { withLock } from '../../src/system/lock.js';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'brick-lock-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** A pid that certainly belonged to a process and now belongs to none. */
function deadPid(): number {
  const r = spawnSync('true');
  expect(r.status).toBe(0);
  expect(r.pid).toBeGreaterThan(0);
  return r.pid;
}

describe('withLock', () => {
  it('serializes two concurrent holders: the second runs after the first finishes', async () => {
    const path = join(dir, 'serial.lock');
    const events: string[] = [];
    const firstIn = deferred();
    const releaseFirst = deferred();
    const secondWaiting = deferred();

    const first = withLock(path, 'the test lock', async () => {
      events.push('first start');
      expect(readFileSync(path, 'utf8')).toBe(`${process.pid}\n`);
      firstIn.resolve();
      await releaseFirst.promise;
      events.push('first end');
      return 'first';
    });
    await firstIn.promise;

    let waitedOn: number | undefined;
    const second = withLock(
      path,
      'the test lock',
      async () => {
        events.push('second start');
        return 'second';
      },
      {
        onWait: (owner) => {
          waitedOn = owner;
          secondWaiting.resolve();
        },
      },
    );
    // The second holder has found the lock taken before the first lets go.
    await secondWaiting.promise;
    expect(waitedOn).toBe(process.pid);
    expect(events).toEqual(['first start']);

    releaseFirst.resolve();
    expect(await Promise.all([first, second])).toEqual(['first', 'second']);
    expect(events).toEqual(['first start', 'first end', 'second start']);
    expect(existsSync(path)).toBe(false);
  });

  it('releases the lock when the holder throws', async () => {
    const path = join(dir, 'throws.lock');
    await expect(withLock(path, 'x', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(existsSync(path)).toBe(false);
    expect(await withLock(path, 'x', async () => 7)).toBe(7);
  });

  it('takes over a stale lock whose owner pid is dead', async () => {
    const path = join(dir, 'stale.lock');
    const dead = deadPid();
    writeFileSync(path, `${dead}\n`);
    let waited = false;
    const seen = await withLock(path, 'the stale lock', async () => readFileSync(path, 'utf8'), {
      timeoutMs: 60_000,
      onWait: () => (waited = true),
    });
    expect(seen).toBe(`${process.pid}\n`);
    expect(waited).toBe(false);
    expect(existsSync(path)).toBe(false);
  });

  it('does not take over a lock held by a live process; gives up with LOCK_TIMEOUT and leaves it', async () => {
    const path = join(dir, 'live.lock');
    // Our parent (the vitest main process) is alive for the whole test.
    writeFileSync(path, `${process.ppid}\n`);
    let ran = false;
    let err: unknown;
    try {
      await withLock(path, 'the busy lock', async () => (ran = true), { timeoutMs: 0 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BrickError);
    expect((err as BrickError).code).toBe('LOCK_TIMEOUT');
    expect((err as BrickError).message).toContain(String(process.ppid));
    expect(ran).toBe(false);
    expect(readFileSync(path, 'utf8')).toBe(`${process.ppid}\n`);
    rmSync(path);
  });
});
