import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bzImagePayload, extractVmlinux } from '../../src/lab/image/build.js';

/**
 * The guest kernel unpacked from its bzImage, as the image build does for a PVH boot. The images
 * here are made to the boot protocol's layout (the setup header's `HdrS`, version, setup_sects,
 * payload_offset and payload_length at 0x1f1-0x24f) around a payload compressed by the real xz and
 * zstd, with the uncompressed size appended after it as the kernel's build appends it: Debian
 * bookworm's kernels carry an xz payload, trixie's (6.12.117+deb13) a zstd one (its header:
 * setup_sects 39, payload_offset 716, payload_length 11922360, checked on the real file).
 */
const dir = mkdtempSync(join(tmpdir(), 'brick-vmlinux-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// An "ELF" the size of a few pages: the magic, then bytes that compress.
const ELF = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), Buffer.alloc(3 * 4096, 'brick-lab kernel text ')]);

function compress(tool: string[], data: Buffer): Buffer {
  const r = spawnSync(tool[0]!, tool.slice(1), { input: data, maxBuffer: 64 << 20 });
  expect(r.status, r.stderr?.toString()).toBe(0);
  return r.stdout;
}

function bzImage(payload: Buffer, opts: { setupSects?: number; offset?: number; version?: number; magic?: string } = {}): Buffer {
  const setupSects = opts.setupSects ?? 39;
  const offset = opts.offset ?? 716;
  const withSize = Buffer.concat([payload, Buffer.from(new Uint32Array([ELF.length]).buffer)]);
  const img = Buffer.alloc((setupSects + 1) * 512 + offset + withSize.length + 512, 0xcc);
  img[0x1f1] = setupSects;
  img.write(opts.magic ?? 'HdrS', 0x202, 'latin1');
  img.writeUInt16LE(opts.version ?? 0x20f, 0x206);
  img.writeUInt32LE(offset, 0x248);
  img.writeUInt32LE(withSize.length, 0x24c);
  withSize.copy(img, (setupSects + 1) * 512 + offset);
  return img;
}

async function unpack(img: Buffer, name: string): Promise<{ how: string; out: Buffer }> {
  const src = join(dir, `${name}.vmlinuz`);
  const out = join(dir, `${name}.vmlinux`);
  writeFileSync(src, img);
  const how = await extractVmlinux(src, out);
  return { how, out: readFileSync(out) };
}

describe('extractVmlinux', () => {
  it("unpacks an xz payload (bookworm's kernels)", async () => {
    const { how, out } = await unpack(bzImage(compress(['xz', '--check=crc32', '--stdout'], ELF)), 'xz');
    expect(how).toBe('vmlinux');
    expect(out.equals(ELF)).toBe(true);
  });

  it("unpacks a zstd payload (trixie's), without the size the build appends after the frame", async () => {
    const img = bzImage(compress(['zstd', '--stdout', '-q'], ELF));
    expect(bzImagePayload(img)!.subarray(0, 4).toString('hex')).toBe('28b52ffd');
    const { how, out } = await unpack(img, 'zstd');
    expect(how).toBe('vmlinux');
    expect(out.equals(ELF)).toBe(true);
  });

  it('boots the bzImage as it is when its payload is another compression, or is no ELF', async () => {
    const gzip = bzImage(compress(['gzip', '-c'], ELF));
    expect((await unpack(gzip, 'gzip')).how).toBe('bzImage');
    expect((await unpack(gzip, 'gzip')).out.equals(gzip)).toBe(true);
    const notElf = bzImage(compress(['zstd', '--stdout', '-q'], Buffer.alloc(8192, 'not a kernel')));
    expect((await unpack(notElf, 'notelf')).how).toBe('bzImage');
    expect(readFileSync(join(dir, 'notelf.vmlinux')).equals(notElf)).toBe(true);
  });

  it('finds no payload in a file that is no bzImage of boot protocol 2.08 or later, or whose payload runs past its end', () => {
    const good = bzImage(compress(['zstd', '--stdout', '-q'], ELF));
    expect(bzImagePayload(good)).not.toBeNull();
    expect(bzImagePayload(bzImage(Buffer.alloc(16), { magic: 'XXXX' }))).toBeNull();
    expect(bzImagePayload(bzImage(Buffer.alloc(16), { version: 0x207 }))).toBeNull();
    expect(bzImagePayload(good.subarray(0, good.length - 1024))).toBeNull();
    expect(bzImagePayload(Buffer.alloc(100))).toBeNull();
  });
});
