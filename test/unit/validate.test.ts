import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conformanceChecks } from '../../src/conformance/checks.js';
import { exec } from '../../src/system/exec.js';
import { connectorName, listChecks, packageConnector, parseProtocols } from '../../src/conformance/validate.js';

/** `brick-lab validate` up to the point where a lab would boot: what it accepts, refuses and packs. */
const ROOT = resolve(import.meta.dirname, '..', '..');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'brick-validate-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const cli = (args: string[]) => exec([process.execPath, join(ROOT, 'bin', 'brick-lab.js'), ...args], { timeoutMs: 60_000, reject: false });

describe('which checks validate runs', () => {
  it('takes the suite scenarios of the protocol, the two-path ones with --multipath, then the agreement checks', () => {
    const iscsi = conformanceChecks('iscsi', false).map((c) => c.name);
    expect(iscsi).toEqual([
      'round-trip-iscsi-1path',
      'shared-target-iscsi',
      'live-migration-iscsi',
      'orphan-flush-failure',
      'orphan-lun-unmapped',
      'orphan-lun-reuse',
      'orphan-rescan-during-detach',
      'orphan-several-sessions',
      'orphan-no-udev',
      'field-bypath-gone',
      'field-auto-scan',
      'field-restart-lost-state',
      'field-target-destroyed',
      'field-multipathd-claims',
      'field-shared-session',
      'field-host-cut-off',
      'field-reboot-autologin',
      'agreement-iscsi',
    ]);
    const mp = conformanceChecks('iscsi', true).map((c) => c.name);
    expect(mp.filter((n) => !iscsi.includes(n))).toEqual(['round-trip-iscsi-2path', 'orphan-multipath-path-fails', 'field-primary-portal-only', 'field-held-open', 'field-left-suspended', 'field-partition-maps', 'agreement-iscsi-multipath']);
    expect(conformanceChecks('nvmeof', true).map((c) => c.name)).toEqual([
      'round-trip-nvme-1path',
      'shared-target-nvme',
      'live-migration-nvme',
      'orphan-nvme-namespace-gone',
      'field-nvme-target-offline',
      'field-nvme-shared-controller',
      'field-nvme-ctrl-loss',
      'round-trip-nvme-2path',
      'agreement-nvme',
      'agreement-nvme-multipath',
    ]);
    expect(conformanceChecks('local', true).map((c) => c.name)).toEqual(['round-trip-local', 'agreement-local']);
    // Two data networks for the multipath agreement, one otherwise.
    expect(conformanceChecks('iscsi', true).find((c) => c.name === 'agreement-iscsi-multipath')!.needs).toEqual({ computes: 1, dataNetworks: 2 });
  });

  it('lists them with what each does', () => {
    const text = listChecks(['nvmeof'], false);
    expect(text.split('\n').filter(Boolean).map((l) => l.split(/\s+/)[0])).toEqual(['round-trip-nvme-1path', 'shared-target-nvme', 'live-migration-nvme', 'orphan-nvme-namespace-gone', 'field-nvme-target-offline', 'field-nvme-shared-controller', 'field-nvme-ctrl-loss', 'agreement-nvme']);
    expect(text).toMatch(/agreement-nvme\s+the connector's get_volume_paths and get_all_available_volumes/);
  });

  it('reads --protocol as a list, iscsi by default, and refuses anything else', () => {
    expect(parseProtocols([])).toEqual(['iscsi']);
    expect(parseProtocols(['iscsi,nvmeof', 'local', 'iscsi'])).toEqual(['iscsi', 'nvmeof', 'local']);
    expect(() => parseProtocols(['rbd'])).toThrow(/--protocol must be one of iscsi, nvmeof, fc, local \(got "rbd"\)/);
  });
});

describe('packing the connector on the host', () => {
  it('names it after its file, as the agent accepts names', () => {
    expect(connectorName('/x/My Connector.py')).toBe('my-connector.py');
    expect(connectorName('/x/connector.ts')).toBe('connector');
    expect(connectorName('/x/__weird__.sh')).toBe('weird__.sh');
    expect(connectorName('/x/.ts')).toBe('connector');
  });

  it('refuses what is not there, and keeps a program that is not executable as it is', async () => {
    await expect(packageConnector(join(dir, 'missing'))).rejects.toMatchObject({ code: 'CONNECTOR_NOT_FOUND' });
    await mkdir(join(dir, 'adir'));
    await expect(packageConnector(join(dir, 'adir'))).rejects.toMatchObject({ code: 'CONNECTOR_NOT_FOUND', message: expect.stringContaining('not a file') });
    const plain = join(dir, 'plain.sh');
    await writeFile(plain, '#!/bin/sh\necho {}\n');
    await chmod(plain, 0o644);
    expect(await packageConnector(plain)).toMatchObject({ name: 'plain.sh', kind: 'program', executable: false });
    await chmod(plain, 0o755);
    expect(await packageConnector(plain)).toMatchObject({ kind: 'program', executable: true });
    expect(await packageConnector('builtin')).toBeNull();
  });

  it('bundles a TypeScript module into one CommonJS file whose createConnector gives every Connector method', async () => {
    const pkg = (await packageConnector(join(ROOT, 'examples/ts-module/connector.ts')))!;
    expect(pkg).toMatchObject({ name: 'connector', kind: 'module' });
    const file = join(dir, 'bundle.cjs');
    await writeFile(file, pkg.content);
    const mod = createRequire(file)(file) as { createConnector: (p: string) => Record<string, unknown> };
    const c = mod.createConnector('iscsi');
    for (const m of ['normalise', 'connectVolume', 'disconnectVolume', 'getVolumePaths', 'getAllAvailableVolumes', 'getSearchPath']) expect(typeof c[m], m).toBe('function');
    expect((c.getSearchPath as () => string)()).toBe('/dev/disk/by-path');
    expect(c.protocol).toBe('iscsi');
  });

  it('says what is wrong with a module that does not build', async () => {
    const bad = join(dir, 'bad.ts');
    await writeFile(bad, 'import { nothing } from "./does-not-exist";\nexport const createConnector = () => nothing;\n');
    await expect(packageConnector(bad)).rejects.toMatchObject({ code: 'CONNECTOR_BUILD_FAILED', message: expect.stringContaining('does-not-exist') });
  });
});

describe('brick-lab validate refuses bad input before anything boots', () => {
  it('without --connector, with a bad --protocol, a bad timeout or an unknown check', async () => {
    const none = await cli(['validate']);
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toMatch(/validate needs --connector PATH\|os-brick\|builtin/);
    const proto = await cli(['validate', '--connector', 'builtin', '--protocol', 'rbd']);
    expect(proto.exitCode).toBe(2);
    const t = await cli(['validate', '--connector', 'builtin', '--connector-timeout', '0']);
    expect(t.exitCode).toBe(2);
    expect(t.stderr).toMatch(/--connector-timeout must be whole seconds/);
    for (const verb of [['validate', '--connector', 'builtin'], ['run']]) {
      for (const bad of ['0', 'two', '65', '1.5', '', ' 2']) {
        const j = await cli([...verb, '--jobs', bad]);
        expect(j.exitCode, `${verb[0]} --jobs ${bad}`).toBe(2);
        expect(j.stderr).toContain(`--jobs must be a whole number from 1 to 64, scenarios at once (got ${JSON.stringify(bad)})`);
      }
    }
    const check = await cli(['validate', '--connector', 'builtin', '--check', 'nope']);
    expect(check.exitCode).toBe(1);
    expect(check.stderr).toMatch(/UNKNOWN_CHECK: no check nope for iscsi/);
    expect(check.stderr).toMatch(/the checks are: round-trip-iscsi-1path, .*agreement-iscsi/);
    const missing = await cli(['validate', '--connector', join(dir, 'nothing-here')]);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toMatch(/CONNECTOR_NOT_FOUND: no connector at/);
  });
});
