import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from './helpers.js';

/**
 * The image build for real, cold, in a cache of its own: two processes that need the image at
 * the same time build it once; a third finds it and builds nothing.
 */
describe('the guest image cache', () => {
  let cache = '';
  afterAll(async () => {
    if (cache) await rm(cache, { recursive: true, force: true });
  });

  it('is built once when two processes race for it, then reused', async () => {
    cache = await mkdtemp(join(tmpdir(), 'brick-e2e-cache-'));
    const env = { ...process.env, BRICK_LAB_CACHE: cache };
    const [a, b] = await Promise.all([cli(['image', '--json'], { env }), cli(['image', '--json'], { env })]);
    expect(a.exitCode, a.stderr).toBe(0);
    expect(b.exitCode, b.stderr).toBe(0);
    const ia = JSON.parse(a.stdout) as { key: string; dir: string; kernel: string };
    const ib = JSON.parse(b.stdout) as { key: string; dir: string };
    expect(ib).toEqual(ia);
    const builders = [a, b].filter((r) => r.stderr.includes('1/5 rootfs: mmdebstrap'));
    const waiters = [a, b].filter((r) => r.stderr.includes('was built by another process meanwhile'));
    expect(builders.length).toBe(1);
    expect(waiters.length).toBe(1);
    for (const stage of ['1/5 rootfs', '2/5 modules', '3/5 kernel', '4/5 initramfs', '5/5 erofs']) {
      expect(builders[0]!.stderr).toContain(`${stage}: done in`);
    }
    expect((await readdir(join(cache, 'images'))).sort()).toEqual([ia.key]);
    expect((await readdir(ia.dir)).sort()).toEqual(['initramfs.img', 'manifest.json', 'root.erofs', 'vmlinux']);

    const again = await cli(['image', '--json'], { env });
    expect(again.exitCode).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual(ia);
    expect(again.stderr).not.toContain('mmdebstrap');
  });
});
