import { spawnSync } from 'node:child_process';
import { closeSync, lstatSync, mkdtempSync, openSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCpio, type CpioEntry } from '../../src/lab/image/cpio.js';

const HELLO = Buffer.from('#!/bin/sh\necho hello\n'); // 21 bytes: needs padding

const ENTRIES: CpioEntry[] = [
  // Deliberately unsorted, with a leading slash on one path.
  { path: 'etc/motd', kind: 'file', data: Buffer.from('hello') },
  { path: 'bin/hello', kind: 'file', mode: 0o755, data: HELLO },
  { path: 'sbin', kind: 'symlink', target: 'bin' },
  { path: 'etc', kind: 'dir', mode: 0o700 },
  { path: 'bin', kind: 'dir' },
  { path: 'etc/empty', kind: 'file' },
  { path: 'etc/secret', kind: 'file', mode: 0o600, data: Buffer.from('abc') },
  { path: 'etc/rc', kind: 'symlink', target: '../bin/hello' },
  { path: '/init', kind: 'file', mode: 0o755, data: Buffer.from('#!/bin/sh\n') },
];

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'brick-cpio-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Run cpio with the archive file as its stdin (argument vector, no shell). */
function cpio(archive: string, args: string[], cwd = dir): { stdout: string; stderr: string; status: number | null } {
  const fd = openSync(archive, 'r');
  try {
    const r = spawnSync('cpio', args, { cwd, stdio: [fd, 'pipe', 'pipe'], encoding: 'utf8', timeout: 30_000 });
    if (r.error) throw r.error;
    return { stdout: r.stdout, stderr: r.stderr, status: r.status };
  } finally {
    closeSync(fd);
  }
}

function writeArchive(name: string, entries: readonly CpioEntry[]): string {
  const p = join(dir, name);
  writeFileSync(p, buildCpio(entries));
  return p;
}

interface Parsed {
  offset: number;
  name: string;
  mode: number;
  size: number;
  nlink: number;
  mtime: number;
  rdevMajor: number;
  rdevMinor: number;
  dataOffset: number;
}

/** An independent reader of the newc layout, to check alignment and the trailer byte by byte. */
function parseNewc(buf: Buffer): Parsed[] {
  const out: Parsed[] = [];
  let off = 0;
  for (;;) {
    expect(off % 4).toBe(0);
    expect(buf.toString('ascii', off, off + 6)).toBe('070701');
    const field = (i: number): number => parseInt(buf.toString('ascii', off + 6 + i * 8, off + 14 + i * 8), 16);
    const nameLen = field(11);
    const nameStart = off + 110;
    const name = buf.toString('utf8', nameStart, nameStart + nameLen - 1);
    expect(buf[nameStart + nameLen - 1]).toBe(0);
    const dataOffset = Math.ceil((nameStart + nameLen) / 4) * 4;
    const size = field(6);
    out.push({ offset: off, name, mode: field(1), nlink: field(4), mtime: field(5), size, rdevMajor: field(9), rdevMinor: field(10), dataOffset });
    // Padding bytes are zero.
    expect(buf.subarray(nameStart + nameLen, dataOffset).every((b) => b === 0)).toBe(true);
    const end = dataOffset + size;
    const next = Math.ceil(end / 4) * 4;
    expect(buf.subarray(end, next).every((b) => b === 0)).toBe(true);
    off = next;
    if (name === 'TRAILER!!!') break;
  }
  expect(off).toBe(buf.length);
  return out;
}

describe('buildCpio', () => {
  it('writes sorted newc records, 4-byte aligned, ending with the trailer', () => {
    const buf = buildCpio(ENTRIES);
    expect(buf.length % 4).toBe(0);
    const parsed = parseNewc(buf);
    expect(parsed.map((p) => p.name)).toEqual([
      'bin', 'bin/hello', 'etc', 'etc/empty', 'etc/motd', 'etc/rc', 'etc/secret', 'init', 'sbin', 'TRAILER!!!',
    ]);
    const trailer = parsed.at(-1)!;
    expect(trailer.size).toBe(0);
    expect(trailer.mode).toBe(0);
    const hello = parsed.find((p) => p.name === 'bin/hello')!;
    expect(buf.subarray(hello.dataOffset, hello.dataOffset + hello.size)).toEqual(HELLO);
    expect(hello.mode).toBe(0o100755);
    expect(parsed.find((p) => p.name === 'etc')!.mode).toBe(0o040700);
    expect(parsed.find((p) => p.name === 'sbin')!.mode).toBe(0o120777);
    expect(parsed.every((p) => p.mtime === 0)).toBe(true);
  });

  it('is byte-for-byte the same whatever order the entries come in', () => {
    expect(buildCpio([...ENTRIES].reverse()).equals(buildCpio(ENTRIES))).toBe(true);
  });

  it('sorts by the stored name, so a directory precedes its contents even when written with a leading slash', () => {
    const names = parseNewc(
      buildCpio([
        { path: '/etc/motd', kind: 'file', data: Buffer.from('x') },
        { path: 'etc', kind: 'dir' },
        { path: '/dev', kind: 'dir' },
        { path: 'dev/console', kind: 'chardev', major: 5, minor: 1 },
      ]),
    ).map((p) => p.name);
    expect(names).toEqual(['dev', 'dev/console', 'etc', 'etc/motd', 'TRAILER!!!']);
  });

  it('refuses an entry with an empty path', () => {
    expect(() => buildCpio([{ path: '/', kind: 'dir' }])).toThrow(/empty path/);
  });

  it('lists with cpio -t exactly the entries given (the trailer is not an entry)', () => {
    const archive = writeArchive('list.cpio', ENTRIES);
    const r = cpio(archive, ['-t', '--quiet']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean)).toEqual([
      'bin', 'bin/hello', 'etc', 'etc/empty', 'etc/motd', 'etc/rc', 'etc/secret', 'init', 'sbin',
    ]);
  });

  it('lists with cpio -tv the types, modes, sizes, link targets and device numbers', () => {
    const archive = writeArchive('verbose.cpio', [
      ...ENTRIES,
      { path: 'dev/console', kind: 'chardev', mode: 0o600, major: 5, minor: 1 },
    ]);
    const r = cpio(archive, ['-tv', '--quiet']);
    expect(r.status).toBe(0);
    const lines = new Map(
      r.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => {
          const name = l.replace(/ -> .*$/, '').split(/\s+/).pop()!;
          return [name, l];
        }),
    );
    expect(lines.get('bin/hello')).toMatch(/^-rwxr-xr-x\s+1\s+\S+\s+\S+\s+21\s/);
    expect(lines.get('etc/motd')).toMatch(/^-rw-r--r--\s+1\s+\S+\s+\S+\s+5\s/);
    expect(lines.get('etc/secret')).toMatch(/^-rw-------\s/);
    expect(lines.get('etc')).toMatch(/^drwx------\s/);
    expect(lines.get('bin')).toMatch(/^drwxr-xr-x\s/);
    expect(lines.get('sbin')).toMatch(/^lrwxrwxrwx\s.* sbin -> bin$/);
    expect(lines.get('etc/rc')).toMatch(/ etc\/rc -> \.\.\/bin\/hello$/);
    expect(lines.get('dev/console')).toMatch(/^crw-------\s+1\s+\S+\s+\S+\s+5,\s+1\s/);
    expect(r.stdout).toMatch(/ 1970 /); // mtime 0
  });

  it('extracts with cpio -idm to the same files, modes, symlinks and directories', () => {
    const archive = writeArchive('extract.cpio', ENTRIES);
    const out = mkdtempSync(join(dir, 'out-'));
    const r = cpio(archive, ['-idm', '--quiet', '--no-absolute-filenames'], out);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);

    expect(readFileSync(join(out, 'bin/hello'))).toEqual(HELLO);
    expect(readFileSync(join(out, 'etc/motd'), 'utf8')).toBe('hello');
    expect(readFileSync(join(out, 'etc/empty')).length).toBe(0);
    expect(readFileSync(join(out, 'init'), 'utf8')).toBe('#!/bin/sh\n');

    const mode = (p: string): number => lstatSync(join(out, p)).mode & 0o7777;
    expect(mode('bin/hello')).toBe(0o755);
    expect(mode('init')).toBe(0o755);
    expect(mode('etc/motd')).toBe(0o644);
    expect(mode('etc/secret')).toBe(0o600);
    expect(mode('etc')).toBe(0o700);
    expect(mode('bin')).toBe(0o755);
    expect(lstatSync(join(out, 'etc')).isDirectory()).toBe(true);

    expect(lstatSync(join(out, 'sbin')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(out, 'sbin'))).toBe('bin');
    expect(readlinkSync(join(out, 'etc/rc'))).toBe('../bin/hello');
    // The relative link resolves inside the tree.
    expect(readFileSync(join(out, 'etc/rc'))).toEqual(HELLO);

    // Fixed mtime, preserved by -m.
    expect(statSync(join(out, 'etc/motd')).mtimeMs).toBe(0);
  });
});
