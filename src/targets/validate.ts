import { BrickError } from '../system/errors.js';

/**
 * Checks of what a client sends the target API. Each refusal is a 400 that names the field and
 * says what would be accepted; nothing is made before every field passed.
 */
export function refuse(field: string, message: string, code = 'BAD_REQUEST'): never {
  throw new BrickError(code, `${field}: ${message}`, { statusCode: 400, details: { field }, hint: 'see /openapi.json for the request schema' });
}

/** Volume names become backstore, file and configfs names: no dots, no slashes. */
export const VOLUME_NAME = /^[a-z0-9][a-z0-9-]{0,39}$/;

export function checkVolumeName(name: unknown, field = 'name'): string {
  if (typeof name !== 'string' || !VOLUME_NAME.test(name)) {
    refuse(field, `${JSON.stringify(name)} is not a volume name: 1-40 of a-z, 0-9 and '-', starting with a letter or digit (no '.', '/' or '..')`);
  }
  return name;
}

// RFC 3720 iSCSI qualified name, as rtslib checks it: a date, then a reversed domain with at least
// one dot (rtslib refuses "iqn.2026-11.lab:x"), then an optional unique part.
const IQN = /^iqn\.\d{4}-(0[1-9]|1[0-2])\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+(?::[a-z0-9.:_-]+)?$/;

export function checkIqn(iqn: unknown, field = 'iqn'): string {
  if (typeof iqn !== 'string' || iqn.length > 223 || !IQN.test(iqn)) {
    refuse(field, `${JSON.stringify(iqn)} is not an iSCSI qualified name: iqn.YYYY-MM.reversed.domain[:unique], lowercase, and the domain needs at least one dot`, 'BAD_IQN');
  }
  return iqn;
}

// NVMe qualified names: the spec's form is nqn.YYYY-MM.reversed.domain:unique, but real payloads
// carry others (Cinder's nvmet driver makes "nqn.nvme-subsystem-1-<uuid>") and the kernel takes
// them. Refused: what cannot be a configfs directory name or an nvme-cli argument.
const NQN = /^nqn\.[A-Za-z0-9._:-]+$/;

export function checkNqn(nqn: unknown, field = 'nqn'): string {
  if (typeof nqn !== 'string' || nqn.length > 223 || !NQN.test(nqn)) {
    refuse(field, `${JSON.stringify(nqn)} is not an NVMe qualified name: "nqn." then letters, digits, '.', ':', '-' or '_' (at most 223 characters, no '/' or spaces)`, 'BAD_NQN');
  }
  return nqn;
}

export const MAX_SIZE_MIB = 4096;

export function checkSize(sizeMiB: unknown, field = 'sizeMiB'): number {
  if (typeof sizeMiB !== 'number' || !Number.isInteger(sizeMiB) || sizeMiB < 1 || sizeMiB > MAX_SIZE_MIB) {
    refuse(field, `must be a whole number of MiB from 1 to ${MAX_SIZE_MIB} (got ${JSON.stringify(sizeMiB)}); volumes are sparse files in the target's memory`);
  }
  return sizeMiB;
}

export function checkInt(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) refuse(field, `must be a whole number from ${min} to ${max} (got ${JSON.stringify(v)})`);
  return v;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function checkUuid(v: unknown, field: string): string {
  if (typeof v !== 'string' || !UUID.test(v)) refuse(field, `must be a lowercase UUID (got ${JSON.stringify(v)})`);
  return v;
}
