import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgent } from '../../src/agent/server.js';
import { MAX_INSTALLED_CONNECTORS } from '../../src/connectors/registry.js';
import { programsStarted } from '../../src/system/exec.js';
import { replayHostFs } from '../../src/system/hostfs-record.js';
import { checkRoomForDisk } from '../../src/targets/scsi-debug.js';
import { MAX_TARGET_VOLUMES, TargetVolumes } from '../../src/targets/volumes.js';
import { BrickError } from '../../src/system/errors.js';

/**
 * What one request can make is bounded, with a coded answer at the bound (LIMIT_REACHED, 409)
 * and nothing made: local disks against the node's memory, a target's volumes, installed
 * connectors. The memory figures are a real compute's (test/fixtures/README.md).
 */
const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'guest-6.1.0-56');
const TOKEN = 'bGltaXRzLXRlc3QtdG9rZW4tZm9yLXRoZS1hZ2VudHMtYm91bmRz';
const AUTH = { authorization: `Bearer ${TOKEN}` };

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof BrickError ? e.code : 'not a BrickError';
  }
  return undefined;
}

describe('local disks fit the node memory', () => {
  const node = (meminfo: string) =>
    replayHostFs({
      text: { '/proc/meminfo': readFileSync(join(FIXTURES, meminfo), 'utf8'), '/sys/module/scsi_debug/parameters/dev_size_mb': '32\n' },
      list: {},
      link: {},
      exists: {},
    });

  it('makes one on a compute with none (197 MiB available, 165 left after it)', () => {
    expect(codeOf(() => checkRoomForDisk(node('meminfo-compute-no-local-disk')))).toBeUndefined();
  });

  it('makes a third on a compute holding two (129 MiB available)', () => {
    expect(codeOf(() => checkRoomForDisk(node('meminfo-compute-two-local-disks')))).toBeUndefined();
  });

  it('refuses a fourth on a 384 MiB compute holding three (84 MiB available), saying why and what to do', () => {
    let err: BrickError | undefined;
    try {
      checkRoomForDisk(node('meminfo-compute-three-local-disks'));
    } catch (e) {
      err = e as BrickError;
    }
    expect(err?.code).toBe('LIMIT_REACHED');
    expect(err?.message).toMatch(/another 32 MiB disk would leave 52 MiB .* under the 64 MiB/);
    expect(err?.hint).toMatch(/DELETE \/v1\/local-disks\/HOST.*memoryMiB/);
  });
});

describe("a target's volumes", () => {
  it(`refuses volume ${MAX_TARGET_VOLUMES + 1} before anything is made or started`, async () => {
    const volumes = new TargetVolumes('lab', [{ name: 'path-a', address: '10.10.1.10' }], '/nonexistent/lio_helper.py');
    for (let i = 0; i < MAX_TARGET_VOLUMES; i++) {
      volumes.record({ name: `v${i}`, protocol: 'iscsi', id: String(i), sizeMiB: 1, backing: { kind: 'ramdisk' }, portals: [], connectionInfo: { driver_volume_type: 'iscsi', data: {} } as never, createdAt: '' });
    }
    const started = programsStarted();
    await expect((async () => volumes.createIscsi({ name: 'one-more', sizeMiB: 8 }))()).rejects.toMatchObject({ code: 'LIMIT_REACHED', statusCode: 409 });
    await expect((async () => volumes.createNvme({ name: 'one-more', sizeMiB: 8 }))()).rejects.toMatchObject({ code: 'LIMIT_REACHED' });
    expect(programsStarted()).toBe(started);
    expect(existsSync('/var/lib/brick-lab/volumes/one-more.img')).toBe(false);
    expect(volumes.list()).toHaveLength(MAX_TARGET_VOLUMES);
  });
});

describe('installed connectors', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'brick-limits-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it(`keeps at most ${MAX_INSTALLED_CONNECTORS}; one more is refused and writes nothing, a replacement is taken`, async () => {
    const app = await buildAgent({ lab: 't', node: 'compute-t', role: 'compute', token: TOKEN, compute: true, connectorsDir: join(dir, 'c') });
    try {
      const put = (name: string) =>
        app.inject({ method: 'PUT', url: `/v1/connectors/programs/${name}`, headers: AUTH, payload: { content: Buffer.from('#!/bin/sh\nexit 0\n').toString('base64'), kind: 'program' } });
      for (let i = 0; i < MAX_INSTALLED_CONNECTORS; i++) expect((await put(`c${i}`)).statusCode).toBe(201);
      const refused = await put('one-more');
      expect(refused.statusCode).toBe(409);
      expect(refused.json()).toMatchObject({ code: 'LIMIT_REACHED', message: expect.stringMatching(/^name: 32 connectors are installed/) });
      expect(await readdir(join(dir, 'c'))).not.toContain('one-more');
      expect((await put('c0')).statusCode).toBe(201);
      expect((await app.inject({ method: 'DELETE', url: '/v1/connectors/programs/c1', headers: AUTH })).statusCode).toBe(204);
      expect((await put('one-more')).statusCode).toBe(201);
    } finally {
      await app.close();
    }
  });
});
