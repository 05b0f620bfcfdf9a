import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BrickError } from '../../src/system/errors.js';
import { checkGuest, guestNames, IMAGE_FORMAT, loadRecipe, RECIPE_FILES, parseRecipe, recipeFiles, recipeKey } from '../../src/lab/image/recipe.js';

const root = new URL('../../', import.meta.url);
const RECIPE_TEXT = readFileSync(new URL('images/guests/bookworm.json', root), 'utf8');

function recipe(): Record<string, any> {
  return JSON.parse(RECIPE_TEXT);
}

function expectRefused(text: string, field: string | RegExp): void {
  let err: unknown;
  try {
    parseRecipe(text, 'test-recipe.json');
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(BrickError);
  expect((err as BrickError).code).toBe('RECIPE_INVALID');
  expect((err as BrickError).message).toContain('test-recipe.json');
  if (typeof field === 'string') expect((err as BrickError).message).toContain(`field ${field} `);
  else expect((err as BrickError).message).toMatch(field);
}

function broken(edit: (r: Record<string, any>) => void): string {
  const r = recipe();
  edit(r);
  return JSON.stringify(r);
}

describe('parseRecipe', () => {
  it('has a recipe per guest, each pinned to its release\'s kernel, keyed apart', () => {
    expect(guestNames()).toEqual(['bookworm', 'trixie']);
    const trixie = loadRecipe('trixie');
    expect(trixie.recipe.release).toBe('trixie');
    expect(trixie.recipe.kernel).toEqual({ package: 'linux-image-6.12.117+deb13-amd64', release: '6.12.117+deb13-amd64' });
    expect(trixie.recipe.packages).toEqual(expect.arrayContaining(['open-iscsi', 'nvme-cli', 'multipath-tools', 'targetcli-fb', 'python3-os-brick']));
    expect(trixie.key).not.toBe(loadRecipe('bookworm').key);
    expect(loadRecipe().key).toBe(loadRecipe('bookworm').key);
    expect(recipeFiles('trixie')).toEqual(['images/guests/trixie.json', 'images/guest/initramfs-init']);
    expect(RECIPE_FILES).toEqual(recipeFiles('bookworm'));
  });

  it('refuses a guest it has no recipe for, naming the ones there are', () => {
    expect(checkGuest('trixie')).toBe('trixie');
    for (const bad of ['sid', 'Bookworm', '../x', '']) {
      let err: unknown;
      try {
        checkGuest(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'UNKNOWN_GUEST', message: expect.stringContaining('the guests are bookworm, trixie') });
    }
  });

  it('accepts images/guests/bookworm.json', () => {
    const r = parseRecipe(RECIPE_TEXT);
    expect(r.release).toBe('bookworm');
    expect(r.kernel).toEqual({ package: 'linux-image-6.1.0-56-amd64', release: '6.1.0-56-amd64' });
    expect(r.packages).toContain('open-iscsi');
    expect(r.packages).toContain('nvme-cli');
    expect(r.initramfsModules).toEqual(expect.arrayContaining(['virtio_pci', '9pnet_virtio', '9p', 'overlay']));
    expect(r.pruneModuleDirs.every((d) => d.startsWith('kernel/'))).toBe(true);
  });

  it('refuses text that is not JSON', () => {
    expectRefused('{ "release": "bookworm", }', /not valid JSON/);
  });

  it('refuses JSON that is not an object', () => {
    for (const text of ['null', '[]', '"bookworm"', '42']) expectRefused(text, /must be a JSON object/);
  });

  it('refuses a release that is not a code name', () => {
    expectRefused(broken((r) => (r.release = 'Debian 12')), 'release');
    expectRefused(broken((r) => delete r.release), 'release');
  });

  it('refuses a missing variant', () => {
    expectRefused(broken((r) => delete r.variant), 'variant');
  });

  it('refuses a missing or malformed kernel package', () => {
    expectRefused(broken((r) => delete r.kernel), 'kernel.package');
    expectRefused(broken((r) => (r.kernel.package = 'Linux Image')), 'kernel.package');
  });

  it('refuses a kernel release that the package does not install', () => {
    expectRefused(broken((r) => (r.kernel.release = '6.1.0-55-amd64')), 'kernel.release');
    expectRefused(broken((r) => delete r.kernel.release), 'kernel.release');
  });

  it('refuses packages that are not Debian package names', () => {
    expectRefused(broken((r) => r.packages.push('Open iSCSI')), 'packages');
    expectRefused(broken((r) => r.packages.push(3)), 'packages');
    expectRefused(broken((r) => (r.packages = 'udev kmod')), 'packages');
  });

  it('refuses an empty or malformed initramfsModules', () => {
    expectRefused(broken((r) => (r.initramfsModules = [])), 'initramfsModules');
    expectRefused(broken((r) => delete r.initramfsModules), 'initramfsModules');
    expectRefused(broken((r) => r.initramfsModules.push(7)), 'initramfsModules');
  });

  it('refuses prune directories outside the module tree', () => {
    expectRefused(broken((r) => r.pruneModuleDirs.push('../../etc')), 'pruneModuleDirs');
    expectRefused(broken((r) => r.pruneModuleDirs.push('/lib/modules')), 'pruneModuleDirs');
  });
});

describe('recipeKey', () => {
  const files = RECIPE_FILES.map((path) => ({ path, content: readFileSync(new URL(path, root)) }));

  it('is 16 hex characters and the same for the same input', () => {
    const k = recipeKey(files);
    expect(k).toMatch(/^[0-9a-f]{16}$/);
    expect(recipeKey(files.map((f) => ({ ...f, content: Buffer.from(f.content) })))).toBe(k);
  });

  it('does not depend on the order the files are given in', () => {
    expect(recipeKey([...files].reverse())).toBe(recipeKey(files));
    const abc = [
      { path: 'a', content: 'one' },
      { path: 'b/c', content: 'two' },
      { path: 'b/d', content: 'three' },
    ];
    expect(recipeKey([abc[2]!, abc[0]!, abc[1]!])).toBe(recipeKey(abc));
  });

  it('treats a string and its UTF-8 bytes alike', () => {
    const text = files.map((f) => ({ path: f.path, content: f.content.toString('utf8') }));
    expect(recipeKey(text)).toBe(recipeKey(files));
  });

  it('changes when any byte of any file changes', () => {
    const small = [
      { path: 'images/guests/bookworm.json', content: Buffer.from('{"release":"bookworm"}\n') },
      { path: 'images/guest/initramfs-init', content: Buffer.from('#!/bin/sh\nexec /init2\n') },
    ];
    const original = recipeKey(small);
    const seen = new Set([original]);
    small.forEach((file, fi) => {
      for (let i = 0; i < file.content.length; i++) {
        const changed = Buffer.from(file.content);
        changed[i] = changed[i]! ^ 0x01;
        const variant = small.map((f, j) => (j === fi ? { path: f.path, content: changed } : f));
        const k = recipeKey(variant);
        expect(k, `${file.path} byte ${i}`).not.toBe(original);
        seen.add(k);
      }
    });
    const total = small.reduce((n, f) => n + f.content.length, 0);
    expect(seen.size).toBe(total + 1);
  });

  it('changes when a byte moves from one file to the next, or a path changes', () => {
    const a = recipeKey([{ path: 'a', content: 'xy' }, { path: 'b', content: '' }]);
    const b = recipeKey([{ path: 'a', content: 'x' }, { path: 'b', content: 'y' }]);
    expect(a).not.toBe(b);
    expect(recipeKey([{ path: 'a', content: 'x' }])).not.toBe(recipeKey([{ path: 'A', content: 'x' }]));
  });

  it('changes with the image format number', () => {
    expect(recipeKey(files, IMAGE_FORMAT)).toBe(recipeKey(files));
    expect(recipeKey(files, IMAGE_FORMAT + 1)).not.toBe(recipeKey(files));
  });
});
