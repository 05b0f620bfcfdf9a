import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadOrder, moduleName, parseBuiltin, parseModulesDep, type ModuleDeps } from '../../src/lab/image/modules.js';
import { FIXTURE_KERNELS, guestFixtureUrl, type FixtureKernel } from './inventory-fixtures.js';

/**
 * What the two captured kernels' module trees (test/fixtures/README.md: subsets of modules.dep
 * and modules.builtin) have differently, for the tests below:
 * - 6.12's modules are xz-compressed (`.ko.xz`), 6.1's are not;
 * - 6.12 builds virtio, virtio_ring and virtio_pci into the kernel (no line in modules.dep);
 * - 6.12 has no fscache module (it is part of netfs), and its 9pnet_virtio needs netfs;
 * - 6.12 builds the CRC helpers into the kernel (crc-t10dif, crc64 and crc64-rocksoft are in its
 *   modules.builtin) and has no t10-pi module: its nvme-core needs nvme-auth only, and
 *   nvme-fabrics nvme-keyring besides;
 * - 6.12's modules.builtin has no line under kernel/net/unix/ (af_unix is no module there).
 */
interface KernelModules {
  ext: string;
  /** Modules of the stage 1 recipe (images/guests/*.json) that are modules on this kernel, and nvme_tcp. */
  stage1: string[];
  /** Some entries of modules.dep, as they read (undefined: not a module). */
  entries: Record<string, { path: string; deps: string[] } | undefined>;
  /** Pairs [first, then] of files a load order must keep, spot-checked by eye against modules.dep. */
  before: Array<[string, string]>;
  /** A file several of the wanted modules need: loaded once. */
  shared: string;
  /** A dependency of 9p besides netfs. */
  ninePDep: string;
  /** Built-in modules to ask for beside the wanted ones: skipped. */
  builtinAsked: string[];
  /** Every name in the modules.builtin subset. */
  builtin: string[];
}
const KERNELS: Record<FixtureKernel, KernelModules> = {
  '6.1.0-56': {
    ext: '.ko',
    stage1: ['virtio_pci', '9pnet_virtio', '9p', 'overlay', 'nvme_tcp'],
    entries: {
      virtio_pci: {
        path: 'kernel/drivers/virtio/virtio_pci.ko',
        deps: ['kernel/drivers/virtio/virtio_pci_legacy_dev.ko', 'kernel/drivers/virtio/virtio_pci_modern_dev.ko', 'kernel/drivers/virtio/virtio.ko', 'kernel/drivers/virtio/virtio_ring.ko'],
      },
      '9p': { path: 'kernel/fs/9p/9p.ko', deps: ['kernel/net/9p/9pnet.ko', 'kernel/fs/fscache/fscache.ko', 'kernel/fs/netfs/netfs.ko'] },
      fscache: { path: 'kernel/fs/fscache/fscache.ko', deps: ['kernel/fs/netfs/netfs.ko'] },
    },
    before: [
      ['kernel/drivers/virtio/virtio_ring.ko', 'kernel/drivers/virtio/virtio.ko'],
      ['kernel/net/9p/9pnet.ko', 'kernel/net/9p/9pnet_virtio.ko'],
      ['kernel/fs/netfs/netfs.ko', 'kernel/fs/fscache/fscache.ko'],
      ['kernel/fs/fscache/fscache.ko', 'kernel/fs/9p/9p.ko'],
      ['kernel/drivers/nvme/host/nvme-core.ko', 'kernel/drivers/nvme/host/nvme-fabrics.ko'],
      ['kernel/drivers/nvme/host/nvme-fabrics.ko', 'kernel/drivers/nvme/host/nvme-tcp.ko'],
      ['kernel/lib/crc64.ko', 'kernel/lib/crc64-rocksoft.ko'],
    ],
    // virtio and virtio_ring are shared by virtio_pci and 9pnet_virtio.
    shared: 'kernel/drivers/virtio/virtio_ring.ko',
    ninePDep: 'fscache',
    builtinAsked: ['unix', 'crc32'],
    builtin: ['bsg', 'mq_deadline', 'crc_ccitt', 'crc32', 'unix'],
  },
  '6.12.117': {
    ext: '.ko.xz',
    // virtio_pci is built in.
    stage1: ['9pnet_virtio', '9p', 'overlay', 'nvme_tcp'],
    entries: {
      virtio_pci: undefined,
      '9p': { path: 'kernel/fs/9p/9p.ko.xz', deps: ['kernel/net/9p/9pnet.ko.xz', 'kernel/fs/netfs/netfs.ko.xz'] },
      fscache: undefined,
      '9pnet_virtio': { path: 'kernel/net/9p/9pnet_virtio.ko.xz', deps: ['kernel/net/9p/9pnet.ko.xz', 'kernel/fs/netfs/netfs.ko.xz'] },
      nvme_core: { path: 'kernel/drivers/nvme/host/nvme-core.ko.xz', deps: ['kernel/drivers/nvme/common/nvme-auth.ko.xz'] },
    },
    before: [
      ['kernel/net/9p/9pnet.ko.xz', 'kernel/net/9p/9pnet_virtio.ko.xz'],
      ['kernel/fs/netfs/netfs.ko.xz', 'kernel/net/9p/9pnet_virtio.ko.xz'],
      ['kernel/fs/netfs/netfs.ko.xz', 'kernel/fs/9p/9p.ko.xz'],
      ['kernel/drivers/nvme/common/nvme-auth.ko.xz', 'kernel/drivers/nvme/host/nvme-core.ko.xz'],
      ['kernel/drivers/nvme/common/nvme-keyring.ko.xz', 'kernel/drivers/nvme/host/nvme-fabrics.ko.xz'],
      ['kernel/drivers/nvme/host/nvme-core.ko.xz', 'kernel/drivers/nvme/host/nvme-fabrics.ko.xz'],
      ['kernel/drivers/nvme/host/nvme-fabrics.ko.xz', 'kernel/drivers/nvme/host/nvme-tcp.ko.xz'],
    ],
    // netfs is shared by 9p and 9pnet_virtio.
    shared: 'kernel/fs/netfs/netfs.ko.xz',
    ninePDep: '9pnet',
    builtinAsked: ['crc64', 'crc32'],
    builtin: ['bsg', 'mq_deadline', 'crc_ccitt', 'crc_t10dif', 'crc32', 'crc64', 'crc64_rocksoft'],
  },
};

/** Every dependency before its user, each file once, and nothing but the wanted modules' closure. */
function expectValidOrder(deps: ModuleDeps, order: string[], wanted: string[]): void {
  expect(new Set(order).size).toBe(order.length);
  const byPath = new Map([...deps].map(([name, m]) => [m.path, { name, ...m }]));
  order.forEach((path, i) => {
    const m = byPath.get(path);
    expect(m, `${path} is in modules.dep`).toBeDefined();
    for (const d of m!.deps) {
      const at = order.indexOf(d);
      expect(at, `${d} (needed by ${path}) is loaded`).toBeGreaterThanOrEqual(0);
      expect(at, `${d} is loaded before ${path}`).toBeLessThan(i);
    }
  });
  // modules.dep lists the full transitive closure per module, so the set is exactly wanted + their deps.
  const closure = new Set<string>();
  for (const w of wanted) {
    const m = deps.get(moduleName(w))!;
    closure.add(m.path);
    for (const d of m.deps) closure.add(d);
  }
  expect(new Set(order)).toEqual(closure);
}

describe('moduleName', () => {
  it('drops the directory and .ko(.xz|.zst|.gz) and spells dashes as underscores', () => {
    expect(moduleName('kernel/drivers/nvme/host/nvme-tcp.ko')).toBe('nvme_tcp');
    expect(moduleName('kernel/net/9p/9pnet_virtio.ko.xz')).toBe('9pnet_virtio');
    expect(moduleName('kernel/fs/overlayfs/overlay.ko.zst')).toBe('overlay');
    expect(moduleName('kernel/lib/crc-t10dif.ko.gz')).toBe('crc_t10dif');
    expect(moduleName('nvme-tcp')).toBe('nvme_tcp');
  });
});

describe('parseModulesDep on written lines', () => {
  it('ignores blank lines and lines without a colon', () => {
    const m = parseModulesDep('\n# comment\nkernel/a.ko: kernel/b.ko\n\nkernel/b.ko:\n');
    expect([...m.keys()]).toEqual(['a', 'b']);
    expect(m.get('a')?.deps).toEqual(['kernel/b.ko']);
  });
});

describe('loadOrder on written lines', () => {
  it('names the module that wanted a missing dependency', () => {
    const broken = parseModulesDep('kernel/a.ko: kernel/gone.ko\n');
    expect(() => loadOrder(broken, ['a'])).toThrow(/gone.*wanted by a/);
  });
});

describe.each(FIXTURE_KERNELS)('the module tree of guest kernel %s', (kernel) => {
  const K = KERNELS[kernel];
  const DEP_TEXT = readFileSync(guestFixtureUrl('modules.dep', kernel), 'utf8');
  const BUILTIN_TEXT = readFileSync(guestFixtureUrl('modules.builtin', kernel), 'utf8');
  const deps = parseModulesDep(DEP_TEXT);
  const ko = (p: string): string => `${p}${K.ext}`;

  describe('parseModulesDep', () => {
    it('indexes every line by module name with its path and dependencies', () => {
      const lines = DEP_TEXT.split('\n').filter(Boolean);
      expect(deps.size).toBe(lines.length);
      // Every file of the tree has the kernel's one suffix.
      for (const m of deps.values()) for (const p of [m.path, ...m.deps]) expect(p.endsWith(K.ext) && !p.slice(0, -K.ext.length).includes('.ko'), p).toBe(true);
      for (const [name, entry] of Object.entries(K.entries)) expect(deps.get(name), name).toEqual(entry);
      expect(deps.get('overlay')).toEqual({ path: ko('kernel/fs/overlayfs/overlay'), deps: [] });
      expect(deps.get('nvme_tcp')?.path).toBe(ko('kernel/drivers/nvme/host/nvme-tcp'));
      expect(deps.get('nvme-tcp')).toBeUndefined();
    });
  });

  describe('loadOrder', () => {
    const wanted = K.stage1;

    it('orders the stage 1 modules (9pnet_virtio, 9p, overlay, nvme_tcp; virtio_pci where it is a module) dependencies first, each once', () => {
      const order = loadOrder(deps, wanted);
      expectValidOrder(deps, order, wanted);
      // Spot checks a reader can verify against modules.dep by eye.
      const at = (p: string): number => order.indexOf(p);
      for (const [first, then] of K.before) {
        expect(at(first), first).toBeGreaterThanOrEqual(0);
        expect(at(first), `${first} before ${then}`).toBeLessThan(at(then));
      }
      // Needed by two of them: loaded once.
      expect(order.filter((p) => p === K.shared)).toHaveLength(1);
      // A module built into the kernel is not in modules.dep: asked for without modules.builtin, an error.
      if (K.entries.virtio_pci === undefined) expect(() => loadOrder(deps, ['virtio_pci', ...wanted])).toThrow(/virtio_pci/);
    });

    it('gives a valid order for the EROFS root on virtio-blk', () => {
      const root = ['virtio_blk', 'erofs', 'overlay', ...(deps.has('virtio_pci') ? ['virtio_pci'] : [])];
      const order = loadOrder(deps, root);
      expectValidOrder(deps, order, root);
      expect(order.indexOf(ko('kernel/lib/libcrc32c'))).toBeLessThan(order.indexOf(ko('kernel/fs/erofs/erofs')));
    });

    it('gives a valid order for the iSCSI, target and multipath stacks too', () => {
      const more = ['iscsi_tcp', 'target_core_iblock', 'iscsi_target_mod', 'nvmet_tcp', 'dm_multipath', 'virtio_net', 'scsi_dh_alua'];
      expectValidOrder(deps, loadOrder(deps, more), more);
    });

    it('is the same whether a module is asked for by name, dashed name or path', () => {
      const a = loadOrder(deps, ['nvme_tcp']);
      expect(loadOrder(deps, ['nvme-tcp'])).toEqual(a);
      expect(loadOrder(deps, [ko('kernel/drivers/nvme/host/nvme-tcp')])).toEqual(a);
      expect(a.at(-1)).toBe(ko('kernel/drivers/nvme/host/nvme-tcp'));
    });

    it('lists a module asked for twice, or already pulled in as a dependency, once', () => {
      const order = loadOrder(deps, ['9p', 'netfs', '9p', K.ninePDep]);
      expect(new Set(order).size).toBe(order.length);
      expect(order).toEqual(loadOrder(deps, ['9p']));
    });

    it('throws for an unknown module, naming it', () => {
      expect(() => loadOrder(deps, [wanted[0]!, 'no_such_module'])).toThrow(/no_such_module/);
    });

    it('skips a built-in module instead of throwing', () => {
      const builtin = parseBuiltin(BUILTIN_TEXT);
      const order = loadOrder(deps, [...K.builtinAsked, ...wanted], builtin);
      expect(order).toEqual(loadOrder(deps, wanted));
      expect(() => loadOrder(deps, [K.builtinAsked[0]!])).toThrow(new RegExp(K.builtinAsked[0]!));
    });
  });

  describe('parseBuiltin', () => {
    it('reads module names from the guest modules.builtin', () => {
      expect(parseBuiltin(BUILTIN_TEXT)).toEqual(new Set(K.builtin));
    });
  });
});
