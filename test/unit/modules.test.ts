import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadOrder, moduleName, parseBuiltin, parseModulesDep } from '../../src/lab/image/modules.js';

const FIXTURES = new URL('../fixtures/guest-6.1.0-56/', import.meta.url);
const DEP_TEXT = readFileSync(new URL('modules.dep', FIXTURES), 'utf8');
const BUILTIN_TEXT = readFileSync(new URL('modules.builtin', FIXTURES), 'utf8');

const deps = parseModulesDep(DEP_TEXT);

/** Every dependency before its user, each file once, and nothing but the wanted modules' closure. */
function expectValidOrder(order: string[], wanted: string[]): void {
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

describe('parseModulesDep on the guest kernel 6.1.0-56-amd64', () => {
  it('indexes every line by module name with its path and dependencies', () => {
    const lines = DEP_TEXT.split('\n').filter(Boolean);
    expect(deps.size).toBe(lines.length);
    expect(deps.get('virtio_pci')).toEqual({
      path: 'kernel/drivers/virtio/virtio_pci.ko',
      deps: [
        'kernel/drivers/virtio/virtio_pci_legacy_dev.ko',
        'kernel/drivers/virtio/virtio_pci_modern_dev.ko',
        'kernel/drivers/virtio/virtio.ko',
        'kernel/drivers/virtio/virtio_ring.ko',
      ],
    });
    expect(deps.get('overlay')).toEqual({ path: 'kernel/fs/overlayfs/overlay.ko', deps: [] });
    expect(deps.get('nvme_tcp')?.path).toBe('kernel/drivers/nvme/host/nvme-tcp.ko');
    expect(deps.get('nvme-tcp')).toBeUndefined();
  });

  it('ignores blank lines and lines without a colon', () => {
    const m = parseModulesDep('\n# comment\nkernel/a.ko: kernel/b.ko\n\nkernel/b.ko:\n');
    expect([...m.keys()]).toEqual(['a', 'b']);
    expect(m.get('a')?.deps).toEqual(['kernel/b.ko']);
  });
});

describe('loadOrder', () => {
  const wanted = ['virtio_pci', '9pnet_virtio', '9p', 'overlay', 'nvme_tcp'];

  it('orders virtio_pci, 9pnet_virtio, 9p, overlay and nvme_tcp dependencies first, each once', () => {
    const order = loadOrder(deps, wanted);
    expectValidOrder(order, wanted);
    // Spot checks a reader can verify against modules.dep by eye.
    const at = (p: string): number => order.indexOf(p);
    expect(at('kernel/drivers/virtio/virtio_ring.ko')).toBeLessThan(at('kernel/drivers/virtio/virtio.ko'));
    expect(at('kernel/net/9p/9pnet.ko')).toBeLessThan(at('kernel/net/9p/9pnet_virtio.ko'));
    expect(at('kernel/fs/netfs/netfs.ko')).toBeLessThan(at('kernel/fs/fscache/fscache.ko'));
    expect(at('kernel/fs/fscache/fscache.ko')).toBeLessThan(at('kernel/fs/9p/9p.ko'));
    expect(at('kernel/drivers/nvme/host/nvme-core.ko')).toBeLessThan(at('kernel/drivers/nvme/host/nvme-fabrics.ko'));
    expect(at('kernel/drivers/nvme/host/nvme-fabrics.ko')).toBeLessThan(at('kernel/drivers/nvme/host/nvme-tcp.ko'));
    expect(at('kernel/lib/crc64.ko')).toBeLessThan(at('kernel/lib/crc64-rocksoft.ko'));
    // virtio and virtio_ring are shared by virtio_pci and 9pnet_virtio: loaded once.
    expect(order.filter((p) => p.endsWith('/virtio_ring.ko'))).toHaveLength(1);
  });

  it('gives a valid order for the EROFS root on virtio-blk', () => {
    const root = ['virtio_pci', 'virtio_blk', 'erofs', 'overlay'];
    const order = loadOrder(deps, root);
    expectValidOrder(order, root);
    expect(order.indexOf('kernel/lib/libcrc32c.ko')).toBeLessThan(order.indexOf('kernel/fs/erofs/erofs.ko'));
  });

  it('gives a valid order for the iSCSI, target and multipath stacks too', () => {
    const more = ['iscsi_tcp', 'target_core_iblock', 'iscsi_target_mod', 'nvmet_tcp', 'dm_multipath', 'virtio_net', 'scsi_dh_alua'];
    expectValidOrder(loadOrder(deps, more), more);
  });

  it('is the same whether a module is asked for by name, dashed name or path', () => {
    const a = loadOrder(deps, ['nvme_tcp']);
    expect(loadOrder(deps, ['nvme-tcp'])).toEqual(a);
    expect(loadOrder(deps, ['kernel/drivers/nvme/host/nvme-tcp.ko'])).toEqual(a);
    expect(a.at(-1)).toBe('kernel/drivers/nvme/host/nvme-tcp.ko');
  });

  it('lists a module asked for twice, or already pulled in as a dependency, once', () => {
    const order = loadOrder(deps, ['9p', 'netfs', '9p', 'fscache']);
    expect(new Set(order).size).toBe(order.length);
    expect(order).toEqual(loadOrder(deps, ['9p']));
  });

  it('throws for an unknown module, naming it', () => {
    expect(() => loadOrder(deps, ['virtio_pci', 'no_such_module'])).toThrow(/no_such_module/);
  });

  it('names the module that wanted a missing dependency', () => {
    const broken = parseModulesDep('kernel/a.ko: kernel/gone.ko\n');
    expect(() => loadOrder(broken, ['a'])).toThrow(/gone.*wanted by a/);
  });

  it('skips a built-in module instead of throwing', () => {
    const builtin = parseBuiltin(BUILTIN_TEXT);
    const order = loadOrder(deps, ['unix', 'virtio_pci', 'crc32'], builtin);
    expect(order).toEqual(loadOrder(deps, ['virtio_pci']));
    expect(() => loadOrder(deps, ['unix'])).toThrow(/unix/);
  });
});

describe('parseBuiltin', () => {
  it('reads module names from the guest modules.builtin', () => {
    const b = parseBuiltin(BUILTIN_TEXT);
    expect(b).toEqual(new Set(['bsg', 'mq_deadline', 'crc_ccitt', 'crc32', 'unix']));
  });
});
