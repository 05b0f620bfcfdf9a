/**
 * A volume's data signature: one 4 KiB block at offset 0 that names the volume. Written through
 * a compute node's device, read back on the target or through any path: it tells which volume a
 * device really is (the stale path of CVE-2023-2088 reads another volume's signature).
 */
export const SIGNATURE_BYTES = 4096;
const MAGIC = 'BRICK-LAB-SIGNATURE v1';

export interface Signature {
  volume: string;
  id: string;
}

export function signatureText(s: Signature): string {
  const line = `${MAGIC} volume=${s.volume} id=${s.id}\n`;
  return line.padEnd(SIGNATURE_BYTES, '\n');
}

export function parseSignature(block: Buffer | string): Signature | null {
  const text = typeof block === 'string' ? block : block.toString('latin1');
  const m = /^BRICK-LAB-SIGNATURE v1 volume=([a-z0-9-]+) id=([0-9a-f-]+)\n/.exec(text);
  return m ? { volume: m[1]!, id: m[2]! } : null;
}

/** The argv that writes a signature to a block device (stdin carries signatureText). */
export function writeSignatureArgv(device: string): string[] {
  return ['dd', `of=${device}`, `bs=${SIGNATURE_BYTES}`, 'count=1', 'iflag=fullblock', 'oflag=direct', 'conv=fsync', 'status=none'];
}

/** The argv that reads it back, bypassing the page cache so the answer is the device's. */
export function readSignatureArgv(device: string): string[] {
  return ['dd', `if=${device}`, `bs=${SIGNATURE_BYTES}`, 'count=1', 'iflag=direct', 'status=none'];
}
