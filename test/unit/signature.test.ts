import { describe, expect, it } from 'vitest';
import { parseSignature, readSignatureArgv, SIGNATURE_BYTES, signatureText, writeSignatureArgv } from '../../src/volume/signature.js';

const SIG = { volume: 'vol-1', id: '5fb85f75-2f1e-4ccf-a928-783dd267bfa2' };

describe('signatureText', () => {
  const text = signatureText(SIG);

  it('is exactly one 4 KiB block', () => {
    expect(SIGNATURE_BYTES).toBe(4096);
    expect(text).toHaveLength(4096);
    expect(Buffer.byteLength(text, 'utf8')).toBe(4096);
    expect(Buffer.from(text, 'latin1')).toHaveLength(4096);
  });

  it('starts with the magic, the volume name and the id on one line', () => {
    expect(text.startsWith(`BRICK-LAB-SIGNATURE v1 volume=${SIG.volume} id=${SIG.id}\n`)).toBe(true);
  });
});

describe('parseSignature', () => {
  const text = signatureText(SIG);

  it('reads back what signatureText wrote, from a string and from a Buffer', () => {
    expect(parseSignature(text)).toEqual(SIG);
    expect(parseSignature(Buffer.from(text, 'latin1'))).toEqual(SIG);
    expect(parseSignature(Buffer.from(text, 'utf8'))).toEqual(SIG);
  });

  it('reads the first line alone, with anything after it', () => {
    const line = `BRICK-LAB-SIGNATURE v1 volume=${SIG.volume} id=${SIG.id}\n`;
    expect(parseSignature(Buffer.concat([Buffer.from(line), Buffer.alloc(4096 - line.length)]))).toEqual(SIG);
  });

  it('returns null for a block of zeros (a fresh volume)', () => {
    expect(parseSignature(Buffer.alloc(SIGNATURE_BYTES))).toBeNull();
    expect(parseSignature('\0'.repeat(SIGNATURE_BYTES))).toBeNull();
    expect(parseSignature('')).toBeNull();
  });

  it('returns null for another magic', () => {
    expect(parseSignature(text.replace('BRICK-LAB-SIGNATURE v1', 'BRICK-LAB-SIGNATURE v2'))).toBeNull();
    expect(parseSignature(text.replace('BRICK-LAB', 'OTHER-LAB'))).toBeNull();
    expect(parseSignature(`x${text}`)).toBeNull();
  });

  it('returns null for a truncated first line', () => {
    const line = `BRICK-LAB-SIGNATURE v1 volume=${SIG.volume} id=${SIG.id}`;
    expect(parseSignature(line)).toBeNull();
    expect(parseSignature(Buffer.from(line))).toBeNull();
    expect(parseSignature(`BRICK-LAB-SIGNATURE v1 volume=${SIG.volume}\n`)).toBeNull();
    expect(parseSignature(`BRICK-LAB-SIGNATURE v1 volume=${SIG.volume} id=\n`)).toBeNull();
    expect(parseSignature(text.slice(0, 20))).toBeNull();
  });
});

describe('writeSignatureArgv and readSignatureArgv', () => {
  const device = '/dev/disk/by-id/wwn-0x60014055fb85f752f1e4ccfa928783dd';

  /** An argument vector for dd: no shell, the device as one whole argument. */
  function expectDdArgv(argv: string[]): void {
    expect(Array.isArray(argv)).toBe(true);
    expect(argv[0]).toBe('dd');
    expect(argv).not.toContain('sh');
    expect(argv).not.toContain('-c');
    for (const a of argv) {
      expect(typeof a).toBe('string');
      expect(a).not.toMatch(/\s|[|;&<>`$]/);
    }
    expect(argv).toContain(`bs=${SIGNATURE_BYTES}`);
    expect(argv).toContain('bs=4096');
    expect(argv).toContain('count=1');
  }

  it('writes one block to the device with direct I/O', () => {
    const argv = writeSignatureArgv(device);
    expectDdArgv(argv);
    expect(argv).toContain(`of=${device}`);
    expect(argv).toContain('oflag=direct');
    expect(argv.some((a) => a.startsWith('if='))).toBe(false);
  });

  it('reads one block from the device with direct I/O', () => {
    const argv = readSignatureArgv(device);
    expectDdArgv(argv);
    expect(argv).toContain(`if=${device}`);
    expect(argv).toContain('iflag=direct');
    expect(argv.some((a) => a.startsWith('of='))).toBe(false);
  });

  it('keeps a device path with odd characters as one argument', () => {
    const odd = '/dev/mapper/a b;c';
    expect(writeSignatureArgv(odd)).toContain(`of=${odd}`);
    expect(readSignatureArgv(odd)).toContain(`if=${odd}`);
  });
});
