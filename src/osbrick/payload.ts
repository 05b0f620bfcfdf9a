import { isObject } from '../system/text.js';
import { CONTROL, describe, refuse } from '../volume/fields.js';

/**
 * The shared helpers of the os-brick codecs: reading a payload (Cinder's connection_info['data'])
 * as os-brick does, and the options every encoder takes.
 *
 * Every refusal is a 400 BrickError whose message starts with the key it is about, named as it
 * appears in the payload's data (`target_iqns[1]`, `portals[0][2]`).
 */

export type Payload = Record<string, unknown>;

export function asPayload(v: unknown, field: string, what: string): Payload {
  if (!isObject(v)) refuse(field, `must be an object holding ${what} (got ${describe(v)})`);
  return v;
}

/** Own keys only (no `constructor` from the prototype); null counts as absent, as in os-brick's `.get()`. */
export function get(d: Payload, key: string): unknown {
  return Object.hasOwn(d, key) ? d[key] : undefined;
}

export function given(d: Payload, key: string): boolean {
  const v = get(d, key);
  return v !== undefined && v !== null;
}

export function need(d: Payload, key: string, what: string): unknown {
  if (!given(d, key)) refuse(key, `missing: ${what}`);
  return d[key];
}

/**
 * Keys Cinder's volume manager puts into every protocol's data when it hands out an attachment.
 * They say how the volume may be used, not where it is: no decoder reads them, and an encoder
 * writes them only when asked.
 */
export type AttachmentKeys = {
  access_mode: 'rw' | 'ro';
  encrypted: boolean;
  discard: boolean;
};

/**
 * What an encoder may add beyond the typed properties. Without options an encoder writes exactly
 * what the properties hold (and decoding the result gives the same properties back).
 */
export interface EncodeOptions {
  /**
   * iSCSI: write target_portals/target_iqns/target_luns for a single path too. Cinder's iSCSI
   * targets add the lists when there are several portals or when the connector asked for
   * multipath; os-brick reads one-entry lists as one path.
   */
  multipath?: boolean;
  /** iSCSI: Cinder's target_discovered (false when the portals are listed, not found by discovery). */
  targetDiscovered?: boolean;
  attachment?: AttachmentKeys;
}

/** The attachment keys of opts, copied one by one (nothing else a caller's object holds). */
export function attachmentKeys(opts: EncodeOptions): Partial<AttachmentKeys> {
  const a = opts.attachment;
  return a ? { access_mode: a.access_mode, encrypted: a.encrypted, discard: a.discard } : {};
}

/** Cinder's volume_id, when given: a non-empty printable string (the SCSI protocols' codecs). */
export function optionalVolumeId(d: Payload): string | null {
  if (!given(d, 'volume_id')) return null;
  const v = d.volume_id;
  if (typeof v !== 'string' || v === '' || v.length > 255 || CONTROL.test(v)) {
    refuse('volume_id', `must be a non-empty string of at most 255 printable characters (got ${describe(v)})`);
  }
  return v;
}

/** `device_wwid`, a key of ours (os-brick's shapes have no WWID), when given. */
export function optionalWwid(d: Payload): string | null {
  if (!given(d, 'device_wwid')) return null;
  const v = d.device_wwid;
  if (typeof v !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9.:_-]{0,255}$/.test(v)) {
    refuse('device_wwid', `must be a SCSI WWID such as "36001405..." or "naa.6001405..." (got ${describe(v)})`);
  }
  return v;
}
